#include "ddos/detector.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "core/hash.h"
#include "core/json_writer.h"
#include "core/strings.h"
#include "ddos/board.h"

namespace palisade::ddos {

namespace {

// The seed of every hash the detector keys by what a flood chooses (sources,
// addresses of a protected prefix): from the kernel, so the hashes cannot be
// known in advance and keys picked to collide.
uint64_t randomSeed(const void* salt) {
  return mix64(palisade::randomSeed() ^ reinterpret_cast<uintptr_t>(salt));
}

constexpr TimeNs kTickNs = 100'000'000;  // 100 ms
constexpr uint32_t kWindowTicks = 10;    // rates are over the last second
constexpr uint32_t kConvBits = 1u << 20;
constexpr uint64_t kConvRotateTicks = 300;  // 30 s
constexpr uint32_t kFragSlots = 4096;
constexpr uint64_t kAskedSeed = 0xa5cedull;
constexpr uint8_t kLegit = 0xff;  // a fragment of a datagram that counts under no vector
constexpr size_t kMaxHistory = 10000;
constexpr double kEwmaMin = 1.0 / 3000;   // after 300 s of history: a 5-minute average
constexpr uint32_t kPendingSlots = 4096;  // SYN-ACKs awaiting their ACK (32 KB)
// The SYN-to-ACK ratio is known over a second of 20 SYNs or more, and means
// something where at least a fifth of them normally complete.
constexpr double kRatioMinSyns = 20;
constexpr double kRatioMinBaseline = 0.2;

uint32_t classBit(VectorClass c) {
  return 1u << static_cast<uint32_t>(c);
}

// At least one profile; protected prefixes longest first, so the first match
// is the most specific.
DetectorConfig normalised(DetectorConfig cfg) {
  if (cfg.profiles.empty()) cfg.profiles.emplace_back();
  for (ProtectedPrefix& p : cfg.protect)  // a profile index every lookup can trust
    p.profile = std::min<uint16_t>(p.profile, static_cast<uint16_t>(cfg.profiles.size() - 1));
  std::stable_sort(cfg.protect.begin(), cfg.protect.end(),
                   [](const ProtectedPrefix& a, const ProtectedPrefix& b) {
                     return a.prefix.len > b.prefix.len;
                   });
  return cfg;
}

}  // namespace

const char* toString(Mode m) {
  switch (m) {
    case Mode::OnDemand:
      return "on-demand";
    case Mode::AlwaysOn:
      return "always-on";
    case Mode::Emergency:
      return "emergency";
  }
  return "?";
}

const char* toString(SynProxyMode m) {
  switch (m) {
    case SynProxyMode::Off:
      return "off";
    case SynProxyMode::OnAttack:
      return "on-attack";
    case SynProxyMode::Always:
      return "always";
  }
  return "?";
}

const char* toString(Quarantine q) {
  switch (q) {
    case Quarantine::None:
      return "none";
    case Quarantine::RateLimit:
      return "rate-limit";
    case Quarantine::Isolate:
      return "isolate";
  }
  return "?";
}

const char* toString(Direction d) {
  return d == Direction::Inbound ? "inbound" : "outbound";
}

std::array<Threshold, kClassCount> Profile::defaultFloors() {
  std::array<Threshold, kClassCount> f{};
  auto set = [&](VectorClass c, double pps, double bps) { f[static_cast<size_t>(c)] = {pps, bps}; };
  // What one address should never receive unasked in a second: SYN-ACKs, stray
  // ACKs/RSTs and amplification replies are answers to nothing it sent, so
  // their floors are low; SYNs, UDP and ICMP are what a busy service gets.
  set(VectorClass::Syn, 1000, 0);
  set(VectorClass::SynAck, 100, 0);
  set(VectorClass::AckRst, 1000, 0);
  set(VectorClass::Udp, 5000, 100e6);
  set(VectorClass::Amplification, 100, 1e6);
  set(VectorClass::Icmp, 500, 10e6);
  set(VectorClass::Fragment, 500, 10e6);
  set(VectorClass::Other, 500, 10e6);
  return f;
}

struct Detector::Target {
  IpAddr addr;
  Direction dir = Direction::Inbound;
  uint16_t protect = 0;
  uint16_t profile = 0;
  // Per vector: packets and bytes per tick of the last second, and their sums.
  std::array<std::array<uint32_t, kWindowTicks>, kVectorCount> pkts{};
  std::array<std::array<uint64_t, kWindowTicks>, kVectorCount> bytes{};
  std::array<uint64_t, kVectorCount> win_pkts{}, win_bytes{};
  std::array<TimeNs, kWindowTicks> first_ts{};  // earliest counted packet of each tick
  // Handshakes completed per tick of the last second, their sum, the share of
  // the second's SYNs they make (-1: too few SYNs), and its learned baseline.
  std::array<uint32_t, kWindowTicks> hs{};
  uint64_t win_hs = 0;
  double ratio_now = -1, ratio_mean = 0;
  uint64_t ratio_ticks = 0;  // ticks that fed ratio_mean
  bool crowd = false;        // SYNs over their threshold held back by the ratio, last tick
  struct Baseline {
    double mean_pps = 0, var_pps = 0, mean_bps = 0, var_bps = 0;
  };
  std::array<Baseline, kClassCount> base{};
  uint64_t history_ticks = 0;  // ticks that fed the baseline
  uint64_t last_packet_tick = 0;
  uint32_t warm = 0;      // classes over end_ratio x threshold at the last tick
  uint32_t over_now = 0;  // classes over their threshold at the last tick
  SourceSpread spread;    // this second's sources
  SourceSpread conns;     // this second's connections (peer, ports, protocol)
  double entropy = 0;     // of the last complete second
  uint64_t sources = 0;
  uint64_t sessions = 0;
  // The attack, while one lasts.
  bool attacked = false;
  AttackInfo info;
  uint32_t classes_over = 0;  // every class over its threshold during the attack
  uint64_t quiet_ticks = 0;
  TimeNs next_update = 0;
  std::array<uint64_t, kVectorCount> attack_pkts{};
  TokenBucket quarantine;  // its rate under Quarantine::RateLimit
  PacketRate limit;        // the profile's target_pps / target_bps

  // A packet of vector v belongs to the attack under way (its class crossed).
  bool partOfAttack(Vector v) const {
    return attacked && v != Vector::None && (classes_over & classBit(classOf(v))) != 0;
  }
};

Detector::Detector(DetectorConfig cfg)
    : cfg_(normalised(std::move(cfg))),
      seed_(randomSeed(this)),
      index_{TargetIndex(16, AddrHash{mix64(seed_ ^ 0x1dd)}),
             TargetIndex(16, AddrHash{mix64(seed_ ^ 0x1de)})},
      heavy_(cfg_.heavy_hitters, mix64(seed_ ^ 0x5a17ed)) {
  for (auto& c : conv_)
    c.assign(kConvBits / 64, 0);
  frags_.assign(kFragSlots, {});
  pending_hs_.assign(kPendingSlots, 0);
  indexPrefixes();
}

Detector::~Detector() = default;

void Detector::indexPrefixes() {
  v4_sixteens_.assign(65536 / 64, 0);
  for (const ProtectedPrefix& p : cfg_.protect) {
    if (!p.prefix.isV4()) continue;
    const uint32_t first = p.prefix.addr.v4Value() >> 16;
    const uint32_t count = p.prefix.len >= 16 ? 1u : 1u << (16 - p.prefix.len);
    for (uint32_t i = first & ~(count - 1); i < (first & ~(count - 1)) + count; ++i)
      v4_sixteens_[i / 64] |= uint64_t{1} << (i % 64);
  }
}

int Detector::protectedIndexScan(const IpAddr& a) const {
  int found = -1;
  for (size_t i = 0; i < cfg_.protect.size(); ++i)
    if (cfg_.protect[i].prefix.contains(a)) {
      found = static_cast<int>(i);
      break;
    }
  last_lookup_ = a;
  last_index_ = found;
  return found;
}

const Detector::Target* Detector::findTarget(const IpAddr& a, Direction d) const {
  if (const Target* last = last_target_[static_cast<size_t>(d)]; last && last->addr == a)
    return last;
  const auto& index = index_[static_cast<size_t>(d)];
  const auto it = index.find(a);
  return it == index.end() ? nullptr : targets_[it->second].get();
}

Detector::Target* Detector::target(const IpAddr& a, Direction d, int protect_index) {
  Target*& last = last_target_[static_cast<size_t>(d)];
  if (Target* found = findTarget(a, d)) return last = found;
  if (targets_.size() >= cfg_.max_targets) return nullptr;
  auto t = std::make_unique<Target>();
  t->addr = a;
  t->dir = d;
  t->protect = static_cast<uint16_t>(protect_index);
  t->profile = cfg_.protect[static_cast<size_t>(protect_index)].profile;
  t->last_packet_tick = tick_no_;
  index_[static_cast<size_t>(d)].emplace(a, static_cast<uint32_t>(targets_.size()));
  targets_.push_back(std::move(t));
  stats_.targets = targets_.size();
  return last = targets_.back().get();
}

namespace {
uint64_t convHash(const IpAddr& local, const IpAddr& peer, uint16_t peer_port, uint8_t proto,
                  uint64_t seed) {
  struct {
    IpAddr l, p;
    uint16_t port;
    uint8_t proto, pad[5];
  } k{local, peer, peer_port, proto, {}};
  return hashBytes(&k, sizeof k, seed);
}
}  // namespace

bool Detector::solicited(const IpAddr& local, const IpAddr& peer, uint16_t peer_port,
                         uint8_t proto) const {
  const uint64_t h = convHash(local, peer, peer_port, proto, seed_) & (kConvBits - 1);
  const uint64_t bit = uint64_t{1} << (h % 64);
  return ((conv_[0][h / 64] | conv_[1][h / 64]) & bit) != 0;
}

void Detector::markConversation(const IpAddr& local, const IpAddr& peer, uint16_t peer_port,
                                uint8_t proto) {
  const uint64_t h = convHash(local, peer, peer_port, proto, seed_) & (kConvBits - 1);
  conv_[0][h / 64] |= uint64_t{1} << (h % 64);
}

// "The peer sent to the address first" lives in the same filter under
// another seed, as two bits (a Bloom filter with k = 2): a false "answer"
// would hide a flood to that one peer and port until the filter rotates, so
// it costs a second bit to make one about 100 times rarer.
bool Detector::asked(const IpAddr& local, const IpAddr& peer, uint16_t peer_port,
                     uint8_t proto) const {
  const uint64_t h = convHash(local, peer, peer_port, proto, seed_ ^ kAskedSeed);
  for (const uint64_t bit : {h & (kConvBits - 1), (h >> 32) & (kConvBits - 1)})
    if (((conv_[0][bit / 64] | conv_[1][bit / 64]) & (uint64_t{1} << (bit % 64))) == 0)
      return false;
  return true;
}

void Detector::markAsked(const IpAddr& local, const IpAddr& peer, uint16_t peer_port,
                         uint8_t proto) {
  const uint64_t h = convHash(local, peer, peer_port, proto, seed_ ^ kAskedSeed);
  for (const uint64_t bit : {h & (kConvBits - 1), (h >> 32) & (kConvBits - 1)})
    conv_[0][bit / 64] |= uint64_t{1} << (bit % 64);
}

Vector Detector::classifyInbound(const pkt::Packet& p) {
  namespace tf = pkt::tcpflag;
  const bool later_fragment = p.has(pkt::kFragment) && p.frag.offset > 0;
  const uint64_t frag_tag =
      p.has(pkt::kFragment) ? (hashBytes(p.src.b.data(), 16, p.frag.id) | 1) : 0;
  FragSlot& slot = frags_[frag_tag % kFragSlots];
  if (later_fragment) {
    if (slot.tag == frag_tag)
      return slot.vector == kLegit ? Vector::None : static_cast<Vector>(slot.vector);
    return Vector::FragmentFlood;
  }
  Vector v = Vector::None;
  if (p.has(pkt::kTcp)) {
    const uint8_t f = p.tcp.flags;
    if ((f & tf::kSyn) && !(f & tf::kAck)) {
      if (!cfg_.tracked) markConversation(p.dst, p.src, p.sport, p.proto);  // its ACKs are expected
      v = Vector::SynFlood;
    } else if (!solicited(p.dst, p.src, p.sport, p.proto)) {
      v = (f & tf::kSyn) ? Vector::SynAckReflection : Vector::AckRstFlood;
    }
  } else if (p.has(pkt::kUdp)) {
    if (!solicited(p.dst, p.src, p.sport, p.proto)) {
      v = amplificationVector(p.sport);
      if (v == Vector::None) v = Vector::UdpFlood;
    }
    markAsked(p.dst, p.src, p.sport, p.proto);  // the address may answer it
  } else if (p.has(pkt::kIcmp) || p.has(pkt::kIcmpv6)) {
    // Neighbour discovery is the link's business, not a flood's.
    if (!p.has(pkt::kNd)) v = Vector::IcmpFlood;
  } else if (!p.has(pkt::kFragment)) {
    v = Vector::IpFlood;
  } else {
    v = Vector::FragmentFlood;  // a first fragment too short to show its ports
  }
  if (p.has(pkt::kFragment)) {  // the first fragment: its followers count the same
    slot.tag = frag_tag;
    slot.vector = v == Vector::None ? kLegit : static_cast<uint8_t>(v);
  }
  return v;
}

Vector Detector::classifyOutbound(const pkt::Packet& p) {
  namespace tf = pkt::tcpflag;
  if (p.has(pkt::kFragment) && p.frag.offset > 0) return Vector::FragmentFlood;
  if (p.has(pkt::kTcp)) {
    const uint8_t f = p.tcp.flags;
    if ((f & tf::kSyn) && !(f & tf::kAck)) return Vector::SynFlood;
    if (solicited(p.src, p.dst, p.dport, p.proto)) return Vector::None;
    return (f & tf::kSyn) ? Vector::SynAckReflection : Vector::AckRstFlood;
  }
  if (p.has(pkt::kUdp)) {
    // A protected address answering from an amplification port is a reflector
    // whoever asked; otherwise an answer to a peer that sent to it first is
    // its business. Sending again to where it sent before is not an answer:
    // a flood to one port stays a flood.
    if (Vector v = amplificationVector(p.sport); v != Vector::None) return v;
    return asked(p.src, p.dst, p.dport, p.proto) ? Vector::None : Vector::UdpFlood;
  }
  if (p.has(pkt::kIcmp) || p.has(pkt::kIcmpv6))
    return p.has(pkt::kNd) ? Vector::None : Vector::IcmpFlood;
  return Vector::IpFlood;
}

namespace {
// The tag of a handshake between `server` (its port first) and `client`.
uint64_t handshakeTag(const IpAddr& server, uint16_t sport, const IpAddr& client, uint16_t cport,
                      uint64_t seed) {
  struct {
    IpAddr s, c;
    uint16_t sp, cp;
    uint32_t pad;
  } k{server, client, sport, cport, 0};
  return hashBytes(&k, sizeof k, seed) | 1;
}

bool isHandshakeAck(const pkt::Packet& p) {
  namespace tf = pkt::tcpflag;
  return p.has(pkt::kTcp) && (p.tcp.flags & tf::kAck) && !(p.tcp.flags & (tf::kSyn | tf::kRst));
}
}  // namespace

void Detector::handshake(const IpAddr& server, TimeNs ts) {
  if (protectedIndex(server) < 0) return;
  advance(ts);
  Target* t = findTarget(server, Direction::Inbound);
  if (!t) return;  // no SYN of it was counted either
  ++t->hs[tick_no_ % kWindowTicks];
  ++t->win_hs;
  ++stats_.handshakes;
}

namespace {
// The mark in one 16-bit store: callers copy it whole, and a 16-bit load of
// what two byte stores just wrote waits for both to retire (a SYN proxy's
// caller stalled on it, 3% of a proxied SYN).
void storeMark(Detector::Mark* m, Vector v, bool attacked) {
  static_assert(sizeof(Detector::Mark) == 2 && offsetof(Detector::Mark, attacked) == 1);
  const uint16_t w = static_cast<uint16_t>(static_cast<uint8_t>(v) | uint16_t{attacked} << 8);
  std::memcpy(static_cast<void*>(m), &w, sizeof w);
}
}  // namespace

Detector::Verdict Detector::process(const pkt::Packet& p, TimeNs ts, Mark* mark) {
  if (!p.has(pkt::kIpv4) && !p.has(pkt::kIpv6)) return Verdict::Pass;
  ++stats_.packets;
  advance(ts);
  Verdict verdict = Verdict::Pass;
  const int src_prot = protectedIndex(p.src);
  if (src_prot >= 0) {
    // A server's SYN-ACK: its client's ACK completes the handshake.
    if (p.has(pkt::kTcp) && (p.tcp.flags & pkt::tcpflag::kSyn) &&
        (p.tcp.flags & pkt::tcpflag::kAck)) {
      const uint64_t tag = handshakeTag(p.src, p.sport, p.dst, p.dport, seed_);
      pending_hs_[tag % kPendingSlots] = tag;
    }
    // What it sends makes the replies solicited.
    const Vector v = classifyOutbound(p);
    const uint16_t peer_port = p.has(pkt::kTcp) || p.has(pkt::kUdp) ? p.dport : 0;
    markConversation(p.src, p.dst, peer_port, p.proto);
    if (Target* t = target(p.src, Direction::Outbound, src_prot)) {
      if (account(*t, v, p, ts) == Verdict::Drop) verdict = Verdict::Drop;
      if (mark && v != Vector::None) storeMark(mark, v, t->partOfAttack(v));
    } else {
      ++stats_.untracked;
    }
  }
  const int dst_prot = protectedIndex(p.dst);
  if (dst_prot >= 0) {
    const Vector v = classifyInbound(p);
    if (Target* t = target(p.dst, Direction::Inbound, dst_prot)) {
      if (isHandshakeAck(p)) {
        const uint64_t tag = handshakeTag(p.dst, p.dport, p.src, p.sport, seed_);
        if (uint64_t& slot = pending_hs_[tag % kPendingSlots]; slot == tag) {
          slot = 0;
          ++t->hs[tick_no_ % kWindowTicks];
          ++t->win_hs;
          ++stats_.handshakes;
        }
      }
      if (account(*t, v, p, ts) == Verdict::Drop) {
        verdict = Verdict::Drop;
      } else if (v != Vector::None && limited(*t, p, ts)) {
        verdict = Verdict::Limit;
        ++stats_.limited;
        if (t->attacked && t->info.passed > 0) {  // account() counted it passed
          --t->info.passed;
          ++t->info.dropped;
        }
      }
      if (mark && (v != Vector::None || !mark->attacked)) storeMark(mark, v, t->partOfAttack(v));
    } else {
      ++stats_.untracked;
    }
  }
  if (src_prot >= 0 || dst_prot >= 0) ++stats_.watched;
  if (verdict == Verdict::Drop) ++stats_.dropped;
  return verdict;
}

uint64_t Detector::sourceHash(uint16_t protect, const IpAddr& src) const {
  return hashBytes(src.b.data(), src.b.size(), seed_ ^ protect) | 1;
}

void Detector::prefetchSource(const IpAddr& src, const IpAddr& dst) const {
  if (source_buckets_.empty()) return;  // no limit has been asked about yet
  const int pi = protectedIndex(dst);
  if (pi < 0) return;
  const Limits& l = profileOf(pi).limits;
  if (l.source_pps <= 0 && l.source_bps <= 0) return;
  __builtin_prefetch(
      &source_buckets_[sourceHash(static_cast<uint16_t>(pi), src) & (kSourceBuckets - 1)]);
}

bool Detector::sourceOver(uint16_t protect, const Limits& l, const IpAddr& src, uint64_t len,
                          TimeNs ts) {
  if (l.source_pps <= 0 && l.source_bps <= 0) return false;
  if (source_buckets_.empty()) source_buckets_.resize(kSourceBuckets);
  const uint64_t h = sourceHash(protect, src);
  SourceBucket& sb = source_buckets_[h & (kSourceBuckets - 1)];
  if (sb.tag != h) sb = {h, {}};  // a new source (or a collision) starts with a full second
  return !sb.b.take(l.source_pps, l.source_bps, len, ts);
}

bool Detector::limited(Target& t, const pkt::Packet& p, TimeNs ts) {
  const Limits& l = cfg_.profiles[t.profile].limits;
  if (!l.any()) return false;
  const uint64_t len = p.wire_len ? p.wire_len : p.frame.size();
  if (sourceOver(t.protect, l, p.src, len, ts)) return true;
  return (l.target_pps > 0 || l.target_bps > 0) &&
         !t.limit.take(l.target_pps, l.target_bps, len, ts);
}

bool Detector::sourceAdmits(const IpAddr& src, const IpAddr& dst, uint64_t len, TimeNs ts) {
  const int pi = protectedIndex(dst);
  if (pi < 0 || !sourceOver(static_cast<uint16_t>(pi), profileOf(pi).limits, src, len, ts))
    return true;
  ++stats_.limited;
  return false;
}

Detector::Verdict Detector::account(Target& t, Vector v, const pkt::Packet& p, TimeNs ts) {
  t.last_packet_tick = tick_no_;
  const IpAddr& peer = t.dir == Direction::Inbound ? p.src : p.dst;
  const uint64_t peer_hash = hashBytes(peer.b.data(), peer.b.size(), seed_);
  t.spread.add(peer_hash);
  if (p.has(pkt::kTcp) || p.has(pkt::kUdp))
    t.conns.add(mix64(peer_hash ^ (uint64_t{p.sport} << 32 | uint64_t{p.dport} << 8 | p.proto)));
  else
    t.conns.add(mix64(peer_hash ^ p.proto));
  if (v == Vector::None) return Verdict::Pass;
  const size_t vi = static_cast<size_t>(v);
  const uint32_t slot = static_cast<uint32_t>(tick_no_ % kWindowTicks);
  const uint64_t len = p.wire_len ? p.wire_len : p.frame.size();
  if (t.first_ts[slot] == 0 || ts < t.first_ts[slot]) t.first_ts[slot] = ts;
  ++t.pkts[vi][slot];
  t.bytes[vi][slot] += len;
  ++t.win_pkts[vi];
  t.win_bytes[vi] += len;
  const Profile& prof = cfg_.profiles[t.profile];
  const PairKey pair{p.src, p.dst};
  if (!t.attacked) {
    if (t.warm & classBit(classOf(v))) heavy_.add(pair);
    if (prof.mode != Mode::AlwaysOn) return Verdict::Pass;
  }

  Verdict verdict = Verdict::Pass;
  if (t.attacked) {
    ++t.attack_pkts[vi];
    ++t.info.packets;
    t.info.bytes += len;
    // Past 50,000 pps one packet in 8 is counted, 8 times, and past 500,000
    // one in 64: a heavy source stays heavy (one of 1% of such a flood is
    // still sampled 80 times a second or more), and a spoofed flood costs a
    // fraction of the updates.
    if (t.classes_over & classBit(classOf(v))) {
      if (t.info.pps < 50000) {
        heavy_.add(pair);
      } else {
        const uint64_t period = t.info.pps < 500000 ? 8 : 64;
        if ((++sample_ & (period - 1)) == 0) heavy_.add(pair, period);
      }
    }
  }
  if (t.dir == Direction::Outbound) {
    if (t.attacked) {
      if (prof.quarantine == Quarantine::Isolate) {
        verdict = Verdict::Drop;
      } else if (prof.quarantine == Quarantine::RateLimit &&
                 !t.quarantine.take(prof.quarantine_pps, prof.quarantine_pps, ts)) {
        verdict = Verdict::Drop;
      }
    }
  } else {
    switch (classOf(v)) {
      case VectorClass::SynAck:
      case VectorClass::AckRst:
      case VectorClass::Amplification:
      case VectorClass::Fragment:
        // Answers to nothing this address sent, and pieces of nothing whole.
        verdict = Verdict::Drop;
        break;
      case VectorClass::Udp:
      case VectorClass::Icmp:
      case VectorClass::Other:
        // A flood of plain packets: its heaviest sources go (1% of the attack or more).
        if (t.attacked && t.info.packets >= 100 && heavy_.guaranteed(pair) * 100 >= t.info.packets)
          verdict = Verdict::Drop;
        break;
      case VectorClass::Syn:
        break;  // the SYN proxy's, in the pipeline (synProxy() says when): passed and counted
    }
  }
  if (t.attacked) (verdict == Verdict::Drop ? t.info.dropped : t.info.passed) += 1;
  return verdict;
}

void Detector::advance(TimeNs now) {
  if (clock_ == 0) {
    clock_ = now - now % kTickNs + kTickNs;
    return;
  }
  if (now < clock_) {
    if (now < clock_ - kTickNs) ++stats_.out_of_order;  // counted in the current tick
    return;
  }
  // A long gap runs as many ticks as it takes every window to empty and every
  // attack to end, then jumps.
  uint64_t budget = kWindowTicks + 1;
  for (const Profile& pr : cfg_.profiles)
    budget = std::max<uint64_t>(budget, uint64_t{pr.end_after_s} * 10 + kWindowTicks + 2);
  while (now >= clock_) {
    tick();
    clock_ += kTickNs;
    if (--budget == 0 && now >= clock_) {
      const uint64_t skip = static_cast<uint64_t>((now - clock_) / kTickNs);
      clock_ += static_cast<TimeNs>(skip) * kTickNs;
      tick_no_ += skip;
      // Conversations older than both generations are forgotten.
      if (tick_no_ - conv_rotated_tick_ >= 2 * kConvRotateTicks)
        for (auto& c : conv_)
          std::fill(c.begin(), c.end(), 0);
      conv_rotated_tick_ = tick_no_;
      budget = 1;
    }
  }
}

void Detector::tick() {
  bool suspect = false;
  for (auto& tp : targets_) {
    evaluate(*tp);
    suspect |= tp->attacked || tp->warm != 0;
  }
  // Nothing under attack or close to it: the heavy hitters start afresh.
  if (!suspect && heavy_.size() > 0) heavy_.clear();
  ++tick_no_;
  const uint32_t slot = static_cast<uint32_t>(tick_no_ % kWindowTicks);
  const bool second = tick_no_ % kWindowTicks == 0;
  for (auto& tp : targets_) {
    Target& t = *tp;
    for (size_t v = 0; v < kVectorCount; ++v) {
      t.win_pkts[v] -= t.pkts[v][slot];
      t.win_bytes[v] -= t.bytes[v][slot];
      t.pkts[v][slot] = 0;
      t.bytes[v][slot] = 0;
    }
    t.win_hs -= t.hs[slot];
    t.hs[slot] = 0;
    t.first_ts[slot] = 0;
    if (second) {
      t.entropy = t.spread.entropy();
      t.sources = t.spread.distinct();
      t.sessions = t.conns.distinct();
      t.spread.clear();
      t.conns.clear();
      if (t.attacked && t.quiet_ticks == 0) {  // the spread while it is loud
        t.info.entropy = t.entropy;
        t.info.sources = t.sources;
        t.info.sessions = t.sessions;
      }
    }
  }
  if (tick_no_ - conv_rotated_tick_ >= kConvRotateTicks) {
    std::swap(conv_[0], conv_[1]);
    std::fill(conv_[0].begin(), conv_[0].end(), 0);
    conv_rotated_tick_ = tick_no_;
  }
  // Addresses silent for ten minutes and not under attack make room.
  if (tick_no_ % 600 == 0 && !targets_.empty()) {
    std::erase_if(targets_, [&](const std::unique_ptr<Target>& t) {
      return !t->attacked && tick_no_ - t->last_packet_tick > 6000;
    });
    last_target_[0] = last_target_[1] = nullptr;
    for (auto& idx : index_)
      idx.clear();
    for (uint32_t i = 0; i < targets_.size(); ++i)
      index_[static_cast<size_t>(targets_[i]->dir)].emplace(targets_[i]->addr, i);
    stats_.targets = targets_.size();
  }
}

void Detector::evaluate(Target& t) {
  const Profile& prof = cfg_.profiles[t.profile];
  const bool learned = prof.mode != Mode::Emergency &&
                       t.history_ticks * kTickNs >= TimeNs{prof.learning_s} * 1'000'000'000;
  std::array<double, kClassCount> pps{}, bps{};
  for (size_t v = 0; v < kVectorCount; ++v) {
    const size_t c = static_cast<size_t>(classOf(static_cast<Vector>(v)));
    pps[c] += static_cast<double>(t.win_pkts[v]);
    bps[c] += static_cast<double>(t.win_bytes[v]) * 8;
  }
  // The current tick's rate of the attack's classes, for the peak at 100 ms.
  const uint32_t slot = static_cast<uint32_t>(tick_no_ % kWindowTicks);
  double tick_pps = 0, tick_bps = 0;
  uint32_t over = 0, loud = 0;  // over the threshold; over the end level
  std::array<Threshold, kClassCount> thr{};
  for (size_t c = 0; c < kClassCount; ++c) {
    const Threshold& fl = prof.floors[c];
    const Target::Baseline& b = t.base[c];
    double thr_p = fl.pps, thr_b = fl.bps;
    if (learned) {
      if (thr_p > 0)
        thr_p = std::max({thr_p, b.mean_pps + prof.sensitivity * std::sqrt(b.var_pps),
                          prof.multiplier * b.mean_pps});
      if (thr_b > 0)
        thr_b = std::max({thr_b, b.mean_bps + prof.sensitivity * std::sqrt(b.var_bps),
                          prof.multiplier * b.mean_bps});
    }
    thr[c] = {thr_p, thr_b};
  }
  // The SYN-to-ACK ratio, where the address's handshakes normally complete:
  // collapsed, the SYNs' threshold is their learned one without the floor;
  // steady, SYNs over the threshold are clients, not a flood.
  const size_t syn_c = static_cast<size_t>(VectorClass::Syn);
  const uint32_t syn_bit = 1u << syn_c;
  t.ratio_now =
      pps[syn_c] >= kRatioMinSyns ? std::min(1.0, static_cast<double>(t.win_hs) / pps[syn_c]) : -1;
  const bool ratio_trusted = learned && prof.syn_ack_ratio > 0 &&
                             t.ratio_ticks * kTickNs >= TimeNs{prof.learning_s} * 1'000'000'000 &&
                             t.ratio_mean >= kRatioMinBaseline;
  bool steady = false;
  if (ratio_trusted && t.ratio_now >= 0) {
    if (t.ratio_now < prof.syn_ack_ratio * t.ratio_mean) {
      const Target::Baseline& b = t.base[syn_c];
      const double learned_thr =
          std::max({prof.syn_ratio_min_pps, b.mean_pps + prof.sensitivity * std::sqrt(b.var_pps),
                    prof.multiplier * b.mean_pps});
      thr[syn_c].pps = thr[syn_c].pps > 0 ? std::min(thr[syn_c].pps, learned_thr) : learned_thr;
    } else {
      steady = true;
    }
  }
  for (size_t c = 0; c < kClassCount; ++c) {
    const double thr_p = thr[c].pps, thr_b = thr[c].bps;
    // At or over the threshold: a floor of 1 pps means "any such packet".
    const bool o = (thr_p > 0 && pps[c] >= thr_p) || (thr_b > 0 && bps[c] >= thr_b);
    const bool l = (thr_p > 0 && pps[c] >= prof.end_ratio * thr_p) ||
                   (thr_b > 0 && bps[c] >= prof.end_ratio * thr_b);
    if (o) over |= 1u << c;
    if (l) loud |= 1u << c;
  }
  // A crowd of clients completing their handshakes does not start a SYN flood
  // (one under way goes on: its spoofed SYNs never complete).
  const bool crowd = steady && (over & syn_bit) && !(t.attacked && (t.classes_over & syn_bit));
  if (crowd) {
    over &= ~syn_bit;
    if (!t.crowd) ++stats_.flash_crowds;
  }
  t.crowd = crowd;
  double attack_pps = 0, attack_bps = 0, thr_pps_sum = 0, base_pps_sum = 0;
  for (size_t c = 0; c < kClassCount; ++c) {
    if ((over & (1u << c)) || (t.attacked && (t.classes_over & (1u << c)))) {
      attack_pps += pps[c];
      attack_bps += bps[c];
      thr_pps_sum += thr[c].pps;
      base_pps_sum += t.base[c].mean_pps;
    }
  }
  const uint32_t attack_classes = t.attacked ? (t.classes_over | over) : over;
  for (size_t v = 0; v < kVectorCount; ++v) {
    if (!(attack_classes & classBit(classOf(static_cast<Vector>(v))))) continue;
    tick_pps += static_cast<double>(t.pkts[v][slot]) * kWindowTicks;
    tick_bps += static_cast<double>(t.bytes[v][slot]) * 8 * kWindowTicks;
  }
  // A burst shorter than the window shows its rate at 100 ms; a trickle (under
  // 100 packets a tick) is not magnified tenfold.
  if (tick_pps < 100.0 * kWindowTicks) tick_pps = tick_bps = 0;
  t.warm = loud;
  t.over_now = over;
  if (!t.attacked) {
    if (over) {
      startAttack(t, over, thr);
      t.info.pps = attack_pps;
      t.info.bps = attack_bps;
      t.info.peak_pps = std::max(attack_pps, tick_pps);
      t.info.peak_bps = std::max(attack_bps, tick_bps);
      t.info.threshold_pps = thr_pps_sum;
      t.info.baseline_pps = base_pps_sum;
      if (over & syn_bit) {
        t.info.syn_ack_ratio = t.ratio_now;
        t.info.syn_ack_baseline = ratio_trusted ? t.ratio_mean : -1;
      }
      if (cfg_.board) {
        bool speak = false;
        t.info.id = cfg_.board->open(cfg_.worker, t.info, &speak);
        if (speak) {
          ++stats_.attacks;
          emit(t.info, "start");
        }
      } else {
        emit(t.info, "start");
      }
      return;
    }
    // Peace time feeds the baseline: a running mean until 1/kEwmaMin ticks,
    // then an exponentially weighted one. A crowd does not: the threshold
    // stays that of ordinary days, and a flood behind the crowd is seen.
    if (crowd) return;
    ++t.history_ticks;
    const double a = std::max(kEwmaMin, 1.0 / static_cast<double>(t.history_ticks));
    for (size_t c = 0; c < kClassCount; ++c) {
      Target::Baseline& b = t.base[c];
      const double dp = pps[c] - b.mean_pps, db = bps[c] - b.mean_bps;
      b.mean_pps += a * dp;
      b.var_pps = (1 - a) * (b.var_pps + a * dp * dp);
      b.mean_bps += a * db;
      b.var_bps = (1 - a) * (b.var_bps + a * db * db);
    }
    if (t.ratio_now >= 0) {
      ++t.ratio_ticks;
      t.ratio_mean += std::max(kEwmaMin, 1.0 / static_cast<double>(t.ratio_ticks)) *
                      (t.ratio_now - t.ratio_mean);
    }
    return;
  }
  // A class crossing during the attack is news: an update at once.
  const bool joined = (over & ~t.classes_over) != 0;
  t.classes_over |= over;
  t.info.pps = attack_pps;
  t.info.bps = attack_bps;
  t.info.peak_pps = std::max({t.info.peak_pps, attack_pps, tick_pps});
  t.info.peak_bps = std::max({t.info.peak_bps, attack_bps, tick_bps});
  if (thr_pps_sum > 0) t.info.threshold_pps = thr_pps_sum;
  if ((t.classes_over & syn_bit) && t.ratio_now >= 0) {  // the last second that showed one
    t.info.syn_ack_ratio = t.ratio_now;
    t.info.syn_ack_baseline = ratio_trusted ? t.ratio_mean : -1;
  }
  t.quiet_ticks = loud ? 0 : t.quiet_ticks + 1;
  if (t.quiet_ticks * kTickNs >= TimeNs{prof.end_after_s} * 1'000'000'000) {
    endAttack(t, false);
    return;
  }
  if (joined || clock_ >= t.next_update) {
    t.next_update = clock_ + TimeNs{prof.update_s} * 1'000'000'000;
    fill(t, t.info);
    AttackInfo merged;
    if (!cfg_.board)
      emit(t.info, "update");
    else if (cfg_.board->post(cfg_.worker, t.info, &merged))
      emit(merged, "update");
  }
}

void Detector::startAttack(Target& t, uint32_t over_classes,
                           const std::array<Threshold, kClassCount>& thr) {
  const Profile& prof = cfg_.profiles[t.profile];
  t.attacked = true;
  t.classes_over = over_classes;
  t.quiet_ticks = 0;
  t.attack_pkts.fill(0);
  t.quarantine = {};  // full at its first use
  AttackInfo& a = t.info;
  a = AttackInfo{};
  a.id = next_id_++;
  a.target = t.addr;
  a.direction = t.dir;
  a.protect = cfg_.protect[t.protect].name;
  a.profile = prof.name;
  a.mode = prof.mode;
  a.quarantine = t.dir == Direction::Outbound ? prof.quarantine : Quarantine::None;
  // The attack began at the first packet of the oldest tick in the window
  // whose own rate, in a class that crossed, was half its threshold or more.
  a.start_ns = clock_ - kTickNs;
  for (uint32_t i = 1; i <= kWindowTicks; ++i) {
    const uint32_t slot = static_cast<uint32_t>((tick_no_ + i) % kWindowTicks);
    std::array<double, kClassCount> p{}, b{};
    for (size_t v = 0; v < kVectorCount; ++v) {
      const size_t c = static_cast<size_t>(classOf(static_cast<Vector>(v)));
      p[c] += static_cast<double>(t.pkts[v][slot]) * kWindowTicks;
      b[c] += static_cast<double>(t.bytes[v][slot]) * 8 * kWindowTicks;
    }
    bool elevated = false;
    for (size_t c = 0; c < kClassCount; ++c)
      elevated |= (over_classes & (1u << c)) && p[c] > 0 &&
                  ((thr[c].pps > 0 && p[c] >= thr[c].pps / 2) ||
                   (thr[c].bps > 0 && b[c] >= thr[c].bps / 2));
    if (elevated) {
      a.start_ns = t.first_ts[slot];
      break;
    }
  }
  a.detected_ns = clock_;
  // The window that crossed the line is the attack's first second.
  for (size_t v = 0; v < kVectorCount; ++v) {
    if (!(over_classes & classBit(classOf(static_cast<Vector>(v))))) continue;
    t.attack_pkts[v] = t.win_pkts[v];
    a.packets += t.win_pkts[v];
    a.bytes += t.win_bytes[v];
  }
  a.passed = a.packets;  // they went through before anyone knew
  t.next_update = clock_ + TimeNs{prof.update_s} * 1'000'000'000;
  ++attacks_active_;
  if (!cfg_.board) ++stats_.attacks;  // with a board: counted by the worker that opens it
  stats_.active = attacks_active_;
  // The spread of this second so far, or of the last one when this one has
  // barely begun.
  const bool now_enough = t.spread.packets() >= 100 || t.sources == 0;
  a.entropy = now_enough ? t.spread.entropy() : t.entropy;
  a.sources = now_enough ? t.spread.distinct() : t.sources;
  a.sessions = now_enough ? t.conns.distinct() : t.sessions;
  fill(t, a);
}

void Detector::fill(Target& t, AttackInfo& a) {
  // Vectors: those of the classes that crossed, with 5% of their packets or
  // more, and those of a class over its threshold now (one that just joined).
  uint64_t total = 0;
  for (size_t v = 0; v < kVectorCount; ++v)
    if (t.classes_over & classBit(classOf(static_cast<Vector>(v)))) total += t.attack_pkts[v];
  a.vectors.clear();
  for (size_t v = 0; v < kVectorCount; ++v) {
    if (!(t.classes_over & classBit(classOf(static_cast<Vector>(v))))) continue;
    const uint64_t n = t.attack_pkts[v];
    const bool now = (t.over_now & classBit(classOf(static_cast<Vector>(v)))) != 0;
    if (n > 0 && (n * 20 >= total || now)) a.vectors.emplace_back(static_cast<Vector>(v), n);
  }
  std::sort(a.vectors.begin(), a.vectors.end(),
            [](const auto& x, const auto& y) { return x.second > y.second; });
  a.primary = a.vectors.empty() ? Vector::None : a.vectors.front().first;
  a.top.clear();
  for (const auto& e : heavy_.top(heavy_.size())) {
    if (a.top.size() >= cfg_.top_sources) break;
    if (t.dir == Direction::Inbound && e.key.dst == t.addr) a.top.emplace_back(e.key.src, e.count);
    if (t.dir == Direction::Outbound && e.key.src == t.addr) a.top.emplace_back(e.key.dst, e.count);
  }
}

void Detector::endAttack(Target& t, bool cut_short) {
  t.attacked = false;
  t.info.end_ns = clock_;
  t.info.cut_short = cut_short;
  t.info.pps = 0;
  t.info.bps = 0;
  fill(t, t.info);
  AttackInfo merged;
  if (!cfg_.board)
    emit(t.info, "end");
  else if (cfg_.board->close(cfg_.worker, t.info, &merged))
    emit(merged, "end");
  if (history_.size() < kMaxHistory) history_.push_back(t.info);
  --attacks_active_;
  stats_.active = attacks_active_;
}

void Detector::reconfigure(DetectorConfig cfg) {
  cfg_ = normalised(std::move(cfg));
  last_index_ = kNoLookup;
  indexPrefixes();
  std::vector<std::unique_ptr<Target>> kept;
  for (auto& t : targets_) {
    const int pi = protectedIndex(t->addr);
    if (pi < 0 || kept.size() >= cfg_.max_targets) {
      if (t->attacked) endAttack(*t, true);
      continue;
    }
    t->protect = static_cast<uint16_t>(pi);
    t->profile = cfg_.protect[static_cast<size_t>(pi)].profile;
    kept.push_back(std::move(t));
  }
  targets_ = std::move(kept);
  last_target_[0] = last_target_[1] = nullptr;
  for (auto& idx : index_)
    idx.clear();
  for (uint32_t i = 0; i < targets_.size(); ++i)
    index_[static_cast<size_t>(targets_[i]->dir)].emplace(targets_[i]->addr, i);
  stats_.targets = targets_.size();
}

void Detector::synProxy(const IpAddr& dst, SynProxyView& v) const {
  v = SynProxyView{};
  const int pi = protectedIndex(dst);
  if (pi < 0) return;
  const Profile& prof = profileOf(pi);
  v.mode = prof.syn_proxy;
  v.mss = prof.proxy_mss ? prof.proxy_mss : dst.isV4() ? 1460 : 1440;
  v.wscale = prof.proxy_wscale;
  if (v.mode == SynProxyMode::Always) {
    v.active = true;
  } else if (v.mode == SynProxyMode::OnAttack) {
    if (const Target* t = findTarget(dst, Direction::Inbound))
      v.active = t->attacked && (t->classes_over & classBit(VectorClass::Syn)) != 0;
  }
}

Detector::OutboundView Detector::outbound(const IpAddr& a) const {
  OutboundView v;
  const Target* found = findTarget(a, Direction::Outbound);
  if (!found || !found->attacked) return v;
  const Target& t = *found;
  const Profile& prof = cfg_.profiles[t.profile];
  v.attacked = true;
  v.id = t.info.id;
  v.primary = t.info.primary;
  v.start_ns = t.info.start_ns;
  v.quarantine = prof.quarantine;
  v.quarantine_pps = prof.quarantine_pps;
  return v;
}

const Limits* Detector::limitsFor(const IpAddr& dst) const {
  const int pi = protectedIndex(dst);
  if (pi < 0) return nullptr;
  return &profileOf(pi).limits;
}

std::string Detector::describe(const IpAddr& a) const {
  const int pi = protectedIndex(a);
  if (pi < 0) return strCat(a.toString(), " is not protected");
  const ProtectedPrefix& pp = cfg_.protect[static_cast<size_t>(pi)];
  const Profile& prof = profileOf(pi);
  std::string out = strCat(a.toString(), " protected by ", pp.name, " (profile ", prof.name, ", ",
                           toString(prof.mode), ")");
  const auto& index = index_[static_cast<size_t>(Direction::Inbound)];
  if (auto it = index.find(a); it != index.end() && targets_[it->second]->attacked) {
    const AttackInfo& at = targets_[it->second]->info;
    out += strCat(", under attack #", std::to_string(at.id), " (", vectorName(at.primary), ")");
  } else {
    out += ", no attack on it";
  }
  return out;
}

void Detector::finish(TimeNs now) {
  if (clock_ == 0) return;
  advance(now);
  // The tick the input ended in counts too (a capture shorter than a tick is
  // all in it).
  for (auto& t : targets_)
    evaluate(*t);
  for (auto& t : targets_)
    if (t->attacked) endAttack(*t, true);
}

void Detector::emit(const AttackInfo& a, const char* what) {
  if (!sink_) return;
  events::Event e;
  e.type = events::EventType::Ddos;
  e.ts_ns = clock_;
  JsonWriter w(e.body);
  w.key("ddos").beginObject();
  w.field("event", what).field("id", a.id);
  w.field("attack", vectorName(a.primary));
  w.key("vectors").beginArray();
  for (const auto& [v, n] : a.vectors)
    w.value(vectorName(v));
  w.endArray();
  w.field("target", a.target).field("direction", toString(a.direction));
  w.field("protect", a.protect).field("profile", a.profile).field("mode", toString(a.mode));
  if (a.direction == Direction::Outbound) w.field("quarantine", toString(a.quarantine));
  char buf[40];
  w.field("start", std::string_view(buf, formatRfc3339(a.start_ns, buf)));
  if (a.end_ns) {
    w.field("end", std::string_view(buf, formatRfc3339(a.end_ns, buf)));
    w.field("duration_ms", static_cast<uint64_t>((a.end_ns - a.start_ns) / 1'000'000));
  }
  auto num = [&](std::string_view k, double v) {
    w.field(k, static_cast<uint64_t>(std::llround(std::max(0.0, v))));
  };
  num("pps", a.pps);
  num("bps", a.bps);
  num("peak_pps", a.peak_pps);
  num("peak_bps", a.peak_bps);
  num("threshold_pps", a.threshold_pps);
  num("baseline_pps", a.baseline_pps);
  w.field("packets", a.packets).field("bytes", a.bytes);
  w.field("dropped", a.dropped).field("passed", a.passed);
  num("source_entropy_pct", a.entropy * 100);
  if (a.syn_ack_ratio >= 0) num("syn_ack_ratio_pct", a.syn_ack_ratio * 100);
  if (a.syn_ack_baseline >= 0) num("syn_ack_baseline_pct", a.syn_ack_baseline * 100);
  w.field("sources", a.sources);
  w.field("sessions", a.sessions);
  w.key(a.direction == Direction::Inbound ? "top_sources" : "top_destinations").beginArray();
  for (const auto& [ip, n] : a.top)
    w.beginObject().field("ip", ip).field("packets", n).endObject();
  w.endArray();
  if (a.cut_short) w.field("cut_short", true);
  w.endObject();
  sink_(e);
}

}  // namespace palisade::ddos
