// The unified flow table: connection tracking and the flow cache in one entry.
//
// Each connection has one Flow. It is found under two keys: the original
// direction (as the first packet was seen) and the reply direction (with NAT
// applied, so a reply to an SNAT'd flow is found by remote -> VIP:port on the
// uplink). Besides TCP/UDP/ICMP state it carries the composed action of all
// layers (an index into the pipeline's action table) and the policy generation
// that produced it, so a hit skips every layer until the policy changes.
//
// Memory: capacity is fixed at construction; nothing allocates afterwards. A
// Flow is 108 bytes and the index costs 10 bytes per connection (two 32-bit
// slots at load factor <= 0.8) plus one byte of occupancy: 119 bytes per tracked
// connection in all.
// Slot layout: entry index (25 bits) | hash tag (6 bits) | direction (1 bit), so
// one table holds at most 2^25 (33.5 M) connections; the tag lets a probe skip
// most foreign entries without touching them.
//
// When full, insert() first evicts expired flows near the new key, then the
// oldest embryonic or closing flow among them (SYN_SENT, SYN_RECV, unreplied
// UDP/ICMP, FIN_WAIT..CLOSE), as Linux's early_drop does; an established flow is
// never evicted to make room, the new connection is refused and counted instead.
//
// Threading: one table per worker; not thread-safe.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/huge_array.h"
#include "core/net.h"
#include "packet/packet.h"

namespace palisade::flow {

inline constexpr uint32_t kUplinkZone = 0;  // zone of uplink-side (Internet) tuples
inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr uint16_t kNoNic = UINT16_MAX;

struct FlowKey {
  IpAddr src, dst;
  uint32_t zone = 0;  // VNet id for tenant-side tuples, kUplinkZone for the Internet side
  uint16_t sport = 0, dport = 0;  // ICMP: echo id and type<<8|code (see keyFor)
  uint8_t proto = 0;
  uint8_t pad[3]{};
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
static_assert(std::has_unique_object_representations_v<FlowKey>);

// The key's reverse (what a reply looks like before any NAT).
inline FlowKey reversed(const FlowKey& k) {
  FlowKey r = k;
  r.src = k.dst;
  r.dst = k.src;
  r.sport = k.dport;
  r.dport = k.sport;
  return r;
}

enum class TcpState : uint8_t {
  None,
  SynSent,
  SynRecv,
  Established,
  FinWait,
  CloseWait,
  LastAck,
  TimeWait,
  Close,
};
const char* toString(TcpState s);

enum class NatKind : uint8_t { None, Source, Destination };

enum class Dir : uint8_t { Orig = 0, Reply = 1 };

// Flow::flags
inline constexpr uint8_t kSeenReply = 1;  // a packet went the other way
inline constexpr uint8_t kAssured = 2;    // established both ways; not evicted early
inline constexpr uint8_t kPickedUp = 4;   // TCP tracked from mid-stream (loose mode)
inline constexpr uint8_t kSynProxy = 8;   // opened by the SYN proxy: its segments are translated
inline constexpr uint8_t kLimited =
    16;  // counted by connection limits (the erase hook releases it)
inline constexpr uint8_t kHalfOpen = 32;  // counted half-open by them, handshake not finished
inline constexpr uint8_t kIdsDrop = 64;   // an IPS drop rule matched: its packets are dropped

struct TcpWindow {
  uint32_t end;     // highest seq+len sent
  uint32_t maxend;  // highest ack+window the peer allowed
  uint32_t maxwin;  // largest window advertised (scaled); 0 = not seen yet
};

struct Flow {
  IpAddr src, dst;  // original direction
  uint32_t zone;
  uint16_t sport, dport;
  uint16_t nat_port;  // the translated port (SNAT: source, DNAT: destination)
  uint16_t nat_addr;  // index into the table's pool of (address, zone) pairs
  uint16_t nic;       // port index of the tenant NIC the flow is charged to; kNoNic
  uint8_t proto;
  NatKind nat;
  TcpState tcp_state;
  uint8_t flags;
  uint8_t wscale[2];  // per direction; 0xff = no window scaling
  TcpWindow win[2];
  uint32_t action;      // pipeline action index
  uint32_t generation;  // policy generation that computed `action`
  uint32_t last_ms;     // last packet, milliseconds on the table's clock (wraps after 49 days)
  uint32_t report_ms;   // last flow-log record
  uint32_t packets[2];  // since the last flow-log record
  uint32_t bytes[2];
};
static_assert(sizeof(Flow) == 108);

struct Timeouts {  // seconds; netfilter's defaults
  uint32_t tcp_syn_sent = 120, tcp_syn_recv = 60, tcp_established = 432000, tcp_fin_wait = 120,
           tcp_close_wait = 60, tcp_last_ack = 30, tcp_time_wait = 120, tcp_close = 10;
  uint32_t udp = 30, udp_stream = 120, icmp = 30, other = 600;
};

struct Config {
  uint32_t capacity = 1u << 20;  // connections
  uint32_t per_nic_limit = 0;    // connections charged to one NIC; 0 = no limit
  bool loose = false;            // pick up mid-stream TCP and resync out-of-window segments
  Timeouts timeouts;
  // Seed of the index hash. 0: from the kernel's random source, so keys an
  // attacker chooses cannot be aimed at one probe chain; fixed: reproducible
  // runs.
  uint64_t seed = 0;
};

// The translated side of a connection: its address and port after NAT, and the
// zone its tuples live in (SNAT: the VIP on the uplink; DNAT: the NIC in its VNet).
struct NatSpec {
  NatKind kind = NatKind::None;
  IpAddr addr;
  uint16_t port = 0;
  uint32_t zone = kUplinkZone;
};

// Index slot layout (see the header comment); shared with the inline prefetch.
namespace slot {
inline constexpr uint32_t kEmptySlot = UINT32_MAX;
constexpr uint32_t slotIdx(uint32_t s) {
  return s >> 7;
}
constexpr uint32_t slotTag(uint32_t s) {
  return (s >> 1) & 0x3f;
}
constexpr Dir slotDir(uint32_t s) {
  return static_cast<Dir>(s & 1);
}
constexpr uint32_t tagOf(uint64_t h) {
  return static_cast<uint32_t>(h & 0x3f);
}
}  // namespace slot

enum class InsertError : uint8_t { None, TableFull, NicQuota, PoolFull };

struct Hit {
  uint32_t idx = kNone;
  Dir dir = Dir::Orig;
  bool found() const { return idx != kNone; }
};

// What tracking a packet concluded.
enum class Track : uint8_t {
  Ok,
  OutOfWindow,  // seq/ack outside the van Rooij window
  BadFlags,     // a segment not valid in this state (SYN on an established flow, ...)
  NoSyn,        // first packet of a TCP flow is not a SYN (strict mode)
};

class FlowTable {
 public:
  explicit FlowTable(const Config& cfg);

  const Config& config() const { return cfg_; }
  // Takes new timeouts, tracking mode and per-NIC limit at once (flows keep
  // their state; their next timeout is the new one; a lower limit refuses new
  // flows and ends none). Capacity and seed stay: they shape the table.
  void retune(const Timeouts& t, bool loose, uint32_t per_nic_limit) {
    cfg_.timeouts = t;
    cfg_.loose = loose;
    cfg_.per_nic_limit = per_nic_limit;
  }
  uint32_t size() const { return live_; }
  uint32_t capacity() const { return cfg_.capacity; }
  size_t memoryBytes() const;
  // For tests: whether the index's line summary says, for every line, exactly
  // whether it holds an entry (a stale bit costs speed, a missing one loses flows).
  bool indexSummaryExact() const;

  Hit find(const FlowKey& k) const { return find(k, hash(k)); }
  Hit find(const FlowKey& k, uint64_t h) const {  // h: hashOf(k), computed earlier
    return lineUsed(home(h)) ? probe(k, h) : Hit{};
  }
  // find() without asking the line summary first, for a key whose line
  // prefetchSlot() found in use (if it is empty now, the walk says so).
  Hit probe(const FlowKey& k, uint64_t h) const;
  // Prefetching for a burst of lookups: the key's hash, then its home slot,
  // then (once the slot has arrived) the flow the slot names when the tag agrees.
  // Hints only: nothing is read that find() would not read, nothing changes.
  uint64_t hashOf(const FlowKey& k) const { return hash(k); }
  // A key whose home slot lies in a line of the index with no entry (the
  // line summary says so) is absent: its slot is not fetched, and false says
  // that prefetchFlow() is not worth calling. Under a flood of new keys into
  // a sparse table, that line was a TLB and cache miss per packet.
  bool prefetchSlot(uint64_t h) const {
    const size_t i = home(h);
    if (!lineUsed(i)) return false;
    __builtin_prefetch(&slots_[i]);
    return true;
  }
  void prefetchFlow(uint64_t h) const {
    const uint32_t s = slots_[home(h)];
    if (s == slot::kEmptySlot || slot::slotTag(s) != slot::tagOf(h)) return;
    const char* f = reinterpret_cast<const char*>(&flows_[slot::slotIdx(s)]);
    __builtin_prefetch(f);
    __builtin_prefetch(f + 64);  // a Flow spans two or three cache lines
    __builtin_prefetch(f + sizeof(Flow) - 1);
  }
  // Creates a flow for `orig` (which must not exist). Returns its index, or kNone
  // with `err` set. May evict per the order in the header comment.
  uint32_t insert(const FlowKey& orig, const NatSpec& nat, uint16_t nic, uint32_t now_ms,
                  InsertError* err);
  void erase(uint32_t idx);
  // Called with a flow marked kLimited just before it is erased, however it
  // ends (erase, expiry, eviction to make room).
  using EraseHook = void (*)(void* ctx, uint32_t idx, const Flow& f);
  void setEraseHook(EraseHook hook, void* ctx) {
    erase_hook_ = hook;
    erase_ctx_ = ctx;
  }

  Flow& at(uint32_t idx) { return flows_[idx]; }
  const Flow& at(uint32_t idx) const { return flows_[idx]; }
  // Inline: find() builds one per probe that passes the tag check.
  FlowKey origKey(const Flow& f) const {
    FlowKey k;
    k.src = f.src;
    k.dst = f.dst;
    k.zone = f.zone;
    k.sport = f.sport;
    k.dport = f.dport;
    k.proto = f.proto;
    return k;
  }
  FlowKey replyKey(const Flow& f) const;
  // The reply key of a flow with original key `orig` and this NAT (replyKey()
  // is this on the flow's own fields).
  static FlowKey replyOf(const FlowKey& orig, NatKind nat, const IpAddr& nat_addr,
                         uint32_t nat_zone, uint16_t nat_port);
  // Whether `k` is f's key in direction d: origKey(f) == k or replyKey(f) ==
  // k, compared field by field from the flow itself. Building the key first
  // and comparing it stalls on store forwarding (the compiler merges the
  // narrow stores' compares into wider loads).
  bool keyMatches(const Flow& f, Dir d, const FlowKey& k) const;
  const IpAddr& natAddr(const Flow& f) const { return pool_[f.nat_addr].addr; }
  uint32_t nicCount(uint16_t nic) const { return nic < per_nic_.size() ? per_nic_[nic] : 0; }

  // Updates state for a packet of flow `f` going in direction `d`. Accounting
  // (packets/bytes/last_ms) is done here too when the packet is accepted.
  Track track(Flow& f, Dir d, const pkt::Packet& p, uint32_t now_ms);
  // A new TCP flow: initial state from its first packet (SYN, or mid-stream in
  // loose mode). Returns NoSyn when strict mode refuses it.
  Track start(Flow& f, const pkt::Packet& p, uint32_t now_ms);

  uint32_t timeoutMs(const Flow& f) const;
  bool expired(const Flow& f, uint32_t now_ms) const { return now_ms - f.last_ms > timeoutMs(f); }
  bool evictable(const Flow& f) const;  // embryonic or closing

  // Visits up to `budget` entries from where the previous sweep stopped and
  // erases expired ones after calling on_expire(idx); a budget of capacity() or
  // more is one whole pass over the slots ever used. Returns how many expired.
  template <class F>
  uint32_t sweep(uint32_t now_ms, uint32_t budget, F&& on_expire) {
    uint32_t n = 0;
    if (budget >= cfg_.capacity) {
      // A whole pass: only the slots ever used can hold a flow (the free list
      // hands out low indexes first and takes them back LIFO).
      for (uint32_t idx = 0; idx < high_water_ && live_ > 0; ++idx)
        if (used_[idx] && expired(flows_[idx], now_ms)) {
          on_expire(idx);
          erase(idx);
          ++n;
        }
      return n;
    }
    for (uint32_t i = 0; i < budget && live_ > 0; ++i) {
      const uint32_t idx = sweep_pos_;
      sweep_pos_ = (sweep_pos_ + 1) % cfg_.capacity;
      if (used_[idx] && expired(flows_[idx], now_ms)) {
        on_expire(idx);
        erase(idx);
        ++n;
      }
    }
    return n;
  }
  template <class F>
  void forEach(F&& fn) {
    for (uint32_t i = 0; i < cfg_.capacity; ++i)
      if (used_[i]) fn(i);
  }

 private:
  uint64_t hash(const FlowKey& k) const;
  size_t home(uint64_t h) const {
    return static_cast<size_t>((__uint128_t(h) * slots_.size()) >> 64);
  }
  // Slot i lies in the index's cache line i / kLineSlots (slots_ starts page
  // aligned); the line's bit in lines_ is set while any slot of it may be
  // used, and clear only when every one is empty.
  static constexpr size_t kLineSlots = 64 / sizeof(uint32_t);
  bool lineUsed(size_t i) const {
    const size_t line = i / kLineSlots;
    return lines_[line / 64] >> (line % 64) & 1;
  }
  void markLine(size_t i) {
    const size_t line = i / kLineSlots;
    lines_[line / 64] |= uint64_t{1} << (line % 64);
  }
  void unmarkLineIfEmpty(size_t i);
  void indexAdd(uint64_t h, uint32_t idx, Dir d);  // h: the key's hash
  void indexRemove(const FlowKey& k, uint32_t idx, Dir d);
  uint16_t internAddr(const IpAddr& a, uint32_t zone);
  uint32_t tryEvictNear(const FlowKey& k, uint32_t now_ms);

  Config cfg_;
  uint64_t seed_;
  // Read at random, one lookup per packet: in huge pages (core/huge_array.h).
  HugeArray<Flow> flows_;
  HugeArray<uint8_t> used_;
  std::vector<uint32_t> free_;
  HugeArray<uint32_t> slots_;  // kEmptySlot or idx<<7 | tag<<1 | dir
  // One bit per cache line of slots_: 20 KB for a million flows, five pages
  // that stay cached and in the TLB where slots_ (10 MB) cannot.
  std::vector<uint64_t> lines_;
  std::vector<uint32_t> per_nic_;
  struct PoolEntry {
    IpAddr addr;
    uint32_t zone;
  };
  std::vector<PoolEntry> pool_;  // NAT addresses (VIPs, NIC addresses); at most 65535
  uint32_t live_ = 0;
  uint32_t sweep_pos_ = 0;
  uint32_t high_water_ = 0;  // one past the highest index ever allocated
  EraseHook erase_hook_ = nullptr;
  void* erase_ctx_ = nullptr;
};

inline FlowKey FlowTable::replyOf(const FlowKey& orig, NatKind nat, const IpAddr& nat_addr,
                                  uint32_t nat_zone, uint16_t nat_port) {
  FlowKey k = reversed(orig);
  const bool icmp = orig.proto == pkt::ipproto::kIcmp || orig.proto == pkt::ipproto::kIcmpv6;
  if (icmp) k.dport = k.sport = orig.sport;  // ICMP keys: echo id in both ports (see keyFor)
  switch (nat) {
    case NatKind::None:
      break;
    case NatKind::Source:  // reply comes back to the translated source
      k.dst = nat_addr;
      k.dport = nat_port;
      if (icmp) k.sport = nat_port;
      k.zone = nat_zone;
      break;
    case NatKind::Destination:  // reply comes from the translated destination
      k.src = nat_addr;
      k.sport = nat_port;
      if (icmp) k.dport = nat_port;
      k.zone = nat_zone;
      break;
  }
  return k;
}

inline FlowKey FlowTable::replyKey(const Flow& f) const {
  const PoolEntry& pe = pool_[f.nat_addr];
  return replyOf(origKey(f), f.nat, pe.addr, pe.zone, f.nat_port);
}

inline bool FlowTable::keyMatches(const Flow& f, Dir d, const FlowKey& k) const {
  if (f.proto != k.proto) return false;
  if (d == Dir::Orig)
    return f.src == k.src && f.dst == k.dst && f.zone == k.zone && f.sport == k.sport &&
           f.dport == k.dport;
  // replyKey(f), one field at a time.
  const bool icmp = f.proto == pkt::ipproto::kIcmp || f.proto == pkt::ipproto::kIcmpv6;
  const IpAddr* src = &f.dst;
  const IpAddr* dst = &f.src;
  uint32_t zone = f.zone;
  uint16_t sport = icmp ? f.sport : f.dport, dport = f.sport;
  if (f.nat == NatKind::Source) {
    dst = &pool_[f.nat_addr].addr;
    zone = pool_[f.nat_addr].zone;
    dport = f.nat_port;
    if (icmp) sport = f.nat_port;
  } else if (f.nat == NatKind::Destination) {
    src = &pool_[f.nat_addr].addr;
    zone = pool_[f.nat_addr].zone;
    sport = f.nat_port;
    if (icmp) dport = f.nat_port;
  }
  return *src == k.src && *dst == k.dst && zone == k.zone && sport == k.sport && dport == k.dport;
}

}  // namespace palisade::flow
