#include "pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <optional>
#include <type_traits>

#include "core/hash.h"
#include "core/json_writer.h"
#include "core/strings.h"
#include "ddos/config.h"
#include "ids/eve.h"
#include "ids/offline.h"
#include "packet/builder.h"
#include "pipeline/rewrite.h"

namespace palisade::pipeline {

using flow::Dir;
using flow::FlowKey;
using flow::NatKind;
using policy::Direction;

const char* toString(Reason r) {
  static constexpr const char* kNames[] = {"none",
#define PALISADE_X(id, name, layer, what) name,
                                           PALISADE_DROP_REASONS(PALISADE_X)
#undef PALISADE_X
  };
  return kNames[static_cast<size_t>(r)];
}

Layer layerOf(Reason r) {
  static constexpr Layer kLayers[] = {Layer::PortSecurity,
#define PALISADE_X(id, name, layer, what) Layer::layer,
                                      PALISADE_DROP_REASONS(PALISADE_X)
#undef PALISADE_X
  };
  return kLayers[static_cast<size_t>(r)];
}

const char* describe(Reason r) {
  static constexpr const char* kWhat[] = {"not dropped",
#define PALISADE_X(id, name, layer, what) what,
                                          PALISADE_DROP_REASONS(PALISADE_X)
#undef PALISADE_X
  };
  return kWhat[static_cast<size_t>(r)];
}

Reason reasonByName(std::string_view name) {
  for (size_t r = 1; r < static_cast<size_t>(Reason::Count); ++r)
    if (name == toString(static_cast<Reason>(r))) return static_cast<Reason>(r);
  return Reason::None;
}

namespace {

constexpr uint32_t kSnatAttempts = 64;

bool isIcmp(uint8_t proto) {
  return proto == pkt::ipproto::kIcmp || proto == pkt::ipproto::kIcmpv6;
}

bool isEcho(const pkt::Packet& p) {
  if (p.has(pkt::kIcmp)) return p.icmp.type == 8 || p.icmp.type == 0;
  if (p.has(pkt::kIcmpv6)) return p.icmp.type == 128 || p.icmp.type == 129;
  return false;
}

bool isIcmpError(const pkt::Packet& p) {
  if (p.has(pkt::kIcmp))
    return p.icmp.type == 3 || p.icmp.type == 4 || p.icmp.type == 5 || p.icmp.type == 11 ||
           p.icmp.type == 12;
  if (p.has(pkt::kIcmpv6)) return p.icmp.type >= 1 && p.icmp.type <= 4;
  return false;
}

// Ports of a flow key: TCP/UDP ports; the echo identifier (both) for ICMP echo.
void portsOf(const pkt::Packet& p, uint16_t& sport, uint16_t& dport) {
  if (p.has(pkt::kTcp) || p.has(pkt::kUdp)) {
    sport = p.sport;
    dport = p.dport;
  } else if (isEcho(p)) {
    sport = dport = p.icmp.id;
  } else {
    sport = dport = 0;
  }
}

// The flow key of a decoded IP packet in `zone`, written field by field in
// place (a key built in a temporary and copied is read back as wide loads
// over its narrow stores, which stalls on store forwarding).
void keyInto(const pkt::Packet& p, uint32_t zone, FlowKey& k) {
  k.src = p.src;
  k.dst = p.dst;
  k.zone = zone;
  k.proto = p.proto;
  portsOf(p, k.sport, k.dport);
}

// The offending packet quoted by an ICMP error: its tuple as it was sent.
bool innerTuple(const pkt::Packet& p, FlowKey& k) {
  if (p.icmp.inner_off == 0 || p.icmp.inner_off >= p.l3_end) return false;
  const Bytes in = p.frame.subspan(p.icmp.inner_off, p.l3_end - p.icmp.inner_off);
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(in[i]); };
  size_t l4;
  if (in.size() >= 20 && (u8(0) >> 4) == 4) {
    const size_t ihl = (u8(0) & 0xf) * 4u;
    if (ihl < 20 || in.size() < ihl) return false;
    k.proto = u8(9);
    k.src = IpAddr::v4(reinterpret_cast<const uint8_t*>(in.data()) + 12);
    k.dst = IpAddr::v4(reinterpret_cast<const uint8_t*>(in.data()) + 16);
    l4 = ihl;
  } else if (in.size() >= 40 && (u8(0) >> 4) == 6) {
    k.proto = u8(6);
    k.src = IpAddr::v6(reinterpret_cast<const uint8_t*>(in.data()) + 8);
    k.dst = IpAddr::v6(reinterpret_cast<const uint8_t*>(in.data()) + 24);
    l4 = 40;
  } else {
    return false;
  }
  k.sport = k.dport = 0;
  if (k.proto == pkt::ipproto::kTcp || k.proto == pkt::ipproto::kUdp) {
    if (in.size() < l4 + 4) return false;
    k.sport = static_cast<uint16_t>(u8(l4) << 8 | u8(l4 + 1));
    k.dport = static_cast<uint16_t>(u8(l4 + 2) << 8 | u8(l4 + 3));
  } else if (isIcmp(k.proto)) {
    if (in.size() < l4 + 6) return false;
    k.sport = k.dport = static_cast<uint16_t>(u8(l4 + 4) << 8 | u8(l4 + 5));
  }
  return true;
}

std::string ruleText(const CompiledPolicy& cp, uint32_t rule) {
  if (rule == kNoIndex) return "no rule";
  const RuleInfo& r = cp.rules[rule];
  return strCat(r.name, " (priority ", std::to_string(r.priority), ", ", policy::toString(r.access),
                r.is_default ? ", default rule" : "", ")");
}

}  // namespace

Config withPolicySettings(Config base, const policy::Policy& p) {
  const policy::ConntrackSettings& c = p.conntrack;
  if (c.capacity) base.conntrack.capacity = *c.capacity;
  if (c.per_nic_limit) base.conntrack.per_nic_limit = *c.per_nic_limit;
  if (c.loose) base.conntrack.loose = *c.loose;
  if (c.flow_log_interval) base.flow_log_interval_s = *c.flow_log_interval;
  if (c.fragment_timeout) base.fragment_timeout_ms = *c.fragment_timeout * 1000;
  if (c.fragment_datagrams) base.fragment_datagrams = *c.fragment_datagrams;
  if (c.fragments_held) base.fragments_held = *c.fragments_held;
  flow::Timeouts& t = base.conntrack.timeouts;
  uint32_t* const fields[] = {&t.tcp_syn_sent,  &t.tcp_syn_recv,   &t.tcp_established,
                              &t.tcp_fin_wait,  &t.tcp_close_wait, &t.tcp_last_ack,
                              &t.tcp_time_wait, &t.tcp_close,      &t.udp,
                              &t.udp_stream,    &t.icmp,           &t.other};
  static_assert(std::size(fields) == std::size(policy::ConntrackSettings::kTimeoutNames));
  for (const auto& [name, secs] : c.timeouts)
    for (size_t i = 0; i < std::size(fields); ++i)
      if (policy::ConntrackSettings::kTimeoutNames[i] == name) *fields[i] = secs;
  return base;
}

namespace {

constexpr uint64_t Stats::*kStatsCounters[] = {&Stats::packets,
                                               &Stats::bytes,
                                               &Stats::forwarded,
                                               &Stats::dropped,
                                               &Stats::answered,
                                               &Stats::flow_hits,
                                               &Stats::flow_misses,
                                               &Stats::flows_created,
                                               &Stats::flows_expired,
                                               &Stats::reevaluated,
                                               &Stats::kept_after_change,
                                               &Stats::arp_answered,
                                               &Stats::dhcp_answered,
                                               &Stats::nd_answered,
                                               &Stats::vxlan_decapsulated,
                                               &Stats::vxlan_encapsulated,
                                               &Stats::ddos_attacks,
                                               &Stats::ddos_active,
                                               &Stats::ddos_targets,
                                               &Stats::ddos_handshakes,
                                               &Stats::ddos_flash_crowds,
                                               &Stats::syn_cookies_sent,
                                               &Stats::syn_cookies_valid,
                                               &Stats::syn_cookies_invalid,
                                               &Stats::syn_proxied,
                                               &Stats::conn_limit_untracked,
                                               &Stats::quarantines,
                                               &Stats::quarantined,
                                               &Stats::ids_inspected,
                                               &Stats::ids_bypassed,
                                               &Stats::ids_alerts,
                                               &Stats::ids_flows_dropped,
                                               &Stats::ids_rejects,
                                               &Stats::fragments_forwarded,
                                               &Stats::fragments_held};

// Every counter of `a` plus `sign` times the same counter of `b` (wrapping).
Stats combine(const Stats& a, const Stats& b, uint64_t sign) {
  Stats r = a;
  for (uint64_t Stats::*c : kStatsCounters)
    r.*c += sign * (b.*c);
  for (size_t i = 0; i < r.drops.size(); ++i)
    r.drops[i] += sign * b.drops[i];
  for (size_t i = 0; i < r.layer_pass.size(); ++i) {
    r.layer_pass[i] += sign * b.layer_pass[i];
    r.layer_drop[i] += sign * b.layer_drop[i];
  }
  return r;
}

}  // namespace

void Stats::add(const Stats& o) {
  *this = combine(*this, o, 1);
}

Stats Stats::since(const Stats& before) const {
  return combine(*this, before, ~uint64_t{0});
}

Pipeline::Pipeline(std::shared_ptr<const CompiledPolicy> policy, const Config& cfg,
                   events::EventQueue* flow_log)
    : policy_(std::move(policy)),
      cfg_(cfg),
      flow_log_(flow_log),
      decoder_(cfg.decoder),
      flows_(cfg.conntrack),
      held_decoder_(cfg.decoder) {
  for (auto& o : outs_)
    o.reserve(2048);  // an MTU-sized frame behind a VXLAN header
  actions_.reserve(1024);
  flow_seed_ = mix64(
      cfg.conntrack.seed
          ? cfg.conntrack.seed + 1
          : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  limiter_ = ConnLimiter(mix64(flow_seed_ ^ 0xc011));
  frags_ = decltype(frags_)(16, FragKeyHash{mix64(flow_seed_ ^ 0xf4a6)});
  held_count_ = decltype(held_count_)(16, FragKeyHash{mix64(flow_seed_ ^ 0x4e1d)});
  if (cfg.conntrack.seed)  // reproducible runs answer with the same cookies
    cookies_ =
        ddos::SynCookies(SipKey{mix64(flow_seed_ ^ 0x5c00c1e5), mix64(flow_seed_ + 0xc00c1e)});
  arp_buckets_.resize(policy_->nics.size());
  dhcp_buckets_.resize(policy_->nics.size());
  quarantine_.resize(policy_->nics.size());
  bindHost();
  configureDdos();
  configureIds();
  flows_.setEraseHook(
      [](void* ctx, uint32_t idx, const flow::Flow& f) {
        auto* self = static_cast<Pipeline*>(ctx);
        self->limiter_.release(self->charges_[idx], (f.flags & flow::kHalfOpen) != 0);
      },
      this);
}

void Pipeline::configureDdos() {
  configureDetector();
  // Each NIC behind a protected endpoint: the strictest nic_pps / nic_bps of
  // its endpoints' profiles (buckets start full after a reload).
  nic_limits_.clear();
  source_limited_.clear();
  if (!ddos_) return;
  const auto tighter = [](double cur, double v) {
    return v <= 0 ? cur : cur <= 0 ? v : std::min(cur, v);
  };
  for (const EndpointInfo& e : policy_->endpoints) {
    for (const IpAddr& vip : policy_->deployments[e.deployment].vips) {
      const ddos::Limits* l = ddos_->limitsFor(vip);
      if (l && (l->source_pps > 0 || l->source_bps > 0)) {
        if (source_limited_.empty()) source_limited_.resize(policy_->endpoints.size());
        source_limited_[static_cast<size_t>(&e - policy_->endpoints.data())] = 1;
      }
      if (!l || (l->nic_pps <= 0 && l->nic_bps <= 0)) continue;
      if (nic_limits_.empty()) nic_limits_.resize(policy_->nics.size());
      NicLimit& n = nic_limits_[e.nic];
      n.pps = tighter(n.pps, l->nic_pps);
      n.bps = tighter(n.bps, l->nic_bps);
    }
  }
}

bool Pipeline::nicAdmits(uint32_t nic, uint64_t len, TimeNs ts) {
  NicLimit& n = nic_limits_[nic];
  return (n.pps <= 0 && n.bps <= 0) || n.rate.take(n.pps, n.bps, len, ts);
}

void Pipeline::configureDetector() {
  ddos::DetectorConfig cfg;
  if (policy_->model) cfg = ddos::configFromPolicy(*policy_->model);
  ddos::scaleForShare(cfg, cfg_.ddos_shares);
  cfg.board = cfg_.ddos_board;
  cfg.worker = cfg_.ddos_worker;
  cfg.tracked = true;
  if (cfg.protect.empty()) {
    if (ddos_) ddos_->finish(now_);
    ddos_.reset();
    return;
  }
  if (ddos_) {
    ddos_->reconfigure(std::move(cfg));
    return;
  }
  ddos_ = std::make_unique<ddos::Detector>(std::move(cfg));
  // Attack events join the flow log (they are rare: a copy is fine).
  ddos_->setSink([this](const events::Event& ev) {
    if (!flow_log_) return;
    events::Event* e = flow_log_->acquire();
    if (!e) return;
    e->ts_ns = ev.ts_ns;
    e->type = ev.type;
    e->body = ev.body;
    flow_log_->commit();
  });
}

Reason Pipeline::ddosDrops(TimeNs ts, Trace* trace) {
  ddos::Detector::Mark mark;
  const ddos::Detector::Verdict dv = ddos_->process(*cur_, ts, &mark);
  ddos_mark_ = mark;
  using DV = ddos::Detector::Verdict;
  if (trace)
    trace->push_back(
        {Layer::Ddos, dv == DV::Pass,
         strCat(ddos_->describe(cur_->dst), dv == DV::Drop    ? ": dropped by the scrubbing path"
                                            : dv == DV::Limit ? ": over the profile's rate limit"
                                                              : "")});
  return dv == DV::Drop ? Reason::Ddos : dv == DV::Limit ? Reason::DdosLimit : Reason::None;
}

// --- SYN proxy --------------------------------------------------------------

namespace {

uint8_t ecnFlags() {
  return pkt::tcpflag::kEce | pkt::tcpflag::kCwr;
}

}  // namespace

Verdict Pipeline::answerCookie(const ddos::Detector::SynProxyView& sp, TimeNs ts, Trace* trace) {
  using namespace pkt::tcpflag;
  const pkt::Packet& p = *cur_;
  const pkt::TcpOptions& o = p.tcp.opt;
  // Window scale, SACK and ECN come back only in the timestamp the client
  // echoes: without timestamps the proxy offers none of them.
  ddos::CookieOptions co;
  co.mss = o.has_mss ? o.mss : 536;  // RFC 9293 3.7.1: 536 when the SYN names none
  if (o.has_timestamp) {
    co.wscale = o.has_wscale ? std::min<uint8_t>(o.wscale, 14) : 0xf;
    co.sack = o.sack_permitted;
    co.ecn = (p.tcp.flags & ecnFlags()) == ecnFlags();
  }
  const ddos::CookieTuple tuple{p.src, p.dst, p.sport, p.dport};
  const auto now_ms = static_cast<uint32_t>(ts / 1'000'000);
  // In a burst, the MAC comes at its end with the others (sealCookies()).
  const uint32_t at = burst_at_;
  ddos::SynCookies::Made made;
  const bool staged = stage_cookies_ && cookies_.stage(tuple, p.tcp.seq, co, ts, now_ms, at, made);
  if (!staged) made = cookies_.make(tuple, p.tcp.seq, co, ts, now_ms);
  // A member, every field assigned: a Segment made afresh is zeroed first
  // with a `rep stos`, slow to start for its 88 bytes (once per SYN of a flood).
  synproxy::Segment& s = answer_;
  const bool stamps = o.has_timestamp;
  s.l2 = p.frame.subspan(0, p.l3_off);
  s.swap_macs = true;
  s.src = p.dst;
  s.dst = p.src;
  s.sport = p.dport;
  s.dport = p.sport;
  s.seq = made.isn;
  s.ack = p.tcp.seq + 1;
  s.flags = static_cast<uint8_t>(kSyn | kAck | (co.ecn ? kEce : 0));
  s.window = 64240;
  s.mss = sp.mss;
  s.wscale = stamps && co.wscale != 0xf ? std::min<uint8_t>(sp.wscale, 14) : uint8_t{0xf};
  s.sack_permitted = stamps && co.sack;
  s.timestamps = stamps;
  s.tsval = stamps ? made.tsval : 0;
  s.tsecr = stamps ? o.ts_val : 0;
  const size_t tcp = synproxy::write(*out_, s);
  if (staged) cookie_tcp_[at] = static_cast<uint16_t>(tcp);
  ++stats_.syn_cookies_sent;
  if (trace)
    trace->push_back(
        {Layer::Ddos, true,
         strCat(
             "SYN proxy: answered with a SYN cookie (mss ", std::to_string(co.mss),
             o.has_timestamp
                 ? strCat(", window scale ",
                          co.wscale == 0xf ? std::string("none") : std::to_string(co.wscale),
                          co.sack ? ", SACK" : "", co.ecn ? ", ECN" : "", " kept in the timestamp")
                 : std::string(", no timestamps: no window scale or SACK"),
             "); no state until the client's ACK, when the perimeter and security groups "
             "decide")});
  return answerOut(kUplinkPort);
}

bool Pipeline::acceptCookie(const ddos::Detector::SynProxyView& sp, TimeNs ts, Trace* trace) {
  using namespace pkt::tcpflag;
  const pkt::Packet& p = *cur_;
  const pkt::TcpOptions& o = p.tcp.opt;
  const auto co =
      cookies_.check({p.src, p.dst, p.sport, p.dport}, p.tcp.seq, p.tcp.ack,
                     o.has_timestamp ? std::optional<uint32_t>(o.ts_ecr) : std::nullopt, ts);
  if (!co) {
    ++stats_.syn_cookies_invalid;
    return false;
  }
  ddos_->handshake(p.dst, ts);  // the client finished its handshake (with the proxy)
  synproxy::Translation& t = proxy_next_;
  t = {};
  t.timestamps = o.has_timestamp;
  t.client_wscale = co->wscale;
  t.offered_wscale = co->wscale != 0xf ? std::min<uint8_t>(sp.wscale, 14) : 0xf;
  t.client_window = p.tcp.window;
  t.cookie_isn = p.tcp.ack - 1;
  t.proxy_tsval = o.ts_ecr;
  t.client_tsval = o.ts_val;
  // The SYN the client sent, as far as the cookie kept it.
  synproxy::Segment s;
  s.l2 = p.frame.subspan(0, p.l3_off);
  s.src = p.src;
  s.dst = p.dst;
  s.sport = p.sport;
  s.dport = p.dport;
  s.seq = p.tcp.seq - 1;
  s.flags = static_cast<uint8_t>(kSyn | (co->ecn ? ecnFlags() : 0));
  s.window =
      co->wscale != 0xf
          ? static_cast<uint16_t>(std::min<uint32_t>(uint32_t{p.tcp.window} << co->wscale, 65535))
          : p.tcp.window;
  s.mss = co->mss;
  s.wscale = co->wscale;
  s.sack_permitted = co->sack;
  s.timestamps = o.has_timestamp;
  s.tsval = o.ts_val;
  synproxy::write(proxy_frame_, s);
  if (!ddos_decoder_.decode(pkt::LinkType::Ethernet, proxy_frame_,
                            static_cast<uint32_t>(proxy_frame_.size()), *cur_))
    return false;  // an L2 header the decoder no longer reads as it did
  ++stats_.syn_cookies_valid;
  if (trace)
    trace->push_back(
        {Layer::Ddos, true,
         strCat("SYN proxy: the client's ACK carries a valid cookie; the server gets its SYN (mss ",
                std::to_string(co->mss), ", window scale ",
                co->wscale == 0xf ? std::string("none") : std::to_string(co->wscale),
                co->sack ? ", SACK" : "", o.has_timestamp ? ", timestamps" : "",
                co->ecn ? ", ECN" : "", ")")});
  return true;
}

bool Pipeline::synProxyHit(uint32_t idx, Dir dir, uint32_t now_ms, Trace* trace, Verdict* v) {
  using namespace pkt::tcpflag;
  pkt::Packet& p = *cur_;
  if (!p.has(pkt::kTcp)) return false;
  flow::Flow& f = flows_.at(idx);
  synproxy::Translation& t = proxy_[idx];
  const uint8_t fl = p.tcp.flags & (kSyn | kAck | kRst | kFin);
  if (t.state == synproxy::Translation::State::Pending) {
    if (dir == Dir::Orig) {
      // The client thinks the connection open; what it sends before the
      // server answered is dropped and sent again.
      if (trace)
        trace->push_back(
            {Layer::Ddos, false, "SYN proxy: the server has not answered the handshake yet"});
      *v = drop(Reason::SynProxyPending);
      return true;
    }
    if (fl != (kSyn | kAck)) return false;  // its RST is translated on the way out
    const flow::Track tr = flows_.track(f, dir, p, now_ms);
    if (tr != flow::Track::Ok) {
      *v = drop(tr == flow::Track::OutOfWindow ? Reason::TcpOutOfWindow : Reason::TcpBadFlags);
      return true;
    }
    t.seq_delta = p.tcp.seq - t.cookie_isn;
    t.timestamps = t.timestamps && p.tcp.opt.has_timestamp;
    if (t.timestamps) t.ts_delta = p.tcp.opt.ts_val - t.proxy_tsval;
    synproxy::settleWindows(t, p.tcp.opt.has_wscale ? p.tcp.opt.wscale : 0xff);
    t.state = synproxy::Translation::State::Open;
    ++stats_.syn_proxied;
    *v = ackServer(idx, now_ms, trace);
    return true;
  }
  if (dir == Dir::Reply && fl == (kSyn | kAck)) {
    if (p.tcp.seq != t.serverIsn()) return false;  // conntrack refuses it
    *v = ackServer(idx, now_ms, trace);            // the proxy's ACK was lost: again
    return true;
  }
  if (dir == Dir::Orig) {
    // Conntrack checks what the server will get.
    if (fl & kAck) p.tcp.ack += t.seq_delta;
    p.tcp.window = synproxy::toServerWindow(t, p.tcp.window);
  }
  return false;
}

Verdict Pipeline::ackServer(uint32_t idx, uint32_t now_ms, Trace* trace) {
  const pkt::Packet& synack = *cur_;
  const flow::Flow& f = flows_.at(idx);
  const synproxy::Translation& t = proxy_[idx];
  // The client's ACK of the proxy's SYN-ACK, as it sent it: the flow's path
  // translates, NATs and delivers it like any of the client's segments.
  synproxy::Segment s;
  s.l2 = synack.frame.subspan(0, synack.l3_off);
  s.swap_macs = true;
  s.src = f.src;
  s.dst = f.dst;
  s.sport = f.sport;
  s.dport = f.dport;
  s.seq = synack.tcp.ack;
  s.ack = t.cookie_isn + 1;
  s.flags = pkt::tcpflag::kAck;
  s.window = t.client_window;
  if (t.timestamps) {
    s.timestamps = true;
    s.tsval = t.client_tsval;
    s.tsecr = t.proxy_tsval;
  }
  synproxy::write(proxy_frame_, s);
  if (!ddos_decoder_.decode(pkt::LinkType::Ethernet, proxy_frame_,
                            static_cast<uint32_t>(proxy_frame_.size()), proxy_pkt_))
    return drop(Reason::Malformed);
  pkt::Packet* const was = cur_;
  cur_ = &proxy_pkt_;
  proxy_pkt_.tcp.ack += t.seq_delta;  // what conntrack and the server see
  proxy_pkt_.tcp.window = synproxy::toServerWindow(t, proxy_pkt_.tcp.window);
  flows_.track(flows_.at(idx), Dir::Orig, proxy_pkt_, now_ms);
  if (trace)
    trace->push_back({Layer::Ddos, true,
                      "SYN proxy: the server answered; the client's ACK completes its handshake "
                      "and the connection's segments are translated from now on"});
  Verdict v = forwardFlow(idx, Dir::Orig, trace);
  cur_ = was;
  return v;
}

void Pipeline::setPolicy(std::shared_ptr<const CompiledPolicy> policy) {
  policy_ = std::move(policy);
  last_endpoint_ = {};  // its index was the old policy's
  arp_buckets_.assign(policy_->nics.size(), TokenBucket{});
  dhcp_buckets_.assign(policy_->nics.size(), TokenBucket{});
  // NIC indexes are the new policy's: quarantines start again (an attack
  // still under way quarantines its NIC at its next packet).
  quarantine_.assign(policy_->nics.size(), NicQuarantine{});
  stats_.quarantined = 0;
  // Held fragments came in on the old policy's ports and zones: dropped
  // (their datagram is sent again whole by whoever needs it).
  expireHeld(0, true);
  bindHost();
  configureDdos();
  configureIds();
}

void Pipeline::configureIds() {
  const std::shared_ptr<const ids::PreparedRules>& rules = policy_->ids_rules;
  if (!rules) {
    if (ids_) ids_->finish();
    ids_.reset();
    ids_rules_.reset();
    return;
  }
  // The same rules and settings: the engine and its flows stay.
  if (ids_ && policy_->ids_digest == ids_digest_) {
    offered_ids_.reset();
    return;
  }
  // New rules: what the old engine holds is inspected to its end, and the
  // new one picks up the sessions under way in mid-stream (their flowbits
  // and thresholds start again; their packets are inspected all the same).
  if (ids_) ids_->finish();
  const bool replacing = ids_ != nullptr;
  ids_.reset();
  if (offered_ids_ && offered_digest_ == policy_->ids_digest)
    ids_ = std::move(offered_ids_);
  else
    ids_ = buildIdsEngine(*policy_, replacing);
  offered_ids_.reset();
  ids_rules_ = rules;
  ids_digest_ = policy_->ids_digest;
  const ids::ClassificationTable* classes = rules->has_classes ? &rules->classes : nullptr;
  ids_->setSink([this, classes](const ids::AlertInfo& a) {
    ++stats_.ids_alerts;
    if (!flow_log_) return;
    events::Event* e = flow_log_->acquire();
    if (!e) return;
    e->ts_ns = a.ts;
    e->type = events::EventType::Alert;
    // An alert on what a closed flow still held (the engine's idle sweep)
    // belongs to no packet of ours: its tuple says which flow, nothing more.
    const bool ours = a.on_packet;
    e->flow_id = ours && cur_flow_ != kNoIndex ? flowId(flows_.at(cur_flow_)) : a.flow_id;
    e->setTuple(a.src, a.sport, a.dst, a.dport, a.proto);
    JsonWriter w(e->body);
    const CompiledPolicy& cp = *policy_;
    if (ours && ids_port_ < cp.ports.size()) w.field("in_iface", cp.ports[ids_port_].name);
    if (ours && ids_nic_ < cp.nics.size()) {
      w.field("tenant", cp.model->tenants[cp.nics[ids_nic_].tenant].name);
      w.field("nic", cp.nics[ids_nic_].name);
    }
    ids::writeAlertMembers(w, a, classes);
    flow_log_->commit();
  });
}

bool Pipeline::buildReject(uint16_t in_port) {
  const pkt::Packet& p = *cur_;
  if (!(p.layers & (pkt::kTcp | pkt::kUdp)) || p.frame.size() < 14) return false;
  const bool tcp = p.layers & pkt::kTcp;
  if (tcp && (p.tcp.flags & pkt::tcpflag::kRst)) return false;  // never answer a RST
  // Back to where it came from: to the sender's MAC, from the switch's.
  const MacAddr sender = MacAddr::from(reinterpret_cast<const uint8_t*>(p.frame.data()) + 6);
  pkt::PacketBuilder b;
  b.eth(in_port < policy_->ports.size() && policy_->ports[in_port].nic != kNoIndex
            ? kGatewayMac
            : MacAddr::from(reinterpret_cast<const uint8_t*>(p.frame.data())),
        sender);
  if (p.src.isV4())
    b.ipv4(p.dst, p.src);
  else
    b.ipv6(p.dst, p.src);
  if (tcp) {
    // RFC 9293 3.10.7.1: the RST takes the segment's ACK as its sequence
    // number, or acknowledges the segment when it had no ACK.
    const uint32_t len = p.payload_len + ((p.tcp.flags & pkt::tcpflag::kSyn) ? 1 : 0) +
                         ((p.tcp.flags & pkt::tcpflag::kFin) ? 1 : 0);
    if (p.tcp.flags & pkt::tcpflag::kAck)
      b.tcp(p.dport, p.sport, pkt::tcpflag::kRst, p.tcp.ack, 0, {}, 0);
    else
      b.tcp(p.dport, p.sport, pkt::tcpflag::kRst | pkt::tcpflag::kAck, 0, p.tcp.seq + len, {}, 0);
  } else {
    // ICMP port unreachable quoting the datagram's IP header and 8 bytes.
    if (p.src.isV4())
      b.icmp(3, 3);
    else
      b.icmpv6(1, 4);
    const size_t quote = std::min<size_t>(p.l4_off + 8 - p.l3_off, p.frame.size() - p.l3_off);
    std::vector<uint8_t> q(quote);
    std::memcpy(q.data(), p.frame.data() + p.l3_off, quote);
    b.payload(std::move(q));
  }
  ids_reply_ = b.build();
  return true;
}

std::unique_ptr<ids::Engine> Pipeline::buildIdsEngine(const CompiledPolicy& policy,
                                                      bool replacing) {
  if (!policy.ids_rules) return nullptr;
  ids::EngineConfig ec = policy.ids_rules->cfg;
  if (replacing) ec.midstream = true;
  ec.defrag = true;  // later fragments follow their first: inspected as whole datagrams
  return std::make_unique<ids::Engine>(policy.ids_rules->rules.rules, ec, nullptr);
}

const ids::EngineStats* Pipeline::idsStats() const {
  return ids_ ? &ids_->stats() : nullptr;
}

void Pipeline::inspect(Verdict& v, uint16_t in_port, TimeNs ts, Trace* trace) {
  const FlowAction& a = actions_[v.flow_action];
  if (a.nic >= policy_->ids_nics.size() || !policy_->ids_nics[a.nic]) return;
  flow::Flow* f = cur_flow_ != kNoIndex ? &flows_.at(cur_flow_) : nullptr;
  const auto refuse = [&](Reason r, const char* why) {
    --stats_.forwarded;
    if (cur_->isLaterFragment()) --stats_.fragments_forwarded;
    const uint32_t sid = v.ids_sid;
    const bool alerted = v.ids_alert;
    if (trace) trace->push_back({Layer::Ids, false, why});
    v = drop(r);
    v.ids_sid = sid;
    v.ids_alert = alerted;
  };
  // A flow an IPS drop rule stopped stays stopped, overloaded or not (the
  // engine, when it is asked, says which alert stopped it).
  const bool stopped = f && (f->flags & flow::kIdsDrop);
  const policy::IdsSettings& settings = policy_->model->ids;
  bool over = overloaded_;
  if (stopped && over) return refuse(Reason::IdsDrop, "its flow matched an IPS drop rule earlier");
  const uint32_t len = cur_->wire_len ? cur_->wire_len : static_cast<uint32_t>(cur_->frame.size());
  if (!over && settings.capacity) {
    const double cap = static_cast<double>(*settings.capacity);
    over = !ids_budget_.take(cap, cap / 10, ts, len * 8.0);  // 100 ms of burst
  }
  if (over) {
    if (settings.overload == policy::IdsOverload::FailClosed)
      return refuse(Reason::IdsOverload, "overloaded: not inspected, refused (fail-closed)");
    ++stats_.ids_bypassed;
    if (trace) trace->push_back({Layer::Ids, true, "overloaded: passed uninspected (fail-open)"});
    return;
  }
  // The NIC's side of the packet: as it came from the NIC's port, or as it
  // leaves for one (rewritten, out of its tunnel).
  const pkt::Packet* p = cur_;
  if (in_port >= policy_->ports.size() || policy_->ports[in_port].nic == kNoIndex) {
    if (!ids_decoder_.decode(pkt::LinkType::Ethernet, v.frame, len, ids_pkt_)) return;
    p = &ids_pkt_;
  }
  ids_nic_ = a.nic;
  ids_port_ = in_port;
  const ids::Engine::Outcome o = ids_->packet(*p, ts, stats_.packets);
  ++stats_.ids_inspected;
  v.ids_sid = o.sid;
  v.ids_alert = o.alerts > 0;
  if (o.drop || stopped) {
    if (f && !stopped) {
      f->flags |= flow::kIdsDrop;
      ++stats_.ids_flows_dropped;
    }
    refuse(Reason::IdsDrop,
           o.alerts ? "matched an IPS drop rule" : "its flow matched an IPS drop rule earlier");
    if (o.reject && buildReject(in_port)) {
      ++stats_.ids_rejects;
      v.reply = Bytes(ids_reply_.data(), ids_reply_.size());
      v.reply_port = in_port;
      if (trace) trace->push_back({Layer::Ids, false, "rejected: answered its sender"});
    }
    return;
  }
  ++stats_.layer_pass[static_cast<size_t>(Layer::Ids)];
  if (trace)
    trace->push_back({Layer::Ids, true,
                      o.alerts ? strCat("inspected: ", std::to_string(o.alerts), " alert(s), sid ",
                                        std::to_string(o.sid))
                               : std::string("inspected: no drop rule matched")});
}

std::vector<std::string> Pipeline::reconfigure(const Config& next) {
  std::vector<std::string> kept;
  if (next.conntrack.capacity != cfg_.conntrack.capacity) kept.push_back("conntrack capacity");
  if (next.conntrack.seed != cfg_.conntrack.seed) kept.push_back("conntrack seed");
  if (next.host != cfg_.host) kept.push_back("host");
  if (next.decoder.vxlan_port != cfg_.decoder.vxlan_port) kept.push_back("vxlan port");
  const Config old = cfg_;
  cfg_ = next;
  cfg_.conntrack.capacity = old.conntrack.capacity;
  cfg_.conntrack.seed = old.conntrack.seed;
  cfg_.host = old.host;
  cfg_.decoder = old.decoder;
  flows_.retune(cfg_.conntrack.timeouts, cfg_.conntrack.loose, cfg_.conntrack.per_nic_limit);
  return kept;
}

void Pipeline::bindHost() {
  // A host name the policy does not know (the CLI refuses one) leaves only the
  // NICs without a host local, and no tunnel endpoint.
  local_host_ = cfg_.host.empty() ? kNoIndex : policy_->hostByName(cfg_.host);
  nic_local_.assign(policy_->nics.size(), 1);
  if (cfg_.host.empty()) return;
  for (size_t i = 0; i < policy_->nics.size(); ++i) {
    const uint32_t h = policy_->nics[i].host;
    nic_local_[i] = h == kNoIndex || (local_host_ != kNoIndex && h == local_host_);
  }
}

uint16_t Pipeline::portForFrame(pkt::LinkType link, Bytes frame) {
  if (link != pkt::LinkType::Ethernet || frame.size() < 14) return kUplinkPort;
  const MacAddr src = MacAddr::from(reinterpret_cast<const uint8_t*>(frame.data()) + 6);
  const uint32_t nic = policy_->nicByMac(src);
  return nic != kNoIndex && nic_local_[nic] ? policy_->nics[nic].port : kUplinkPort;
}

Verdict Pipeline::drop(Reason r, uint32_t rule) {
  ++stats_.dropped;
  ++stats_.drops[static_cast<size_t>(r)];
  ++stats_.layer_drop[static_cast<size_t>(layerOf(r))];
  Verdict v;
  v.action = Action::Drop;
  v.reason = r;
  v.rule = rule;
  return v;
}

Verdict Pipeline::absorb(Trace* trace, const char* why) {
  ++stats_.answered;
  if (trace) trace->push_back({Layer::PortSecurity, true, why});
  Verdict v;
  v.action = Action::Answer;
  return v;
}

Verdict Pipeline::answerWith(const NicInfo& nic, const std::vector<std::byte>& frame,
                             uint64_t& counter) {
  out_->assign(frame.begin(), frame.end());
  ++counter;
  return answerOut(nic.port);
}

Verdict Pipeline::answerOut(uint16_t port) {
  ++stats_.answered;
  Verdict v;
  v.action = Action::Answer;
  v.out_port = port;
  v.frame = Bytes(out_->data(), out_->size());
  return v;
}

bool Pipeline::ownsAddress(const NicInfo& nic, const IpAddr& a) const {
  for (const IpAddr& ip : nic.ips)
    if (ip == a) return true;
  for (const policy::AddressPair& ap : nic.pairs)
    if (ap.prefix.contains(a)) return true;
  return false;
}

// --- port security ---------------------------------------------------------

Verdict Pipeline::portSecurity(const NicInfo& nic, TimeNs ts, Trace* trace, bool* handled) {
  *handled = true;
  const pkt::Packet& p = *cur_;
  // Text is built only when tracing: a flood of spoofed frames costs no formatting.
  auto note = [&](bool pass, auto&& text) {
    if (!trace) return;
    if constexpr (std::is_invocable_v<decltype(text)>)
      trace->push_back({Layer::PortSecurity, pass, text()});
    else
      trace->push_back({Layer::PortSecurity, pass, std::string(text)});
  };
  if (!p.has(pkt::kEth)) {
    note(false, "not an Ethernet frame");
    return drop(Reason::Malformed);
  }
  bool mac_ok = p.eth_src == nic.mac;
  for (const policy::AddressPair& ap : nic.pairs)
    mac_ok |= ap.mac && *ap.mac == p.eth_src;
  if (!mac_ok) {
    note(false, [&] {
      return strCat("source MAC ", p.eth_src.toString(), " is not ", nic.name, "'s (",
                    nic.mac.toString(), ")");
    });
    return drop(Reason::MacSpoof);
  }
  if (p.vlan_count > 0) {
    note(false, "VLAN-tagged frame from a VM");
    return drop(Reason::VlanFromVm);
  }
  const uint32_t ni = policy_->ports[nic.port].nic;
  if (p.has(pkt::kArp)) {
    if (p.arp.op != 1) {
      note(false, [&] {
        return strCat("ARP ", p.arp.op == 2 ? "reply" : "message",
                      " from a VM (only the switch answers ARP), claims ", p.arp.spa.toString(),
                      " is at ", p.arp.sha.toString());
      });
      return drop(Reason::ArpReplyFromVm);
    }
    if (p.arp.sha != p.eth_src || (!p.arp.spa.isUnspecified() && !ownsAddress(nic, p.arp.spa))) {
      note(false, [&] {
        return strCat("ARP request claims ", p.arp.spa.toString(), " at ", p.arp.sha.toString(),
                      ", not ", nic.name, "'s binding");
      });
      return drop(Reason::ArpSpoof);
    }
    if (!arp_buckets_[ni].take(cfg_.arp_pps, cfg_.arp_burst, ts)) {
      note(false, "ARP rate cap reached");
      return drop(Reason::ArpRate);
    }
    return answerArp(nic, trace);
  }
  if (p.ethertype != pkt::ethertype::kIpv4 && p.ethertype != pkt::ethertype::kIpv6) {
    note(false, [&] {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%04x", p.ethertype);
      return strCat("ethertype ", hex, " is not ARP, IPv4 or IPv6");
    });
    return drop(Reason::Ethertype);
  }
  if (p.has(pkt::kDhcp) || (p.has(pkt::kUdp) && (p.sport == 67 || p.dport == 68))) {
    if (!p.has(pkt::kDhcp) || p.dhcp.op != 1 || p.sport == 67) {
      note(false, "DHCP server message from a VM (rogue DHCP server)");
      return drop(Reason::DhcpServerFromVm);
    }
    if (p.dhcp.client_mac != nic.mac) {
      note(false, [&] {
        return strCat("DHCP request for MAC ", p.dhcp.client_mac.toString(), ", not the NIC's");
      });
      return drop(Reason::MacSpoof);
    }
    if (!dhcp_buckets_[ni].take(cfg_.dhcp_pps, cfg_.dhcp_burst, ts)) {
      note(false, "DHCP rate cap reached");
      return drop(Reason::DhcpRate);
    }
    return answerDhcp(nic, trace);
  }
  if (p.has(pkt::kIcmpv6) && p.icmp.type >= 133 && p.icmp.type <= 137) {
    // Router advertisements and redirects are the fabric's; advertisements
    // only for the NIC's own addresses; solicitations are answered here.
    if (p.icmp.type == 134 || p.icmp.type == 137) {
      note(false, "router advertisement or redirect from a VM");
      return drop(Reason::NdSpoof);
    }
    if (p.icmp.type == 136) {
      if (!p.nd.has_target || !ownsAddress(nic, p.nd.target) ||
          (p.nd.has_lladdr && p.nd.lladdr != nic.mac)) {
        note(false, "neighbour advertisement for an address that is not the NIC's");
        return drop(Reason::NdSpoof);
      }
      return absorb(trace, "neighbour advertisement for the NIC's own address (absorbed)");
    }
    if (p.icmp.type == 135 && p.nd.has_target) {
      if (!arp_buckets_[ni].take(cfg_.arp_pps, cfg_.arp_burst, ts)) {
        note(false, "neighbour solicitation rate cap reached");
        return drop(Reason::ArpRate);
      }
      return answerNd(nic, trace);
    }
    note(false, "router solicitation (no IPv6 router advertisements in this release)");
    return drop(Reason::NdSpoof);
  }
  if (p.eth_dst.isMulticast()) {
    note(false, "broadcast or multicast frame (the virtual network does not flood)");
    return drop(Reason::L2Broadcast);
  }
  if (!ownsAddress(nic, p.src)) {
    note(false, [&] {
      return strCat("source address ", p.src.toString(), " is not ", nic.name,
                    "'s nor an allowed address pair");
    });
    return drop(Reason::IpSpoof);
  }
  if (NicQuarantine& qn = quarantine_[ni]; qn.on) {
    if (qn.mode == ddos::Quarantine::Isolate || !qn.bucket.take(qn.pps, qn.pps, ts)) {
      if (trace)
        trace->push_back(
            {Layer::Ddos, false,
             strCat(nic.name, " is quarantined (", ddos::toString(qn.mode), ") for attack #",
                    std::to_string(qn.attack), " launched from it by ", qn.from.toString())});
      return drop(Reason::Quarantine);
    }
  }
  note(true, [&] {
    return strCat("source ", p.eth_src.toString(), " / ", p.src.toString(), " bound to ", nic.name);
  });
  *handled = false;
  return {};
}

Verdict Pipeline::answerArp(const NicInfo& nic, Trace* trace) {
  const pkt::Packet& p = *cur_;
  const VNetInfo& vn = policy_->vnets[nic.vnet];
  bool known = p.arp.tpa == nic.gateway;
  for (const Prefix& sp : vn.address_space)
    known |= sp.contains(p.arp.tpa);
  if (p.arp.tpa == p.arp.spa) {  // gratuitous ARP / probe for its own address
    return absorb(trace, "gratuitous ARP for the NIC's own address");
  }
  if (!known) {
    if (trace)
      trace->push_back({Layer::PortSecurity, false,
                        strCat("ARP for ", p.arp.tpa.toString(), " outside the VNet")});
    return drop(Reason::ArpUnknownTarget);
  }
  // Every address in the VNet is reached through the virtual router.
  const auto bytes = pkt::PacketBuilder()
                         .eth(kGatewayMac, p.arp.sha)
                         .arp(2, kGatewayMac, p.arp.tpa, p.arp.sha, p.arp.spa)
                         .build();
  if (trace)
    trace->push_back({Layer::PortSecurity, true,
                      strCat("ARP answered by the switch: ", p.arp.tpa.toString(), " is at ",
                             kGatewayMac.toString())});
  return answerWith(nic, bytes, stats_.arp_answered);
}

Verdict Pipeline::answerDhcp(const NicInfo& nic, Trace* trace) {
  const pkt::Packet& p = *cur_;
  IpAddr addr;
  bool have = false;
  for (const IpAddr& a : nic.ips)
    if (a.isV4() && !have) {
      addr = a;
      have = true;
    }
  const uint8_t type = p.dhcp.msg_type;
  if (!have || (type != 1 && type != 3)) {  // DISCOVER, REQUEST; others need no answer
    return absorb(trace, "DHCP message absorbed (nothing to answer)");
  }
  std::vector<uint8_t> opts;
  const uint32_t mask = nic.v4_mask == 0 ? 0 : ~0u << (32 - nic.v4_mask);
  opts.insert(opts.end(), {1, 4, static_cast<uint8_t>(mask >> 24), static_cast<uint8_t>(mask >> 16),
                           static_cast<uint8_t>(mask >> 8), static_cast<uint8_t>(mask)});
  opts.insert(opts.end(), {3, 4});
  opts.insert(opts.end(), nic.gateway.b.begin() + 12, nic.gateway.b.end());
  std::vector<IpAddr> dns;
  for (const IpAddr& d : policy_->vnets[nic.vnet].dns)
    if (d.isV4() && dns.size() < 4) dns.push_back(d);
  if (!dns.empty()) {
    opts.push_back(6);
    opts.push_back(static_cast<uint8_t>(dns.size() * 4));
    for (const IpAddr& d : dns)
      opts.insert(opts.end(), d.b.begin() + 12, d.b.end());
  }
  const uint32_t lease = cfg_.dhcp_lease_s;
  opts.insert(opts.end(),
              {51, 4, static_cast<uint8_t>(lease >> 24), static_cast<uint8_t>(lease >> 16),
               static_cast<uint8_t>(lease >> 8), static_cast<uint8_t>(lease)});
  pkt::PacketBuilder::Dhcp d;
  d.op = 2;
  d.msg_type = type == 1 ? 2 : 5;  // OFFER or ACK
  d.xid = p.dhcp.xid;
  d.client_mac = nic.mac;
  d.yiaddr = addr;
  d.server_id = &nic.gateway;
  d.options = std::move(opts);
  const auto bytes = pkt::PacketBuilder()
                         .eth(kGatewayMac, nic.mac)
                         .ipv4(nic.gateway, addr)
                         .udp(67, 68)
                         .dhcp(d)
                         .build();
  if (trace)
    trace->push_back({Layer::PortSecurity, true,
                      strCat("DHCP ", type == 1 ? "OFFER" : "ACK", " from the switch: ",
                             addr.toString(), "/", std::to_string(nic.v4_mask), " router ",
                             nic.gateway.toString(), " lease ", std::to_string(lease), " s")});
  return answerWith(nic, bytes, stats_.dhcp_answered);
}

Verdict Pipeline::answerNd(const NicInfo& nic, Trace* trace) {
  const pkt::Packet& p = *cur_;
  bool known = false;
  for (const Prefix& sp : policy_->vnets[nic.vnet].address_space)
    known |= !sp.isV4() && sp.contains(p.nd.target);
  known |= !p.nd.target.isV4() && p.nd.target.isLinkLocal();  // the link-local router
  if (!known || ownsAddress(nic, p.nd.target)) {
    return absorb(trace, "neighbour solicitation absorbed (own address or outside the VNet)");
  }
  const auto bytes = pkt::PacketBuilder()
                         .eth(kGatewayMac, nic.mac)
                         .ipv6(p.nd.target, p.src.isUnspecified() ? p.dst : p.src, 255)
                         .nd(136, p.nd.target, &kGatewayMac)
                         .build();
  if (trace)
    trace->push_back({Layer::PortSecurity, true,
                      strCat("neighbour solicitation answered: ", p.nd.target.toString(), " is at ",
                             kGatewayMac.toString())});
  return answerWith(nic, bytes, stats_.nd_answered);
}

// --- layers ----------------------------------------------------------------

bool Pipeline::groupAllows(uint32_t group, Direction d, const classify::Key& k, Layer layer,
                           Decision& dec, Trace* trace) {
  const size_t li = static_cast<size_t>(layer);
  if (group == kNoIndex) {
    if (trace) trace->push_back({layer, true, "no security group attached"});
    dec.pass(layer);
    return true;
  }
  const GroupTable& g = policy_->groups[group];
  const auto m = (d == Direction::Inbound ? g.in : g.out).classify(k);
  const uint32_t rule = m ? m->id : kNoIndex;
  const bool allow = rule != kNoIndex && policy_->rules[rule].access == policy::Access::Allow;
  dec.action.rules[li] = rule;
  if (trace)
    trace->push_back(
        {layer, allow, strCat(g.name, " ", policy::toString(d), ": ", ruleText(*policy_, rule))});
  if (!allow) {
    dec.reason = layer == Layer::SubnetGroup ? Reason::SubnetGroup : Reason::NicGroup;
    dec.rule = rule;
  } else {
    dec.pass(layer);
  }
  return allow;
}

bool Pipeline::perimeterAllows(Direction d, const classify::Key& k, Decision& dec, Trace* trace) {
  const auto m =
      (d == Direction::Inbound ? policy_->perimeter_in : policy_->perimeter_out).classify(k);
  const uint32_t rule = m ? m->id : kNoIndex;
  const bool allow = rule == kNoIndex || policy_->rules[rule].access == policy::Access::Allow;
  dec.action.rules[static_cast<size_t>(Layer::Perimeter)] = rule;
  if (trace)
    trace->push_back({Layer::Perimeter, allow,
                      rule == kNoIndex ? std::string("no perimeter rule matches (pass)")
                                       : ruleText(*policy_, rule)});
  if (!allow) {
    dec.reason = Reason::Perimeter;
    dec.rule = rule;
  } else {
    dec.pass(Layer::Perimeter);
  }
  return allow;
}

Pipeline::Decision Pipeline::evaluate(const Query& q, Trace* trace) {
  if (q.overlay_vnet != kNoIndex) return evaluateOverlay(q, trace);
  const PortInfo& port = policy_->ports[q.in_port];
  if (port.nic == kNoIndex) return evaluateInbound(q, trace);
  return evaluateOutbound(q, policy_->nics[port.nic], trace);
}

Pipeline::Decision Pipeline::evaluateOutbound(const Query& q, const NicInfo& nic, Trace* trace) {
  Decision dec;
  FlowAction& a = dec.action;
  a.in_port = q.in_port;
  a.direction = Direction::Outbound;
  a.nic = policy_->ports[q.in_port].nic;
  const VNetInfo& vn = policy_->vnets[nic.vnet];
  dec.dst_zone = vn.zone;
  const classify::Key key{q.src, q.dst, q.sport, q.dport, q.proto};
  auto fail = [&](Reason r, Layer l, std::string text) {
    if (trace) trace->push_back({l, false, std::move(text)});
    dec.reason = r;
    return dec;
  };

  // Infrastructure: its endpoints are reachable, nothing else in its segments.
  const uint32_t infra = policy_->infraEndpointFor(q.dst, q.proto, q.dport);
  if (infra != kNoIndex) {
    const IpAddr* vip = nic.deployment == kNoIndex
                            ? nullptr
                            : policy_->deployments[nic.deployment].vipFor(q.src.isV4());
    if (!vip)
      return fail(Reason::NoOutboundAddress, Layer::Endpoint,
                  "NIC has no deployment VIP of this address family to reach infrastructure from");
    a.infra = infra;
    a.out_port = kUplinkPort;
    a.nat = NatKind::Source;
    a.nat_addr = *vip;
    dec.dst_zone = flow::kUplinkZone;
    dec.allow = true;
    dec.pass(Layer::Infrastructure);
    if (trace)
      trace->push_back({Layer::Infrastructure, true,
                        strCat("infrastructure endpoint ", policy_->infra_endpoints[infra].name,
                               " (reachable from every tenant)")});
    return dec;
  }
  bool host_of_endpoint = false;
  for (const InfraEndpointInfo& e : policy_->infra_endpoints)
    host_of_endpoint |= e.ip == q.dst;
  if (host_of_endpoint || policy_->inInfraSegment(q.dst)) {
    return fail(Reason::Infrastructure, Layer::Infrastructure,
                strCat(q.dst.toString(),
                       host_of_endpoint ? " is an infrastructure host, not on this protocol/port"
                                        : " is in an infrastructure segment"));
  }

  const uint32_t owner = policy_->vnetOwning(nic.vnet, q.dst);
  if (owner != kNoIndex) {
    // East-west inside the VNet (or a peer): the destination must be a NIC there.
    const uint32_t dst_nic = policy_->nicByAddress(owner, q.dst);
    if (dst_nic == kNoIndex)
      return fail(Reason::Isolation, Layer::Isolation,
                  strCat("no NIC has ", q.dst.toString(), " in ", policy_->vnets[owner].name));
    const NicInfo& dn = policy_->nics[dst_nic];
    dec.pass(Layer::Infrastructure);
    dec.pass(Layer::Isolation);
    if (trace)
      trace->push_back({Layer::Isolation, true,
                        strCat(vn.name, owner == nic.vnet ? "" : " (peered)", ": ",
                               q.dst.toString(), " is ", dn.name)});
    a.east_west = true;
    a.out_port = dn.port;
    if (!nic_local_[dst_nic]) {
      if (local_host_ == kNoIndex)  // --host names no host of this policy: no tunnel
        return fail(Reason::Isolation, Layer::Overlay,
                    strCat(dn.name, " runs on another host and this switch's host '", cfg_.host,
                           "' is not in the policy: no VXLAN tunnel"));
      a.out_port = kUplinkPort;  // through the tunnel to the destination's host
      a.remote_nic = dst_nic;
      if (trace)
        trace->push_back({Layer::Overlay, true,
                          strCat(dn.name, " runs on host ", policy_->hosts[dn.host].name,
                                 ": VXLAN VNI ", std::to_string(vn.vni), " to ",
                                 policy_->hosts[dn.host].underlay_ip.toString())});
    }
    if (owner != nic.vnet) {  // reply tuples live in the peer's zone
      a.nat = NatKind::Destination;
      a.nat_addr = q.dst;
      a.nat_port = q.dport;
      dec.dst_zone = policy_->vnets[owner].zone;
    }
    if (!groupAllows(nic.group, Direction::Outbound, key, Layer::NicGroup, dec, trace) ||
        !groupAllows(policy_->subnets[nic.subnet].group, Direction::Outbound, key,
                     Layer::SubnetGroup, dec, trace))
      return dec;
    // The destination's inbound layers (its host enforces the same on its side).
    Decision in = dec;
    if (!groupAllows(policy_->subnets[dn.subnet].group, Direction::Inbound, key, Layer::SubnetGroup,
                     in, trace) ||
        !groupAllows(dn.group, Direction::Inbound, key, Layer::NicGroup, in, trace))
      return in;
    in.allow = true;  // the flow records the destination's inbound rules
    return in;
  }

  // Leaves for the Internet (or another tenant's VIP): NIC -> subnet -> perimeter, SNAT.
  dec.pass(Layer::Infrastructure);
  dec.pass(Layer::Isolation);
  if (trace)
    trace->push_back({Layer::Isolation, true,
                      strCat(q.dst.toString(), " is outside ", vn.name, ": Internet route")});
  if (!groupAllows(nic.group, Direction::Outbound, key, Layer::NicGroup, dec, trace) ||
      !groupAllows(policy_->subnets[nic.subnet].group, Direction::Outbound, key, Layer::SubnetGroup,
                   dec, trace))
    return dec;
  if (nic.deployment == kNoIndex)
    return fail(Reason::NoOutboundAddress, Layer::Endpoint,
                "NIC has no deployment VIP for outbound SNAT");
  const IpAddr* vip_of = policy_->deployments[nic.deployment].vipFor(q.src.isV4());
  if (!vip_of)
    return fail(Reason::NoOutboundAddress, Layer::Endpoint,
                "no VIP of this address family for outbound SNAT");
  const IpAddr& vip = *vip_of;
  if (!perimeterAllows(Direction::Outbound, classify::Key{vip, q.dst, q.sport, q.dport, q.proto},
                       dec, trace))
    return dec;
  a.out_port = kUplinkPort;
  a.nat = NatKind::Source;
  a.nat_addr = vip;
  dec.dst_zone = flow::kUplinkZone;
  dec.allow = true;
  return dec;
}

bool Pipeline::aclAdmits(const EndpointInfo& e, const IpAddr& src, const policy::AclRule** hit) {
  *hit = nullptr;
  for (const policy::AclRule& r : e.acl)
    if (r.remote.contains(src)) {
      *hit = &r;
      break;
    }
  return *hit ? (*hit)->action == policy::AclAction::Permit : !e.has_permit;
}

bool Pipeline::endpointAdmits(const FlowKey& key) {
  LastEndpoint& last = last_endpoint_;
  if (last.index == kNoIndex || last.port != key.dport || last.proto != key.proto ||
      last.vip != key.dst) {
    const uint32_t found = policy_->endpointFor(key.dst, key.proto, key.dport);
    if (found == kNoIndex) return false;
    last = {key.dst, key.dport, key.proto, found};
  }
  const uint32_t ep = last.index;
  const EndpointInfo& e = policy_->endpoints[ep];
  const policy::AclRule* hit;
  return nic_local_[e.nic] && aclAdmits(e, key.src, &hit);
}

Pipeline::Decision Pipeline::evaluateInbound(const Query& q, Trace* trace) {
  Decision dec;
  FlowAction& a = dec.action;
  a.in_port = q.in_port;
  a.direction = Direction::Inbound;
  auto fail = [&](Reason r, Layer l, std::string text) {
    if (trace) trace->push_back({l, false, std::move(text)});
    dec.reason = r;
    return dec;
  };
  const uint32_t dep = policy_->deploymentByVip(q.dst);
  if (dep == kNoIndex)
    return fail(
        Reason::NotVip, Layer::Endpoint,
        strCat(q.dst.toString(), " is not a public VIP: only input endpoints are reachable"));
  const uint32_t ep = policy_->endpointFor(q.dst, q.proto, q.dport);
  char pb[4];
  if (ep == kNoIndex)
    return fail(Reason::NoEndpoint, Layer::Endpoint,
                strCat("no input endpoint on ", policy_->deployments[dep].name, " for ",
                       ipProtoName(q.proto, pb), "/", std::to_string(q.dport)));
  const EndpointInfo& e = policy_->endpoints[ep];
  a.endpoint = ep;
  if (!nic_local_[e.nic]) {
    const NicInfo& far = policy_->nics[e.nic];
    return fail(Reason::EndpointElsewhere, Layer::Endpoint,
                strCat("endpoint ", e.name, " leads to ", far.name, " on host ",
                       policy_->hosts[far.host].name,
                       ", not this one (its VIP traffic is that host's to receive)"));
  }
  if (!perimeterAllows(Direction::Inbound, classify::Key{q.src, q.dst, q.sport, q.dport, q.proto},
                       dec, trace))
    return dec;

  // Endpoint ACL (Azure semantics): first matching entry decides; unmatched
  // sources are denied when any permit entry exists, permitted otherwise.
  const policy::AclRule* hit = nullptr;
  const bool acl_ok = aclAdmits(e, q.src, &hit);
  if (trace) {
    std::string why =
        hit ? strCat("ACL entry ", std::to_string(hit->order), " ", policy::toString(hit->action),
                     " ", hit->remote.toString(),
                     hit->description.empty() ? "" : strCat(" (", hit->description, ")"))
        : e.acl.empty() ? std::string("no ACL (open to every source)")
        : e.has_permit
            ? std::string("no ACL entry matches and the ACL has permit entries: deny")
            : std::string("no ACL entry matches and the ACL has only deny entries: permit");
    trace->push_back({Layer::Endpoint, acl_ok, strCat("endpoint ", e.name, ": ", why)});
  }
  if (!acl_ok) {
    dec.reason = Reason::EndpointAcl;
    return dec;
  }
  dec.pass(Layer::Endpoint);
  const NicInfo& nic = policy_->nics[e.nic];
  IpAddr target;
  bool have = false;
  for (const IpAddr& ip : nic.ips)
    if (ip.isV4() == q.dst.isV4() && !have) {
      target = ip;
      have = true;
    }
  if (!have)
    return fail(Reason::NoEndpoint, Layer::Endpoint,
                strCat(nic.name, " has no address of the VIP's family"));
  if (trace)
    trace->push_back(
        {Layer::Endpoint, true,
         strCat("DNAT ", q.dst.toString(), ":", std::to_string(q.dport), " -> ", nic.name, " ",
                target.toString(), ":", std::to_string(e.private_port))});
  a.nic = e.nic;
  a.out_port = nic.port;
  a.nat = NatKind::Destination;
  a.nat_addr = target;
  a.nat_port = e.private_port;
  dec.dst_zone = policy_->vnets[nic.vnet].zone;
  const classify::Key key{q.src, target, q.sport, e.private_port, q.proto};
  if (!groupAllows(policy_->subnets[nic.subnet].group, Direction::Inbound, key, Layer::SubnetGroup,
                   dec, trace) ||
      !groupAllows(nic.group, Direction::Inbound, key, Layer::NicGroup, dec, trace))
    return dec;
  dec.allow = true;
  return dec;
}

Pipeline::Decision Pipeline::evaluateOverlay(const Query& q, Trace* trace) {
  // From a NIC on another host (decapsulate() checked the sender): this side
  // enforces the destination's inbound layers again, whatever the sender did.
  Decision dec;
  FlowAction& a = dec.action;
  a.in_port = kUplinkPort;
  a.direction = Direction::Inbound;
  a.east_west = true;
  a.remote_nic = q.overlay_nic;
  auto fail = [&](Reason r, Layer l, std::string text) {
    if (trace) trace->push_back({l, false, std::move(text)});
    dec.reason = r;
    return dec;
  };
  const VNetInfo& vn = policy_->vnets[q.overlay_vnet];
  if (q.overlay_nic == kNoIndex)
    return fail(Reason::VxlanSpoof, Layer::Overlay,
                strCat(q.src.toString(), " is no NIC of ", vn.name));
  const uint32_t owner = policy_->vnetOwning(q.overlay_vnet, q.dst);
  const uint32_t dst_nic = owner == kNoIndex ? kNoIndex : policy_->nicByAddress(owner, q.dst);
  if (dst_nic == kNoIndex)
    return fail(Reason::Isolation, Layer::Isolation,
                strCat("no NIC has ", q.dst.toString(), " in ", vn.name, " or its peers"));
  const NicInfo& dn = policy_->nics[dst_nic];
  if (!nic_local_[dst_nic])
    return fail(
        Reason::VxlanMisdelivered, Layer::Overlay,
        strCat(dn.name, " is not on this host (",
               dn.host == kNoIndex ? std::string("no host") : policy_->hosts[dn.host].name, ")"));
  dec.pass(Layer::Infrastructure);
  dec.pass(Layer::Isolation);
  if (trace)
    trace->push_back({Layer::Isolation, true,
                      strCat(vn.name, owner == q.overlay_vnet ? "" : " (peered)", ": ",
                             q.dst.toString(), " is ", dn.name)});
  a.nic = dst_nic;
  a.out_port = dn.port;
  dec.dst_zone = vn.zone;
  if (owner != q.overlay_vnet) {  // reply tuples live in the peer's zone
    a.nat = NatKind::Destination;
    a.nat_addr = q.dst;
    a.nat_port = q.dport;
    dec.dst_zone = policy_->vnets[owner].zone;
  }
  const classify::Key key{q.src, q.dst, q.sport, q.dport, q.proto};
  if (!groupAllows(policy_->subnets[dn.subnet].group, Direction::Inbound, key, Layer::SubnetGroup,
                   dec, trace) ||
      !groupAllows(dn.group, Direction::Inbound, key, Layer::NicGroup, dec, trace))
    return dec;
  dec.allow = true;
  return dec;
}

bool Pipeline::decapsulate(Trace* trace, Query& q, Verdict& v) {
  auto fail = [&](Reason r, std::string text) {
    if (trace) trace->push_back({Layer::Overlay, false, std::move(text)});
    v = drop(r);
    return false;
  };
  const uint32_t host = policy_->hostByUnderlay(cur_->src);
  if (host == kNoIndex || host == local_host_)
    return fail(Reason::VxlanUnknownHost, strCat("VXLAN from ", cur_->src.toString(),
                                                 ", which is no other host's underlay address"));
  const uint32_t vni = cur_->vxlan.vni;
  const uint32_t vnet = policy_->vnetByVni(vni);
  if (vnet == kNoIndex)
    return fail(Reason::VxlanUnknownVni, strCat("VXLAN VNI ", std::to_string(vni), " from ",
                                                policy_->hosts[host].name, " is no VNet's"));
  const Bytes inner = cur_->vxlanInner();
  if (!decoder_.decode(pkt::LinkType::Ethernet, inner, static_cast<uint32_t>(inner.size()),
                       *cur_)) {
    if (trace)
      trace->push_back(
          {Layer::Overlay, false, strCat("malformed inner frame: ", pkt::errorText(cur_->error))});
    v = drop(Reason::Malformed);
    return false;
  }
  if ((!cur_->has(pkt::kIpv4) && !cur_->has(pkt::kIpv6)) || cur_->vlan_count > 0)
    return fail(Reason::VxlanNonIp,
                "inner frame is not untagged IP (each host answers ARP and ND itself)");
  // The sender must be a NIC of the VNet that runs on the sending host: one
  // host cannot speak for another's NICs.
  const uint32_t src_nic = policy_->nicByAddress(vnet, cur_->src);
  if (src_nic == kNoIndex || policy_->nics[src_nic].host != host)
    return fail(Reason::VxlanSpoof,
                strCat("inner source ", cur_->src.toString(), " is no NIC of ",
                       policy_->vnets[vnet].name, " on host ", policy_->hosts[host].name));
  ++stats_.vxlan_decapsulated;
  ++stats_.layer_pass[static_cast<size_t>(Layer::Overlay)];
  if (trace)
    trace->push_back(
        {Layer::Overlay, true,
         strCat("VXLAN VNI ", std::to_string(vni), " from host ", policy_->hosts[host].name, ": ",
                policy_->nics[src_nic].name, " (", policy_->vnets[vnet].name, ")")});
  q.overlay_vnet = vnet;
  q.overlay_nic = src_nic;
  return true;
}

uint16_t Pipeline::allocateSnatPort(const Query& q, const IpAddr& vip) {
  // Endpoint-dependent: a port is free when no flow already uses the reply
  // tuple remote -> VIP:port. Start from a hash of the flow so retries spread.
  FlowKey reply;
  reply.src = q.dst;
  reply.dst = vip;
  reply.sport = isIcmp(q.proto) ? 0 : q.dport;
  reply.proto = q.proto;
  reply.zone = flow::kUplinkZone;
  uint64_t h = hashKey(FlowKey{q.src, q.dst, q.in_port, q.sport, q.dport, q.proto, {}}, flow_seed_);
  // This host's share of the VIP's ports (policy hosts[].snat_ports).
  const policy::PortRange range =
      local_host_ == kNoIndex ? policy::kSnatPorts : policy_->hosts[local_host_].snat_ports;
  const uint32_t span = uint32_t{range.hi} - range.lo + 1;
  for (uint32_t i = 0; i < kSnatAttempts; ++i, h = mix64(h + i)) {
    const uint16_t port = static_cast<uint16_t>(range.lo + h % span);
    if (policy_->isEndpointPort(vip, q.proto, port)) continue;
    reply.dport = port;
    if (isIcmp(q.proto)) reply.sport = port;
    if (!flows_.find(reply).found()) return port;
  }
  return 0;
}

// --- the packet path ---------------------------------------------------------

uint32_t Pipeline::internAction(const FlowAction& a) {
  // New connections come in runs to one endpoint or NIC: the last one's
  // action first (a compare instead of hashing every field and a map probe).
  if (last_action_ < actions_.size() && actions_[last_action_] == a) return last_action_;
  last_action_ = internActionSlow(a);
  return last_action_;
}

uint32_t Pipeline::internActionSlow(const FlowAction& a) {
  uint64_t h = hashBytes(&a.in_port, 4);
  h = mix64(h ^ hashKey(a.nat_addr) ^ (uint64_t{a.nat_port} << 8) ^ static_cast<uint64_t>(a.nat) ^
            (uint64_t{a.nic} << 20));
  for (uint32_t r : a.rules)
    h = mix64(h ^ r);
  auto& list = action_index_[h];
  for (uint32_t idx : list)
    if (actions_[idx] == a) return idx;
  actions_.push_back(a);
  list.push_back(static_cast<uint32_t>(actions_.size() - 1));
  return static_cast<uint32_t>(actions_.size() - 1);
}

Verdict Pipeline::forwardFlow(uint32_t idx, Dir dir, Trace* trace) {
  const flow::Flow& f = flows_.at(idx);
  cur_flow_ = idx;
  const FlowAction& a = actions_[f.action];
  Verdict v;
  v.action = Action::Forward;
  v.flow_action = f.action;
  v.out_port = dir == Dir::Orig ? a.out_port : a.in_port;
  // A profile's limit on what reaches a NIC from the uplink, every packet.
  if (!nic_limits_.empty() && a.nic < nic_limits_.size() &&
      (dir == Dir::Orig ? a.in_port : a.out_port) == kUplinkPort &&
      !nicAdmits(a.nic, cur_->wire_len ? cur_->wire_len : cur_->frame.size(), now_)) {
    if (trace)
      trace->push_back({Layer::Ddos, false,
                        strCat("over the profile's rate limit for ", policy_->nics[a.nic].name)});
    return drop(Reason::NicLimit);
  }
  const bool tunnel = a.remote_nic != kNoIndex && v.out_port == kUplinkPort;
  const bool rewrite = f.nat != NatKind::None || tunnel ||
                       policy_->ports[v.out_port].nic != kNoIndex || (f.flags & flow::kSynProxy);
  if (!rewrite) {
    v.frame = cur_->frame;
  } else {
    const std::span<std::byte> buf = stage(a, v.out_port);
    if (f.nat == NatKind::Source) {
      if (dir == Dir::Orig)
        rewriteEndpoint(buf, *cur_, true, flows_.natAddr(f), f.nat_port);
      else
        rewriteEndpoint(buf, *cur_, false, f.src, f.sport);
    } else if (f.nat == NatKind::Destination) {
      if (dir == Dir::Orig)
        rewriteEndpoint(buf, *cur_, false, flows_.natAddr(f), f.nat_port);
      else
        rewriteEndpoint(buf, *cur_, true, f.dst, f.dport);
    }
    if (f.flags & flow::kSynProxy) synproxy::translate(buf, *cur_, proxy_[idx], dir == Dir::Orig);
    v.frame = seal(f, a, v.out_port);
  }
  ++stats_.forwarded;
  if (trace)
    trace->push_back(
        {Layer::Conntrack, true,
         strCat("forward to ", policy_->ports[v.out_port].name,
                tunnel ? strCat(" by VXLAN to ", policy_->nics[a.remote_nic].name, " on ",
                                policy_->hosts[policy_->nics[a.remote_nic].host].name)
                       : std::string(),
                f.nat == NatKind::Source ? strCat(" with SNAT to ", flows_.natAddr(f).toString(),
                                                  ":", std::to_string(f.nat_port))
                : f.nat == NatKind::Destination && !a.east_west
                    ? strCat(" with DNAT to ", flows_.natAddr(f).toString(), ":",
                             std::to_string(f.nat_port))
                    : std::string())});
  return v;
}

std::span<std::byte> Pipeline::stage(const FlowAction& a, uint16_t out_port) {
  headroom_ = 0;
  if (a.remote_nic != kNoIndex && out_port == kUplinkPort && local_host_ != kNoIndex)
    headroom_ = vxlanOverhead(policy_->hosts[local_host_].underlay_ip.isV4());
  out_->resize(headroom_ + cur_->frame.size());
  std::memcpy(out_->data() + headroom_, cur_->frame.data(), cur_->frame.size());
  return {out_->data() + headroom_, cur_->frame.size()};
}

Bytes Pipeline::seal(const flow::Flow& f, const FlowAction& a, uint16_t out_port) {
  const std::span<std::byte> inner(out_->data() + headroom_, out_->size() - headroom_);
  const uint32_t nic = policy_->ports[out_port].nic;
  if (nic != kNoIndex) setMacs(inner, *cur_, kGatewayMac, policy_->nics[nic].mac);
  if (headroom_ == 0) return Bytes(out_->data(), out_->size());
  // To a NIC on another host: routed (gateway MAC to its MAC) inside VXLAN
  // with the sending NIC's VNI, as RFC 7348 VTEPs do.
  const NicInfo& far = policy_->nics[a.remote_nic];
  const HostInfo& src = policy_->hosts[local_host_];
  const HostInfo& dst = policy_->hosts[far.host];
  setMacs(inner, *cur_, kGatewayMac, far.mac);
  VxlanOuter o;
  o.src_mac = src.mac;
  o.dst_mac = dst.mac;
  o.src = src.underlay_ip;
  o.dst = dst.underlay_ip;
  // Source port from the inner flow, so the underlay spreads flows over paths
  // and keeps each one on one path (RFC 7348 5: 49152-65535).
  o.sport = static_cast<uint16_t>(49152 + (hashKey(flows_.origKey(f), flow_seed_) & 0x3fff));
  o.dport = cfg_.decoder.vxlan_port;
  o.vni = policy_->vnets[policy_->nics[a.nic].vnet].vni;
  o.ip_id = vxlan_ip_id_++;
  writeVxlan(std::span<std::byte>(out_->data(), out_->size()), o);
  ++stats_.vxlan_encapsulated;
  return Bytes(out_->data(), out_->size());
}

Verdict Pipeline::related(const flow::Hit& hit, Trace* trace) {
  // An ICMP error about a tracked flow travels like the flow's packets opposite
  // to the quoted one (`hit` is the quoted tuple reversed) and is translated as
  // they are: the outer header like a packet going `dir`, the quoted packet like
  // one going the other way (RFC 5508 4.2), so neither side sees the other's
  // addresses: a private address never leaves in a quoted header.
  const flow::Flow& f = flows_.at(hit.idx);
  const FlowAction& a = actions_[f.action];
  const Dir dir = hit.dir;
  Verdict v;
  v.action = Action::Forward;
  v.flow_action = f.action;
  v.out_port = dir == Dir::Orig ? a.out_port : a.in_port;
  const std::span<std::byte> buf = stage(a, v.out_port);
  const pkt::Packet& p = *cur_;
  // A proxied connection's numbers as each side knows them: the client saw the
  // cookie where the server has its ISN. An error from the client's side
  // quotes a server segment as the client got it (raise its sequence number);
  // one from the server's side quotes a client segment as the server got it
  // (lower its acknowledgment number).
  if ((f.flags & flow::kSynProxy) && hit.idx < proxy_.size() &&
      proxy_[hit.idx].state == synproxy::Translation::State::Open) {
    const uint32_t delta = proxy_[hit.idx].seq_delta;
    if (dir == Dir::Orig)
      shiftQuotedTcp(buf, p, delta, 0);
    else
      shiftQuotedTcp(buf, p, 0, 0u - delta);
  }
  if (f.nat == NatKind::Source) {
    if (dir == Dir::Reply) {  // from the Internet about the VM's translated packet
      rewriteEndpoint(buf, p, false, f.src, 0);
      rewriteQuoted(buf, p, true, f.src, f.sport);
    } else {  // from the VM about a reply it received
      rewriteEndpoint(buf, p, true, flows_.natAddr(f), 0);
      rewriteQuoted(buf, p, false, flows_.natAddr(f), f.nat_port);
    }
  } else if (f.nat == NatKind::Destination) {
    if (dir == Dir::Orig) {  // from the client's side about a reply from the VIP
      rewriteEndpoint(buf, p, false, flows_.natAddr(f), 0);
      rewriteQuoted(buf, p, true, flows_.natAddr(f), f.nat_port);
    } else {  // from the NIC about a packet it received through the endpoint
      rewriteEndpoint(buf, p, true, f.dst, 0);
      rewriteQuoted(buf, p, false, f.dst, f.dport);
    }
  }
  v.frame = seal(f, a, v.out_port);
  ++stats_.forwarded;
  if (trace)
    trace->push_back({Layer::Conntrack, true,
                      strCat("ICMP error related to a tracked flow: forward to ",
                             policy_->ports[v.out_port].name)});
  return v;
}

Verdict Pipeline::process(pkt::LinkType link, Bytes frame, uint32_t wire_len, uint16_t in_port,
                          TimeNs ts, Trace* trace) {
  beginCall();
  cur_ = &burst_[0];
  out_ = &outs_[0];
  burst_at_ = 0;
  stage_cookies_ = false;  // one packet: its cookie made whole
  return run(decoder_.decode(link, frame, wire_len, *cur_), wire_len, in_port, ts, trace);
}

bool Pipeline::lookupKey(const pkt::Packet& p, uint16_t in_port, FlowKey& key) const {
  if (!p.has(pkt::kIpv4) && !p.has(pkt::kIpv6)) return false;
  if (p.isLaterFragment()) return false;
  if (in_port >= policy_->ports.size()) in_port = kUplinkPort;
  const uint32_t nic = policy_->ports[in_port].nic;
  if (nic != kNoIndex) {
    if (!nic_local_[nic]) return false;
    key.zone = policy_->vnets[policy_->nics[nic].vnet].zone;
  } else {
    if (local_host_ != kNoIndex && p.has(pkt::kVxlan)) return false;  // decapsulated first
    key.zone = flow::kUplinkZone;
  }
  keyInto(p, key.zone, key);
  return true;
}

size_t Pipeline::processBurst(std::span<const Input> in, std::span<Verdict> out) {
  // Software-pipelined: packet i+kAhead is decoded and its index slot
  // prefetched, packet i+kAhead/2 has its flow prefetched (its slot has had
  // time to arrive), packet i is processed. Running 4, 8 or 16 ahead measured
  // alike (bench/RESULTS.md); 8 keeps the decoded packets within L1.
  const size_t n = std::min({in.size(), out.size(), kBurst});
  static_assert(kBurst <= ddos::SynCookies::kMaxStaged);
  // Cookies left staged by a burst that never reached its end (an exception
  // out of run()) belong to frames no longer there: dropped, not sealed.
  if (cookies_.staged()) (void)cookies_.finishStaged();
  beginCall();
  stage_cookies_ = true;
  std::array<bool, kBurst> decoded;
  std::array<Looked, kBurst>& looked = looked_;
  uint64_t keyed = 0;  // bit i: looked[i] is packet i's lookup key and its hash
  auto fetch = [&](size_t i) {
    pkt::Packet& p = burst_[i % burst_.size()];
    decoded[i] = decoder_.decode(in[i].link, in[i].frame, in[i].wire_len, p);
    if (decoded[i] && lookupKey(p, in[i].in_port, looked[i].key)) {
      looked[i].hash = flows_.hashOf(looked[i].key);
      looked[i].indexed = flows_.prefetchSlot(looked[i].hash);
      keyed |= uint64_t{1} << i;
      // From the uplink to a protected address: the profile's per-source
      // limit may be asked (a new flow, or an answered one's packets).
      if (ddos_ && looked[i].key.zone == flow::kUplinkZone && in[i].in_port == kUplinkPort)
        ddos_->prefetchSource(p.src, p.dst);
    }
  };
  // The frames' headers, which the decoder reads first (a NIC's DMA leaves
  // them in memory, or in the last-level cache at best).
  for (size_t i = 0; i < n; ++i)
    __builtin_prefetch(in[i].frame.data());
  for (size_t i = 0; i < std::min(n, kAhead); ++i)
    fetch(i);
  for (size_t i = 0; i < std::min(n, kAhead / 2); ++i)
    if ((keyed >> i & 1) && looked[i].indexed) flows_.prefetchFlow(looked[i].hash);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) fetch(i + kAhead);
    const size_t j = i + kAhead / 2;
    if (j < n && (keyed >> j & 1) && looked[j].indexed) flows_.prefetchFlow(looked[j].hash);
    // Exactly as process() would. The verdict is made in place: assigned from
    // a returned temporary, it was copied in wide loads over run()'s narrow
    // stores, a store-forwarding stall per packet.
    cur_ = &burst_[i % burst_.size()];
    out_ = &outs_[i];
    burst_at_ = static_cast<uint32_t>(i);
    static_assert(std::is_trivially_destructible_v<Verdict>);
    ::new (static_cast<void*>(&out[i]))
        Verdict(run(decoded[i], in[i].wire_len, in[i].in_port, in[i].ts, nullptr,
                    keyed >> i & 1 ? &looked[i] : nullptr));
  }
  stage_cookies_ = false;
  if (cookies_.staged()) sealCookies();
  return n;
}

void Pipeline::sealCookies() {
  for (const ddos::SynCookies::StagedMac& m : cookies_.finishStaged())
    synproxy::orSequence(outs_[m.tag], cookie_tcp_[m.tag], m.mac);
}

Verdict Pipeline::run(bool decoded, uint32_t wire_len, uint16_t in_port, TimeNs ts, Trace* trace,
                      const Looked* pre) {
  ddos_mark_ = {};
  ddos_feed_ = false;  // runLayers says otherwise: no flow, or one never answered
  cur_flow_ = kNoIndex;
  Verdict v = runLayers(decoded, wire_len, in_port, ts, trace, pre);
  // What leaves for the Internet without a tracked flow (a flow's first
  // packet) is the detector's too: it makes the replies solicited, and shows
  // attacks launched from a protected address.
  if (ddos_feed_ && v.action == Action::Forward && v.out_port == kUplinkPort &&
      ddos_decoder_.decode(pkt::LinkType::Ethernet, v.frame, static_cast<uint32_t>(v.frame.size()),
                           ddos_out_)) {
    ddos::Detector::Mark mark;
    const ddos::Detector::Verdict dv = ddos_->process(ddos_out_, ts, &mark);
    if (ddos_mark_.vector == ddos::Vector::None) ddos_mark_ = mark;
    // Part of an attack launched from a protected address (its class is the
    // attack's) that its profile quarantines: the NIC it came from is
    // quarantined on its own port, and this packet goes no further. Other
    // NICs sharing the address (SNAT) are not the attack's and go on.
    const uint32_t nic = v.flow_action != kNoIndex ? actions_[v.flow_action].nic : kNoIndex;
    if (dv == ddos::Detector::Verdict::Drop && mark.attacked && nic < quarantine_.size() &&
        in_port == policy_->nics[nic].port) {
      quarantineNic(nic, ddos_out_.src, ts);
      --stats_.forwarded;
      if (trace)
        trace->push_back(
            {Layer::Ddos, false,
             strCat("part of attack #", std::to_string(quarantine_[nic].attack), " launched from ",
                    ddos_out_.src.toString(), ": ", policy_->nics[nic].name, " quarantined")});
      v = drop(Reason::Quarantine);
    }
  }
  if (ids_ && v.action == Action::Forward && v.flow_action != kNoIndex)
    inspect(v, in_port, ts, trace);
  v.ddos_vector = ddos_mark_.vector;
  v.ddos_attack = ddos_mark_.attacked;
  if (ddos_feed_) syncDdosStats();
  // Fragments held for this one leave right after it, in bursts as one by
  // one: the same state, the same order.
  if (!release_.empty()) [[unlikely]]
    releaseHeld(burst_at_);
  return v;
}

void Pipeline::quarantineNic(uint32_t nic, const IpAddr& from, TimeNs ts) {
  NicQuarantine& q = quarantine_[nic];
  const ddos::Detector::OutboundView a = ddos_->outbound(from);
  if (q.on && q.attack == a.id) return;
  if (!a.attacked || a.quarantine == ddos::Quarantine::None) return;
  if (!q.on) {
    ++stats_.quarantines;
    ++stats_.quarantined;
  }
  q = NicQuarantine{true, a.quarantine, a.quarantine_pps, from, a.id, {}, a};
  emitQuarantine(nic, "quarantine", ts);
}

void Pipeline::releaseQuarantines(TimeNs now) {
  if (stats_.quarantined == 0) return;
  for (uint32_t n = 0; n < quarantine_.size(); ++n) {
    NicQuarantine& q = quarantine_[n];
    if (!q.on) continue;
    const ddos::Detector::OutboundView a =
        ddos_ ? ddos_->outbound(q.from) : ddos::Detector::OutboundView{};
    if (a.attacked && a.id == q.attack) continue;
    q.on = false;
    --stats_.quarantined;
    emitQuarantine(n, "release", now);
  }
}

void Pipeline::emitQuarantine(uint32_t nic, const char* what, TimeNs ts) {
  if (!flow_log_) return;
  events::Event* e = flow_log_->acquire();
  if (!e) return;
  const NicQuarantine& q = quarantine_[nic];
  const ddos::Detector::OutboundView& a = q.view;
  e->ts_ns = ts;
  e->type = events::EventType::Ddos;
  JsonWriter w(e->body);
  w.key("ddos").beginObject();
  w.field("event", what).field("id", a.id);
  if (a.primary != ddos::Vector::None) w.field("attack", ddos::vectorName(a.primary));
  w.field("target", q.from).field("direction", "outbound");
  w.field("nic", policy_->nics[nic].name).field("quarantine", ddos::toString(q.mode));
  if (q.mode == ddos::Quarantine::RateLimit)
    w.field("quarantine_pps", static_cast<uint64_t>(std::llround(q.pps)));
  if (a.start_ns) {
    char buf[40];
    w.field("start", std::string_view(buf, formatRfc3339(a.start_ns, buf)));
  }
  w.endObject();
  flow_log_->commit();
}

void Pipeline::syncDdosStats() {
  const ddos::DetectorStats& d = ddos_->stats();
  stats_.ddos_attacks = d.attacks;
  stats_.ddos_active = d.active;
  stats_.ddos_targets = d.targets;
  stats_.ddos_handshakes = d.handshakes;
  stats_.ddos_flash_crowds = d.flash_crowds;
}

Verdict Pipeline::runLayers(bool decoded, uint32_t wire_len, uint16_t in_port, TimeNs ts,
                            Trace* trace, const Looked* pre) {
  ++stats_.packets;
  stats_.bytes += wire_len;
  if (!epoch_set_) {
    epoch_ = ts;
    epoch_set_ = true;
    stats_since_ = ts;
  }
  now_ = ts;
  const uint32_t now_ms = clockMs(ts);
  if (in_port >= policy_->ports.size()) in_port = kUplinkPort;
  const PortInfo& port = policy_->ports[in_port];

  if (!decoded) {
    if (trace)
      trace->push_back(
          {Layer::PortSecurity, false, strCat("malformed: ", pkt::errorText(cur_->error))});
    return drop(Reason::Malformed);
  }
  uint32_t zone = flow::kUplinkZone;
  Query q{in_port, {}, {}, 0, 0, 0};
  if (port.nic != kNoIndex) {
    if (!nic_local_[port.nic]) {
      const NicInfo& far = policy_->nics[port.nic];
      if (trace)
        trace->push_back({Layer::PortSecurity, false,
                          strCat(far.name, " runs on host ", policy_->hosts[far.host].name,
                                 ", not this one: its port carries nothing here")});
      return drop(Reason::RemoteNic);
    }
    const NicInfo& nic = policy_->nics[port.nic];
    bool handled;
    Verdict v = portSecurity(nic, ts, trace, &handled);
    if (handled) return v;
    zone = policy_->vnets[nic.vnet].zone;
  } else if (local_host_ != kNoIndex && cur_->has(pkt::kVxlan) &&
             cur_->dst == policy_->hosts[local_host_].underlay_ip) {
    Verdict v;
    if (!decapsulate(trace, q, v)) return v;
    zone = policy_->vnets[q.overlay_vnet].zone;
  } else if (!cur_->has(pkt::kIpv4) && !cur_->has(pkt::kIpv6)) {
    if (trace)
      trace->push_back({Layer::PortSecurity, false,
                        "non-IP frame on the uplink (proxy ARP for VIPs runs in live mode)"});
    return drop(Reason::UplinkNonIp);
  }
  ++stats_.layer_pass[static_cast<size_t>(Layer::PortSecurity)];
  // The DDoS stage sees what is not part of a tracked flow: a later fragment
  // here, anything else once the flow lookup misses (packets of a tracked flow
  // are solicited by construction and cost it nothing).
  const bool ddos_watch = ddos_ && in_port == kUplinkPort && q.overlay_vnet == kNoIndex;
  if (cur_->isLaterFragment()) {
    if (ddos_watch)
      if (const Reason r = ddosDrops(ts, trace); r != Reason::None) return drop(r);
    return laterFragment(zone, now_ms, trace, in_port, q.overlay_vnet == kNoIndex);
  }

  // What processBurst() looked up ahead is this key, unless the packet was
  // decapsulated here (lookupKey() gives none for those).
  const bool ahead = pre && q.overlay_vnet == kNoIndex;
  // Otherwise built here; only then, so a burst's packets zero no key.
  std::optional<FlowKey> built;
  if (!ahead) keyInto(*cur_, zone, built.emplace());
  const FlowKey& key = ahead ? pre->key : *built;

  // A line of the index empty when the burst looked is asked again (a packet
  // before this one may have added the flow); one that held an entry is walked.
  flow::Hit hit = !ahead         ? flows_.find(key)
                  : pre->indexed ? flows_.probe(key, pre->hash)
                                 : flows_.find(key, pre->hash);
  // The SYN proxy, for TCP to a protected address with one: an ACK with a
  // valid cookie becomes the SYN the client would have sent (and is no
  // attack's); a SYN while the proxy is active is answered with a cookie once
  // the layers allow it.
  bool cookie_syn = false, answer_cookie = false;
  ddos::Detector::SynProxyView proxy;
  if (!hit.found()) {
    ddos_feed_ = ddos_ != nullptr;
    if (ddos_watch) {
      uint8_t fl = 0;
      if (cur_->has(pkt::kTcp | pkt::kEth)) {
        fl = cur_->tcp.flags &
             (pkt::tcpflag::kSyn | pkt::tcpflag::kAck | pkt::tcpflag::kRst | pkt::tcpflag::kFin);
        if (fl == pkt::tcpflag::kSyn || fl == pkt::tcpflag::kAck) ddos_->synProxy(cur_->dst, proxy);
      }
      if (proxy.mode != ddos::SynProxyMode::Off && fl == pkt::tcpflag::kAck)
        cookie_syn = acceptCookie(proxy, ts, trace);
      if (!cookie_syn) {
        if (const Reason r = ddosDrops(ts, trace); r != Reason::None) return drop(r);
        answer_cookie = proxy.active && fl == pkt::tcpflag::kSyn;
      }
      ++stats_.layer_pass[static_cast<size_t>(Layer::Ddos)];
    }
  }
  if (!hit.found() && isIcmpError(*cur_)) {
    FlowKey inner;
    if (innerTuple(*cur_, inner)) {
      inner.zone = zone;
      const flow::Hit rel = flows_.find(flow::reversed(inner));
      if (rel.found()) return related(rel, trace);
    }
    if (trace) trace->push_back({Layer::Conntrack, false, "ICMP error quoting no tracked flow"});
    return drop(Reason::IcmpUnrelated);
  }

  if (hit.found()) {
    ++stats_.flow_hits;
    flow::Flow& f = flows_.at(hit.idx);
    if (ddos_ && hit.dir == Dir::Orig) {
      if (!(f.flags & (flow::kSeenReply | flow::kSynProxy))) {
        // Never answered, the flow is no conversation yet: the DDoS stage
        // sees its packets as it saw the first (one source and port flooding
        // one port is a flood, into a protected address or out of one; run()
        // counts what leaves by the uplink). A flow the SYN proxy opened is
        // a client's that completed its handshake: not one.
        ddos_feed_ = true;
        if (ddos_watch) {
          if (const Reason r = ddosDrops(ts, trace); r != Reason::None) return drop(r);
          ++stats_.layer_pass[static_cast<size_t>(Layer::Ddos)];
        }
      } else if (ddos_watch && !source_limited_.empty()) {
        // Answered: only the profile's per-source rate limit still applies.
        const FlowAction& a = actions_[f.action];
        if (a.endpoint < source_limited_.size() && source_limited_[a.endpoint] &&
            !ddos_->sourceAdmits(f.src, f.dst, wire_len ? wire_len : cur_->frame.size(), ts)) {
          if (trace)
            trace->push_back({Layer::Ddos, false,
                              strCat("over the profile's rate limit for ", f.src.toString(),
                                     " (established connection to ", f.dst.toString(), ")")});
          return drop(Reason::DdosLimit);
        }
      }
    }
    if (f.generation != policy_->generation) {
      // The policy changed since this flow was decided: decide again.
      ++stats_.reevaluated;
      const FlowAction& old = actions_[f.action];
      Query rq{old.in_port, f.src, f.dst, f.sport, f.dport, f.proto};
      if (old.remote_nic != kNoIndex && old.in_port == kUplinkPort && f.zone > 0 &&
          f.zone <= policy_->vnets.size()) {
        // Came by VXLAN: decided again as such (the sender NIC by its address now).
        rq.overlay_vnet = f.zone - 1;
        rq.overlay_nic = policy_->nicByAddress(rq.overlay_vnet, f.src);
      }
      Decision dec = evaluate(rq, trace);
      if (dec.allow && dec.action.out_port == old.out_port && dec.action.nat == old.nat) {
        f.action = internAction(dec.action);
      } else if (!dec.allow && cfg_.reevaluate_on_change) {
        if (trace)
          trace->push_back({Layer::Conntrack, false,
                            "established flow denied by the new policy (re-evaluation on)"});
        emitFlowLog(hit.idx, "end", ts, true, dec.rule);
        flows_.erase(hit.idx);
        return drop(Reason::PolicyRevoked, dec.rule);
      } else if (old.in_port >= policy_->ports.size() || old.out_port >= policy_->ports.size()) {
        // Its ports no longer exist in the new policy: nothing to keep it for.
        emitFlowLog(hit.idx, "end", ts, true);
        flows_.erase(hit.idx);
        return drop(Reason::PolicyRevoked, dec.rule);
      } else {
        // Kept as it was; rule and endpoint indexes of the old policy mean
        // nothing in the new one, so the kept action names none.
        ++stats_.kept_after_change;
        FlowAction kept = old;
        kept.rules.fill(kNoIndex);
        kept.endpoint = kept.infra = kNoIndex;
        f.action = internAction(kept);
        if (trace)
          trace->push_back({Layer::Conntrack, true,
                            "established flow kept under the new policy (its rules changed)"});
      }
      f.generation = policy_->generation;
    }
    settleLimits(f, hit.idx);
    if (f.flags & flow::kSynProxy) {
      Verdict pv;
      if (synProxyHit(hit.idx, hit.dir, now_ms, trace, &pv)) return pv;
    }
    const flow::TcpState was = f.tcp_state;
    const flow::Track t = flows_.track(f, hit.dir, *cur_, now_ms);
    // A handshake the client completed: the DDoS stage's SYN-to-ACK ratio
    // (it saw the SYN; the ACK belongs to the flow).
    if (ddos_ && was == flow::TcpState::SynRecv && f.tcp_state == flow::TcpState::Established) {
      ddos_->handshake(f.dst, ts);
      syncDdosStats();
    }
    if (t != flow::Track::Ok) {
      if (trace)
        trace->push_back({Layer::Conntrack, false,
                          strCat("tracked flow (", flow::toString(f.tcp_state), "): ",
                                 t == flow::Track::OutOfWindow ? "segment outside the TCP window"
                                                               : "flags invalid in this state")});
      return drop(t == flow::Track::OutOfWindow ? Reason::TcpOutOfWindow : Reason::TcpBadFlags);
    }
    settleLimits(f, hit.idx);
    if (trace)
      trace->push_back(
          {Layer::Conntrack, true,
           strCat("established flow hit (", hit.dir == Dir::Orig ? "original" : "reply",
                  " direction",
                  f.proto == pkt::ipproto::kTcp ? strCat(", ", flow::toString(f.tcp_state))
                                                : std::string(),
                  ")")});
    ++stats_.layer_pass[static_cast<size_t>(Layer::Conntrack)];
    if (cfg_.flow_log_interval_s && now_ms - f.report_ms >= cfg_.flow_log_interval_s * 1000u)
      emitFlowLog(hit.idx, "continue", ts);
    else if (f.bytes[0] > 0xf0000000u || f.bytes[1] > 0xf0000000u)
      emitFlowLog(hit.idx, "continue", ts);  // before the 32-bit counters wrap
    if (cur_->has(pkt::kFragment)) [[unlikely]]
      rememberFragment(key, now_ms);
    return forwardFlow(hit.idx, hit.dir, trace);
  }

  // First packet of a flow: every layer.
  ++stats_.flow_misses;
  q.src = key.src;
  q.dst = key.dst;
  q.sport = key.sport;
  q.dport = key.dport;
  q.proto = key.proto;
  // A SYN for the proxy: answered once its endpoint admits the source; the
  // perimeter and security groups decide on the client's ACK, so a spoofed
  // flood costs no classification.
  if (answer_cookie && endpointAdmits(key)) return answerCookie(proxy, ts, trace);
  Decision dec = evaluate(q, trace);
  for (size_t l = 0; l < static_cast<size_t>(Layer::Count); ++l)
    if (dec.passed & (1u << l)) ++stats_.layer_pass[l];
  if (!dec.allow) {
    // A packet of an attack under way is in the attack's events (counted,
    // with its sources): a flood does not also write a record per packet.
    if (!ddos_mark_.attacked) emitDenied(q, dec, ts);
    return drop(dec.reason, dec.rule);
  }

  flow::NatSpec nat;
  nat.kind = dec.action.nat;
  nat.addr = dec.action.nat_addr;
  nat.zone = dec.dst_zone;
  if (nat.kind == NatKind::Source) {
    nat.port = allocateSnatPort(q, nat.addr);
    if (nat.port == 0) {
      if (trace)
        trace->push_back({Layer::Endpoint, false, "no free SNAT port on the VIP for this remote"});
      return drop(Reason::SnatExhausted);
    }
  } else if (nat.kind == NatKind::Destination) {
    nat.port = dec.action.nat_port;
  }
  // The profile's connection limits, for a new connection from the Internet
  // to an input endpoint of a protected address.
  ConnLimiter::Charge limit_charge;
  bool limited = false;
  const bool half_open =
      key.proto == pkt::ipproto::kTcp &&
      (cur_->tcp.flags & (pkt::tcpflag::kSyn | pkt::tcpflag::kAck)) == pkt::tcpflag::kSyn;
  if (ddos_ && in_port == kUplinkPort && q.overlay_vnet == kNoIndex &&
      dec.action.endpoint != kNoIndex) {
    const ddos::Limits* lim = ddos_->limitsFor(q.dst);
    if (lim && lim->anyConnections()) {
      const ConnLimiter::Verdict lv =
          limiter_.admit(*lim, q.src, q.dst, q.proto, q.dport, half_open, ts, &limit_charge);
      stats_.conn_limit_untracked = limiter_.untracked();
      if (lv != ConnLimiter::Verdict::Admit) {
        const Reason r = lv == ConnLimiter::Verdict::Concurrent ? Reason::ConnLimit
                         : lv == ConnLimiter::Verdict::HalfOpen ? Reason::HalfOpenLimit
                                                                : Reason::ConnRateLimit;
        if (trace)
          trace->push_back({Layer::Ddos, false,
                            strCat("over the profile's connection limits (", describe(r), ")")});
        return drop(r);
      }
      limited = true;
    }
  }
  const uint16_t charge =
      dec.action.nic == kNoIndex ? flow::kNoNic : static_cast<uint16_t>(dec.action.nic);
  flow::InsertError err;
  const uint32_t idx = flows_.insert(key, nat, charge, now_ms, &err);
  if (idx != flow::kNone && limited) {
    if (charges_.empty()) charges_.resize(flows_.capacity());
    charges_[idx] = limit_charge;
    flows_.at(idx).flags |=
        static_cast<uint8_t>(flow::kLimited | (half_open ? flow::kHalfOpen : 0));
  } else if (limited) {
    limiter_.release(limit_charge, half_open);
  }
  if (idx == flow::kNone) {
    if (trace)
      trace->push_back({Layer::Conntrack, false,
                        err == flow::InsertError::NicQuota
                            ? "the NIC's connection quota is used up"
                            : "connection table full (no embryonic or closing flow to evict)"});
    return drop(err == flow::InsertError::NicQuota ? Reason::NicQuota : Reason::ConntrackFull);
  }
  flow::Flow& f = flows_.at(idx);
  if (key.proto == pkt::ipproto::kTcp) {
    if (flows_.start(f, *cur_, now_ms) != flow::Track::Ok) {
      flows_.erase(idx);
      if (trace)
        trace->push_back({Layer::Conntrack, false,
                          "first segment of an unknown TCP flow is not a SYN (strict tracking)"});
      return drop(Reason::TcpNoSyn);
    }
  } else {
    f.packets[0] = 1;
    f.bytes[0] = wire_len;
  }
  f.action = internAction(dec.action);
  f.generation = policy_->generation;
  if (cookie_syn) {
    if (proxy_.empty()) proxy_.resize(flows_.capacity());
    proxy_[idx] = proxy_next_;
    f.flags |= flow::kSynProxy;
  }
  ++stats_.flows_created;
  ++stats_.layer_pass[static_cast<size_t>(Layer::Conntrack)];
  if (trace)
    trace->push_back(
        {Layer::Conntrack, true,
         strCat("new flow tracked", key.proto == pkt::ipproto::kTcp
                                        ? strCat(" (", flow::toString(f.tcp_state), ")")
                                        : std::string())});
  emitFlowLog(idx, "begin", ts);
  if (cur_->has(pkt::kFragment)) [[unlikely]]
    rememberFragment(key, now_ms);
  return forwardFlow(idx, Dir::Orig, trace);
}

void Pipeline::rememberFragment(const FlowKey& key, uint32_t now_ms) {
  const pkt::Packet& p = *cur_;
  const FragKey k{p.src, p.dst, key.zone, p.frag.id, p.proto, {}};
  if (!held_count_.empty() && held_count_.contains(k)) release_.push_back(k);
  const auto expired = [now_ms](const FragEntry& e) {
    return static_cast<int32_t>(e.expires_ms - now_ms) <= 0;
  };
  if (auto it = frags_.find(k); it != frags_.end()) {
    it->second.flow = key;             // the same datagram again (or its id reused)
    if (!expired(it->second)) return;  // its place in line stays
    // Filed again for a new timeout, at the back; its old place is void.
    it->second.expires_ms = now_ms + cfg_.fragment_timeout_ms;
    it->second.number = ++frag_number_;
    frag_order_.emplace_back(k, frag_number_);
    return;
  }
  // Forget the expired, then the oldest while there is no room; places
  // whose entry was filed again since are passed over.
  while (!frag_order_.empty()) {
    const auto& [front, number] = frag_order_.front();
    if (const auto it = frags_.find(front); it != frags_.end() && it->second.number == number) {
      if (!expired(it->second) && frags_.size() < cfg_.fragment_datagrams) break;
      frags_.erase(it);
    }
    frag_order_.pop_front();
  }
  if (cfg_.fragment_datagrams == 0) return;
  frags_.emplace(k, FragEntry{key, now_ms + cfg_.fragment_timeout_ms, ++frag_number_});
  frag_order_.emplace_back(k, frag_number_);
}

Verdict Pipeline::laterFragment(uint32_t zone, uint32_t now_ms, Trace* trace, uint16_t in_port,
                                bool holdable) {
  const pkt::Packet& p = *cur_;
  // Its first fragment's transport header was what the layers decided on: a
  // later one reaching into it (RFC 1858's overlapping fragments, a TCP
  // fragment at offset 8 rewriting the flags) could change what they saw.
  namespace ip = pkt::ipproto;
  const uint32_t header = p.proto == ip::kTcp ? 20
                          : p.proto == ip::kUdp || p.proto == ip::kIcmp || p.proto == ip::kIcmpv6
                              ? 8
                              : 0;
  if (p.frag.offset < header) {
    if (trace)
      trace->push_back(
          {Layer::PortSecurity, false,
           strCat("fragment at offset ", std::to_string(p.frag.offset), " overlaps its datagram's ",
                  std::to_string(header), "-byte transport header")});
    return drop(Reason::FragmentOverlap);
  }
  const auto it = frags_.find(FragKey{p.src, p.dst, zone, p.frag.id, p.proto, {}});
  const bool known = it != frags_.end() && static_cast<int32_t>(it->second.expires_ms - now_ms) > 0;
  if (!known && holdable && cfg_.fragments_held > 0 && p.frame.size() <= kMaxHeldFrame) {
    // Reordered on the way: it waits for its first, the oldest held
    // dropped when there is no room.
    if (held_.size() >= cfg_.fragments_held) expireHeld(now_ms, false);
    while (held_.size() >= cfg_.fragments_held)
      dropHeld();  // (a reload may have lowered it)
    const FragKey k{p.src, p.dst, zone, p.frag.id, p.proto, {}};
    Held& h = held_.emplace_back();
    h.key = k;
    h.frame.assign(p.frame.begin(), p.frame.end());
    h.link = p.link;
    h.wire_len = p.wire_len;
    h.expires_ms = now_ms + cfg_.fragment_timeout_ms;
    h.in_port = in_port;
    h.ts = now_;
    ++held_count_[k];
    ++stats_.fragments_held;
    if (trace)
      trace->push_back({Layer::PortSecurity, true,
                        strCat("non-first IP fragment (id ", std::to_string(p.frag.id),
                               ") before its datagram's first: held for it up to ",
                               std::to_string(cfg_.fragment_timeout_ms), " ms")});
    Verdict v;
    v.action = Action::Hold;
    return v;
  }
  const flow::Hit hit = known ? flows_.find(it->second.flow) : flow::Hit{};
  if (!hit.found() || flows_.at(hit.idx).generation != policy_->generation) {
    if (trace)
      trace->push_back(
          {Layer::PortSecurity, false,
           !known         ? strCat("non-first IP fragment (id ", std::to_string(p.frag.id),
                                   ") whose datagram's first fragment was not forwarded in the last ",
                                   std::to_string(cfg_.fragment_timeout_ms), " ms")
           : !hit.found() ? std::string("non-first IP fragment whose datagram's flow has ended")
                          : std::string("non-first IP fragment of a flow the new policy has not "
                                        "decided again yet (its next whole packet will)")});
    return drop(Reason::Fragment);
  }
  flow::Flow& f = flows_.at(hit.idx);
  const size_t d = hit.dir == Dir::Orig ? 0 : 1;
  ++f.packets[d];
  f.bytes[d] += p.wire_len ? p.wire_len : static_cast<uint32_t>(p.frame.size());
  ++stats_.layer_pass[static_cast<size_t>(Layer::Conntrack)];
  if (trace)
    trace->push_back({Layer::Conntrack, true,
                      strCat("non-first IP fragment (id ", std::to_string(p.frag.id), ", offset ",
                             std::to_string(p.frag.offset),
                             "): follows its datagram's first fragment and flow")});
  Verdict v = forwardFlow(hit.idx, hit.dir, trace);
  if (v.action == Action::Forward)
    ++stats_.fragments_forwarded;  // as `forwarded`, undone by an IPS drop
  return v;
}

void Pipeline::forgetReleased() {
  released_.clear();
  releasing_.clear();
}

void Pipeline::dropHeld() {
  const Held& h = held_.front();
  if (auto it = held_count_.find(h.key); it != held_count_.end() && --it->second == 0)
    held_count_.erase(it);
  held_.pop_front();
  (void)drop(Reason::Fragment);
}

void Pipeline::expireHeld(uint32_t now_ms, bool all) {
  while (!held_.empty() && (all || static_cast<int32_t>(held_.front().expires_ms - now_ms) <= 0))
    dropHeld();
}

void Pipeline::releaseHeld(uint32_t after) {
  // Out of the line, in the order they came; what they point into stays put
  // until the next call (beginCall()).
  const auto first = std::stable_partition(held_.begin(), held_.end(), [&](const Held& h) {
    return std::find(release_.begin(), release_.end(), h.key) == release_.end();
  });
  const size_t from = releasing_.size();
  for (auto it = first; it != held_.end(); ++it)
    releasing_.push_back(std::move(*it));
  held_.erase(first, held_.end());
  for (const FragKey& k : release_)
    held_count_.erase(k);
  release_.clear();
  pkt::Packet* const saved_cur = cur_;
  std::vector<std::byte>* const saved_out = out_;
  const uint32_t now_ms = clockMs(now_);
  for (size_t i = from; i < releasing_.size(); ++i) {
    Held& h = releasing_[i];
    cur_ = &held_pkt_;
    out_ = &h.out;
    cur_flow_ = kNoIndex;
    Released& r = released_.emplace_back();
    r.after = after;
    r.in_port = h.in_port;
    r.frame = Bytes(h.frame.data(), h.frame.size());
    r.wire_len = h.wire_len;
    r.ts = h.ts;
    const Bytes frame(h.frame.data(), h.frame.size());
    if (!held_decoder_.decode(h.link, frame, h.wire_len, held_pkt_)) {
      r.verdict = drop(Reason::Malformed);  // it decoded when it came, with the same settings
      continue;
    }
    r.verdict = laterFragment(h.key.zone, now_ms, nullptr);
    if (ids_ && r.verdict.action == Action::Forward && r.verdict.flow_action != kNoIndex)
      inspect(r.verdict, h.in_port, now_, nullptr);
  }
  cur_ = saved_cur;
  out_ = saved_out;
}

void Pipeline::tick(TimeNs now, uint32_t budget) {
  if (!epoch_set_) return;
  if (!held_.empty()) expireHeld(clockMs(now), false);
  if (ddos_) {
    ddos_->advance(now);
    syncDdosStats();
  }
  releaseQuarantines(now);
  const uint32_t now_ms = clockMs(now);
  stats_.flows_expired +=
      flows_.sweep(now_ms, budget, [&](uint32_t idx) { emitFlowLog(idx, "end", now); });
  if (cfg_.stats_interval_s && now > stats_since_ &&
      now - stats_since_ >= TimeNs{cfg_.stats_interval_s} * 1000000000)
    emitStats(now);
}

void Pipeline::finish(TimeNs now) {
  expireHeld(0, true);       // their first never came
  if (ids_) ids_->finish();  // its alerts are on no packet (AlertInfo::on_packet)
  flows_.forEach([&](uint32_t idx) { emitFlowLog(idx, "end", now); });
  if (ddos_) {
    ddos_->finish(now);
    syncDdosStats();
  }
  releaseQuarantines(now);
  if (cfg_.stats_interval_s) emitStats(now);
}

void Pipeline::emitStats(TimeNs now) {
  const Stats d = stats_.since(stats_reported_);
  if (d.packets == 0 || !flow_log_) return;
  events::Event* e = flow_log_->acquire();
  if (!e) return;  // counted as dropped by the queue; the next record covers the interval
  stats_reported_ = stats_;
  e->ts_ns = now;
  e->type = events::EventType::Stats;
  JsonWriter w(e->body);
  w.key("stats");
  w.beginObject();
  w.field("interval_s", static_cast<uint64_t>((now - stats_since_) / 1000000000));
  if (!cfg_.host.empty()) w.field("host", cfg_.host);
  w.field("packets", d.packets);
  w.field("bytes", d.bytes);
  w.field("forwarded", d.forwarded);
  w.field("dropped", d.dropped);
  w.field("answered", d.answered);
  w.field("flows_created", d.flows_created);
  w.key("layers");
  w.beginObject();
  for (size_t l = 0; l < d.layer_pass.size(); ++l) {
    if (!d.layer_pass[l] && !d.layer_drop[l]) continue;
    w.key(toString(static_cast<Layer>(l)));
    w.beginObject();
    w.field("passed", d.layer_pass[l]);
    w.field("dropped", d.layer_drop[l]);
    w.endObject();
  }
  w.endObject();
  w.key("drop_reasons");
  w.beginObject();
  for (size_t r = 1; r < d.drops.size(); ++r)
    if (d.drops[r]) w.field(toString(static_cast<Reason>(r)), d.drops[r]);
  w.endObject();
  w.endObject();
  flow_log_->commit();
  stats_since_ = now;
}

// --- flow logs ---------------------------------------------------------------

void Pipeline::emitFlowLog(uint32_t idx, const char* state, TimeNs now, bool revoked,
                           uint32_t revoked_by) {
  flow::Flow& f = flows_.at(idx);
  if (flow_log_) {
    events::Event* e = flow_log_->acquire();
    if (e) {
      const FlowAction& a = actions_[f.action];
      const CompiledPolicy& cp = *policy_;
      // A flow idle across a policy swap still holds the old policy's indexes.
      const bool current = f.generation == cp.generation;
      auto portName = [&](uint16_t p) {
        return p < cp.ports.size() ? cp.ports[p].name : std::string("?");
      };
      e->ts_ns = now;
      e->type = events::EventType::Flow;
      e->flow_id = flowId(f);
      e->setTuple(f.src, f.sport, f.dst, f.dport, f.proto);
      JsonWriter w(e->body);
      w.field("in_iface", portName(a.in_port));
      w.field("out_iface", portName(a.out_port));
      w.key("flow");
      w.beginObject();
      w.field("state", state);
      w.field("decision", "allow");
      w.field("direction", a.east_west ? "east-west" : policy::toString(a.direction));
      // Rule and endpoint indexes name rules only in the flow's own
      // generation; an older one's are not looked up in the new policy.
      uint32_t decider = kNoIndex;
      for (uint32_t r : a.rules)
        if (r != kNoIndex && current) decider = r;
      w.field("rule", decider == kNoIndex
                          ? (a.infra != kNoIndex && current ? policy_->infra_endpoints[a.infra].name
                                                            : std::string("none"))
                          : policy_->rules[decider].name);
      if (!current) w.field("policy_generation", uint64_t{f.generation});
      w.field("pkts_toserver", uint64_t{f.packets[0]});
      w.field("bytes_toserver", uint64_t{f.bytes[0]});
      w.field("pkts_toclient", uint64_t{f.packets[1]});
      w.field("bytes_toclient", uint64_t{f.bytes[1]});
      if (f.proto == pkt::ipproto::kTcp) w.field("tcp_state", flow::toString(f.tcp_state));
      if (revoked) {  // ended by re-evaluation under a new policy, and by which rule
        w.field("reason", toString(Reason::PolicyRevoked));
        w.field("revoked_by",
                revoked_by == kNoIndex ? std::string("none") : policy_->rules[revoked_by].name);
      }
      w.endObject();
      w.key("layers");
      w.beginObject();
      for (size_t l = 0; l < a.rules.size() && current; ++l)
        if (a.rules[l] != kNoIndex)
          w.field(toString(static_cast<Layer>(l)), policy_->rules[a.rules[l]].name);
      if (a.endpoint != kNoIndex && current)
        w.field("endpoint", policy_->endpoints[a.endpoint].name);
      w.endObject();
      if (f.nat != NatKind::None && !a.east_west) {
        w.key("nat");
        w.beginObject();
        w.field("type", f.nat == NatKind::Source ? "snat" : "dnat");
        w.field("ip", flows_.natAddr(f));
        w.field("port", uint32_t{f.nat_port});
        w.endObject();
      }
      flow_log_->commit();
    }
  }
  // Records carry deltas (as NSG flow logs v2 do): reset after each.
  f.packets[0] = f.packets[1] = 0;
  f.bytes[0] = f.bytes[1] = 0;
  f.report_ms = clockMs(now);
}

void Pipeline::emitDenied(const Query& q, const Decision& d, TimeNs now) {
  if (!flow_log_) return;
  events::Event* e = flow_log_->acquire();
  if (!e) return;
  e->ts_ns = now;
  e->type = events::EventType::Flow;
  e->setTuple(q.src, q.sport, q.dst, q.dport, q.proto);
  JsonWriter w(e->body);
  w.field("in_iface", policy_->ports[q.in_port].name);
  w.key("flow");
  w.beginObject();
  w.field("state", "begin");
  w.field("decision", "deny");
  w.field("direction", policy::toString(d.action.direction));
  w.field("reason", toString(d.reason));
  w.field("rule", d.rule == kNoIndex ? std::string("none") : policy_->rules[d.rule].name);
  w.endObject();
  flow_log_->commit();
}

}  // namespace palisade::pipeline
