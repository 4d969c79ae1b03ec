// Multi-field packet classification: the lookup behind every ACL layer.
//
// A rule matches on five fields (source and destination prefix, source and
// destination port range, protocol) and carries a priority (lower wins, as NSG
// priorities do) and an id the caller chooses. A policy rule with several
// prefixes or port ranges is added as several entries sharing one id; erase(id)
// removes all of them, which is how a one-rule update reaches the data plane.
//
// Algorithm: TupleMerge (Daly, Liu, Torng, "TupleMerge: Fast Software Packet
// Processing for Online Packet Classification", IEEE/ACM ToN 2019). Entries are
// grouped into hash tables, each keyed by a tuple of field lengths (how many
// leading bits of each field take part in the hash). An entry may go into any
// table whose lengths are no longer than its own; the bits it has beyond the
// table's are checked when its bucket is scanned. Buckets hold at most
// kBucketLimit entries, sorted by priority; a full bucket sends the entry to a
// more specific table. Tables are visited in order of their best priority, and
// a lookup stops as soon as the best match so far beats every remaining table.
// Why this one (docs/architecture.md has the measurements): it updates in
// microseconds (one hash insert), where decision trees (HiCuts, HyperCuts,
// CutSplit) rebuild and bit-vector schemes need O(rules) bits per elementary
// interval; its lookups match PartitionSort's on ClassBench sets.
//
// Threading: a Classifier is built and updated by one thread. The data plane
// reads an immutable one (a compiled policy snapshot); classify() is const and
// allocates nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/net.h"

namespace palisade::classify {

inline constexpr uint8_t kProtoAny = 0xff;  // Entry::proto wildcard (255 is reserved by IANA)

struct Entry {
  IpAddr src, dst;  // IPv4 as mapped addresses; lengths are over 128 bits
  uint8_t src_len = 0, dst_len = 0;
  uint8_t proto = kProtoAny;
  uint16_t sport_lo = 0, sport_hi = 65535;
  uint16_t dport_lo = 0, dport_hi = 65535;
  uint32_t priority = 0;  // lower wins
  uint32_t id = 0;
};

struct Key {
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
};

struct Match {
  uint32_t id;
  uint32_t priority;
};

// True when `e` matches `k` (all five fields); the reference semantics.
bool matches(const Entry& e, const Key& k);

class Classifier {
 public:
  static constexpr uint32_t kBucketLimit = 8;

  void add(const Entry& e);
  // Removes every entry with this id; returns how many.
  size_t erase(uint32_t id);
  void clear();

  // Best (lowest-priority) match, ties broken by insertion order.
  std::optional<Match> classify(const Key& k) const;

  size_t size() const { return live_; }
  size_t tableCount() const { return tables_.size(); }
  size_t memoryBytes() const;

 private:
  struct Tuple {
    uint8_t src_len, dst_len, sport_len, dport_len, proto_len;
    friend bool operator==(const Tuple&, const Tuple&) = default;
  };
  struct MaskedKey {
    IpAddr src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    uint8_t pad[3];
  };
  struct Bucket {
    MaskedKey key;
    std::vector<uint32_t> entries;  // indexes into entries_, by (priority, seq)
  };
  // A run of open-addressing slots: the key's hash in the high 32 bits
  // (compared before the bucket is touched), bucket index + 1 in the low 32;
  // 0 is empty. A key's home inside its segment is the low bits of its tag.
  struct Segment {
    std::unique_ptr<uint64_t[]> slots;
    uint32_t mask = 0;  // slot count - 1
    uint32_t used = 0;  // occupied slots
    uint8_t depth = 0;  // leading tag bits every key in it shares (extendible hashing)
  };
  // What a lookup needs of a segment, copied into each directory entry so a
  // lookup reads one entry and then the slots.
  struct DirEntry {
    uint64_t* slots;
    uint32_t mask;
    uint32_t segment;  // index into Table::segments
  };
  struct Table {
    Tuple tuple;
    uint64_t src_mask[2], dst_mask[2];
    uint16_t sport_mask, dport_mask;
    uint8_t proto_mask;
    // Slots live in segments found through a directory indexed by the tag's
    // leading `depth` bits. A segment doubles until it has kSegmentSlots;
    // after that a full segment splits in two and only its keys move, so no
    // insert touches more than one segment's worth of slots.
    uint8_t depth = 0;
    std::vector<DirEntry> dir;
    std::vector<Segment> segments;
    // Buckets in chunks that never move: a growing table adds a chunk.
    std::vector<std::unique_ptr<Bucket[]>> bucket_chunks;
    uint32_t buckets = 0;
    Bucket& bucket(uint32_t i) {
      return bucket_chunks[i >> kBucketChunkBits][i & kBucketChunkMask];
    }
    const Bucket& bucket(uint32_t i) const {
      return bucket_chunks[i >> kBucketChunkBits][i & kBucketChunkMask];
    }
    // A Bloom filter of the buckets' keys (two bits of each tag), kept while
    // the table is small: most tables of a policy hold a handful of keys (one
    // per prefix length class of a service tag), and a lookup that misses
    // them costs one test here instead of a directory and slot miss.
    // All ones when the table is too big for it to filter.
    uint64_t filter[8] = {~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL};
    // The two filter bits of a hash or a slot (tag bits 13-21 and 23-31).
    static uint32_t bitA(uint64_t hs) { return static_cast<uint32_t>(hs >> 45) & 511; }
    static uint32_t bitB(uint64_t hs) { return static_cast<uint32_t>(hs >> 55); }
    bool mayHold(uint64_t hs) const {
      const uint32_t a = bitA(hs), b = bitB(hs);
      return (filter[a >> 6] >> (a & 63) & filter[b >> 6] >> (b & 63) & 1) != 0;
    }
    // Which masked destination ports (mod 64) the buckets' keys have, with a
    // count per bit: checked before the key is even hashed, it skips the
    // tables of rules on other ports (a perimeter's per-port deny rules).
    uint64_t dports = 0;
    uint32_t dport_refs[64] = {};
    bool mayHoldPort(uint16_t dport) const {
      return (dports >> ((dport & dport_mask) & 63) & 1) != 0;
    }
    void remember(uint64_t hs) {
      filter[bitA(hs) >> 6] |= 1ULL << (bitA(hs) & 63);
      filter[bitB(hs) >> 6] |= 1ULL << (bitB(hs) & 63);
    }
    size_t dirIndex(uint64_t hs) const { return (hs >> 1) >> (63 - depth); }
    const DirEntry& entryOf(uint64_t hs) const { return dir[dirIndex(hs)]; }
    // Entries that can match an IPv4 key (both prefixes meet ::ffff:0:0/96)
    // and an IPv6 one: a table of only one family's entries is left out of
    // the other family's lookups. A service tag such as Internet expands to
    // the complement of a few prefixes, dozens of lengths in each family,
    // and so into tables most of which a packet's family can never match.
    uint32_t family_entries[2] = {};
    std::map<uint32_t, uint32_t> priorities;  // priority -> entries, for best()
    uint32_t best() const { return priorities.empty() ? UINT32_MAX : priorities.begin()->first; }
  };
  struct Stored {
    Entry e;
    uint64_t seq;
    uint32_t table;  // UINT32_MAX when erased
  };

  static Tuple tupleOf(const Entry& e);
  // Bit 0: `e` can match an IPv4 key; bit 1: an IPv6 one.
  static unsigned familiesOf(const Entry& e);
  // Counts `e` in its table's families (delta +1 or -1); true when a
  // family's count went from or to zero (the family orders change).
  static bool countFamilies(Table& t, const Entry& e, int delta);
  static bool fits(const Tuple& t, const Entry& e);
  Table makeTable(const Tuple& t) const;
  MaskedKey mask(const Table& t, const IpAddr& src, const IpAddr& dst, uint16_t sport,
                 uint16_t dport, uint8_t proto) const;
  // Finds or creates the bucket for `mk`; returns its index.
  static uint32_t bucketFor(Table& t, const MaskedKey& mk, bool create);
  // The bucket index for `mk`, or UINT32_MAX.
  static uint32_t findBucket(const Table& t, const MaskedKey& mk, uint64_t hash);
  // Index of the slot holding `bucket` (which must be in the table).
  static size_t slotOf(const Table& t, const DirEntry& d, uint32_t bucket);
  // Makes room for one more slot in `h`'s segment: doubles it or splits it.
  static void grow(Table& t, uint64_t h);
  static void place(Segment& seg, uint64_t slot);
  // Rebuilds the filter from the slots' tags (or opens it when the table is
  // past kFilterKeys).
  static void refilter(Table& t);
  static constexpr uint32_t kFilterKeys = 64;
  // Points the directory entries of segment `si` (the one `h` falls in) at it.
  static void pointDir(Table& t, uint64_t h, uint32_t si);
  void removeBucket(Table& t, uint32_t bucket);
  void insertInto(uint32_t table_idx, uint32_t entry_idx);
  void sortTables();
  bool before(uint32_t a, uint32_t b) const;

  // Entries in chunks of 4096 that never move: growing the store is one new
  // chunk, never a copy of every entry (which, at DASH scale, made one rule
  // update in ~300 take milliseconds).
  static constexpr unsigned kChunkBits = 12;
  std::vector<std::unique_ptr<Stored[]>> chunks_;
  uint32_t stored_ = 0;  // entries ever placed (live ones and free_ ones)
  Stored& at(uint32_t i) { return chunks_[i >> kChunkBits][i & ((1u << kChunkBits) - 1)]; }
  const Stored& at(uint32_t i) const {
    return chunks_[i >> kChunkBits][i & ((1u << kChunkBits) - 1)];
  }
  std::vector<uint32_t> free_;
  std::vector<Table> tables_;
  static constexpr uint64_t kTagMask = 0xffffffff00000000ULL;
  static constexpr unsigned kBucketChunkBits = 8;
  static constexpr uint32_t kBucketChunkMask = (1u << kBucketChunkBits) - 1;
  // Segment size where doubling stops and splitting starts (64 KiB of slots:
  // a split stays well under 100 us and directories stay a few cache lines).
  // Homes use the tag's low 13 bits and the directory its leading bits, which
  // stay apart up to kMaxDepth.
  static constexpr uint32_t kSegmentSlots = 8192;
  static constexpr uint8_t kMaxDepth = 19;
  // A key's home slot comes from its tag (hash bits 32-63), which the slot
  // keeps: `hs` is a hash or a slot, `m` the table's size - 1.
  static size_t homeOf(uint64_t hs, size_t m) { return static_cast<size_t>(hs >> 32) & m; }

  std::vector<uint32_t> order_;       // table indexes by best priority
  std::vector<uint32_t> order_best_;  // each one's best priority, read by classify()
  // The same, restricted to the tables that hold entries an IPv4 key ([0]) or
  // an IPv6 key ([1]) can match; a key of mixed families uses order_.
  std::vector<uint32_t> family_order_[2];
  std::vector<uint32_t> family_best_[2];
  std::map<uint32_t, std::vector<uint32_t>> by_id_;
  uint64_t seq_ = 0;
  size_t live_ = 0;
};

// Linear reference classifier, for differential tests and benchmark baselines.
class LinearClassifier {
 public:
  void add(const Entry& e) { entries_.push_back(e); }
  std::optional<Match> classify(const Key& k) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace palisade::classify
