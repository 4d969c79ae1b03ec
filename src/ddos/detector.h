// Detector: per-address traffic profiles, flood and reflection detection, and
// the scrubbing verdict while an attack lasts.
//
// Every packet to or from a protected address (a prefix of `ddos.protect`) is
// counted for that address, by direction, under one attack vector
// (vectors.h). Traffic the address asked for (replies to what it sent, the
// rest of a handshake it saw begin) counts under no vector. Every 100 ms of
// packet time each address's last second is compared, class by class, with a
// threshold: the profile's floor, or once the profile has learned (`learning`
// seconds of history) the larger of the floor, mean + sensitivity x standard
// deviation and multiplier x mean of the class's own rate, an exponentially
// weighted baseline that attacks do not feed. A class over its threshold
// starts an attack; all classes under end_ratio x threshold for `end_after`
// seconds end it (hysteresis). Start, periodic update and end events carry
// the vectors, rates and peaks, packets dropped and passed, the source
// spread (entropy, distinct sources) and the heaviest sources.
//
// While an address is under attack (always, in always-on mode) the verdict
// drops what cannot be legitimate: SYN-ACKs, ACKs and RSTs outside known
// connections, unsolicited amplification replies and their fragments, and
// floods from the heaviest sources. A protected address that attacks others
// (outbound) is quarantined as its profile says.
//
// Memory is bounded: `max_targets` addresses (about 7 KB each), one
// heavy-hitter summary (98 KB), two 128 KB conversation filters and a 4096-entry
// fragment table. One Detector per worker thread; nothing is shared.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/net.h"
#include "core/time.h"
#include "core/token_bucket.h"
#include "ddos/sketch.h"
#include "ddos/vectors.h"
#include "events/event.h"
#include "packet/packet.h"

namespace palisade::ddos {

class AttackBoard;

enum class Mode : uint8_t { OnDemand, AlwaysOn, Emergency };
enum class Quarantine : uint8_t { None, RateLimit, Isolate };
enum class Direction : uint8_t { Inbound, Outbound };
// When the SYN proxy answers new TCP connections to a protected address.
enum class SynProxyMode : uint8_t { Off, OnAttack, Always };
const char* toString(Mode m);
const char* toString(SynProxyMode m);
const char* toString(Quarantine q);
const char* toString(Direction d);

struct Threshold {
  double pps = 0;  // packets per second; 0: not checked
  double bps = 0;  // bits per second; 0: not checked
};

// Token-bucket limits on what reaches the DDoS stage toward a protected
// address: in the data plane, packets outside answered connections (new
// connections, stray packets, flows never answered) and, for the per-source
// limits, established connections' packets too (sourceAdmits); in `palisade
// ddos -r`, every packet. A bucket holds one second of its rate. 0: no limit.
struct Limits {
  double source_pps = 0, source_bps = 0;  // per source address, per protect entry
  double target_pps = 0, target_bps = 0;  // per protected address, all sources together
  bool any() const { return source_pps > 0 || source_bps > 0 || target_pps > 0 || target_bps > 0; }
  // Connections to each input endpoint of the address, in the data plane
  // (pipeline/conn_limits.h): per client and per endpoint, at once, still
  // half-open (TCP), and new per second. 0: no limit.
  double source_connections = 0, source_half_open = 0, source_cps = 0;
  double target_connections = 0, target_half_open = 0, target_cps = 0;
  // Every packet from the uplink to the NIC behind one of the address's
  // input endpoints, established connections included (pipeline). 0: none.
  double nic_pps = 0, nic_bps = 0;
  bool anyConnections() const {
    return source_connections > 0 || source_half_open > 0 || source_cps > 0 ||
           target_connections > 0 || target_half_open > 0 || target_cps > 0;
  }
};

struct Profile {
  std::string name = "default";
  Mode mode = Mode::OnDemand;
  std::array<Threshold, kClassCount> floors = defaultFloors();
  double sensitivity = 4;                       // standard deviations above the baseline mean
  double multiplier = 3;                        // and at least this many times the mean
  uint32_t learning_s = 60;                     // history before the baseline is trusted
  uint32_t end_after_s = 10;                    // quiet this long: the attack is over
  double end_ratio = 0.5;                       // "quiet": under this fraction of the threshold
  uint32_t update_s = 10;                       // seconds between update events
  Quarantine quarantine = Quarantine::Isolate;  // a protected address attacking out
  double quarantine_pps = 100;                  // its rate under RateLimit
  Limits limits;
  // The SYN proxy (pipeline/synproxy.h): on while a SYN flood is on the
  // address (OnAttack), all the time, or never. Its SYN-ACK offers `proxy_mss`
  // (0: 1460 over IPv4, 1440 over IPv6) and, to a client that scales its
  // window, `proxy_wscale`; the server's own are translated to them.
  SynProxyMode syn_proxy = SynProxyMode::OnAttack;
  uint16_t proxy_mss = 0;
  uint8_t proxy_wscale = 7;
  // The SYN-to-ACK ratio: the share of an address's SYNs whose handshake
  // completes, learned like the rates once handshakes are seen. When it falls
  // under syn_ack_ratio x its baseline, SYNs from `syn_ratio_min_pps` and
  // over the learned part of their threshold (not the floor) are a flood; when
  // it holds, SYNs over their threshold are a crowd of real clients (counted
  // as a flash crowd; no attack). 0: the ratio is not used.
  double syn_ack_ratio = 0.5;
  double syn_ratio_min_pps = 100;

  // Conservative floors for an address with no history (emergency mode).
  static std::array<Threshold, kClassCount> defaultFloors();
};

struct ProtectedPrefix {
  Prefix prefix;
  uint16_t profile = 0;  // index into DetectorConfig::profiles
  std::string name;      // what the policy calls it
};

struct DetectorConfig {
  std::vector<Profile> profiles{Profile{}};
  std::vector<ProtectedPrefix> protect;  // empty: nothing is watched
  uint32_t max_targets = 1024;
  uint32_t top_sources = 10;
  // SpaceSaving counters of (source, destination): 1,920 take 98 KB, and find
  // the top 100 sources of a million-packet flood (ddos_bench).
  uint32_t heavy_hitters = 1920;
  // Several workers' detectors reporting one attack together (board.h):
  // the board they share and this detector's worker number. Null: alone.
  std::shared_ptr<AttackBoard> board;
  uint32_t worker = 0;
  // The caller tracks connections (the data plane): what follows a SYN is
  // its flow's, never shown here, so a SYN marks no conversation.
  bool tracked = false;
};

struct DetectorStats {
  uint64_t packets = 0;       // IP packets seen
  uint64_t watched = 0;       // to or from a protected address
  uint64_t untracked = 0;     // of addresses the target table had no room for
  uint64_t dropped = 0;       // by the scrubbing verdict
  uint64_t limited = 0;       // over a profile's rate limit
  uint64_t attacks = 0;       // started (with a board: opened by this detector)
  uint64_t active = 0;        // now
  uint64_t targets = 0;       // addresses tracked now
  uint64_t out_of_order = 0;  // packets older than the clock (counted at the clock)
  uint64_t handshakes = 0;    // TCP handshakes to a protected address completed
  uint64_t flash_crowds = 0;  // SYN rates over the threshold held back by a steady ratio
};

// What one attack event says (also kept as the attack's summary).
struct AttackInfo {
  uint64_t id = 0;
  IpAddr target;
  Direction direction = Direction::Inbound;
  std::string protect;  // the protected prefix's name
  std::string profile;
  Mode mode = Mode::OnDemand;
  Quarantine quarantine = Quarantine::None;  // outbound only
  Vector primary = Vector::None;
  std::vector<std::pair<Vector, uint64_t>> vectors;  // packets per vector, most first
  TimeNs start_ns = 0, end_ns = 0;
  TimeNs detected_ns = 0;  // when the start event was raised
  double pps = 0, bps = 0, peak_pps = 0, peak_bps = 0;
  double threshold_pps = 0, baseline_pps = 0;
  // SYN floods: the share of SYNs whose handshake completed in the last
  // second, and its learned baseline; -1: not known (too few SYNs, no history).
  double syn_ack_ratio = -1, syn_ack_baseline = -1;
  uint64_t packets = 0, bytes = 0, dropped = 0, passed = 0;
  double entropy = 0;
  uint64_t sources = 0;   // distinct, estimated (last second)
  uint64_t sessions = 0;  // distinct connections (peer, ports, protocol), estimated, last second
  std::vector<std::pair<IpAddr, uint64_t>> top;  // sources (inbound) or victims (outbound)
  bool cut_short = false;                        // the input ended during it
};

class Detector {
 public:
  // Drop: the scrubbing path's; Limit: over a profile's rate limit.
  enum class Verdict : uint8_t { Pass, Drop, Limit };
  using Sink = std::function<void(const events::Event&)>;

  explicit Detector(DetectorConfig cfg);
  ~Detector();

  // What process() counted the packet as.
  struct Mark {
    Vector vector = Vector::None;
    bool attacked = false;  // it belongs to an attack under way (its class crossed)
  };
  // Counts the packet, runs the detection clock up to ts, and says whether the
  // scrubbing path keeps it. Non-IP packets pass uncounted. With `mark`, what
  // it counted (the destination's view first).
  Verdict process(const pkt::Packet& p, TimeNs ts, Mark* mark = nullptr);
  // A TCP handshake to protected address `server` completed at `ts` (the
  // data plane's connection tracking saw the client's ACK, or the SYN proxy
  // validated its cookie). process() finds those of the conversations it
  // sees whole itself (a capture): the caller tells only what it hides.
  void handshake(const IpAddr& server, TimeNs ts);
  // Runs the clock to `now` with no packet (idle time in live mode).
  void advance(TimeNs now);
  // Ends every attack still going (the input ended at `now`).
  void finish(TimeNs now);
  // A new configuration (a reloaded policy): addresses still protected keep
  // their history, baselines and attacks under their new profile; the others
  // end their attacks and are forgotten.
  void reconfigure(DetectorConfig cfg);

  // The SYN proxy's settings for new connections to `dst`. `active`: answer
  // SYNs with cookies now; a configured proxy (mode != Off) validates cookies
  // in ACKs even while inactive (the SYN-ACK may predate the attack's end).
  struct SynProxyView {
    SynProxyMode mode = SynProxyMode::Off;
    bool active = false;
    uint16_t mss = 0;
    uint8_t wscale = 7;
  };
  // Fills `v` (an out-parameter: a small struct returned in a register is
  // packed through the stack, and reading it back stalled the SYN path).
  void synProxy(const IpAddr& dst, SynProxyView& v) const;
  // The attack launched from protected address `a`, while one lasts.
  struct OutboundView {
    bool attacked = false;
    uint64_t id = 0;
    Vector primary = Vector::None;
    TimeNs start_ns = 0;
    Quarantine quarantine = Quarantine::None;  // the profile's
    double quarantine_pps = 0;
  };
  OutboundView outbound(const IpAddr& a) const;
  // A packet of an established connection from `src` to protected address
  // `dst` (`len` bytes): whether the profile's per-source rate limit (the
  // bucket new connections and stray packets draw from too) lets it through.
  bool sourceAdmits(const IpAddr& src, const IpAddr& dst, uint64_t len, TimeNs ts);
  // Starts loading the per-source rate-limit bucket a packet from `src` to
  // `dst` will use, if its profile limits sources: a burst calls it a few
  // packets ahead. Under a spoofed flood each source's bucket is a random
  // line of 640 KB, and waiting for it was most of the per-source limit's cost.
  void prefetchSource(const IpAddr& src, const IpAddr& dst) const;
  // The limits of the profile protecting `dst`; null when none protects it.
  const Limits* limitsFor(const IpAddr& dst) const;

  // For traces: whether `a` is protected, by which entry and profile, and
  // whether an attack on it is under way.
  std::string describe(const IpAddr& a) const;

  void setSink(Sink sink) { sink_ = std::move(sink); }
  const DetectorStats& stats() const { return stats_; }
  // Every attack that started, in order (ended ones complete); at most 10,000.
  const std::vector<AttackInfo>& attacks() const { return history_; }
  const DetectorConfig& config() const { return cfg_; }

 private:
  struct Target;
  struct PairKey {
    IpAddr src, dst;
    friend bool operator==(const PairKey&, const PairKey&) = default;
  };

  // The protect entry whose prefix holds `a`, or -1. Inline, asked several
  // times per packet: a spoofed source is told by its /16's bit, and the
  // destination asked about last by the cached answer.
  int protectedIndex(const IpAddr& a) const {
    if (a.isV4()) {
      const uint32_t s = a.v4Value() >> 16;
      if (!(v4_sixteens_[s / 64] >> (s % 64) & 1)) return -1;
    }
    if (a == last_lookup_ && last_index_ != kNoLookup) return last_index_;
    return protectedIndexScan(a);
  }
  int protectedIndexScan(const IpAddr& a) const;
  const Profile& profileOf(int protect_index) const {
    return cfg_.profiles[cfg_.protect[static_cast<size_t>(protect_index)].profile];
  }
  // protectedIndex's last answer (reset by reconfigure()).
  static constexpr int kNoLookup = -2;
  mutable IpAddr last_lookup_;
  mutable int last_index_ = kNoLookup;
  // The target target() found last, per direction: a flood asks for one
  // victim at every packet. Cleared when the targets are rebuilt.
  Target* last_target_[2] = {nullptr, nullptr};
  // The IPv4 /16s a protected prefix touches (a bit each, 8 KB): most
  // addresses of a spoofed flood are no protected one's, told at once.
  std::vector<uint64_t> v4_sixteens_;
  void indexPrefixes();
  Target* target(const IpAddr& a, Direction d, int protect_index);
  // The address's target if it has one (the last one used first: a flood's
  // packets all ask for the same), or nullptr.
  const Target* findTarget(const IpAddr& a, Direction d) const;
  Target* findTarget(const IpAddr& a, Direction d) {
    return const_cast<Target*>(std::as_const(*this).findTarget(a, d));
  }
  Vector classifyInbound(const pkt::Packet& p);
  Vector classifyOutbound(const pkt::Packet& p);
  bool solicited(const IpAddr& local, const IpAddr& peer, uint16_t peer_port, uint8_t proto) const;
  void markConversation(const IpAddr& local, const IpAddr& peer, uint16_t peer_port, uint8_t proto);
  // The peer sent to `local` (from peer_port) first: local's UDP to it answers.
  bool asked(const IpAddr& local, const IpAddr& peer, uint16_t peer_port, uint8_t proto) const;
  void markAsked(const IpAddr& local, const IpAddr& peer, uint16_t peer_port, uint8_t proto);
  Verdict account(Target& t, Vector v, const pkt::Packet& p, TimeNs ts);
  void tick();
  void evaluate(Target& t);
  void startAttack(Target& t, uint32_t over_classes,
                   const std::array<Threshold, kClassCount>& thresholds);
  void endAttack(Target& t, bool cut_short);
  void fill(Target& t, AttackInfo& info);
  void emit(const AttackInfo& info, const char* what);

  DetectorConfig cfg_;
  DetectorStats stats_;
  Sink sink_;
  TimeNs clock_ = 0;      // end of the current tick; 0 before the first packet
  uint64_t tick_no_ = 0;  // ticks run
  uint64_t seed_;
  std::vector<std::unique_ptr<Target>> targets_;
  // Seeded per detector: the addresses are a flood's choosing (any address of
  // a protected prefix), and with a known hash they could be picked to share
  // one chain of the map.
  struct AddrHash {
    uint64_t seed;
    size_t operator()(const IpAddr& a) const { return hashBytes(a.b.data(), a.b.size(), seed); }
  };
  using TargetIndex = std::unordered_map<IpAddr, uint32_t, AddrHash>;
  TargetIndex index_[2];  // per direction
  SpaceSaving<PairKey> heavy_;
  uint64_t sample_ = 0;
  uint32_t attacks_active_ = 0;
  uint64_t next_id_ = 1;
  std::vector<AttackInfo> history_;
  // Conversations a protected address took part in: two generations of a
  // 2^20-bit filter, the older dropped every 30 s.
  std::vector<uint64_t> conv_[2];
  uint64_t conv_rotated_tick_ = 0;
  struct SourceBucket {
    uint64_t tag = 0;
    PacketRate b;
  };
  bool limited(Target& t, const pkt::Packet& p, TimeNs ts);
  bool sourceOver(uint16_t protect, const Limits& l, const IpAddr& src, uint64_t len, TimeNs ts);
  static constexpr size_t kSourceBuckets = 16384;  // a power of two
  std::vector<SourceBucket> source_buckets_;  // kSourceBuckets, direct-mapped by (source, entry)
  uint64_t sourceHash(uint16_t protect, const IpAddr& src) const;
  struct FragSlot {
    uint64_t tag = 0;
    uint8_t vector = 0;  // Vector, or kLegit
  };
  std::vector<FragSlot> frags_;
  // SYN-ACKs a protected address sent, waiting for the client's ACK
  // (direct-mapped by connection; a collision forgets the older).
  std::vector<uint64_t> pending_hs_;
};

}  // namespace palisade::ddos
