#include "classify/classifier.h"

#include <algorithm>
#include <bit>
#include <cstddef>
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

unsigned Classifier::familiesOf(const Entry& e) {
  // A prefix meets ::ffff:0:0/96 when their common leading bits agree; it
  // meets the rest of the space unless it lies inside that /96.
  IpAddr mapped;
  mapped.b[10] = mapped.b[11] = 0xff;
  auto v4 = [&](const IpAddr& a, uint8_t len) {
    return prefixMatch(a, std::min<uint8_t>(len, 96), mapped);
  };
  auto v6 = [&](const IpAddr& a, uint8_t len) { return len < 96 || !prefixMatch(a, 96, mapped); };
  return (v4(e.src, e.src_len) && v4(e.dst, e.dst_len) ? 1u : 0u) |
         (v6(e.src, e.src_len) && v6(e.dst, e.dst_len) ? 2u : 0u);
}

bool Classifier::countFamilies(Table& t, const Entry& e, int delta) {
  const unsigned f = familiesOf(e);
  bool changed = false;
  for (unsigned i = 0; i < 2; ++i) {
    if (!(f >> i & 1)) continue;
    const uint32_t was = t.family_entries[i];
    t.family_entries[i] = static_cast<uint32_t>(was + delta);
    changed |= (was == 0) != (t.family_entries[i] == 0);
  }
  return changed;
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
  Segment seg;
  seg.slots = std::make_unique<uint64_t[]>(16);
  seg.mask = 15;
  tb.dir.push_back(DirEntry{seg.slots.get(), seg.mask, 0});
  tb.segments.push_back(std::move(seg));
  refilter(tb);
  return tb;
}

Classifier::MaskedKey Classifier::mask(const Table& t, const IpAddr& src, const IpAddr& dst,
                                       uint16_t sport, uint16_t dport, uint8_t proto) const {
  MaskedKey mk;
  mk.src = applyMask(src, t.src_mask);
  mk.dst = applyMask(dst, t.dst_mask);
  // Ports, protocol and padding as one 64-bit store: hashKey() reads them
  // back at once as a word, which would wait on three narrow stores.
  const uint64_t sp = sport & t.sport_mask, dp = dport & t.dport_mask, pr = proto & t.proto_mask;
  const uint64_t tail = std::endian::native == std::endian::little ? sp | dp << 16 | pr << 32
                                                                   : sp << 48 | dp << 32 | pr << 24;
  static_assert(offsetof(MaskedKey, sport) == 32 && offsetof(MaskedKey, dport) == 34 &&
                offsetof(MaskedKey, proto) == 36 && sizeof(MaskedKey) == 40);
  std::memcpy(reinterpret_cast<std::byte*>(&mk) + offsetof(MaskedKey, sport), &tail, 8);
  return mk;
}

uint32_t Classifier::findBucket(const Table& t, const MaskedKey& mk, uint64_t h) {
  const uint64_t tag = h & kTagMask;
  const DirEntry& d = t.entryOf(h);
  for (size_t i = homeOf(h, d.mask);; i = (i + 1) & d.mask) {
    const uint64_t s = d.slots[i];
    if (s == 0) return UINT32_MAX;
    if ((s & kTagMask) != tag) continue;  // another key: its bucket stays out of the cache
    const uint32_t bi = static_cast<uint32_t>(s) - 1;
    if (std::memcmp(&t.bucket(bi).key, &mk, sizeof mk) == 0) return bi;
  }
}

void Classifier::place(Segment& seg, uint64_t slot) {
  size_t i = homeOf(slot, seg.mask);
  while (seg.slots[i] != 0)
    i = (i + 1) & seg.mask;
  seg.slots[i] = slot;
  ++seg.used;
}

void Classifier::pointDir(Table& t, uint64_t h, uint32_t si) {
  const Segment& seg = t.segments[si];
  const size_t span = size_t{1} << (t.depth - seg.depth);
  const size_t first = t.dirIndex(h) & ~(span - 1);
  for (size_t i = first; i < first + span; ++i)
    t.dir[i] = DirEntry{seg.slots.get(), seg.mask, si};
}

void Classifier::refilter(Table& t) {
  const bool on = t.buckets <= kFilterKeys;
  for (uint64_t& w : t.filter)
    w = on ? 0 : ~0ULL;
  if (!on) return;
  for (const Segment& seg : t.segments)
    for (size_t i = 0; i <= seg.mask; ++i)
      if (seg.slots[i] != 0) t.remember(seg.slots[i]);
}

void Classifier::grow(Table& t, uint64_t h) {
  const uint32_t si = t.entryOf(h).segment;
  Segment& seg = t.segments[si];
  if (seg.mask + 1 < kSegmentSlots || t.depth >= kMaxDepth) {
    // Double in place. Each slot's tag is its home, so no bucket is touched
    // and no key hashed again.
    Segment bigger;
    bigger.slots = std::make_unique<uint64_t[]>(size_t{seg.mask + 1} * 2);
    bigger.mask = seg.mask * 2 + 1;
    bigger.depth = seg.depth;
    for (size_t i = 0; i <= seg.mask; ++i)
      if (seg.slots[i] != 0) place(bigger, seg.slots[i]);
    seg = std::move(bigger);
    pointDir(t, h, si);
    return;
  }
  // Split: keys whose next tag bit is 1 move to a new segment; the old one
  // is rebuilt with the rest.
  if (seg.depth == t.depth) {
    std::vector<DirEntry> wider(t.dir.size() * 2);
    for (size_t i = 0; i < t.dir.size(); ++i)
      wider[2 * i] = wider[2 * i + 1] = t.dir[i];
    t.dir.swap(wider);
    ++t.depth;
  }
  const uint8_t d = seg.depth;
  Segment low, high;
  for (Segment* s : {&low, &high}) {
    s->slots = std::make_unique<uint64_t[]>(kSegmentSlots);
    s->mask = kSegmentSlots - 1;
    s->depth = static_cast<uint8_t>(d + 1);
  }
  const uint64_t bit = 1ULL << (63 - d);
  for (size_t i = 0; i <= seg.mask; ++i)
    if (const uint64_t s = seg.slots[i]; s != 0) place(s & bit ? high : low, s);
  const uint32_t hi = static_cast<uint32_t>(t.segments.size());
  t.segments[si] = std::move(low);
  t.segments.push_back(std::move(high));  // `seg` is not used past here
  pointDir(t, h & ~bit, si);
  pointDir(t, h | bit, hi);
}

uint32_t Classifier::bucketFor(Table& t, const MaskedKey& mk, bool create) {
  const uint64_t h = hashKey(mk);
  if (const uint32_t bi = findBucket(t, mk, h); bi != UINT32_MAX || !create) return bi;
  while ((t.segments[t.entryOf(h).segment].used + 1) * 2 > t.entryOf(h).mask + 1)
    grow(t, h);
  const uint32_t bi = t.buckets++;
  if ((bi >> kBucketChunkBits) == t.bucket_chunks.size())
    t.bucket_chunks.push_back(std::make_unique<Bucket[]>(size_t{1} << kBucketChunkBits));
  t.bucket(bi).key = mk;
  if (t.dport_refs[mk.dport & 63]++ == 0) t.dports |= 1ULL << (mk.dport & 63);
  place(t.segments[t.entryOf(h).segment], (h & kTagMask) | (bi + 1));
  if (t.buckets <= kFilterKeys) {
    t.remember(h);
  } else if (t.buckets == kFilterKeys + 1) {
    refilter(t);  // opens it
  }
  return bi;
}

size_t Classifier::slotOf(const Table& t, const DirEntry& d, uint32_t bucket) {
  size_t i = homeOf(hashKey(t.bucket(bucket).key), d.mask);
  while (static_cast<uint32_t>(d.slots[i]) != bucket + 1)
    i = (i + 1) & d.mask;
  return i;
}

void Classifier::removeBucket(Table& t, uint32_t bi) {
  const uint16_t dport = t.bucket(bi).key.dport & 63;
  if (--t.dport_refs[dport] == 0) t.dports &= ~(1ULL << dport);
  const DirEntry d = t.entryOf(hashKey(t.bucket(bi).key));
  uint64_t* slots = d.slots;
  const size_t m = d.mask;
  // Backward-shift deletion: later slots of the probe run move up when their
  // home position allows, so no tombstones are needed.
  size_t hole = slotOf(t, d, bi);
  for (size_t j = (hole + 1) & m; slots[j] != 0; j = (j + 1) & m) {
    const size_t h = homeOf(slots[j], m);
    const bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
    if (movable) {
      slots[hole] = slots[j];
      hole = j;
    }
  }
  slots[hole] = 0;
  --t.segments[d.segment].used;
  // The last bucket takes the freed index.
  const uint32_t last = t.buckets - 1;
  if (bi != last) {
    const DirEntry& ld = t.entryOf(hashKey(t.bucket(last).key));
    const size_t i = slotOf(t, ld, last);
    t.bucket(bi) = std::move(t.bucket(last));
    ld.slots[i] = (ld.slots[i] & kTagMask) | (bi + 1);
  }
  t.bucket(last) = Bucket{};
  --t.buckets;
  // A small table's filter forgets the key. Once a table has been big its
  // slots are many, so it stays open rather than rescan them on every erase.
  if (t.buckets <= kFilterKeys && t.segments.size() == 1 && t.segments[0].mask < 1024) refilter(t);
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
  auto& list = t.bucket(bi).entries;
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
  for (auto& v : family_order_)
    v.clear();
  for (auto& v : family_best_)
    v.clear();
  for (uint32_t ti : order_) {
    order_best_.push_back(tables_[ti].best());
    for (size_t f = 0; f < 2; ++f)
      if (tables_[ti].family_entries[f] != 0) {
        family_order_[f].push_back(ti);
        family_best_[f].push_back(tables_[ti].best());
      }
  }
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
    if (bi == UINT32_MAX || t.bucket(bi).entries.size() < kBucketLimit) {
      const uint32_t before_best = t.best();
      const bool families = countFamilies(t, e, +1);
      insertInto(ti, idx);
      if (t.best() != before_best || families) sortTables();
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
      if (bi != UINT32_MAX && t.bucket(bi).entries.size() >= kBucketLimit && !(want == exact))
        continue;  // full: try the exact tuple
      countFamilies(t, e, +1);
      insertInto(ti, idx);
    } else {
      tables_.push_back(makeTable(want));
      countFamilies(tables_.back(), e, +1);
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
    auto& list = t.bucket(bi).entries;
    list.erase(std::find(list.begin(), list.end(), idx));
    if (list.empty()) removeBucket(t, bi);  // churn must not grow the table
    auto p = t.priorities.find(s.e.priority);
    if (--p->second == 0) t.priorities.erase(p);
    reorder |= t.best() != before_best;
    reorder |= countFamilies(t, s.e, -1);
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
  // Each table's probe is a chain of cache misses (slot, bucket, entry), but
  // the tables are independent: the slots of a window of tables are hashed
  // and prefetched before any is probed, so their misses overlap.
  constexpr size_t kWindow = 8;
  MaskedKey mks[kWindow];
  uint64_t hs[kWindow];
  uint32_t bis[kWindow];
  bool probe[kWindow];
  const Stored* best = nullptr;
  // Only the tables of the key's family (a packet's addresses are of one).
  const bool src4 = k.src.isV4(), dst4 = k.dst.isV4();
  const std::vector<uint32_t>& order = src4 != dst4 ? order_ : family_order_[src4 ? 0 : 1];
  const std::vector<uint32_t>& order_best = src4 != dst4 ? order_best_ : family_best_[src4 ? 0 : 1];
  for (size_t base = 0; base < order.size(); base += kWindow) {
    if (best && order_best[base] > best->e.priority) break;
    const size_t n = std::min(kWindow, order.size() - base);
    for (size_t i = 0; i < n; ++i) {
      const Table& t = tables_[order[base + i]];
      probe[i] = t.mayHoldPort(k.dport);
      if (!probe[i]) continue;
      mks[i] = mask(t, k.src, k.dst, k.sport, k.dport, k.proto);
      hs[i] = hashKey(mks[i]);
      probe[i] = t.mayHold(hs[i]);
      if (!probe[i]) continue;
      const DirEntry& d = t.entryOf(hs[i]);
      __builtin_prefetch(&d.slots[homeOf(hs[i], d.mask)]);
    }
    for (size_t i = 0; i < n; ++i) {
      const Table& t = tables_[order[base + i]];
      bis[i] = probe[i] ? findBucket(t, mks[i], hs[i]) : UINT32_MAX;
      if (bis[i] != UINT32_MAX) __builtin_prefetch(&t.bucket(bis[i]));
    }
    for (size_t i = 0; i < n; ++i) {
      if (best && order_best[base + i] > best->e.priority) break;
      if (bis[i] == UINT32_MAX) continue;
      for (uint32_t idx : tables_[order[base + i]].bucket(bis[i]).entries) {
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
  }
  if (!best) return std::nullopt;
  return Match{best->e.id, best->e.priority};
}

size_t Classifier::memoryBytes() const {
  size_t n = (chunks_.size() << kChunkBits) * sizeof(Stored) + chunks_.capacity() * 8 +
             free_.capacity() * 4;
  for (const Table& t : tables_) {
    n += sizeof(Table) + t.dir.capacity() * sizeof(DirEntry) +
         t.segments.capacity() * sizeof(Segment) + t.bucket_chunks.capacity() * 8;
    for (const Segment& seg : t.segments)
      n += (size_t{seg.mask} + 1) * 8;
    n += (t.bucket_chunks.size() << kBucketChunkBits) * sizeof(Bucket);
    for (uint32_t i = 0; i < t.buckets; ++i)
      n += t.bucket(i).entries.capacity() * 4;
    n += t.priorities.size() * 48;
  }
  n += by_id_.size() * 64 + live_ * 4;
  // The walk orders: all tables, and those of each address family.
  n += (order_.capacity() + order_best_.capacity()) * 4;
  for (int f = 0; f < 2; ++f)
    n += (family_order_[f].capacity() + family_best_[f].capacity()) * 4;
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
