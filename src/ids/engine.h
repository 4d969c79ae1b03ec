// The detection engine: packets in, alerts out.
//
// Per packet: the flow is found (or made), TCP is tracked and reassembled,
// the application layer is detected by content and parsed, and the rules run
// in four kinds, as Suricata runs them:
//   - IP-only rules (addresses, ports "any", no payload keywords): once per
//     flow direction, on its first packet;
//   - packet rules (header keywords, tcp-pkt, dsize, UDP and ICMP payloads,
//     TCP payloads that are not part of a tracked stream): every packet;
//   - stream rules (content on a TCP rule's payload): the reassembled stream,
//     once data is acknowledged by the peer (IDS mode) or at once
//     (stream.inline); an alert needs a match that reaches new data;
//   - transaction rules (http.*, dns.query, tls.sni buffers): once per HTTP
//     transaction side, DNS message or TLS hello, at most one alert per rule
//     and transaction.
// Flowbits, thresholds, detection filters (with unique_on) and pass rules
// follow Suricata's semantics; all per-flow and per-host state is bounded.
//
// One Engine per thread; it is not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/time.h"
#include "ids/applayer.h"
#include "ids/http.h"
#include "ids/ruleset.h"
#include "ids/stream.h"
#include "packet/packet.h"
#include "packet/reassembly.h"

namespace palisade::ids {

struct EngineConfig {
  bool midstream = false;    // stream.midstream: pick up TCP sessions without a handshake
  bool inline_mode = false;  // stream.inline: inspect data as it arrives, not when acknowledged
  // IPS: a drop or reject rule that matches drops the packet and every later
  // packet of its flow (Engine::packet's outcome says so); without it they
  // alert like alert rules ("allowed"), as Suricata does in IDS mode.
  bool ips = false;
  StreamLimits stream;
  HttpLimits http;
  size_t max_flows = 1u << 20;  // new flows past this are not tracked (counted)
  size_t max_threshold_entries = 1u << 20;
  size_t max_host_tags = 1u << 16;
  TimeNs flow_timeout = 600ull * 1000000000ull;   // idle flows are closed after this
  TimeNs closed_timeout = 10ull * 1000000000ull;  // TCP after RST or both FINs: freed after this
  size_t stream_lookback = 4096;  // stream bytes kept before new data for matches across packets
  // IP fragments are reassembled and the whole datagram inspected (the
  // fragments themselves are not). Off inline: the switch drops non-first
  // fragments before inspection, and the first is inspected as it is.
  bool defrag = true;
  pkt::ReassemblyLimits defrag_limits;  // defrag.memcap, .timeout, .trackers, .max-frags
  // app-layer.protocols.tls.encryption-handling, as Suricata: once a TLS
  // session's application data flows both ways, `Default` stops inspecting
  // its payload (stream and packet content rules; tls.* buffers, flowbits
  // and header-only rules go on), `Bypass` stops inspecting the flow at all,
  // `Full` inspects the encrypted bytes like any others.
  enum class TlsEncryption : uint8_t {
    Default,
    Bypass,
    Full
  } tls_encryption = TlsEncryption::Default;
};

// Sets a Suricata configuration key ("stream.midstream=true",
// "stream.reassembly.depth=1mb", "stream.inline=yes",
// "app-layer.protocols.tls.encryption-handling=full"); an error names an
// unknown key or a bad value.
Status applySetting(EngineConfig& cfg, Vars& vars, std::string_view assignment);

struct EngineStats {
  uint64_t packets = 0, decode_errors = 0, non_ip = 0;
  pkt::ReassemblyStats defrag;  // IP fragments and the datagrams made of them
  uint64_t flows = 0, flows_untracked = 0, flows_timed_out = 0;
  uint64_t tls_encrypted = 0;  // TLS flows whose encrypted payload was not inspected (or bypassed)
  uint64_t tcp_sessions = 0, tcp_midstream = 0;
  uint64_t alerts = 0, suppressed = 0, passed_packets = 0;
  // IPS: packets dropped by a rule's match, flows that match marked for
  // dropping, and their later packets dropped without inspection.
  uint64_t dropped_packets = 0, dropped_flows = 0, dropped_flow_packets = 0;
  uint64_t rules_ip_only = 0, rules_packet = 0, rules_stream = 0, rules_tx = 0;
  uint64_t threshold_memcap = 0;
  uint64_t tagged_packets = 0, tag_memcap = 0;  // packets logged by tags; host tags refused
  uint64_t pcre_jit = 0;                        // pcre patterns compiled to machine code
  uint64_t prefilter_patterns = 0, prefilter_bytes = 0;  // fast patterns compiled, database size
  uint64_t candidates = 0;  // rules the prefilters let through to evaluation
  uint64_t candidates_packet = 0, candidates_stream = 0, candidates_tx = 0;  // of which
  uint64_t scanned_packet = 0, scanned_stream = 0, scanned_tx = 0;  // bytes through Hyperscan
  std::string
      prefilter_error;  // a database that did not compile (its rules then run on every buffer)
  uint64_t app_http = 0, app_dns = 0, app_tls = 0;
  uint64_t dns_malformed = 0;
  StreamCounters stream;
  HttpCounters http;
};

struct Flow;

// What an alert reports. The pointers are valid during the callback only.
struct AlertInfo {
  const Rule* rule = nullptr;
  TimeNs ts = 0;
  uint64_t pcap_cnt = 0;
  uint64_t flow_id = 0;
  IpAddr src, dst;  // in the direction of what matched
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  bool to_server = true;
  bool stream_match = false;
  bool blocked = false;  // IPS: the packet is dropped for this rule (EVE "action":"blocked")
  // Raised while inspecting the packet being processed, not what a flow
  // closed for idleness or at the end still held (nothing to drop then).
  bool on_packet = false;
  AppProto app = AppProto::Unknown;
  const HttpTx* http = nullptr;
  const DnsMessage* dns = nullptr;
  const std::string* sni = nullptr;
};
using AlertSink = std::function<void(const AlertInfo&)>;

// A packet logged because a rule's `tag` asked for the packets that follow
// an alert (of its session, or to and from one of its hosts).
struct TaggedPacket {
  const pkt::Packet* pkt = nullptr;
  TimeNs ts = 0;
  uint64_t pcap_cnt = 0;
  uint64_t flow_id = 0;
};
using TagSink = std::function<void(const TaggedPacket&)>;

// What EVE's http, dns, tls and flow events say: an HTTP transaction once
// complete (or at its flow's end), each DNS message, a TLS ClientHello, and
// a flow when it ends (Engine::setEventSink).
struct AppEvent {
  enum class Kind : uint8_t { Http, Dns, Tls, Flow };
  Kind kind = Kind::Flow;
  TimeNs ts = 0;
  uint64_t pcap_cnt = 0;  // the packet that completed it; 0 at a flow's end
  uint64_t flow_id = 0;
  IpAddr src, dst;  // client to server; a DNS message: as it travelled
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  AppProto app = AppProto::Unknown;
  const HttpTx* http = nullptr;
  const DnsMessage* dns = nullptr;
  const std::string* sni = nullptr;
  uint16_t tls_version = 0;  // the ClientHello's
  struct FlowSummary {
    uint64_t pkts[2] = {0, 0}, bytes[2] = {0, 0};  // to server, to client
    TimeNs start = 0, end = 0;
    const char* state = "new";       // new, established, closed
    const char* reason = "timeout";  // timeout, shutdown
    bool alerted = false;
  } flow;
};
using EventSink = std::function<void(const AppEvent&)>;

class Engine {
 public:
  // The rules must outlive the engine.
  Engine(const std::vector<Rule>& rules, EngineConfig cfg, AlertSink sink);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // What became of one packet.
  struct Outcome {
    bool drop = false;    // IPS: a drop/reject rule matched it or its flow earlier
    bool reject = false;  // IPS: a reject rule matched it (its sender is answered)
    uint32_t alerts = 0;  // alerts raised on it
    // The first of them; none: the drop rule that stopped its flow, else the
    // flow's first alert's (0: none).
    uint32_t sid = 0;
    uint64_t flow_id = 0;  // its flow (0: not tracked)
  };
  // One decoded packet; pcap_cnt counts from 1.
  Outcome packet(const pkt::Packet& p, TimeNs ts, uint64_t pcap_cnt);
  // Where tagged packets go (none by default: tags are then only counted).
  void setTagSink(TagSink sink);
  // Where alerts go from now on (an engine built on one thread, used on another).
  void setSink(AlertSink sink);
  // Where http, dns, tls and flow events go (none by default: not built).
  void setEventSink(EventSink sink);
  // The input ended: every flow is closed and what it holds is inspected.
  void finish();

  const EngineStats& stats() const;
  size_t flowCount() const;

  // Rule profiling: how often each rule was evaluated (let through by the
  // prefilters) and matched, the most evaluated first.
  struct RuleProfile {
    const Rule* rule;
    uint64_t evaluated, matched;
  };
  std::vector<RuleProfile> ruleProfile(size_t top) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace palisade::ids
