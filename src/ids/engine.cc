#include "ids/engine.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/hash.h"
#include "core/strings.h"
#include "ids/flow_index.h"
#include "ids/inspect.h"
#include "ids/prefilter.h"
#include "packet/decoder.h"

namespace palisade::ids {

namespace {

using pkt::Packet;
namespace tcpflag = pkt::tcpflag;
namespace ipproto = pkt::ipproto;

enum class Kind : uint8_t { IpOnly, Packet, Stream, Tx };
enum class Side : uint8_t { Request, Response, Both };

// Which side of an HTTP transaction a buffer belongs to.
Side bufferSide(Buffer b) {
  switch (b) {
    case Buffer::HttpUri:
    case Buffer::HttpUriRaw:
    case Buffer::HttpMethod:
    case Buffer::HttpHost:
    case Buffer::HttpHostRaw:
    case Buffer::HttpUserAgent:
    case Buffer::HttpRequestBody:
    case Buffer::HttpRequestLine:
    case Buffer::HttpReferer:
    case Buffer::HttpAccept:
    case Buffer::HttpAcceptEnc:
    case Buffer::HttpAcceptLang:
    case Buffer::DnsQuery:
    case Buffer::TlsSni:
      return Side::Request;
    case Buffer::HttpStatCode:
    case Buffer::HttpStatMsg:
    case Buffer::HttpResponseLine:
    case Buffer::HttpLocation:
    case Buffer::HttpServer:
    case Buffer::HttpResponseBody:
      return Side::Response;
    default:
      return Side::Both;
  }
}

// The buffers that are one header's value.
std::string_view headerOf(Buffer b) {
  switch (b) {
    case Buffer::HttpHostRaw:
      return "Host";
    case Buffer::HttpUserAgent:
      return "User-Agent";
    case Buffer::HttpContentType:
      return "Content-Type";
    case Buffer::HttpContentLen:
      return "Content-Length";
    case Buffer::HttpReferer:
      return "Referer";
    case Buffer::HttpAccept:
      return "Accept";
    case Buffer::HttpAcceptEnc:
      return "Accept-Encoding";
    case Buffer::HttpAcceptLang:
      return "Accept-Language";
    case Buffer::HttpConnection:
      return "Connection";
    case Buffer::HttpLocation:
      return "Location";
    case Buffer::HttpServer:
      return "Server";
    default:
      return {};
  }
}

AppProto appOf(Proto p) {
  switch (p) {
    case Proto::Http:
      return AppProto::Http;
    case Proto::Dns:
      return AppProto::Dns;
    case Proto::Tls:
      return AppProto::Tls;
    default:
      return AppProto::Unknown;
  }
}

struct CRule {
  const Rule* r = nullptr;
  size_t index = 0;
  Kind kind = Kind::Packet;
  std::vector<BufferProgram> progs;
  int payload = -1;  // index of the payload program, or -1
  AppProto app = AppProto::Unknown;
  Side side = Side::Both;
  bool pkt_only = false, stream_only = false;
  // Flowbits by interned id.
  struct Bit {
    Flowbit::Cmd cmd;
    std::vector<uint32_t> ids;
    bool any_of;
  };
  std::vector<Bit> bits;
  bool noalert = false;
};

bool l4Matches(Proto p, uint8_t proto) {
  switch (p) {
    case Proto::Ip:
      return true;
    case Proto::Tcp:
    case Proto::TcpPkt:
    case Proto::TcpStream:
      return proto == ipproto::kTcp;
    case Proto::Udp:
      return proto == ipproto::kUdp;
    case Proto::Icmp:
      return proto == ipproto::kIcmp || proto == ipproto::kIcmpv6;
    case Proto::Http:
    case Proto::Tls:
      return proto == ipproto::kTcp;
    case Proto::Dns:
      return proto == ipproto::kTcp || proto == ipproto::kUdp;
  }
  return false;
}

struct ThresholdKey {
  uint64_t rule;
  uint64_t flow;
  IpAddr a, b;
  friend bool operator==(const ThresholdKey&, const ThresholdKey&) = default;
};
struct ThresholdKeyHash {
  size_t operator()(const ThresholdKey& k) const { return hashKey(k); }
};
struct ThresholdState {
  TimeNs first = 0;
  uint32_t count = 0;
  std::vector<uint64_t> ports;  // unique_on: a 65536-bit set, allocated on use
  uint32_t distinct = 0;
};

struct FlowKey {
  IpAddr a, b;
  uint16_t pa = 0, pb = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {0, 0, 0};
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

// What is left of a tag: packets or bytes to log, or a time to log until.
struct TagState {
  Tag::Metric metric = Tag::Metric::Packets;
  uint64_t remaining = 0;
  TimeNs until = 0;
  // Logs this packet if the tag still runs; false once it has run out.
  bool take(TimeNs now, uint32_t len) {
    switch (metric) {
      case Tag::Metric::Packets:
        if (remaining == 0) return false;
        --remaining;
        return true;
      case Tag::Metric::Bytes:
        if (remaining == 0) return false;
        remaining -= std::min<uint64_t>(remaining, len);
        return true;
      case Tag::Metric::Seconds:
        return now <= until;
    }
    return false;
  }
  static TagState start(const Tag& t, TimeNs now, uint32_t len) {
    TagState s;
    s.metric = t.metric;
    // The count includes the packet that alerted (which is not logged again).
    if (t.metric == Tag::Metric::Packets) s.remaining = t.count > 0 ? t.count - 1 : 0;
    if (t.metric == Tag::Metric::Bytes) s.remaining = t.count > len ? t.count - len : 0;
    s.until = now + static_cast<TimeNs>(t.count) * 1000000000ull;
    return s;
  }
};

struct IpHash {
  size_t operator()(const IpAddr& a) const { return hashKey(a); }
};

enum class TcpState : uint8_t { None, SynSent, SynSent4whs, SynRecv, Established, Closed };

}  // namespace

struct Flow {
  uint64_t id = 0;
  FlowKey key;
  IpAddr client, server;
  uint16_t cport = 0, sport = 0;
  uint8_t proto = 0;
  uint32_t slot = 0;              // its entry in Engine::Impl::activity (when it was last seen)
  bool seen[2] = {false, false};  // 0: to_server, 1: to_client
  bool iponly_done[2] = {false, false};
  bool passed = false;
  bool encrypted = false;  // TLS carrying application data: payload not inspected
  bool dropped = false;    // IPS: a drop rule matched; every later packet is dropped
  uint32_t first_sid = 0;  // the sid of the flow's first alert
  uint32_t drop_sid = 0;   // IPS: the sid of the drop rule that stopped it
  uint64_t pkts[2] = {0, 0}, bytes[2] = {0, 0};  // to server, to client (EVE flow)
  TimeNs start = 0;

  // TCP
  TcpState state = TcpState::None;
  bool established = false;
  bool fin[2] = {false, false};
  // The current packet counts as established (Suricata: the handshake's last
  // ACK does not, a mid-stream pickup's first packet does).
  bool pkt_established = false;
  TcpStream s[2];
  uint64_t acked[2] = {0, 0};
  uint64_t app_done[2] = {0, 0}, raw_done[2] = {0, 0};

  // Application layer
  AppProto app = AppProto::Unknown;
  AppProto app_dir[2] = {AppProto::Unknown, AppProto::Unknown};
  std::unique_ptr<HttpParser> http;
  // TLS flows only: the ClientHello (its SNI) and each direction's records.
  struct TlsSession {
    TlsHello hello;
    TlsRecords records[2];
  };
  std::unique_ptr<TlsSession> tls;
  std::string dns_buf[2];

  std::vector<uint32_t> bits;                                          // flowbits set
  std::optional<TagState> tag;                                         // a session tag
  std::vector<std::pair<uint64_t, std::vector<uint32_t>>> tx_alerted;  // http tx id -> rules
  // Stream rules whose fast pattern was found in a chunk that is still in the
  // inspection window: (ordinal, the chunk's end offset), per direction.
  std::vector<std::pair<uint32_t, uint64_t>> recent[2];
};

struct Engine::Impl {
  EngineConfig cfg;
  AlertSink sink;
  EngineStats stats;
  std::optional<pkt::Reassembler> defrag;  // cfg.defrag
  pkt::Decoder defrag_decoder;
  pkt::Packet whole;         // the datagram a fragment completed
  std::vector<CRule> rules;  // in inspection order
  std::vector<const CRule*> ip_only, packet_rules, stream_rules, tx_rules;
  // Prefilters (prefilter.h), by rule ordinal in `rules`.
  HsScratch hs;
  // Transaction fast patterns by the side they are inspected on (0 request,
  // 1 response) and buffer; a body rule's patterns sit under FileData, the
  // same bytes, so a body is scanned once per side.
  std::array<std::array<LiteralSet, kBufferCount>, 2> tx_lit;
  // Transaction rules without a fast pattern, by what they inspect: HTTP
  // request, HTTP response, DNS, TLS (sorted: built in ordinal order).
  std::array<std::vector<uint32_t>, 4> tx_always;
  // Payload fast patterns: of stream rules (for TCP streams and untracked TCP
  // packets) and of the same rules on other protocols' packets; of packet
  // rules, [0] those that apply to TCP, [1] to the rest. Each has a database
  // per direction (DirectedLiterals).
  DirectedLiterals stream_lit, stream_other_lit;
  std::array<DirectedLiterals, 2> packet_lit;
  size_t stream_fp_max = 0;  // the longest fast pattern in stream_lit
  static constexpr size_t kMaxRecent = 512;
  PortIndex stream_idx, packet_idx;
  std::vector<uint32_t> cand, todo;
  // Scratch reused across evaluations (no allocation per rule).
  std::vector<std::string_view> buf_inst, scan_inst;
  std::string dotted;                              // a dotprefix buffer
  std::vector<uint64_t> evaluated, matched_count;  // by ordinal
  FlowIndex<Flow, FlowKey> flows;
  // The flows, each with when it was last seen, in a dense array: the sweep
  // reads these and touches only the flows it frees (reading a field of each
  // flow cost a cache miss per flow per sweep). In the order flows began,
  // but for the places freed ones left, which the last entry takes.
  struct Activity {
    TimeNs last;
    std::unique_ptr<Flow> flow;
    bool closing;  // TCP: RST, or a FIN each way: freed after closed_timeout
  };
  std::vector<Activity> activity;
  Activity& activityOf(const Flow& f) { return activity[f.slot]; }
  // Frees a flow (after closeFlow): its index entry and its activity entry.
  void freeFlow(Flow& f);
  // The flow of the last packet: a burst of one flow's packets (a transfer's
  // segments) finds it without hashing; reset whenever a flow is freed.
  Flow* last_flow = nullptr;
  std::unordered_map<ThresholdKey, ThresholdState, ThresholdKeyHash> thresholds;
  std::unordered_map<IpAddr, TagState, IpHash> host_tags;
  TagSink tag_sink;
  EventSink event_sink;
  // An event about flow f, client to server (or as `dir` travelled).
  AppEvent event(const Flow& f, AppEvent::Kind kind, int dir = 0) const {
    AppEvent e;
    e.kind = kind;
    e.ts = ts;
    e.pcap_cnt = closing ? 0 : pcap_cnt;
    e.flow_id = f.id;
    e.src = dir == 0 ? f.client : f.server;
    e.dst = dir == 0 ? f.server : f.client;
    e.sport = dir == 0 ? f.cport : f.sport;
    e.dport = dir == 0 ? f.sport : f.cport;
    e.proto = f.proto;
    e.app = f.app;
    return e;
  }
  std::map<std::string, uint32_t, std::less<>> bit_ids;
  uint64_t next_flow_id = 1;
  TimeNs last_sweep = 0;
  Inspector insp;
  std::vector<int64_t> vars;
  std::string scratch;

  // The packet being processed.
  const Packet* cur = nullptr;
  TimeNs ts = 0;
  uint64_t pcap_cnt = 0;

  uint32_t bitId(const std::string& name) {
    auto [it, inserted] = bit_ids.try_emplace(name, static_cast<uint32_t>(bit_ids.size()));
    return it->second;
  }

  void compile(const std::vector<Rule>& in);
  void inspect(const Packet& pk, TimeNs ts_now, uint64_t cnt);  // Engine::packet's work
  Flow* flowFor(const Packet& pk, bool& to_server);
  void tcp(Flow& f, const Packet& pk, bool to_server, bool& added);
  void deliver(Flow& f, int dir, uint64_t upto);
  void appData(Flow& f, int dir, std::string_view data);
  void inspectHttp(Flow& f, bool at_end);
  void inspectTx(Flow& f, int dir, const HttpTx* tx, const DnsMessage* dns, const std::string* sni,
                 std::string_view payload);
  void closeFlow(Flow& f, const char* reason);  // reason: "timeout", "shutdown" (EVE flow)
  void sweep();

  // Inspection context: what one rule evaluation sees.
  struct Ctx {
    Flow* f = nullptr;
    int dir = 0;  // 0 to_server, 1 to_client
    IpAddr src, dst;
    uint16_t sport = 0, dport = 0;
    uint8_t proto = 0;
    bool packet_keywords = true;  // the packet's own header fields apply
    std::string_view payload;
    bool has_payload = false;
    bool stream = false;
    uint64_t new_from = 0;  // stream: a match must end past this offset in `payload`
    const HttpTx* tx = nullptr;
    Side side = Side::Both;
    const DnsMessage* dns = nullptr;
    const std::string* sni = nullptr;
  };
  Ctx packetCtx(Flow* f, const Packet& pk, bool to_server) const;
  bool headerMatches(const CRule& c, const Ctx& x) const;
  bool conditions(const CRule& c, const Ctx& x) const;
  bool buffers(const CRule& c, const Ctx& x);
  void fetch(const Ctx& x, Buffer b, std::vector<std::string_view>& out);
  // Runs a rule; true when it matched (alerted or not).
  bool evaluate(const CRule& c, Ctx& x);
  void matched(const CRule& c, const Ctx& x);
  // What thresholding lets a match do: alert (and act), act silently (a
  // drop still drops: limit, both past its count), or nothing (before a
  // threshold's or detection filter's count), as Suricata 7/8 apply them.
  enum class Gate : uint8_t { Alert, Silent, Nothing };
  Gate thresholdGate(const CRule& c, const Ctx& x);
  Outcome outcome;       // the current packet's
  bool closing = false;  // inspecting flows being closed (sweep, finish), not a packet
  void buildPrefilters();
  // Evaluates the rules in `cand` (ordinals) in inspection order.
  template <class Skip>
  void runCandidates(Ctx& x, Skip skip, uint64_t& counter);
};

namespace {

// The content a rule cannot match without, in payload or in app-layer
// buffers: the one marked fast_pattern, else the longest non-negated one.
//
// A content on a dotprefix buffer ("." + the name) serves too: with its
// leading '.' dropped it occurs in the name itself whenever it occurs in the
// dotted name, so the plain buffer can be scanned for it (fastBytes).
const Content* fastPattern(const CRule& c, bool payload, Buffer& buffer, bool& dotprefix) {
  const Content* best = nullptr;
  for (const BufferProgram& p : c.progs) {
    if ((p.buffer == Buffer::Payload) != payload) continue;
    if (p.dotprefix && (payload || p.steps.empty())) continue;
    for (const Match* m : p.steps) {
      if (m->kind != Match::Kind::Content || m->content.negated || m->content.bytes.empty())
        continue;
      const Content& ct = m->content;
      if (best && best->fast_pattern) continue;
      if (p.dotprefix && ct.bytes.size() < 2) continue;
      if (!best || ct.fast_pattern || ct.bytes.size() > best->bytes.size()) {
        best = &ct;
        buffer = p.buffer;
        dotprefix = p.dotprefix;
      }
    }
  }
  return best;
}

}  // namespace

void Engine::Impl::buildPrefilters() {
  for (auto& side : tx_lit)
    side[static_cast<size_t>(Buffer::FileData)].scanByWindows();
  for (size_t i = 0; i < rules.size(); ++i) {
    const CRule& c = rules[i];
    const auto ord = static_cast<uint32_t>(i);
    Buffer b = Buffer::Payload;
    bool fp_dotted = false;
    const Rule& r = *c.r;
    const bool tcp = l4Matches(r.proto, ipproto::kTcp), udp = l4Matches(r.proto, ipproto::kUdp),
               icmp = l4Matches(r.proto, ipproto::kIcmp), other = r.proto == Proto::Ip;
    switch (c.kind) {
      case Kind::Tx:
        if (const Content* fp = fastPattern(c, false, b, fp_dotted)) {
          const std::string_view bytes =
              std::string_view(fp->bytes).substr(fp_dotted && fp->bytes[0] == '.' ? 1 : 0);
          for (int side = 0; side < 2; ++side) {
            if (c.side == (side == 0 ? Side::Response : Side::Request)) continue;
            Buffer at = b;
            if ((side == 0 && b == Buffer::HttpRequestBody) ||
                (side == 1 && b == Buffer::HttpResponseBody))
              at = Buffer::FileData;
            tx_lit[side][static_cast<size_t>(at)].add(ord, bytes, fp->nocase);
          }
        } else
          for (int k = 0; k < 4; ++k) {
            const bool fits = k == 0   ? c.app == AppProto::Http && c.side != Side::Response
                              : k == 1 ? c.app == AppProto::Http && c.side != Side::Request
                              : k == 2 ? c.app == AppProto::Dns
                                       : c.app == AppProto::Tls;
            if (fits) tx_always[k].push_back(ord);
          }
        break;
      case Kind::Stream:
      case Kind::Packet: {
        // A fast pattern shorter than 4 bytes ("|00 01|") is in most payloads;
        // when the rule's ports are specific, its port says more.
        const Content* fp = fastPattern(c, true, b, fp_dotted);
        const bool weak = fp && fp->bytes.size() < 4 &&
                          PortIndex::indexable(r.sport, r.dport, r.bidirectional) &&
                          r.proto != Proto::Ip;
        PortIndex& idx = c.kind == Kind::Stream ? stream_idx : packet_idx;
        if (fp && !weak) {
          DirectedLiterals& for_tcp = c.kind == Kind::Stream ? stream_lit : packet_lit[0];
          DirectedLiterals& for_rest = c.kind == Kind::Stream ? stream_other_lit : packet_lit[1];
          const bool to_server = r.flow && r.flow->to_server,
                     to_client = r.flow && r.flow->to_client;
          if (tcp) for_tcp.add(ord, fp->bytes, fp->nocase, to_server, to_client);
          if (udp || icmp || other) for_rest.add(ord, fp->bytes, fp->nocase, to_server, to_client);
          if (c.kind == Kind::Stream) stream_fp_max = std::max(stream_fp_max, fp->bytes.size());
        } else
          idx.add(ord, tcp, udp, icmp, other, r.sport, r.dport, r.bidirectional);
        break;
      }
      case Kind::IpOnly:
        break;
    }
  }
  auto build = [&](auto& l, std::string_view what) {
    if (Status st = l.build(hs); !st && stats.prefilter_error.empty())
      stats.prefilter_error = strCat(std::string(what), ": ", st.error().message);
  };
  for (auto& side : tx_lit)
    for (size_t b = 0; b < kBufferCount; ++b)
      build(side[b], bufferName(static_cast<Buffer>(b)));
  stream_idx.build();
  packet_idx.build();
  build(stream_lit, "stream");
  build(stream_other_lit, "payload");
  build(packet_lit[0], "packet");
  build(packet_lit[1], "packet");
  for (const DirectedLiterals* l :
       {&stream_lit, &stream_other_lit, &packet_lit[0], &packet_lit[1]}) {
    stats.prefilter_patterns += l->size();
    stats.prefilter_bytes += l->bytes();
  }
  for (const auto& side : tx_lit)
    for (const LiteralSet& l : side) {
      stats.prefilter_patterns += l.size();
      stats.prefilter_bytes += l.bytes();
    }
}

template <class Skip>
void Engine::Impl::runCandidates(Ctx& x, Skip skip, uint64_t& counter) {
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  stats.candidates += cand.size();
  counter += cand.size();
  for (uint32_t ord : cand) {
    const CRule& c = rules[ord];
    if (!skip(c)) evaluate(c, x);
  }
}

void Engine::Impl::compile(const std::vector<Rule>& in) {
  rules.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const Rule& r = in[i];
    CRule c;
    c.r = &r;
    c.index = i;
    c.progs = compilePrograms(r);
    stats.pcre_jit += jitCompile(r);
    for (size_t k = 0; k < c.progs.size(); ++k)
      if (c.progs[k].buffer == Buffer::Payload && !c.progs[k].dotprefix)
        c.payload = static_cast<int>(k);
    c.app = appOf(r.proto);
    if (c.app == AppProto::Unknown) c.app = appOf(r.appProto());
    c.pkt_only = r.proto == Proto::TcpPkt || r.dsize.has_value();
    c.stream_only = r.proto == Proto::TcpStream || (r.flow && r.flow->only_stream);
    if (r.flow && r.flow->no_stream) c.pkt_only = true;
    c.noalert = r.noalert;
    for (const Flowbit& fb : r.flowbits) {
      if (fb.cmd == Flowbit::Cmd::NoAlert) {
        c.noalert = true;
        continue;
      }
      CRule::Bit b{fb.cmd, {}, fb.any_of};
      for (const std::string& n : fb.names)
        b.ids.push_back(bitId(n));
      c.bits.push_back(std::move(b));
    }

    const bool has_app_buffers =
        std::any_of(c.progs.begin(), c.progs.end(),
                    [](const BufferProgram& p) { return p.buffer != Buffer::Payload; }) ||
        r.urilen.has_value();
    const bool packet_keywords =
        r.dsize || r.ttl || r.itype || r.icode || r.icmp_id || r.icmp_seq || r.flags;
    const bool checks_bits =
        std::any_of(r.flowbits.begin(), r.flowbits.end(), [](const Flowbit& b) {
          return b.cmd == Flowbit::Cmd::IsSet || b.cmd == Flowbit::Cmd::IsNotSet;
        });
    if (has_app_buffers) {
      c.kind = Kind::Tx;
      bool req = false, resp = false;
      for (const BufferProgram& p : c.progs) {
        const Side s = bufferSide(p.buffer);
        req |= s == Side::Request;
        resp |= s == Side::Response;
      }
      if (resp)
        c.side = Side::Response;
      else if (req || r.urilen)
        c.side = Side::Request;
      else if (r.flow && r.flow->to_client)
        c.side = Side::Response;
      else if (r.flow && r.flow->to_server)
        c.side = Side::Request;
      else
        c.side = Side::Both;
    } else if (c.payload >= 0 && !packet_keywords && !c.pkt_only) {
      c.kind = Kind::Stream;
    } else if (c.payload < 0 && !packet_keywords && !r.flow && !checks_bits &&
               c.app == AppProto::Unknown && r.sport.isAny() && r.dport.isAny()) {
      c.kind = Kind::IpOnly;
    } else {
      c.kind = Kind::Packet;
    }
    rules.push_back(std::move(c));
  }
  // Inspection order: pass rules first (they stop the rest), then rules that
  // set flowbits before the rules that test them, then the rest as loaded.
  auto rank = [](const CRule& c) {
    if (c.r->action == Action::Pass) return 0;
    bool sets = false, checks = false;
    for (const CRule::Bit& b : c.bits) {
      sets |= b.cmd == Flowbit::Cmd::Set || b.cmd == Flowbit::Cmd::Unset ||
              b.cmd == Flowbit::Cmd::Toggle;
      checks |= b.cmd == Flowbit::Cmd::IsSet || b.cmd == Flowbit::Cmd::IsNotSet;
    }
    if (sets && !checks) return 1;
    if (sets) return 2;
    return 3;
  };
  std::stable_sort(rules.begin(), rules.end(),
                   [&](const CRule& a, const CRule& b) { return rank(a) < rank(b); });
  size_t max_vars = 0;
  for (const CRule& c : rules) {
    max_vars = std::max(max_vars, c.r->byte_vars.size());
    switch (c.kind) {
      case Kind::IpOnly:
        ip_only.push_back(&c);
        ++stats.rules_ip_only;
        break;
      case Kind::Packet:
        packet_rules.push_back(&c);
        ++stats.rules_packet;
        break;
      case Kind::Stream:
        stream_rules.push_back(&c);
        ++stats.rules_stream;
        break;
      case Kind::Tx:
        tx_rules.push_back(&c);
        ++stats.rules_tx;
        break;
    }
  }
  vars.assign(max_vars, 0);
  evaluated.assign(rules.size(), 0);
  matched_count.assign(rules.size(), 0);
  buildPrefilters();
}

Engine::Impl::Ctx Engine::Impl::packetCtx(Flow* f, const Packet& pk, bool to_server) const {
  Ctx x;
  x.f = f;
  x.dir = to_server ? 0 : 1;
  x.src = pk.src;
  x.dst = pk.dst;
  x.proto = pk.proto;
  if (pk.layers & (pkt::kTcp | pkt::kUdp)) {
    x.sport = pk.sport;
    x.dport = pk.dport;
  }
  // A TCP or UDP header that did not decode leaves no payload to inspect
  // (what follows the IP header would be the broken header itself).
  const bool l4_broken = (pk.proto == ipproto::kTcp && !(pk.layers & pkt::kTcp)) ||
                         (pk.proto == ipproto::kUdp && !(pk.layers & pkt::kUdp));
  if (!l4_broken)
    x.payload =
        std::string_view(reinterpret_cast<const char*>(pk.payload().data()), pk.payload_len);
  x.has_payload = !l4_broken;
  return x;
}

bool Engine::Impl::headerMatches(const CRule& c, const Ctx& x) const {
  const Rule& r = *c.r;
  if (!l4Matches(r.proto, x.proto)) return false;
  const bool ports = x.proto == ipproto::kTcp || x.proto == ipproto::kUdp;
  auto one = [&](const IpAddr& s, uint16_t sp, const IpAddr& d, uint16_t dp) {
    if (!r.src.contains(s) || !r.dst.contains(d)) return false;
    if (!ports) return r.sport.isAny() && r.dport.isAny();
    return r.sport.contains(sp) && r.dport.contains(dp);
  };
  if (one(x.src, x.sport, x.dst, x.dport)) return true;
  return r.bidirectional && one(x.dst, x.dport, x.src, x.sport);
}

bool Engine::Impl::conditions(const CRule& c, const Ctx& x) const {
  const Rule& r = *c.r;
  const Flow* f = x.f;
  if (c.app != AppProto::Unknown && (!f || f->app != c.app)) return false;
  if (r.flow) {
    const FlowOpt& o = *r.flow;
    if (o.to_server && x.dir != 0) return false;
    if (o.to_client && x.dir != 1) return false;
    const bool tcp_est = x.packet_keywords ? f && f->pkt_established : f && f->established;
    const bool est = f && (f->proto == ipproto::kTcp ? tcp_est : (f->seen[0] && f->seen[1]));
    if (o.established && !est) return false;
    if (o.not_established && est) return false;
    if (o.only_stream && !x.stream) return false;
    if (o.no_stream && x.stream) return false;
  }
  for (const CRule::Bit& b : c.bits) {
    if (b.cmd != Flowbit::Cmd::IsSet && b.cmd != Flowbit::Cmd::IsNotSet) continue;
    auto has = [&](uint32_t id) {
      return f && std::find(f->bits.begin(), f->bits.end(), id) != f->bits.end();
    };
    if (b.cmd == Flowbit::Cmd::IsSet) {
      const bool ok = b.any_of ? std::any_of(b.ids.begin(), b.ids.end(), has)
                               : std::all_of(b.ids.begin(), b.ids.end(), has);
      if (!ok) return false;
    } else {
      const bool ok = b.any_of ? !std::all_of(b.ids.begin(), b.ids.end(), has)
                               : std::none_of(b.ids.begin(), b.ids.end(), has);
      if (!ok) return false;
    }
  }
  if (x.packet_keywords) {
    const Packet& pk = *cur;
    if (r.ttl && !r.ttl->test(pk.ttl)) return false;
    if (r.dsize && !r.dsize->test(pk.payload_len)) return false;
    if (r.flags) {
      if (!(pk.layers & pkt::kTcp)) return false;
      const FlagsTest& t = *r.flags;
      const uint8_t fl = pk.tcp.flags & t.mask;
      switch (t.mode) {
        case FlagsTest::Mode::Exact:
          if (fl != t.bits) return false;
          break;
        case FlagsTest::Mode::Plus:
          if ((fl & t.bits) != t.bits) return false;
          break;
        case FlagsTest::Mode::Any:
          if (t.bits && (fl & t.bits) == 0) return false;
          break;
        case FlagsTest::Mode::Not:
          if ((fl & t.bits) != 0) return false;
          break;
      }
    }
    const bool icmp = pk.layers & (pkt::kIcmp | pkt::kIcmpv6);
    if ((r.itype || r.icode || r.icmp_id || r.icmp_seq) && !icmp) return false;
    if (r.itype && !r.itype->test(pk.icmp.type)) return false;
    if (r.icode && !r.icode->test(pk.icmp.code)) return false;
    if (r.icmp_id || r.icmp_seq) {
      // Only echo and echo reply carry an id and a sequence number.
      const uint8_t t = pk.icmp.type;
      const bool echo = (pk.layers & pkt::kIcmp) ? (t == 0 || t == 8) : (t == 128 || t == 129);
      if (!echo) return false;
      if (r.icmp_id && pk.icmp.id != *r.icmp_id) return false;
      if (r.icmp_seq && pk.icmp.seq != *r.icmp_seq) return false;
    }
  }
  return true;
}

void Engine::Impl::fetch(const Ctx& x, Buffer b, std::vector<std::string_view>& out) {
  out.clear();
  if (b == Buffer::Payload) {
    if (x.has_payload && !x.payload.empty()) out.push_back(x.payload);
    return;
  }
  if (b == Buffer::DnsQuery) {
    if (x.dns && !x.dns->response)
      for (const std::string& q : x.dns->queries)
        out.push_back(q);
    return;
  }
  if (b == Buffer::TlsSni) {
    if (x.sni && !x.sni->empty()) out.push_back(*x.sni);
    return;
  }
  if (!x.tx) return;
  const HttpTx& t = *x.tx;
  const Side bs = bufferSide(b);
  const bool resp = bs == Side::Response || (bs == Side::Both && x.side == Side::Response);
  const HttpMessage& m = resp ? t.response : t.request;
  if (resp ? !t.has_response : !t.has_request) return;
  auto add = [&](std::string_view v) { out.push_back(v); };
  auto header = [&](std::string_view name) {
    if (const std::string* v = m.header(name)) add(*v);
  };
  if (const std::string_view name = headerOf(b); !name.empty()) {
    header(name);
    return;
  }
  scratch.clear();
  switch (b) {
    case Buffer::HttpUri:
      add(t.uri_normalized);
      break;
    case Buffer::HttpUriRaw:
      add(t.uri);
      break;
    case Buffer::HttpMethod:
      add(t.method);
      break;
    case Buffer::HttpHost:
      if (!t.host.empty()) add(t.host);
      break;
    case Buffer::HttpHeader:
      for (const HttpHeader& h : m.headers) {
        const bool cookie =
            resp ? equalsIgnoreCase(h.name, "Set-Cookie") : equalsIgnoreCase(h.name, "Cookie");
        if (cookie) continue;
        scratch += h.name;
        scratch += ": ";
        scratch += h.value;
        scratch += "\r\n";
      }
      if (!scratch.empty()) add(scratch);
      break;
    case Buffer::HttpHeaderRaw:
      if (!m.raw_headers.empty()) add(m.raw_headers);
      break;
    case Buffer::HttpHeaderNames:
      scratch = "\r\n";
      for (const HttpHeader& h : m.headers) {
        scratch += h.name;
        scratch += "\r\n";
      }
      scratch += "\r\n";
      add(scratch);
      break;
    case Buffer::HttpCookie:
      header(resp ? "Set-Cookie" : "Cookie");
      break;
    case Buffer::HttpRequestBody:
      if (!t.request.body.empty()) add(t.request.body);
      break;
    case Buffer::HttpRequestLine:
      add(t.request.start_line);
      break;
    case Buffer::HttpStart:
      scratch = m.start_line;
      scratch += "\r\n";
      scratch += m.raw_headers;
      scratch += "\r\n";
      add(scratch);
      break;
    case Buffer::HttpProtocol:
      add(resp ? t.response_protocol : t.protocol);
      break;
    case Buffer::HttpStatCode:
      if (!t.status.empty()) add(t.status);
      break;
    case Buffer::HttpStatMsg:
      if (!t.reason.empty()) add(t.reason);
      break;
    case Buffer::HttpResponseLine:
      add(t.response.start_line);
      break;
    case Buffer::HttpResponseBody:
      if (!t.response.body.empty()) add(t.response.body);
      break;
    case Buffer::FileData:
      if (!m.body.empty()) add(m.body);
      break;
    default:
      break;
  }
}

bool Engine::Impl::buffers(const CRule& c, const Ctx& x) {
  const Rule& r = *c.r;
  if (r.urilen) {
    if (!x.tx || !x.tx->has_request) return false;
    const size_t n = r.urilen_raw ? x.tx->uri.size() : x.tx->uri_normalized.size();
    if (!r.urilen->test(n)) return false;
  }
  std::fill(vars.begin(), vars.end(), 0);
  std::vector<std::string_view>& inst = buf_inst;
  for (const BufferProgram& prog : c.progs) {
    fetch(x, prog.buffer, inst);
    // A stream match must reach bytes not inspected before (Inspector's min_end).
    bool any = false;
    for (std::string_view d : inst) {
      std::string_view data = d;
      if (prog.dotprefix) {
        // resize + copy: GCC 12 reports a false -Wrestrict on "." + d.
        dotted.resize(d.size() + 1);
        dotted[0] = '.';
        std::copy(d.begin(), d.end(), dotted.begin() + 1);
        data = dotted;
      }
      const bool fresh_only = x.stream && prog.buffer == Buffer::Payload;
      if (insp.run(prog, data, vars, fresh_only ? x.new_from : 0)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}

Engine::Impl::Gate Engine::Impl::thresholdGate(const CRule& c, const Ctx& x) {
  const Rule& r = *c.r;
  if (!r.threshold && !r.detection_filter) return Gate::Alert;
  const Track track = r.threshold ? r.threshold->track : r.detection_filter->track;
  ThresholdKey k{c.index, 0, {}, {}};
  switch (track) {
    case Track::BySrc:
      k.a = x.src;
      break;
    case Track::ByDst:
      k.a = x.dst;
      break;
    case Track::ByBoth:
      k.a = std::min(x.src, x.dst);
      k.b = std::max(x.src, x.dst);
      break;
    case Track::ByRule:
      break;
    case Track::ByFlow:
      k.flow = x.f ? x.f->id : 0;
      break;
  }
  auto it = thresholds.find(k);
  if (it == thresholds.end()) {
    if (thresholds.size() >= cfg.max_threshold_entries) {
      ++stats.threshold_memcap;
      return Gate::Alert;
    }
    it = thresholds.emplace(k, ThresholdState{}).first;
  }
  ThresholdState& s = it->second;
  const uint32_t seconds = r.threshold ? r.threshold->seconds : r.detection_filter->seconds;
  const TimeNs window = static_cast<TimeNs>(seconds) * 1000000000ull;
  const bool fresh = s.count == 0 || ts - s.first > window;
  if (fresh) {
    s.first = ts;
    s.count = 0;
    s.distinct = 0;
    s.ports.clear();
  }
  ++s.count;
  if (r.detection_filter) {
    const DetectionFilter& d = *r.detection_filter;
    const auto gate = [](bool past) { return past ? Gate::Alert : Gate::Nothing; };
    if (d.unique == DetectionFilter::Unique::None) return gate(s.count > d.count);
    const uint16_t port = d.unique == DetectionFilter::Unique::SrcPort ? x.sport : x.dport;
    if (s.ports.empty()) s.ports.assign(65536 / 64, 0);
    uint64_t& word = s.ports[port / 64];
    const uint64_t bit = 1ull << (port % 64);
    if (!(word & bit)) {
      word |= bit;
      ++s.distinct;
    }
    return gate(s.distinct > d.count);
  }
  const Threshold& t = *r.threshold;
  switch (t.type) {
    case Threshold::Type::Limit:
      return s.count <= t.count ? Gate::Alert : Gate::Silent;
    case Threshold::Type::Threshold:
      if (s.count >= t.count) {
        s.count = 0;
        s.first = s.first == 0 ? ts : s.first;
        return Gate::Alert;
      }
      return Gate::Nothing;
    case Threshold::Type::Both:
      if (s.count < t.count) return Gate::Nothing;
      return s.count == t.count ? Gate::Alert : Gate::Silent;
  }
  return Gate::Alert;
}

void Engine::Impl::matched(const CRule& c, const Ctx& x) {
  Flow* f = x.f;
  if (f) {
    for (const CRule::Bit& b : c.bits) {
      for (uint32_t id : b.ids) {
        auto it = std::find(f->bits.begin(), f->bits.end(), id);
        switch (b.cmd) {
          case Flowbit::Cmd::Set:
            if (it == f->bits.end() && f->bits.size() < 1024) f->bits.push_back(id);
            break;
          case Flowbit::Cmd::Unset:
            if (it != f->bits.end()) f->bits.erase(it);
            break;
          case Flowbit::Cmd::Toggle:
            if (it != f->bits.end())
              f->bits.erase(it);
            else if (f->bits.size() < 1024)
              f->bits.push_back(id);
            break;
          default:
            break;
        }
      }
    }
  }
  if (c.r->action == Action::Pass) {
    if (f) f->passed = true;
    return;
  }
  // (A flow being closed has no packet left to drop: its match only alerts.)
  const bool drops =
      cfg.ips && !closing && (c.r->action == Action::Drop || c.r->action == Action::Reject);
  const Gate gate = c.noalert ? Gate::Silent : thresholdGate(c, x);
  if (gate != Gate::Nothing && drops) {
    // The packet goes no further, nor does the rest of its flow. (A stream
    // or transaction match is found while the packet that completed it is
    // being inspected: in inline mode that packet is the one dropped.)
    if (!outcome.drop) ++stats.dropped_packets;
    outcome.drop = true;
    outcome.reject |= c.r->action == Action::Reject;
    if (f && !f->dropped) {
      f->dropped = true;
      f->drop_sid = c.r->sid;
      ++stats.dropped_flows;
    }
  }
  if (gate != Gate::Alert) {
    if (!c.noalert) ++stats.suppressed;
    return;
  }
  AlertInfo a;
  a.rule = c.r;
  a.ts = ts;
  a.pcap_cnt = pcap_cnt;
  a.flow_id = f ? f->id : 0;
  a.src = x.src;
  a.dst = x.dst;
  a.sport = x.sport;
  a.dport = x.dport;
  a.proto = x.proto;
  a.to_server = x.dir == 0;
  a.stream_match = x.stream;
  a.blocked = drops;
  a.on_packet = !closing && cur != nullptr;
  a.app = f ? f->app : AppProto::Unknown;
  a.http = x.tx;
  a.dns = x.dns;
  a.sni = x.sni;
  ++stats.alerts;
  if (outcome.alerts++ == 0) outcome.sid = c.r->sid;
  if (f && f->first_sid == 0) f->first_sid = c.r->sid;
  if (sink) sink(a);
  const uint32_t len = cur ? cur->wire_len : 0;
  for (const Tag& t : c.r->tags) {
    const TagState st = TagState::start(t, ts, len);
    if (t.scope == Tag::Scope::Session) {
      if (f) f->tag = st;
      continue;
    }
    const IpAddr& host = t.host_dst ? x.dst : x.src;
    if (host_tags.size() >= cfg.max_host_tags && !host_tags.contains(host)) {
      ++stats.tag_memcap;
      continue;
    }
    host_tags[host] = st;
  }
}

bool Engine::Impl::evaluate(const CRule& c, Ctx& x) {
  if (x.f && x.f->passed) return false;
  const size_t ord = static_cast<size_t>(&c - rules.data());
  ++evaluated[ord];
  if (!headerMatches(c, x) || !conditions(c, x) || !buffers(c, x)) return false;
  ++matched_count[ord];
  matched(c, x);
  return true;
}

Flow* Engine::Impl::flowFor(const Packet& pk, bool& to_server) {
  FlowKey k;
  uint16_t sp = 0, dp = 0;
  if (pk.layers & (pkt::kTcp | pkt::kUdp)) {
    sp = pk.sport;
    dp = pk.dport;
  } else if (pk.layers & (pkt::kIcmp | pkt::kIcmpv6)) {
    const uint8_t t = pk.icmp.type;
    const bool echo = (pk.layers & pkt::kIcmp) ? (t == 0 || t == 8) : (t == 128 || t == 129);
    if (echo) sp = dp = pk.icmp.id;
  }
  const bool fwd = std::tie(pk.src, sp) <= std::tie(pk.dst, dp);
  k.a = fwd ? pk.src : pk.dst;
  k.b = fwd ? pk.dst : pk.src;
  k.pa = fwd ? sp : dp;
  k.pb = fwd ? dp : sp;
  k.proto = pk.proto;
  if (last_flow && last_flow->key == k) {
    Flow& f = *last_flow;
    to_server = pk.src == f.client && sp == f.cport;
    if (f.client == f.server && f.cport == f.sport) to_server = true;
    return &f;
  }
  const uint64_t h = flows.hash(k);
  Flow* found = flows.find(k, h);
  if (!found) {
    if (flows.size() >= cfg.max_flows) {
      ++stats.flows_untracked;
      return nullptr;
    }
    auto f = std::make_unique<Flow>();
    f->id = next_flow_id++;
    f->key = k;
    f->client = pk.src;
    f->server = pk.dst;
    f->cport = sp;
    f->sport = dp;
    f->proto = pk.proto;
    f->start = ts;
    f->slot = static_cast<uint32_t>(activity.size());
    if (pk.proto == ipproto::kUdp && (sp == 53 || dp == 53)) {
      f->app = AppProto::Dns;
      ++stats.app_dns;
    }
    ++stats.flows;
    found = f.get();
    flows.insert(found, h);
    activity.push_back({ts, std::move(f), false});
  }
  Flow& f = *found;
  last_flow = &f;
  to_server = pk.src == f.client && sp == f.cport;
  if (f.client == f.server && f.cport == f.sport) to_server = true;
  return &f;
}

// TCP: the handshake, the session state and the streams.
void Engine::Impl::tcp(Flow& f, const Packet& pk, bool to_server, bool& added) {
  const uint8_t fl = pk.tcp.flags;
  const bool syn = fl & tcpflag::kSyn, ack = fl & tcpflag::kAck, rst = fl & tcpflag::kRst;
  int d = to_server ? 0 : 1, o = 1 - d;
  Bytes payload = pk.payload();
  f.pkt_established = f.established;
  auto swapRoles = [&] {
    std::swap(f.client, f.server);
    std::swap(f.cport, f.sport);
  };

  switch (f.state) {
    case TcpState::None:
      if (syn && !ack) {
        f.s[d].start(pk.tcp.seq + 1);
        f.state = TcpState::SynSent;
        ++stats.tcp_sessions;
        // Data on a SYN joins the stream with TCP Fast Open only.
        if (pk.tcp.opt.has_fast_open && !payload.empty()) {
          f.s[d].add(pk.tcp.seq + 1, payload, cfg.stream, stats.stream);
          added = true;
        }
      } else if (cfg.midstream && !rst) {
        ++stats.tcp_sessions;
        ++stats.tcp_midstream;
        if (syn && ack) {
          // Picked up at the SYN-ACK: its receiver is the client.
          swapRoles();
          f.s[1].start(pk.tcp.seq + 1);
          f.s[0].start(pk.tcp.ack);
          f.state = TcpState::SynRecv;
        } else {
          // Picked up on data: the side on a well-known port is the server.
          int snd = d, rcv = o;
          if (pk.sport < 1024 && pk.dport >= 1024 && pk.src == f.client) {
            swapRoles();
            std::swap(snd, rcv);
          }
          f.s[snd].start(pk.tcp.seq);
          if (ack) f.s[rcv].start(pk.tcp.ack);
          f.state = TcpState::Established;
          f.established = f.pkt_established = true;
        }
      }
      break;
    case TcpState::SynSent:
      if (d == 1 && syn && ack) {
        f.s[1].start(pk.tcp.seq + 1);
        f.state = TcpState::SynRecv;
      } else if (d == 1 && syn) {
        // Split handshake: the server answers with a SYN of its own.
        f.s[1].start(pk.tcp.seq + 1);
        f.state = TcpState::SynSent4whs;
      }
      break;
    case TcpState::SynSent4whs:
      if (d == 1 && ack && !syn) {
        f.state = TcpState::Established;
        f.established = true;
      }
      break;
    case TcpState::SynRecv:
      if (d == 0 && ack && !syn) {
        f.state = TcpState::Established;
        f.established = true;
      }
      break;
    case TcpState::Established:
    case TcpState::Closed:
      break;
  }
  if (rst && f.state != TcpState::None) f.state = TcpState::Closed;
  // A pickup may have swapped the roles: the directions again.
  d = (pk.src == f.client && pk.sport == f.cport) ? 0 : 1;
  o = 1 - d;
  if (fl & tcpflag::kFin) f.fin[d] = true;
  activityOf(f).closing = rst || (f.fin[0] && f.fin[1]);

  const bool data_ok = f.state == TcpState::Established || f.state == TcpState::Closed ||
                       (f.state == TcpState::SynRecv && d == 0);
  if (!payload.empty() && !syn && !rst && data_ok && f.s[d].started()) {
    f.s[d].add(pk.tcp.seq, payload, cfg.stream, stats.stream);
    added = true;
  }
  if (cfg.inline_mode) {
    if (f.s[d].started()) deliver(f, d, f.s[d].end());
  } else if (ack && f.s[o].started()) {
    const int64_t a = f.s[o].offsetOf(pk.tcp.ack);
    if (a > 0 && static_cast<uint64_t>(a) > f.acked[o]) f.acked[o] = static_cast<uint64_t>(a);
    // Acknowledged data goes up once the session is established (TFO data
    // acknowledged by the SYN-ACK waits for the handshake's end).
    if (f.established) deliver(f, o, std::min(f.acked[o], f.s[o].end()));
  }
}

// Hands a direction's stream bytes up to `upto` to the application layer and
// the stream rules.
void Engine::Impl::deliver(Flow& f, int dir, uint64_t upto) {
  TcpStream& s = f.s[dir];
  if (s.gap_pending) {
    s.gap_pending = false;
    if (f.http) f.http->gap(dir == 0);
    f.app_done[dir] = f.raw_done[dir] = s.windowStart();
  }
  if (upto > f.app_done[dir]) {
    const std::string_view d =
        s.since(f.app_done[dir]).substr(0, upto - std::max(f.app_done[dir], s.windowStart()));
    f.app_done[dir] = upto;
    if (!d.empty()) appData(f, dir, d);
  }
  if (f.encrypted && upto > f.raw_done[dir]) {  // not inspected, only passed over
    f.raw_done[dir] = upto;
    f.recent[dir].clear();
  }
  if (upto > f.raw_done[dir] && !stream_rules.empty() && !f.passed) {
    const uint64_t from =
        f.raw_done[dir] > cfg.stream_lookback ? f.raw_done[dir] - cfg.stream_lookback : 0;
    const uint64_t start = std::max(from, s.windowStart());
    std::string_view data = s.since(start);
    data = data.substr(0, upto - start);
    Ctx x;
    x.f = &f;
    x.dir = dir;
    x.src = dir == 0 ? f.client : f.server;
    x.dst = dir == 0 ? f.server : f.client;
    x.sport = dir == 0 ? f.cport : f.sport;
    x.dport = dir == 0 ? f.sport : f.cport;
    x.proto = f.proto;
    x.packet_keywords = false;
    x.payload = data;
    x.has_payload = true;
    x.stream = true;
    x.new_from = f.raw_done[dir] - start;
    cand.clear();
    stream_idx.collect(f.proto, x.sport, x.dport, cand);
    // The literal scan covers the new bytes (and the few before them a fast
    // pattern can straddle); a rule whose pattern was found in an earlier
    // chunk still inside the window stays a candidate (`recent`), so nothing
    // the window can match is missed and old bytes are not scanned again.
    auto& recent = f.recent[dir];
    std::erase_if(recent, [&](const auto& e) { return e.second <= start; });
    const uint64_t overlap = stream_fp_max > 0 ? stream_fp_max - 1 : 0;
    uint64_t scan_from = f.raw_done[dir] > overlap ? f.raw_done[dir] - overlap : 0;
    if (scan_from < start || recent.size() > kMaxRecent) {  // too many: scan it all
      scan_from = start;
      recent.clear();
    }
    const size_t before = cand.size();
    stream_lit.scan(data.substr(scan_from - start), dir, hs, cand);
    stats.scanned_stream += upto - scan_from;
    for (size_t i = before; i < cand.size(); ++i)
      recent.emplace_back(cand[i], upto);
    for (const auto& e : recent)
      cand.push_back(e.first);
    runCandidates(
        x, [](const CRule& c) { return c.pkt_only; }, stats.candidates_stream);
    f.raw_done[dir] = upto;
  }
  const uint64_t keep_from = std::min(f.app_done[dir], f.raw_done[dir]);
  const uint64_t floor = keep_from > cfg.stream_lookback ? keep_from - cfg.stream_lookback : 0;
  if (floor > s.windowStart()) s.trim(static_cast<size_t>(s.end() - floor));
}

void Engine::Impl::appData(Flow& f, int dir, std::string_view data) {
  if (f.app == AppProto::Failed ||
      (f.app == AppProto::Unknown && f.app_dir[dir] == AppProto::Failed))
    return;  // neither direction is an inspected protocol (or this one is not)
  if (f.app == AppProto::Unknown) {
    // Detect from the first bytes of this direction (kept until decided).
    std::string_view first = f.s[dir].since(0);
    if (f.s[dir].windowStart() != 0) first = data;
    const AppProto a = detectTcp(first.substr(0, 64), dir == 0, f.sport);
    f.app_dir[dir] = a;
    if (a == AppProto::Http || a == AppProto::Tls || a == AppProto::Dns) {
      f.app = a;
      data = first;
      if (a == AppProto::Http) {
        ++stats.app_http;
        f.http = std::make_unique<HttpParser>(cfg.http);
      } else if (a == AppProto::Tls) {
        ++stats.app_tls;
        f.tls = std::make_unique<Flow::TlsSession>();
      } else {
        ++stats.app_dns;
      }
    } else {
      if (a == AppProto::Failed && f.app_dir[1 - dir] == AppProto::Failed) f.app = AppProto::Failed;
      return;
    }
  }
  switch (f.app) {
    case AppProto::Http:
      f.http->feed(dir == 0, data, stats.http);
      inspectHttp(f, false);
      break;
    case AppProto::Tls:
      if (dir == 0 && !f.tls->hello.done() && f.tls->hello.feed(data)) {
        inspectTx(f, 0, nullptr, nullptr, &f.tls->hello.sni(), {});
        if (event_sink) {
          AppEvent e = event(f, AppEvent::Kind::Tls);
          e.sni = &f.tls->hello.sni();
          e.tls_version = f.tls->hello.version();
          event_sink(e);
        }
      }
      if (!f.encrypted && cfg.tls_encryption != EngineConfig::TlsEncryption::Full) {
        f.tls->records[dir].feed(data);
        // Application data both ways: the handshake is over (TLS 1.2 after
        // both Finished, 1.3 after the server's first encrypted flight and
        // the client's Finished).
        if (f.tls->records[0].appData() && f.tls->records[1].appData()) {
          f.encrypted = true;
          ++stats.tls_encrypted;
          if (cfg.tls_encryption == EngineConfig::TlsEncryption::Bypass) f.passed = true;
        }
      }
      break;
    case AppProto::Dns: {
      std::string& b = f.dns_buf[dir];
      if (b.size() + data.size() > 70000) b.clear();  // larger than any framed message
      b.append(data);
      while (b.size() >= 2) {
        const size_t len = (static_cast<uint8_t>(b[0]) << 8) | static_cast<uint8_t>(b[1]);
        if (b.size() < 2 + len) break;
        DnsMessage m;
        if (parseDns(std::string_view(b).substr(2, len), m))
          inspectTx(f, dir, nullptr, &m, nullptr, std::string_view(b).substr(2, len));
        else
          ++stats.dns_malformed;
        b.erase(0, 2 + len);
      }
      break;
    }
    default:
      break;
  }
}

void Engine::Impl::inspectHttp(Flow& f, bool at_end) {
  for (HttpTx& t : f.http->transactions()) {
    if (t.has_request && !t.inspected_request &&
        (t.request.done || (at_end && t.request.headers_done))) {
      t.inspected_request = true;
      inspectTx(f, 0, &t, nullptr, nullptr, {});
    }
    if (t.has_response && !t.inspected_response &&
        (t.response.done || (at_end && t.response.headers_done))) {
      t.inspected_response = true;
      inspectTx(f, 1, &t, nullptr, nullptr, {});
    }
    if (at_end) t.inspected_request = t.inspected_response = true;
    if (event_sink && !t.logged && t.inspected_response && (t.has_response || at_end)) {
      t.logged = true;
      AppEvent e = event(f, AppEvent::Kind::Http);
      e.http = &t;
      event_sink(e);
    }
  }
  f.http->release();
  // Forget alert records of released transactions.
  const auto& txs = f.http->transactions();
  const uint64_t oldest = txs.empty() ? UINT64_MAX : txs.front().id;
  std::erase_if(f.tx_alerted, [&](const auto& e) { return e.first < oldest; });
}

void Engine::Impl::inspectTx(Flow& f, int dir, const HttpTx* tx, const DnsMessage* dns,
                             const std::string* sni, std::string_view payload) {
  if (dns && event_sink) {
    AppEvent e = event(f, AppEvent::Kind::Dns, dir);
    e.dns = dns;
    event_sink(e);
  }
  if (f.passed) return;
  Ctx x;
  x.f = &f;
  x.dir = dir;
  x.src = dir == 0 ? f.client : f.server;
  x.dst = dir == 0 ? f.server : f.client;
  x.sport = dir == 0 ? f.cport : f.sport;
  x.dport = dir == 0 ? f.sport : f.cport;
  x.proto = f.proto;
  x.packet_keywords = false;
  x.tx = tx;
  x.side = dir == 0 ? Side::Request : Side::Response;
  x.dns = dns;
  x.sni = sni;
  x.payload = payload;
  x.has_payload = !payload.empty();
  std::vector<uint32_t>* alerted = nullptr;
  if (tx) {
    for (auto& e : f.tx_alerted)
      if (e.first == tx->id) alerted = &e.second;
    if (!alerted) {
      f.tx_alerted.push_back({tx->id, {}});
      alerted = &f.tx_alerted.back().second;
    }
  }
  // Candidates: rules whose fast pattern is in one of this transaction's buffers.
  cand.clear();
  std::vector<std::string_view>& inst = scan_inst;
  for (size_t b = 0; b < kBufferCount; ++b) {
    const LiteralSet& lit = tx_lit[dir == 0 ? 0 : 1][b];
    if (lit.empty()) continue;
    fetch(x, static_cast<Buffer>(b), inst);
    for (std::string_view d : inst) {
      lit.scan(d, hs, cand);
      stats.scanned_tx += d.size();
    }
  }
  const std::vector<uint32_t>& always = tx    ? tx_always[dir == 0 ? 0 : 1]
                                        : dns ? tx_always[2]
                                              : tx_always[3];
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  todo.clear();
  std::set_union(cand.begin(), cand.end(), always.begin(), always.end(), std::back_inserter(todo));
  stats.candidates += todo.size();
  stats.candidates_tx += todo.size();
  for (uint32_t ord : todo) {
    const CRule* c = &rules[ord];
    if (c->side != Side::Both && c->side != x.side) continue;
    if ((c->app == AppProto::Http) != (tx != nullptr)) continue;
    if (c->app == AppProto::Dns && !dns) continue;
    if (c->app == AppProto::Tls && !sni) continue;
    const auto idx = static_cast<uint32_t>(c->index);
    if (alerted && std::find(alerted->begin(), alerted->end(), idx) != alerted->end()) continue;
    if (evaluate(*c, x) && alerted) alerted->push_back(idx);
  }
}

void Engine::Impl::closeFlow(Flow& f, const char* reason) {
  // As Suricata's end-of-flow pseudo packets: what was never acknowledged is
  // inspected now, holes skipped.
  for (int dir : {0, 1}) {
    TcpStream& s = f.s[dir];
    if (!s.started()) continue;
    do {
      deliver(f, dir, s.end());
    } while (s.skipHole(stats.stream));
  }
  if (f.http) {
    f.http->finish(stats.http);
    inspectHttp(f, true);
  }
  if (event_sink) {
    AppEvent e = event(f, AppEvent::Kind::Flow);
    AppEvent::FlowSummary& s = e.flow;
    for (int d : {0, 1}) {
      s.pkts[d] = f.pkts[d];
      s.bytes[d] = f.bytes[d];
    }
    s.start = f.start;
    s.end = activityOf(f).last;
    s.state = f.proto == ipproto::kTcp
                  ? (activityOf(f).closing || f.state == TcpState::Closed ? "closed"
                     : f.established                                      ? "established"
                                                                          : "new")
                  : (f.seen[0] && f.seen[1] ? "established" : "new");
    s.reason = reason;
    s.alerted = f.first_sid != 0;
    event_sink(e);
  }
}

void Engine::Impl::freeFlow(Flow& f) {
  const uint32_t slot = f.slot;
  if (&f == last_flow) last_flow = nullptr;
  flows.erase(&f, flows.hash(f.key));
  activity[slot] = std::move(activity.back());  // frees f
  activity[slot].flow->slot = slot;
  activity.pop_back();
}

void Engine::Impl::sweep() {
  // In order of the array (the order flows began, but for the places freed
  // ones left); an entry moved into a freed place is looked at there.
  for (size_t i = 0; i < activity.size();) {
    const Activity& a = activity[i];
    if (ts - a.last > (a.closing ? cfg.closed_timeout : cfg.flow_timeout)) {
      Flow& f = *a.flow;
      closeFlow(f, "timeout");
      ++stats.flows_timed_out;
      freeFlow(f);
    } else {
      ++i;
    }
  }
  // Threshold entries whose longest window has passed.
  std::erase_if(thresholds,
                [&](const auto& e) { return ts - e.second.first > 86400ull * 1000000000ull; });
}

Engine::Engine(const std::vector<Rule>& rules, EngineConfig cfg, AlertSink sink)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = cfg;
  impl_->sink = std::move(sink);
  if (cfg.defrag) impl_->defrag.emplace(cfg.defrag_limits);
  impl_->compile(rules);
}

Engine::~Engine() = default;

const EngineStats& Engine::stats() const {
  return impl_->stats;
}

std::vector<Engine::RuleProfile> Engine::ruleProfile(size_t top) const {
  std::vector<RuleProfile> out;
  for (size_t i = 0; i < impl_->rules.size(); ++i)
    if (impl_->evaluated[i])
      out.push_back({impl_->rules[i].r, impl_->evaluated[i], impl_->matched_count[i]});
  std::sort(out.begin(), out.end(),
            [](const RuleProfile& a, const RuleProfile& b) { return a.evaluated > b.evaluated; });
  if (out.size() > top) out.resize(top);
  return out;
}

size_t Engine::flowCount() const {
  return impl_->flows.size();
}

Engine::Outcome Engine::packet(const Packet& pk, TimeNs ts, uint64_t pcap_cnt) {
  Impl& m = *impl_;
  m.outcome = {};
  m.inspect(pk, ts, pcap_cnt);
  m.cur = nullptr;
  return m.outcome;
}

void Engine::Impl::inspect(const Packet& pk, TimeNs ts_now, uint64_t cnt) {
  Impl& m = *this;
  ++m.stats.packets;
  if (!pk.has(pkt::kIpv4) && !pk.has(pkt::kIpv6)) {
    ++m.stats.non_ip;
    return;
  }
  if (!pk.ok()) ++m.stats.decode_errors;
  if ((pk.layers & pkt::kFragment) && m.defrag) {
    // Inspected once whole: the datagram this fragment completes, if any.
    const std::span<const std::byte> d = m.defrag->add(pk, ts_now);
    m.stats.defrag = m.defrag->stats();
    if (d.empty()) return;
    --m.stats.packets;  // counted as the fragment
    m.defrag_decoder.decode(pk.link, d, static_cast<uint32_t>(d.size()), m.whole);
    if (!m.whole.has(pkt::kFragment)) inspect(m.whole, ts_now, cnt);
    return;
  }
  // Without reassembly, a fragment past the first carries no transport header.
  if (pk.isLaterFragment()) return;
  m.cur = &pk;
  m.ts = ts_now;
  m.pcap_cnt = cnt;
  if (ts - m.last_sweep > 10ull * 1000000000ull) {
    if (m.last_sweep) {
      m.closing = true;  // what idle flows still hold is not this packet's
      m.sweep();
      m.closing = false;
    }
    m.last_sweep = ts;
  }

  bool to_server = true;
  Flow* f = m.flowFor(pk, to_server);
  bool added = false;
  if (f) {
    m.activityOf(*f).last = ts;
    ++f->pkts[to_server ? 0 : 1];
    f->bytes[to_server ? 0 : 1] += pk.wire_len;
    m.outcome.flow_id = f->id;
    m.outcome.sid = f->first_sid;
    if (f->dropped) {  // IPS: its flow matched a drop rule; nothing more is inspected
      ++m.stats.dropped_flow_packets;
      m.outcome.drop = true;
      m.outcome.sid = f->drop_sid;
      return;
    }
    if (pk.layers & pkt::kTcp) {
      m.tcp(*f, pk, to_server, added);
      // The flow's roles may have changed (a session picked up at the SYN-ACK).
      to_server = pk.src == f->client && pk.sport == f->cport;
    }
    f->seen[to_server ? 0 : 1] = true;
  }

  // Tags set by earlier alerts: this packet is logged when its session or one
  // of its hosts is tagged (once, however many tags cover it).
  bool tagged = false;
  if (f && f->tag) {
    if (f->tag->take(ts, pk.wire_len))
      tagged = true;
    else
      f->tag.reset();
  }
  if (!m.host_tags.empty()) {
    for (const IpAddr* a : {&pk.src, &pk.dst}) {
      auto it = m.host_tags.find(*a);
      if (it == m.host_tags.end()) continue;
      if (it->second.take(ts, pk.wire_len))
        tagged = true;
      else
        m.host_tags.erase(it);
      if (pk.src == pk.dst) break;
    }
  }
  if (tagged) {
    ++m.stats.tagged_packets;
    if (m.tag_sink) m.tag_sink({&pk, ts, pcap_cnt, f ? f->id : 0});
  }

  Impl::Ctx x = m.packetCtx(f, pk, to_server);
  // UDP DNS: one message per datagram.
  if (f && f->app == AppProto::Dns && (pk.layers & pkt::kUdp)) {
    DnsMessage msg;
    if (parseDns(x.payload, msg)) {
      m.inspectTx(*f, to_server ? 0 : 1, nullptr, &msg, nullptr, x.payload);
    } else {
      ++m.stats.dns_malformed;
    }
  }

  if (f && f->passed) {
    ++m.stats.passed_packets;
    return;
  }
  const int dir = to_server ? 0 : 1;
  if (f && !f->iponly_done[dir]) {
    f->iponly_done[dir] = true;
    for (const CRule* c : m.ip_only)
      m.evaluate(*c, x);
  } else if (!f) {
    for (const CRule* c : m.ip_only)
      m.evaluate(*c, x);
  }
  const bool tcp = pk.layers & pkt::kTcp;
  // Encrypted TLS: rules on the payload are not tried (Suricata's default
  // encryption handling); the rest of the packet rules are.
  const bool payload = !(f && f->encrypted);
  m.cand.clear();
  m.packet_idx.collect(pk.proto, x.sport, x.dport, m.cand);
  const DirectedLiterals& plit = m.packet_lit[tcp ? 0 : 1];
  if (payload) {
    plit.scan(x.payload, x.dir, m.hs, m.cand);
    if (!plit.empty()) m.stats.scanned_packet += x.payload.size();
  }
  m.runCandidates(
      x, [payload](const CRule& c) { return !payload && c.payload >= 0; },
      m.stats.candidates_packet);
  // Payload rules on what no stream will inspect: UDP, ICMP, other IP, and
  // TCP segments that did not join a tracked stream.
  // Every payload rule has a non-negated content or a test that needs bytes.
  if (pk.payload_len == 0 || !payload) return;
  if (tcp && added) return;
  m.cand.clear();
  m.stream_idx.collect(pk.proto, x.sport, x.dport, m.cand);
  const DirectedLiterals& slit = tcp ? m.stream_lit : m.stream_other_lit;
  slit.scan(x.payload, x.dir, m.hs, m.cand);
  if (!slit.empty()) m.stats.scanned_packet += x.payload.size();
  m.runCandidates(
      x, [tcp](const CRule& c) { return tcp && c.stream_only; }, m.stats.candidates_stream);
}

void Engine::setSink(AlertSink sink) {
  impl_->sink = std::move(sink);
}

void Engine::setEventSink(EventSink sink) {
  impl_->event_sink = std::move(sink);
}

void Engine::setTagSink(TagSink sink) {
  impl_->tag_sink = std::move(sink);
}

void Engine::finish() {
  Impl& m = *impl_;
  if (m.defrag) {  // datagrams still missing fragments never will be whole
    m.defrag->expire(~TimeNs{0});
    m.stats.defrag = m.defrag->stats();
  }
  m.closing = true;
  for (const Impl::Activity& a : m.activity)
    m.closeFlow(*a.flow, "shutdown");
  m.flows.clear();
  m.activity.clear();
  m.last_flow = nullptr;
  m.closing = false;
}

Status applySetting(EngineConfig& cfg, Vars& vars, std::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos)
    return makeError(strCat("--set ", std::string(assignment), ": expected KEY=VALUE"));
  const std::string key(trim(assignment.substr(0, eq)));
  const std::string value(trim(assignment.substr(eq + 1)));
  auto boolean = [&](bool& out) -> Status {
    if (value == "true" || value == "yes" || value == "on" || value == "1") {
      out = true;
    } else if (value == "false" || value == "no" || value == "off" || value == "0") {
      out = false;
    } else {
      return makeError(strCat("--set ", key, ": '", value, "' is not a boolean"));
    }
    return {};
  };
  auto size = [&](uint64_t& out) -> Status {
    std::string v = value;
    if (v.size() > 2 && (v.ends_with("kb") || v.ends_with("mb") || v.ends_with("gb"))) {
      v.pop_back();
      v.back() = static_cast<char>(std::toupper(static_cast<unsigned char>(v.back())));
    }
    auto r = parseSize(v);
    if (!r) return makeError(strCat("--set ", key, ": ", r.error().message));
    out = *r;
    return {};
  };
  if (key == "stream.midstream") return boolean(cfg.midstream);
  if (key == "stream.inline") {
    if (value == "auto") {
      cfg.inline_mode = false;
      return {};
    }
    return boolean(cfg.inline_mode);
  }
  if (key == "stream.reassembly.depth") return size(cfg.stream.depth);
  if (key == "stream.reassembly.memcap" || key == "stream.memcap") {
    uint64_t v = 0;
    if (auto s = size(v); !s) return s;
    cfg.stream.out_of_order = static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX));
    return {};
  }
  if (key == "app-layer.protocols.http.libhtp.default-config.request-body-limit" ||
      key == "app-layer.protocols.http.libhtp.default-config.response-body-limit") {
    uint64_t v = 0;
    if (auto s = size(v); !s) return s;
    cfg.http.body = static_cast<size_t>(v);
    return {};
  }
  if (key == "app-layer.protocols.tls.encryption-handling" ||
      key == "app-layer.protocols.tls.encrypt-handling") {  // Suricata 5/6's spelling
    using E = EngineConfig::TlsEncryption;
    if (value == "default")
      cfg.tls_encryption = E::Default;
    else if (value == "bypass")
      cfg.tls_encryption = E::Bypass;
    else if (value == "full")
      cfg.tls_encryption = E::Full;
    else
      return makeError(strCat("--set ", key, ": '", value, "' is not default, bypass or full"));
    return {};
  }
  if (key == "defrag.memcap") {
    uint64_t v = 0;
    if (auto s = size(v); !s) return s;
    cfg.defrag_limits.memcap = static_cast<size_t>(v);
    return {};
  }
  if (key == "defrag.timeout" || key == "defrag.trackers" || key == "defrag.max-frags") {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size() || v == 0 || v > (1u << 24))
      return makeError(strCat("--set ", key, ": '", value, "' is not a count from 1 to 16777216"));
    if (key == "defrag.timeout")
      cfg.defrag_limits.timeout = v * 1000000000ull;
    else if (key == "defrag.trackers")
      cfg.defrag_limits.max_datagrams = static_cast<size_t>(v);
    else
      cfg.defrag_limits.max_fragments = static_cast<size_t>(v);
    return {};
  }
  if (key == "defrag.enabled") return boolean(cfg.defrag);
  if (key.starts_with("vars.") || key.starts_with("address-groups.") ||
      key.starts_with("port-groups."))
    return vars.set(assignment);
  // Settings that change only logging or statistics, not what alerts.
  static constexpr std::string_view kNoEffect[] = {"stats.",  "outputs.",         "logging.",
                                                   "runmode", "exception-policy", "pcap-file."};
  for (std::string_view p : kNoEffect)
    if (std::string_view(key).starts_with(p)) return {};
  return makeError(strCat("--set ", key,
                          ": unknown setting (known: stream.midstream, stream.inline, "
                          "stream.reassembly.depth, stream.reassembly.memcap, defrag.memcap, "
                          "defrag.timeout, defrag.trackers, defrag.max-frags, defrag.enabled, "
                          "app-layer.protocols.tls.encryption-handling, "
                          "vars.address-groups.*, vars.port-groups.*, libhtp body limits)"));
}

}  // namespace palisade::ids
