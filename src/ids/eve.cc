#include "ids/eve.h"

#include <cstdio>
#include <ctime>
#include <iterator>

#include "core/json_writer.h"

namespace palisade::ids {

namespace {

std::string suricataTime(TimeNs t) {
  const time_t secs = static_cast<time_t>(t / 1000000000ull);
  const auto usec = static_cast<unsigned>((t % 1000000000ull) / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  char frac[16];
  snprintf(frac, sizeof frac, ".%06u+0000", usec % 1000000u);
  out += frac;
  return out;
}

void base64(std::string& out, Bytes b) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= b.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(b[i]) << 16 | static_cast<uint32_t>(b[i + 1]) << 8 |
                       static_cast<uint32_t>(b[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = b.size() - i; rest > 0) {
    uint32_t v = static_cast<uint32_t>(b[i]) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(b[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
}

// The envelope both event types share: when, which flow and packet, what,
// and the addresses.
void beginEvent(JsonWriter& w, TimeNs ts, uint64_t flow_id, uint64_t pcap_cnt,
                std::string_view type, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                uint16_t dport, uint8_t proto) {
  w.beginObject();
  w.field("timestamp", suricataTime(ts));
  if (flow_id) w.field("flow_id", flow_id);
  if (pcap_cnt) w.field("pcap_cnt", pcap_cnt);
  w.field("event_type", type);
  w.field("src_ip", src);
  const bool ports = proto == 6 || proto == 17;
  if (ports) w.field("src_port", uint64_t{sport});
  w.field("dest_ip", dst);
  if (ports) w.field("dest_port", uint64_t{dport});
  char buf[4];
  w.field("proto", ipProtoName(proto, buf));
}

void writeHttp(JsonWriter& w, const HttpTx& t) {
  w.key("http").beginObject();
  if (!t.host.empty()) w.field("hostname", t.host);
  if (t.has_request) {
    w.field("url", t.uri);
    if (const std::string* ua = t.request.header("User-Agent")) w.field("http_user_agent", *ua);
    w.field("http_method", t.method);
    if (!t.protocol.empty()) w.field("protocol", t.protocol);
    if (const std::string* ref = t.request.header("Referer")) w.field("http_refer", *ref);
  }
  if (t.has_response) {
    if (const int code = std::atoi(t.status.c_str()); code > 0) w.field("status", code);
    if (const std::string* ct = t.response.header("Content-Type"))
      w.field("http_content_type", *ct);
    if (const std::string* loc = t.response.header("Location")) w.field("redirect", *loc);
    w.field("length", t.response.body_seen);
  }
  w.endObject();
}

std::string_view rrtypeName(uint16_t t, char (&buf)[8]) {
  switch (t) {
    case 1:
      return "A";
    case 2:
      return "NS";
    case 5:
      return "CNAME";
    case 6:
      return "SOA";
    case 12:
      return "PTR";
    case 15:
      return "MX";
    case 16:
      return "TXT";
    case 28:
      return "AAAA";
    case 33:
      return "SRV";
    case 43:
      return "DS";
    case 46:
      return "RRSIG";
    case 48:
      return "DNSKEY";
    case 65:
      return "HTTPS";
    case 255:
      return "ANY";
    default: {
      const int n = std::snprintf(buf, sizeof buf, "%u", unsigned{t});
      return {buf, static_cast<size_t>(n)};
    }
  }
}

std::string_view rcodeName(uint8_t r) {
  static constexpr std::string_view kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                                "NXRRSET", "NOTAUTH", "NOTZONE"};
  return r < std::size(kNames) ? kNames[r] : "UNKNOWN";
}

std::string_view tlsVersionName(uint16_t v) {
  switch (v) {
    case 0x0300:
      return "SSLv3";
    case 0x0301:
      return "TLS 1.0";
    case 0x0302:
      return "TLS 1.1";
    case 0x0303:
      return "TLS 1.2";
    case 0x0304:
      return "TLS 1.3";
    default:
      return "UNDETERMINED";
  }
}

}  // namespace

void appendEventJson(std::string& out, const AppEvent& e) {
  static constexpr std::string_view kType[] = {"http", "dns", "tls", "flow"};
  JsonWriter w(out);
  beginEvent(w, e.ts, e.flow_id, e.pcap_cnt, kType[static_cast<size_t>(e.kind)], e.src, e.sport,
             e.dst, e.dport, e.proto);
  if (const std::string_view ap = appProtoName(e.app); !ap.empty() && e.app != AppProto::Failed)
    w.field("app_proto", ap);
  switch (e.kind) {
    case AppEvent::Kind::Http:
      w.field("tx_id", e.http->id);
      writeHttp(w, *e.http);
      break;
    case AppEvent::Kind::Dns: {
      const DnsMessage& m = *e.dns;
      w.key("dns").beginObject();
      w.field("version", uint64_t{2});
      w.field("type", m.response ? "answer" : "query");
      w.field("id", uint64_t{m.id});
      if (m.opcode) w.field("opcode", uint64_t{m.opcode});
      if (m.response) w.field("rcode", rcodeName(m.rcode));
      if (!m.queries.empty()) {
        char buf[8];
        w.field("rrname", m.queries.front());
        if (!m.qtypes.empty()) w.field("rrtype", rrtypeName(m.qtypes.front(), buf));
      }
      w.endObject();
      break;
    }
    case AppEvent::Kind::Tls:
      w.key("tls").beginObject();
      if (!e.sni->empty()) w.field("sni", *e.sni);
      w.field("version", tlsVersionName(e.tls_version));
      w.endObject();
      break;
    case AppEvent::Kind::Flow: {
      const AppEvent::FlowSummary& f = e.flow;
      w.key("flow").beginObject();
      w.field("pkts_toserver", f.pkts[0]);
      w.field("pkts_toclient", f.pkts[1]);
      w.field("bytes_toserver", f.bytes[0]);
      w.field("bytes_toclient", f.bytes[1]);
      w.field("start", suricataTime(f.start));
      w.field("end", suricataTime(f.end));
      w.field("age", static_cast<uint64_t>((f.end - f.start) / 1000000000ull));
      w.field("state", f.state);
      w.field("reason", f.reason);
      w.field("alerted", f.alerted);
      w.endObject();
      break;
    }
  }
  w.endObject();
  out += '\n';
}

void appendPacketJson(std::string& out, const TaggedPacket& t, uint32_t linktype) {
  const pkt::Packet& p = *t.pkt;
  JsonWriter w(out);
  beginEvent(w, t.ts, t.flow_id, t.pcap_cnt, "packet", p.src, p.sport, p.dst, p.dport, p.proto);
  std::string b64;
  b64.reserve(p.frame.size() * 4 / 3 + 4);
  base64(b64, p.frame);
  w.field("packet", b64);
  w.key("packet_info").beginObject();
  w.field("linktype", uint64_t{linktype});
  w.endObject();
  w.endObject();
  out += '\n';
}

void appendAlertJson(std::string& out, const AlertInfo& a, const ClassificationTable* classes) {
  JsonWriter w(out);
  beginEvent(w, a.ts, a.flow_id, a.pcap_cnt, "alert", a.src, a.sport, a.dst, a.dport, a.proto);
  writeAlertMembers(w, a, classes);
  w.endObject();
  out += '\n';
}

void writeAlertMembers(JsonWriter& w, const AlertInfo& a, const ClassificationTable* classes) {
  const Rule& r = *a.rule;
  w.field("direction", a.to_server ? "to_server" : "to_client");
  if (const std::string_view ap = appProtoName(a.app); !ap.empty() && a.app != AppProto::Failed)
    w.field("app_proto", ap);

  w.key("alert").beginObject();
  w.field("action", a.blocked ? "blocked" : "allowed");
  w.field("gid", uint64_t{r.gid});
  w.field("signature_id", uint64_t{r.sid});
  w.field("rev", uint64_t{r.rev});
  w.field("signature", r.msg);
  std::string category = r.classtype;
  if (classes) {
    if (auto it = classes->classes.find(r.classtype); it != classes->classes.end())
      category = it->second.description;
  }
  w.field("category", category);
  w.field("severity", uint64_t{r.priority});
  if (!r.metadata.empty()) {
    w.key("metadata").beginObject();
    // Suricata groups metadata values under their keys, as arrays.
    std::vector<std::string_view> done;
    for (const auto& [k, v] : r.metadata) {
      if (std::find(done.begin(), done.end(), k) != done.end()) continue;
      done.push_back(k);
      w.key(k).beginArray();
      for (const auto& [k2, v2] : r.metadata)
        if (k2 == k) w.value(v2);
      w.endArray();
    }
    w.endObject();
  }
  w.endObject();

  if (a.http) writeHttp(w, *a.http);
  if (a.dns) {
    w.key("dns").beginObject();
    w.field("type", a.dns->response ? "response" : "request");
    w.field("id", uint64_t{a.dns->id});
    if (!a.dns->queries.empty()) w.field("rrname", a.dns->queries.front());
    w.endObject();
  }
  if (a.sni) {
    w.key("tls").beginObject();
    w.field("sni", *a.sni);
    w.endObject();
  }
}

}  // namespace palisade::ids
