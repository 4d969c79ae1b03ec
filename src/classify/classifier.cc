#include "classify/classifier.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/hash.h"

namespace palisade::classify {
namespace {

// Leading bits shared by every port in [lo, hi]: the prefix a hash key may use.
uint8_t portPrefixLen(uint16_t lo, uint16_t hi) {
  const uint16_t diff = lo ^ hi;
  return diff == 0 ? 16 : static_cast<uint8_t>(std::countl_zero(diff));
}

void addrMask(uint8_t len, uint64_t out[2]) {
  out[0] = len == 0 ? 0 : (len >= 64 ? ~0ULL : ~0ULL << (64 - len));
  out[1] = len <= 64 ? 0 : (len >= 128 ? ~0ULL : ~0ULL << (128 - len));
}

IpAddr applyMask(const IpAddr& a, const uint64_t m[2]) {
  uint64_t w[2];
  std::memcpy(w, a.b.data(), 16);
  // Masks are over big-endian bit order; convert each word.
  w[0] &= __builtin_bswap64(m[0]);
  w[1] &= __builtin_bswap64(m[1]);
  IpAddr out;
  std::memcpy(out.b.data(), w, 16);
  return out;
}

// The first `len` bits of p and a agree: XOR the big-endian words and look at
// the leading bits only.
bool prefixMatch(const IpAddr& p, uint8_t len, const IpAddr& a) {
  uint64_t pw[2], aw[2];
  std::memcpy(pw, p.b.data(), 16);
  std::memcpy(aw, a.b.data(), 16);
  const uint64_t hi = __builtin_bswap64(pw[0] ^ aw[0]);
  if (len <= 64) return len == 0 || (hi >> (64 - len)) == 0;
  const uint64_t lo = __builtin_bswap64(pw[1] ^ aw[1]);
  return hi == 0 && (len == 128 ? lo == 0 : (lo >> (128 - len)) == 0);
}

uint16_t portMask(uint8_t len) {
  return len == 0 ? 0 : static_cast<uint16_t>(0xffffu << (16 - len));
}

}  // namespace

bool matches(const Entry& e, const Key& k) {
  return (e.proto == kProtoAny || e.proto == k.proto) && k.sport >= e.sport_lo &&
         k.sport <= e.sport_hi && k.dport >= e.dport_lo && k.dport <= e.dport_hi &&
         prefixMatch(e.src, e.src_len, k.src) && prefixMatch(e.dst, e.dst_len, k.dst);
}

Classifier::Tuple Classifier::tupleOf(const Entry& e) {
  return {e.src_len, e.dst_len, portPrefixLen(e.sport_lo, e.sport_hi),
          portPrefixLen(e.dport_lo, e.dport_hi),
          static_cast<uint8_t>(e.proto == kProtoAny ? 0 : 8)};
}

bool Classifier::fits(const Tuple& t, const Entry& e) {
  const Tuple r = tupleOf(e);
  return t.src_len <= r.src_len && t.dst_len <= r.dst_len && t.sport_len <= r.sport_len &&
         t.dport_len <= r.dport_len && t.proto_len <= r.proto_len;
}

Classifier::Table Classifier::makeTable(const Tuple& t) const {
  Table tb{};
  tb.tuple = t;
  addrMask(t.src_len, tb.src_mask);
  addrMask(t.dst_len, tb.dst_mask);
  tb.sport_mask = portMask(t.sport_len);
  tb.dport_mask = portMask(t.dport_len);
  tb.proto_mask = t.proto_len ? 0xff : 0;
  tb.slots.assign(16, 0);
  return tb;
}

Classifier::MaskedKey Classifier::mask(const Table& t, const IpAddr& src, const IpAddr& dst,
                                       uint16_t sport, uint16_t dport, uint8_t proto) const {
  MaskedKey mk{};
  mk.src = applyMask(src, t.src_mask);
  mk.dst = applyMask(dst, t.dst_mask);
  mk.sport = sport & t.sport_mask;
  mk.dport = dport & t.dport_mask;
  mk.proto = proto & t.proto_mask;
  return mk;
}

const Classifier::Bucket* Classifier::findBucket(const Table& t, const MaskedKey& mk) const {
  const uint64_t h = hashKey(mk);
  const uint64_t tag = h & kTagMask;
  const size_t m = t.slots.size() - 1;
  for (size_t i = homeOf(h, m);; i = (i + 1) & m) {
    const uint64_t s = t.slots[i];
    if (s == 0) return nullptr;
    if ((s & kTagMask) != tag) continue;  // another key: its bucket stays out of the cache
    const Bucket& b = t.buckets[static_cast<uint32_t>(s) - 1];
    if (std::memcmp(&b.key, &mk, sizeof mk) == 0) return &b;
  }
}

uint32_t Classifier::bucketFor(Table& t, const MaskedKey& mk, bool create) const {
  if (const Bucket* b = findBucket(t, mk)) return static_cast<uint32_t>(b - t.buckets.data());
  if (!create) return UINT32_MAX;
  if ((t.buckets.size() + 1) * 2 > t.slots.size()) {
    // Each slot's tag is its home, so growing re-places slots without
    // touching a bucket or hashing a key again (a live update stays short).
    std::vector<uint64_t> grown(t.slots.size() * 2, 0);
    const size_t gm = grown.size() - 1;
    for (const uint64_t s : t.slots) {
      if (s == 0) continue;
      size_t i = homeOf(s, gm);
      while (grown[i] != 0)
        i = (i + 1) & gm;
      grown[i] = s;
    }
    t.slots.swap(grown);
  }
  const uint64_t h = hashKey(mk);
  const size_t m = t.slots.size() - 1;
  size_t i = homeOf(h, m);
  while (t.slots[i] != 0)
    i = (i + 1) & m;
  t.buckets.push_back(Bucket{mk, {}});
  t.slots[i] = (h & kTagMask) | t.buckets.size();
  return static_cast<uint32_t>(t.buckets.size() - 1);
}

void Classifier::removeBucket(Table& t, uint32_t bi) {
  const size_t m = t.slots.size() - 1;
  auto home = [&](uint64_t slot) { return homeOf(slot, m); };
  auto slotOf = [&](uint32_t bucket) {
    size_t i = homeOf(hashKey(t.buckets[bucket].key), m);
    while (static_cast<uint32_t>(t.slots[i]) != bucket + 1)
      i = (i + 1) & m;
    return i;
  };
  // Backward-shift deletion: later slots of the probe run move up when their
  // home position allows, so no tombstones are needed.
  size_t hole = slotOf(bi);
  for (size_t j = (hole + 1) & m; t.slots[j] != 0; j = (j + 1) & m) {
    const size_t h = home(t.slots[j]);
    const bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
    if (movable) {
      t.slots[hole] = t.slots[j];
      hole = j;
    }
  }
  t.slots[hole] = 0;
  // The last bucket takes the freed index.
  const uint32_t last = static_cast<uint32_t>(t.buckets.size() - 1);
  if (bi != last) {
    const size_t ls = slotOf(last);
    t.buckets[bi] = std::move(t.buckets[last]);
    t.slots[ls] = (t.slots[ls] & kTagMask) | (bi + 1);
  }
  t.buckets.pop_back();
}

bool Classifier::before(uint32_t a, uint32_t b) const {
  const Stored& x = at(a);
  const Stored& y = at(b);
  return x.e.priority != y.e.priority ? x.e.priority < y.e.priority : x.seq < y.seq;
}

void Classifier::insertInto(uint32_t table_idx, uint32_t entry_idx) {
  Table& t = tables_[table_idx];
  const Entry& e = at(entry_idx).e;
  const uint32_t bi = bucketFor(t, mask(t, e.src, e.dst, e.sport_lo, e.dport_lo, e.proto), true);
  auto& list = t.buckets[bi].entries;
  list.insert(std::upper_bound(list.begin(), list.end(), entry_idx,
                               [&](uint32_t a, uint32_t b) { return before(a, b); }),
              entry_idx);
  ++t.priorities[e.priority];
  at(entry_idx).table = table_idx;
}

void Classifier::sortTables() {
  order_.clear();
  for (uint32_t i = 0; i < tables_.size(); ++i)
    if (!tables_[i].priorities.empty()) order_.push_back(i);
  std::sort(order_.begin(), order_.end(),
            [&](uint32_t a, uint32_t b) { return tables_[a].best() < tables_[b].best(); });
  order_best_.clear();
  for (uint32_t ti : order_)
    order_best_.push_back(tables_[ti].best());
}

void Classifier::add(const Entry& in) {
  Entry e = in;
  // Normalise: host bits beyond the length never take part.
  uint64_t m[2];
  addrMask(e.src_len, m);
  e.src = applyMask(e.src, m);
  addrMask(e.dst_len, m);
  e.dst = applyMask(e.dst, m);

  uint32_t idx;
  if (!free_.empty()) {
    idx = free_.back();
    free_.pop_back();
    at(idx) = Stored{e, seq_++, UINT32_MAX};
  } else {
    idx = stored_++;
    if ((idx >> kChunkBits) == chunks_.size())
      chunks_.push_back(std::make_unique<Stored[]>(size_t{1} << kChunkBits));
    at(idx) = Stored{e, seq_++, UINT32_MAX};
  }
  by_id_[e.id].push_back(idx);
  ++live_;

  // 1. An existing table the entry fits, whose bucket for it has room.
  for (uint32_t ti : order_) {
    Table& t = tables_[ti];
    if (!fits(t.tuple, e)) continue;
    const uint32_t bi = bucketFor(t, mask(t, e.src, e.dst, e.sport_lo, e.dport_lo, e.proto), false);
    if (bi == UINT32_MAX || t.buckets[bi].entries.size() < kBucketLimit) {
      const uint32_t before_best = t.best();
      insertInto(ti, idx);
      if (t.best() != before_best) sortTables();
      return;
    }
  }
  // 2. A new table with the entry's tuple relaxed (TupleMerge): address lengths
  // rounded down to a multiple of 4 within the family, port ranges wildcarded.
  const Tuple exact = tupleOf(e);
  Tuple relaxed = exact;
  auto relaxAddr = [](uint8_t len) -> uint8_t {
    const uint8_t base = len >= 96 ? 96 : 0;  // IPv4-mapped lengths start at 96
    return static_cast<uint8_t>(base + (len - base) / 4 * 4);
  };
  relaxed.src_len = relaxAddr(exact.src_len);
  relaxed.dst_len = relaxAddr(exact.dst_len);
  if (relaxed.sport_len != 16) relaxed.sport_len = 0;
  if (relaxed.dport_len != 16) relaxed.dport_len = 0;
  for (const Tuple& want : {relaxed, exact}) {
    uint32_t ti = UINT32_MAX;
    for (uint32_t i = 0; i < tables_.size(); ++i)
      if (tables_[i].tuple == want) ti = i;
    if (ti != UINT32_MAX) {
      Table& t = tables_[ti];
      const uint32_t bi =
          bucketFor(t, mask(t, e.src, e.dst, e.sport_lo, e.dport_lo, e.proto), false);
      if (bi != UINT32_MAX && t.buckets[bi].entries.size() >= kBucketLimit && !(want == exact))
        continue;  // full: try the exact tuple
      insertInto(ti, idx);
    } else {
      tables_.push_back(makeTable(want));
      insertInto(static_cast<uint32_t>(tables_.size() - 1), idx);
    }
    sortTables();
    return;
  }
}

size_t Classifier::erase(uint32_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return 0;
  const size_t n = it->second.size();
  bool reorder = false;
  for (uint32_t idx : it->second) {
    Stored& s = at(idx);
    Table& t = tables_[s.table];
    const uint32_t before_best = t.best();
    const uint32_t bi =
        bucketFor(t, mask(t, s.e.src, s.e.dst, s.e.sport_lo, s.e.dport_lo, s.e.proto), false);
    auto& list = t.buckets[bi].entries;
    list.erase(std::find(list.begin(), list.end(), idx));
    if (list.empty()) removeBucket(t, bi);  // churn must not grow the table
    auto p = t.priorities.find(s.e.priority);
    if (--p->second == 0) t.priorities.erase(p);
    reorder |= t.best() != before_best;
    s.table = UINT32_MAX;
    free_.push_back(idx);
    --live_;
  }
  by_id_.erase(it);
  if (reorder) sortTables();
  return n;
}

void Classifier::clear() {
  *this = Classifier();
}

std::optional<Match> Classifier::classify(const Key& k) const {
  const Stored* best = nullptr;
  for (size_t oi = 0; oi < order_.size(); ++oi) {
    if (best && order_best_[oi] > best->e.priority) break;
    const Table& t = tables_[order_[oi]];
    const Bucket* b = findBucket(t, mask(t, k.src, k.dst, k.sport, k.dport, k.proto));
    if (!b) continue;
    for (uint32_t idx : b->entries) {
      const Stored& s = at(idx);
      if (best && (s.e.priority > best->e.priority ||
                   (s.e.priority == best->e.priority && s.seq > best->seq)))
        break;
      if (matches(s.e, k)) {
        best = &s;
        break;
      }
    }
  }
  if (!best) return std::nullopt;
  return Match{best->e.id, best->e.priority};
}

size_t Classifier::memoryBytes() const {
  size_t n = (chunks_.size() << kChunkBits) * sizeof(Stored) + chunks_.capacity() * 8 +
             free_.capacity() * 4;
  for (const Table& t : tables_) {
    n += sizeof(Table) + t.slots.capacity() * 8 + t.buckets.capacity() * sizeof(Bucket);
    for (const Bucket& b : t.buckets)
      n += b.entries.capacity() * 4;
    n += t.priorities.size() * 48;
  }
  n += by_id_.size() * 64 + live_ * 4;
  return n;
}

std::optional<Match> LinearClassifier::classify(const Key& k) const {
  const Entry* best = nullptr;
  for (const Entry& e : entries_)
    if ((!best || e.priority < best->priority) && matches(e, k)) best = &e;
  if (!best) return std::nullopt;
  return Match{best->id, best->priority};
}

}  // namespace palisade::classify
