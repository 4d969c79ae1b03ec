// Pipeline: one worker's packet path (docs/architecture.md, "one packet").
//
//   decode -> port security -> flow cache / conntrack lookup
//     hit:  track state (TCP windows), apply the cached action (rewrite, port)
//     miss: layers in their fixed order, compose, install the flow, apply
//
// Inbound (from the uplink):  endpoint lookup -> perimeter -> endpoint ACL ->
//                             DNAT -> subnet group -> NIC group
// Outbound (from a NIC):      infrastructure -> isolation (VNet) -> NIC group ->
//                             subnet group -> perimeter -> SNAT
// East-west (NIC to NIC):     NIC group out -> subnet group out -> subnet group in
//                             of the destination -> NIC group in
//
// Contract: process() never allocates on the established-flow path and never
// throws; every drop has a reason (PALISADE_DROP_REASONS) and a counter. ARP and
// DHCP answers are built on a rate-capped path. A Trace, when given, records each
// layer's decision in text for `palisade trace` (that path may allocate).
//
// Threading: one Pipeline per worker; setPolicy() between bursts swaps in a new
// CompiledPolicy (flows computed under an older generation are re-evaluated on
// their next packet).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/time.h"
#include "core/token_bucket.h"
#include "ddos/detector.h"
#include "ddos/syncookie.h"
#include "events/queue.h"
#include "flow/flow_table.h"
#include "ids/engine.h"
#include "packet/decoder.h"
#include "pipeline/compiled.h"
#include "pipeline/conn_limits.h"
#include "pipeline/synproxy.h"

namespace palisade::pipeline {

// X(id, name, layer, description: what was dropped, for reports)
#define PALISADE_DROP_REASONS(X)                                                                   \
  X(Malformed, "malformed", PortSecurity, "not a well-formed packet")                              \
  X(Ethertype, "ethertype", PortSecurity, "a protocol other than ARP, IPv4 and IPv6 from a VM")    \
  X(VlanFromVm, "vlan_from_vm", PortSecurity, "a VLAN-tagged frame from a VM")                     \
  X(MacSpoof, "mac_spoof", PortSecurity, "a source MAC that is not the NIC's")                     \
  X(IpSpoof, "ip_spoof", PortSecurity, "a source address that is not the NIC's")                   \
  X(ArpReplyFromVm, "arp_reply_from_vm", PortSecurity,                                             \
    "an ARP reply from a VM (the switch answers ARP)")                                             \
  X(ArpSpoof, "arp_spoof", PortSecurity, "ARP claiming an address that is not the NIC's")          \
  X(ArpRate, "arp_rate", PortSecurity, "ARP over the NIC's rate cap")                              \
  X(ArpUnknownTarget, "arp_unknown_target", PortSecurity,                                          \
    "ARP for an address nobody in the VNet has")                                                   \
  X(DhcpServerFromVm, "dhcp_server_from_vm", PortSecurity,                                         \
    "a DHCP offer or ack from a VM (a rogue DHCP server)")                                         \
  X(DhcpRate, "dhcp_rate", PortSecurity, "DHCP over the NIC's rate cap")                           \
  X(NdSpoof, "nd_spoof", PortSecurity,                                                             \
    "neighbour discovery claiming an address that is not the NIC's")                               \
  X(L2Broadcast, "l2_broadcast", PortSecurity, "broadcast or multicast the switch does not carry") \
  X(UplinkNonIp, "uplink_non_ip", PortSecurity, "a non-IP frame on the uplink")                    \
  X(Fragment, "fragment", PortSecurity,                                                            \
    "a non-first IP fragment whose datagram's first fragment was not forwarded")                   \
  X(FragmentOverlap, "fragment_overlap", PortSecurity,                                             \
    "a fragment overlapping its datagram's transport header (RFC 1858)")                           \
  X(RemoteNic, "remote_nic", PortSecurity,                                                         \
    "traffic on the port of a NIC that runs on another host")                                      \
  X(Ddos, "ddos", Ddos, "dropped by the DDoS scrubbing path while an attack lasts")                \
  X(DdosLimit, "ddos_limit", Ddos, "over a DDoS profile's rate limit")                             \
  X(ConnLimit, "conn_limit", Ddos, "over a DDoS profile's limit on concurrent connections")        \
  X(HalfOpenLimit, "half_open_limit", Ddos,                                                        \
    "over a DDoS profile's limit on half-open connections")                                        \
  X(ConnRateLimit, "conn_rate_limit", Ddos, "over a DDoS profile's limit on new connections/s")    \
  X(NicLimit, "nic_limit", Ddos,                                                                   \
    "over a DDoS profile's rate limit for the NIC behind an endpoint")                             \
  X(Quarantine, "quarantine", Ddos, "sent by a NIC quarantined for an attack launched from it")    \
  X(SynProxyPending, "syn_proxy_pending", Ddos,                                                    \
    "a client's segment before the server answered the SYN proxy's handshake")                     \
  X(VxlanUnknownHost, "vxlan_unknown_host", Overlay, "VXLAN from an address that is no host's")    \
  X(VxlanUnknownVni, "vxlan_unknown_vni", Overlay, "VXLAN with a VNI that is no VNet's")           \
  X(VxlanNonIp, "vxlan_non_ip", Overlay, "VXLAN carrying a non-IP frame")                          \
  X(VxlanSpoof, "vxlan_spoof", Overlay, "VXLAN from a host speaking for a NIC it does not run")    \
  X(VxlanMisdelivered, "vxlan_misdelivered", Overlay, "VXLAN for a NIC that does not run here")    \
  X(Infrastructure, "infrastructure", Infrastructure,                                              \
    "to an infrastructure address that is not a tenant endpoint")                                  \
  X(Isolation, "isolation", Isolation, "between VNets that are not peered")                        \
  X(NotVip, "not_a_vip", Endpoint, "to a public address that is no deployment's")                  \
  X(NoEndpoint, "no_endpoint", Endpoint, "no input endpoint at that address and port")             \
  X(EndpointElsewhere, "endpoint_on_other_host", Endpoint,                                         \
    "an input endpoint whose NIC runs on another host")                                            \
  X(EndpointAcl, "endpoint_acl", Endpoint, "a source the endpoint's ACL refuses")                  \
  X(NoOutboundAddress, "no_outbound_address", Endpoint,                                            \
    "outbound with no public address to translate to")                                             \
  X(SnatExhausted, "snat_exhausted", Endpoint, "no SNAT port left on the public address")          \
  X(Perimeter, "perimeter", Perimeter, "denied by a perimeter rule")                               \
  X(SubnetGroup, "subnet_group", SubnetGroup, "denied by a subnet's security group")               \
  X(NicGroup, "nic_group", NicGroup, "denied by a NIC's security group")                           \
  X(ConntrackFull, "conntrack_full", Conntrack, "the connection table is full")                    \
  X(NicQuota, "nic_quota", Conntrack, "the NIC's connection quota is reached")                     \
  X(TcpNoSyn, "tcp_no_syn", Conntrack, "a TCP segment of no known connection")                     \
  X(TcpOutOfWindow, "tcp_out_of_window", Conntrack,                                                \
    "a TCP segment outside the connection's window")                                               \
  X(TcpBadFlags, "tcp_bad_flags", Conntrack, "an invalid combination of TCP flags")                \
  X(IcmpUnrelated, "icmp_error_unrelated", Conntrack, "an ICMP error about no tracked connection") \
  X(PolicyRevoked, "policy_revoked", Conntrack,                                                    \
    "a connection the changed policy no longer allows")                                            \
  X(IdsDrop, "ids_drop", Ids,                                                                      \
    "matched an IDS drop or reject rule, or later in a flow that did (IPS)")                       \
  X(IdsOverload, "ids_overload", Ids,                                                              \
    "not inspected under overload, refused (ids overload: fail-closed)")

enum class Reason : uint8_t {
  None,
#define PALISADE_X(id, name, layer, what) id,
  PALISADE_DROP_REASONS(PALISADE_X)
#undef PALISADE_X
      Count
};
const char* toString(Reason r);
Layer layerOf(Reason r);
const char* describe(Reason r);
// The reason whose toString() is name; Reason::None when none is.
Reason reasonByName(std::string_view name);

// Hold: a later IP fragment that came before its datagram's first, kept
// until the first is forwarded (it then leaves in released()) or its time
// is up (it is then dropped as `fragment`, counted when that happens).
enum class Action : uint8_t { Forward, Drop, Answer, Hold };

struct Verdict {
  Action action = Action::Drop;
  Reason reason = Reason::None;
  uint16_t out_port = 0;
  uint32_t rule = kNoIndex;  // the rule that denied, when a rule did
  // The flow's action (Pipeline::action()) when the packet belongs to a
  // tracked flow; valid until the policy changes.
  uint32_t flow_action = kNoIndex;
  // The DDoS stage's count: the packet's attack vector (ddos::Vector; None
  // when it counted none or did not see it) and whether an attack on (or
  // from) its address was under way.
  ddos::Vector ddos_vector = ddos::Vector::None;
  bool ddos_attack = false;
  // Inline inspection: the sid of an alert on this packet, else of the drop
  // rule that stopped its flow, else of its flow's first alert (0: none);
  // whether an alert was raised on this packet.
  uint32_t ids_sid = 0;
  bool ids_alert = false;
  Bytes frame;  // what leaves out_port (rewritten or generated)
  // A dropped packet's answer to its sender, out of reply_port: an IPS reject
  // rule's TCP RST or ICMP port unreachable (empty: none). Valid as `frame`.
  Bytes reply;
  uint16_t reply_port = 0;
};

struct TraceStep {
  Layer layer;
  bool pass;
  std::string detail;
};
using Trace = std::vector<TraceStep>;

struct Stats {
  uint64_t packets = 0, bytes = 0;
  uint64_t forwarded = 0, dropped = 0, answered = 0;
  uint64_t flow_hits = 0, flow_misses = 0, flows_created = 0, flows_expired = 0;
  uint64_t reevaluated = 0, kept_after_change = 0;
  uint64_t arp_answered = 0, dhcp_answered = 0, nd_answered = 0;
  uint64_t vxlan_decapsulated = 0, vxlan_encapsulated = 0;
  // The DDoS stage: attacks started, under way now, addresses tracked now.
  uint64_t ddos_attacks = 0, ddos_active = 0, ddos_targets = 0;
  // Handshakes to protected addresses completed (the SYN-to-ACK ratio's), and
  // SYN rates over their threshold that the ratio showed were clients.
  uint64_t ddos_handshakes = 0, ddos_flash_crowds = 0;
  // The SYN proxy: SYN-ACKs with a cookie sent, ACKs whose cookie was valid
  // or not (to a proxied address, outside any connection), and connections
  // whose server finished the handshake with the proxy.
  uint64_t syn_cookies_sent = 0, syn_cookies_valid = 0, syn_cookies_invalid = 0;
  uint64_t syn_proxied = 0;
  // Connection limits: new connections admitted uncounted for their client
  // (its table had no room; the endpoint's limits still applied).
  uint64_t conn_limit_untracked = 0;
  // NICs quarantined for an attack launched from them: so far, and now.
  uint64_t quarantines = 0, quarantined = 0;
  // Inline inspection: packets the IDS inspected, let through uninspected
  // under overload (fail-open; fail-closed drops them as ids_overload),
  // alerts it raised, flows an IPS drop rule stopped.
  uint64_t ids_inspected = 0, ids_bypassed = 0, ids_alerts = 0, ids_flows_dropped = 0;
  uint64_t ids_rejects = 0;  // answers sent for reject rules (RST, ICMP port unreachable)
  // Non-first IP fragments forwarded after their datagram's first fragment;
  // of them, held until it came (they arrived before it).
  uint64_t fragments_forwarded = 0, fragments_held = 0;
  std::array<uint64_t, static_cast<size_t>(Reason::Count)> drops{};
  std::array<uint64_t, static_cast<size_t>(Layer::Count)> layer_pass{}, layer_drop{};
  void add(const Stats& o);                // sums every counter (workers' totals)
  Stats since(const Stats& before) const;  // every counter minus before's
};

struct Config {
  flow::Config conntrack;
  bool reevaluate_on_change = false;  // drop established flows a new policy denies
  uint32_t flow_log_interval_s = 60;  // continue records; 0 = begin/end only
  // `stats` events (what each layer passed and dropped, per drop reason) every
  // so many seconds of traffic and at the end; 0 = none. Reports read them.
  uint32_t stats_interval_s = 60;
  double arp_pps = 20, arp_burst = 50;
  double dhcp_pps = 5, dhcp_burst = 10;
  uint32_t dhcp_lease_s = 86400;
  // Non-first fragments follow their datagram's first (its flow and verdict)
  // for this long after it, for at most this many datagrams at a time (the
  // oldest is forgotten first).
  uint32_t fragment_timeout_ms = 5000;
  uint32_t fragment_datagrams = 4096;
  // Later fragments that arrive before their first are held for it, this
  // many at most (the oldest is dropped for a new one) and each for
  // fragment_timeout_ms; 0: they are dropped at once.
  uint32_t fragments_held = 256;
  pkt::DecoderConfig decoder;
  // The host this switch runs on (a policy `hosts` name). NICs of other hosts
  // are reached by VXLAN over the uplink and their traffic arrives that way.
  // Empty: every NIC is local and VXLAN is ordinary UDP.
  std::string host;
  // Workers that share the uplink's traffic (the fanout spreads it by flow):
  // each one's DDoS stage sees about 1/N of a flood, so its floors and limits
  // are divided by N.
  uint32_t ddos_shares = 1;
  // Those workers' detectors report each attack once, together
  // (ddos/board.h): the board they share and this worker's number.
  std::shared_ptr<ddos::AttackBoard> ddos_board;
  uint32_t ddos_worker = 0;
};

// `base` with the policy's `conntrack:` settings applied (what the policy
// leaves out keeps base's value). Callers apply command-line overrides after.
Config withPolicySettings(Config base, const policy::Policy& p);

// The composed result of all layers for one flow, shared by flows alike.
struct FlowAction {
  uint16_t in_port = 0, out_port = 0;
  flow::NatKind nat = flow::NatKind::None;
  IpAddr nat_addr;        // SNAT: the VIP; DNAT: the NIC address
  uint16_t nat_port = 0;  // DNAT: private port (SNAT ports are per flow)
  policy::Direction direction = policy::Direction::Inbound;
  bool east_west = false;
  uint32_t nic = kNoIndex;         // the tenant NIC the flow belongs to (its source or target)
  uint32_t endpoint = kNoIndex;    // input endpoint, when inbound through one
  uint32_t infra = kNoIndex;       // infrastructure endpoint, when one
  uint32_t remote_nic = kNoIndex;  // east-west: the NIC on another host, behind VXLAN
  std::array<uint32_t, static_cast<size_t>(Layer::Count)> rules;  // deciding rule per layer
  FlowAction() { rules.fill(kNoIndex); }
  bool operator==(const FlowAction& o) const = default;
};

class Pipeline {
 public:
  Pipeline(std::shared_ptr<const CompiledPolicy> policy, const Config& cfg,
           events::EventQueue* flow_log = nullptr);
  Pipeline(const Pipeline&) = delete;  // its flow table calls back into it
  Pipeline& operator=(const Pipeline&) = delete;

  // Swaps in a new policy between bursts (never mid-packet).
  void setPolicy(std::shared_ptr<const CompiledPolicy> policy);
  // Applies new settings between bursts, as a reloaded policy's `conntrack:`
  // section brings: timeouts, TCP tracking, per-NIC limit, flow-log interval,
  // ARP/DHCP rate caps, DHCP lease, re-evaluation. Settings that shape the
  // pipeline itself (conntrack capacity and seed, host, VXLAN port) only take
  // effect in a new one: their names are returned and they stay as they are.
  std::vector<std::string> reconfigure(const Config& next);
  const Config& config() const { return cfg_; }
  const CompiledPolicy& policy() const { return *policy_; }

  // The ingress port of a frame whose capture does not say: by source MAC (a
  // NIC's own or an address pair's), else the uplink.
  uint16_t portForFrame(pkt::LinkType link, Bytes frame);

  // One packet. The verdict's frame stays valid until the next process call.
  Verdict process(pkt::LinkType link, Bytes frame, uint32_t wire_len, uint16_t in_port, TimeNs ts,
                  Trace* trace = nullptr);

  // Up to kBurst packets, with the same verdicts as process() one by one in
  // order, but decoded first and their flow-table slots and flows prefetched
  // together, so the burst's cache misses overlap instead of queueing (the
  // DPDK/VPP vector idea). Processes min(in.size(), out.size(), kBurst) packets
  // and returns how many; their frames stay valid until the next call.
  static constexpr size_t kBurst = 32;
  struct Input {
    pkt::LinkType link = pkt::LinkType::Ethernet;
    Bytes frame;
    uint32_t wire_len = 0;
    uint16_t in_port = 0;
    TimeNs ts = 0;
  };
  size_t processBurst(std::span<const Input> in, std::span<Verdict> out);

  // Held later fragments (Action::Hold) that the last process() or
  // processBurst() call released: their datagram's first fragment was
  // forwarded in it, as packet `after` of the call. Each has its verdict (as
  // a later fragment arriving right after its first would have had) and the
  // frame as it arrived; they leave right after packet `after`, in order, and
  // stay valid until the next call.
  struct Released {
    uint32_t after = 0;
    Verdict verdict;
    uint16_t in_port = 0;
    Bytes frame;
    uint32_t wire_len = 0;
    TimeNs ts = 0;  // when it arrived
  };
  std::span<const Released> released() const { return released_; }

  // The worker cannot keep up (live: its receive ring is filling): until
  // cleared, the flows the IDS inspects are treated as the policy's
  // `ids.overload` says (fail-open: passed uninspected; fail-closed: dropped).
  void setOverloaded(bool on) { overloaded_ = on; }
  // The inline IDS's own counters (null: the policy inspects nothing).
  const ids::EngineStats* idsStats() const;
  // An engine for `policy`'s rules built elsewhere (building one with ET Open
  // takes most of a second: the live switch builds them off the data path on
  // a reload), picked up by the next setPolicy() with the same rules digest
  // instead of building one there. `replacing`: sessions under way will be
  // picked up mid-stream.
  static std::unique_ptr<ids::Engine> buildIdsEngine(const CompiledPolicy& policy, bool replacing);
  void offerIdsEngine(std::unique_ptr<ids::Engine> engine, uint64_t digest) {
    offered_ids_ = std::move(engine);
    offered_digest_ = digest;
  }

  // Expires idle flows (bounded work) and emits due flow-log records.
  void tick(TimeNs now, uint32_t budget = 256);
  // End records for every live flow (end of a replay, shutdown).
  void finish(TimeNs now);

  const Stats& stats() const { return stats_; }
  const pkt::DecodeStats& decodeStats() const { return decoder_.stats(); }
  flow::FlowTable& flows() { return flows_; }
  const flow::FlowTable& flows() const { return flows_; }
  const FlowAction& action(uint32_t idx) const { return actions_[idx]; }
  size_t actionCount() const { return actions_.size(); }
  // Whether NIC `nic` of the current policy runs on this switch's host.
  bool isLocal(uint32_t nic) const { return nic_local_[nic] != 0; }

 private:
  struct Query {
    uint16_t in_port;
    IpAddr src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    // Arrived by VXLAN: the sender's VNet and NIC (kNoIndex otherwise).
    uint32_t overlay_vnet = kNoIndex, overlay_nic = kNoIndex;
  };
  struct Decision {
    bool allow = false;
    Reason reason = Reason::None;
    uint32_t rule = kNoIndex;
    FlowAction action;
    uint32_t dst_zone = 0;  // zone of the translated side
    uint32_t passed = 0;    // bit per Layer the packet got through
    void pass(Layer l) { passed |= 1u << static_cast<unsigned>(l); }
  };

  // The key lookupKey() gave and flows_.hashOf() it, computed ahead of the
  // packet by processBurst(): the plain path's lookup key is the same one,
  // so it is neither built nor hashed again.
  struct Looked {
    flow::FlowKey key;
    uint64_t hash;
    bool indexed;  // its index line held an entry when looked up ahead
  };
  // process() after decoding into *cur_ (`decoded`: whether that succeeded).
  Verdict run(bool decoded, uint32_t wire_len, uint16_t in_port, TimeNs ts, Trace* trace,
              const Looked* pre = nullptr);
  // run() without the DDoS stage's view of what leaves on the uplink.
  Verdict runLayers(bool decoded, uint32_t wire_len, uint16_t in_port, TimeNs ts, Trace* trace,
                    const Looked* pre);
  // The DDoS stage for the policy's `ddos:` section (none when it protects nothing).
  void configureDdos();
  void configureDetector();  // configureDdos() without the NIC limits
  void syncDdosStats();      // the detector's figures into stats_
  // Inbound from the uplink: the detector's count and verdict; the reason to
  // drop it for, or Reason::None.
  Reason ddosDrops(TimeNs ts, Trace* trace);
  // The SYN proxy (synproxy.h). A SYN to an address whose proxy is active,
  // for a local input endpoint whose ACL admits it (endpointAdmits): the
  // SYN-ACK with a cookie, back out the uplink.
  Verdict answerCookie(const ddos::Detector::SynProxyView& sp, TimeNs ts, Trace* trace);
  // Whether an input endpoint of a NIC on this host takes the flow's VIP,
  // protocol and port, and the endpoint's ACL admits its source. The fields
  // come from the flow key (written when the burst was fetched), not from a
  // Query just filled in: comparing the port and protocol, the compiler reads
  // them as one word, which waited on the two narrower stores that wrote them.
  bool endpointAdmits(const flow::FlowKey& key);
  // The last endpoint endpointAdmits() found, tried first: a SYN flood aims
  // at one VIP and port. Forgotten when the policy changes (setPolicy).
  struct LastEndpoint {
    IpAddr vip;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint32_t index = kNoIndex;
  };
  LastEndpoint last_endpoint_;
  // The endpoint ACL's verdict on `src` (Azure semantics), with the entry
  // that decided (null: none matched).
  static bool aclAdmits(const EndpointInfo& e, const IpAddr& src, const policy::AclRule** hit);
  // An ACK outside any connection to an address with a proxy: whether its
  // cookie is valid; when it is, *cur_ becomes the SYN the server will get
  // (the client's ISN and options) and proxy_next_ its translation.
  bool acceptCookie(const ddos::Detector::SynProxyView& sp, TimeNs ts, Trace* trace);
  // A proxied connection's packet before conntrack: true when handled (*v
  // says what), else translated into what conntrack checks.
  bool synProxyHit(uint32_t idx, flow::Dir dir, uint32_t now_ms, Trace* trace, Verdict* v);
  // The server's SYN-ACK arrived: the ACK that completes its handshake, as
  // the client sent it, through the flow's path (NAT, tunnel, translation).
  Verdict ackServer(uint32_t idx, uint32_t now_ms, Trace* trace);
  // The flow key a decoded packet on in_port will be looked up under, when
  // it takes the plain path (no tunnel, no non-first fragment); for prefetching.
  bool lookupKey(const pkt::Packet& p, uint16_t in_port, flow::FlowKey& key) const;
  Verdict drop(Reason r, uint32_t rule = kNoIndex);
  Verdict portSecurity(const NicInfo& nic, TimeNs ts, Trace* trace, bool* handled);
  Verdict absorb(Trace* trace, const char* why);  // consumed, nothing sent back
  Verdict answerWith(const NicInfo& nic, const std::vector<std::byte>& frame, uint64_t& counter);
  Verdict answerOut(uint16_t port);  // the switch's own frame in out_, sent out of `port`
  Verdict answerArp(const NicInfo& nic, Trace* trace);
  Verdict answerDhcp(const NicInfo& nic, Trace* trace);
  Verdict answerNd(const NicInfo& nic, Trace* trace);
  bool ownsAddress(const NicInfo& nic, const IpAddr& a) const;

  Decision evaluate(const Query& q, Trace* trace);
  Decision evaluateOutbound(const Query& q, const NicInfo& nic, Trace* trace);
  Decision evaluateInbound(const Query& q, Trace* trace);
  Decision evaluateOverlay(const Query& q, Trace* trace);
  bool decapsulate(Trace* trace, Query& q, Verdict& v);
  void bindHost();
  bool groupAllows(uint32_t group, policy::Direction d, const classify::Key& k, Layer layer,
                   Decision& dec, Trace* trace);
  bool perimeterAllows(policy::Direction d, const classify::Key& k, Decision& dec, Trace* trace);
  uint16_t allocateSnatPort(const Query& q, const IpAddr& vip);

  Verdict forwardFlow(uint32_t idx, flow::Dir dir, Trace* trace);
  // A first fragment forwarded with its flow: its datagram's later fragments
  // will follow it (rememberFragment); a later fragment, with the zone its
  // port or tunnel gave it (laterFragment).
  // A later fragment with no forwarded first yet is held (`holdable`: it did
  // not come out of a tunnel, whose outer frame holding would keep).
  void rememberFragment(const flow::FlowKey& key, uint32_t now_ms);
  Verdict laterFragment(uint32_t zone, uint32_t now_ms, Trace* trace, uint16_t in_port = 0,
                        bool holdable = false);
  // Sends the held fragments of datagrams whose first was forwarded in this
  // call on (into released_); drops those whose time is up (every one: all).
  void releaseHeld(uint32_t after);
  void expireHeld(uint32_t now_ms, bool all);
  void dropHeld();                               // the oldest held, counted as a `fragment` drop
  static constexpr size_t kMaxHeldFrame = 9216;  // a jumbo frame; larger ones are not held
  // At the start of a call: the last call's released fragments go. Out of
  // line: their destructors inlined into processBurst() cost it the inlining
  // of run() (3% of the established path).
  void beginCall() {
    if (!released_.empty()) [[unlikely]]
      forgetReleased();
  }
  [[gnu::noinline, gnu::cold]] void forgetReleased();
  // Copies the packet's frame into out_ behind room for a VXLAN header when
  // the copy leaves through a tunnel; returns the writable inner frame.
  std::span<std::byte> stage(const FlowAction& a, uint16_t out_port);
  // Sets the inner MACs for out_port and writes the VXLAN header when staged so.
  Bytes seal(const flow::Flow& f, const FlowAction& a, uint16_t out_port);
  Verdict related(const flow::Hit& hit, Trace* trace);
  uint32_t internAction(const FlowAction& a);
  uint32_t internActionSlow(const FlowAction& a);
  // revoked_by: the new policy's rule that ended the flow on re-evaluation
  // (kNoIndex: none, or the flow did not end that way).
  void emitFlowLog(uint32_t idx, const char* state, TimeNs now, bool revoked = false,
                   uint32_t revoked_by = kNoIndex);
  void emitDenied(const Query& q, const Decision& d, TimeNs now);
  // A `stats` event with the counters' growth since the last one.
  void emitStats(TimeNs now);
  uint32_t clockMs(TimeNs ts) const { return static_cast<uint32_t>((ts - epoch_) / 1000000); }
  // The flow_id of a flow's events (flow records and alerts alike).
  uint64_t flowId(const flow::Flow& f) const { return hashKey(flows_.origKey(f), flow_seed_) >> 1; }

  std::shared_ptr<const CompiledPolicy> policy_;
  Config cfg_;
  events::EventQueue* flow_log_;
  pkt::Decoder decoder_;
  // The DDoS stage: attacks on (and from) the policy's protected addresses,
  // seen on the uplink both ways. Null when the policy protects nothing.
  std::unique_ptr<ddos::Detector> ddos_;
  pkt::Decoder ddos_decoder_;  // its own: the switch's decode counters stay per packet in
  pkt::Packet ddos_out_;       // a frame leaving on the uplink, decoded for it
  bool ddos_feed_ = false;     // the packet is the DDoS stage's: no flow, or one never answered
  ddos::Detector::Mark ddos_mark_;  // what the stage counted the current packet as
  // The SYN proxy: its cookies (keyed from the conntrack seed when one is
  // fixed, else at random), the translation of each proxied flow by flow
  // index (28 bytes per connection of the table's capacity, allocated when
  // the first proxied connection opens), the segment it makes in place of a
  // packet, decoded into proxy_pkt_ when it is not the current one.
  // Connection limits of the DDoS profiles, and the slots each counted flow
  // was charged to (by flow index, 8 bytes per connection of the table's
  // capacity, allocated at the first counted connection).
  ConnLimiter limiter_;
  std::vector<ConnLimiter::Charge> charges_;
  // A counted TCP flow whose handshake finished is no longer half-open; one
  // closed (TIME_WAIT, CLOSE) no longer counts at all, as netfilter's
  // connlimit does.
  void settleLimits(flow::Flow& f, uint32_t idx) {
    if (!(f.flags & flow::kLimited)) return;
    if ((f.flags & flow::kHalfOpen) && f.tcp_state > flow::TcpState::SynRecv) {
      limiter_.opened(charges_[idx]);
      f.flags &= static_cast<uint8_t>(~flow::kHalfOpen);
    }
    if (f.tcp_state == flow::TcpState::TimeWait || f.tcp_state == flow::TcpState::Close) {
      limiter_.release(charges_[idx], false);
      f.flags &= static_cast<uint8_t>(~flow::kLimited);
    }
  }
  // NICs quarantined for an outbound attack (by policy NIC index): the
  // attacking address their traffic left by, the attack, the mode and rate.
  struct NicQuarantine {
    bool on = false;
    ddos::Quarantine mode = ddos::Quarantine::None;
    double pps = 0;
    IpAddr from;
    uint64_t attack = 0;
    TokenBucket bucket;
    ddos::Detector::OutboundView view;  // the attack, as its events say
  };
  std::vector<NicQuarantine> quarantine_;
  // The profiles' nic_pps / nic_bps for each NIC behind a protected
  // endpoint (by policy NIC index; empty when no profile sets them).
  struct NicLimit {
    double pps = 0, bps = 0;
    PacketRate rate;
  };
  std::vector<NicLimit> nic_limits_;
  // Per input endpoint: its address's profile limits each source's rate, which
  // then applies to its established flows too (empty: no profile does).
  std::vector<uint8_t> source_limited_;
  // Whether a packet from the uplink to `nic` is within its limit (taken when it is).
  bool nicAdmits(uint32_t nic, uint64_t len, TimeNs ts);
  // A packet that left through the uplink belonged to an outbound attack the
  // profile quarantines: its NIC is quarantined from now on.
  void quarantineNic(uint32_t nic, const IpAddr& from, TimeNs ts);
  // Ends the quarantines whose attack is over.
  void releaseQuarantines(TimeNs now);
  void emitQuarantine(uint32_t nic, const char* what, TimeNs ts);
  // Inline inspection (ids/engine.h) of the flows of the NICs the policy's
  // `ids:` section marks, on the NIC's side of the packet (private addresses,
  // after DNAT and before SNAT), after every other layer let it through.
  void configureIds();
  void inspect(Verdict& v, uint16_t in_port, TimeNs ts, Trace* trace);
  // A reject rule's answer to the sender of *cur_ (as it sent the packet, before
  // any rewrite) into ids_reply_: a TCP RST, or an ICMP port unreachable for
  // UDP over IPv4 or IPv6; false when there is none to send (a RST, ICMP).
  bool buildReject(uint16_t in_port);
  std::vector<std::byte> ids_reply_;
  std::unique_ptr<ids::Engine> offered_ids_;
  uint64_t offered_digest_ = 0;
  std::unique_ptr<ids::Engine> ids_;
  std::shared_ptr<const ids::PreparedRules> ids_rules_;  // what ids_ was built from
  uint64_t ids_digest_ = 0;
  pkt::Decoder ids_decoder_;
  pkt::Packet ids_pkt_;
  TokenBucket ids_budget_;  // bits, for ids.capacity
  bool overloaded_ = false;
  uint32_t cur_flow_ = kNoIndex;  // the current packet's tracked flow (forwardFlow)
  uint32_t ids_nic_ = kNoIndex;   // the NIC of the flow being inspected
  uint16_t ids_port_ = 0;         // and the port the packet came in on
  ddos::SynCookies cookies_;
  std::vector<synproxy::Translation> proxy_;
  synproxy::Translation proxy_next_;
  std::vector<std::byte> proxy_frame_;
  pkt::Packet proxy_pkt_;
  // Decoded packets: the one being processed and those fetched ahead of it in
  // a burst (process() uses the first); functions below read cur_.
  static constexpr size_t kAhead = 8;
  std::array<pkt::Packet, kAhead + 1> burst_;
  // processBurst()'s lookahead keys: members, so a burst does not zero 32
  // keys first (every one used is written before it is read).
  std::array<Looked, kBurst> looked_;
  synproxy::Segment answer_;  // answerCookie()'s SYN-ACK, every field set per SYN
  // In processBurst(), answerCookie() stages each cookie's MAC (SynCookies::
  // stage) and the burst's end ORs them all into their SYN-ACKs at once:
  // where each one's TCP header is in its outs_ frame, by burst position.
  bool stage_cookies_ = false;
  uint32_t burst_at_ = 0;  // the current packet's burst position (out_ is outs_[burst_at_])
  std::array<uint16_t, kBurst> cookie_tcp_{};
  void sealCookies();
  pkt::Packet* cur_ = &burst_[0];
  flow::FlowTable flows_;
  std::vector<FlowAction> actions_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> action_index_;
  uint32_t last_action_ = kNoIndex;  // the action internAction() gave last
  std::vector<TokenBucket> arp_buckets_, dhcp_buckets_;
  // Rewritten or generated frames, one per burst position; out_ is the current
  // packet's. Each grows to the largest frame it has carried and stays so.
  std::array<std::vector<std::byte>, kBurst> outs_;
  std::vector<std::byte>* out_ = &outs_[0];
  size_t headroom_ = 0;  // bytes of out_ before the inner frame (VXLAN header)
  uint32_t local_host_ = kNoIndex;
  std::vector<uint8_t> nic_local_;
  uint16_t vxlan_ip_id_ = 0;
  Stats stats_;
  Stats stats_reported_;    // stats_ as of the last stats event
  TimeNs stats_since_ = 0;  // when the interval of the next stats event began
  TimeNs epoch_ = 0;
  bool epoch_set_ = false;
  TimeNs now_ = 0;
  uint64_t flow_seed_;
  // Virtual reassembly (as VPP's and stateful firewalls' fragment tracking):
  // fragments are forwarded as they come, each later one with the verdict
  // and rewrite of its datagram's first, found by the first's flow key under
  // the datagram's (addresses, zone, protocol, identification). Bounded by
  // Config::fragment_datagrams; `frag_order_` holds (key, entry number) oldest
  // first, an entry's place ending when its number no longer matches (an
  // expired entry filed again goes to the back).
  struct FragKey {
    IpAddr src, dst;
    uint32_t zone = 0, id = 0;
    uint8_t proto = 0;
    uint8_t pad[3]{};
    friend bool operator==(const FragKey&, const FragKey&) = default;
  };
  struct FragKeyHash {
    uint64_t seed;
    size_t operator()(const FragKey& k) const { return hashKey(k, seed); }
  };
  struct FragEntry {
    flow::FlowKey flow;
    uint32_t expires_ms;
    uint32_t number;
  };
  std::unordered_map<FragKey, FragEntry, FragKeyHash> frags_;
  std::deque<std::pair<FragKey, uint32_t>> frag_order_;
  uint32_t frag_number_ = 0;
  // Later fragments held for their first (Config::fragments_held), oldest
  // first, with how many each datagram has; the datagrams whose first this
  // call forwarded; the fragments released by it, kept until the next call.
  struct Held {
    FragKey key;
    std::vector<std::byte> frame, out;  // as it arrived; as it leaves
    pkt::LinkType link = pkt::LinkType::Ethernet;
    uint32_t wire_len = 0, expires_ms = 0;
    uint16_t in_port = 0;
    TimeNs ts = 0;
  };
  std::deque<Held> held_;
  std::unordered_map<FragKey, uint32_t, FragKeyHash> held_count_;
  std::vector<FragKey> release_;
  std::vector<Held> releasing_;
  std::vector<Released> released_;
  pkt::Decoder held_decoder_;  // its own: held frames are decoded and counted once by decoder_
  pkt::Packet held_pkt_;
};

}  // namespace palisade::pipeline
