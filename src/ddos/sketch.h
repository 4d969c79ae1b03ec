// Bounded-memory summaries of who sends the traffic.
//
// SpaceSaving (Metwally, Agrawal, El Abbadi 2005) keeps the k heaviest keys of a
// stream in k counters: a key not in the summary takes over the smallest
// counter and inherits its count as its error bound, so a reported count is at
// most `error` above the truth and every key heavier than N/k is present. The
// counters sit in a min-heap (the victim is found in O(1), a count moves in
// O(log k)) with an open-addressing index; nothing allocates after
// construction. Memory: about 20 + sizeof(Key) bytes per counter (up to 65,535).
//
// SourceSpread counts one window's sources in 256 hashed bins: the normalised
// Shannon entropy of the bins (0: one source, 1: evenly spread, as a spoofed
// flood is) and a linear-counting estimate of the distinct sources.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/hash.h"
#include "core/probe.h"

namespace palisade::ddos {

template <class Key>
class SpaceSaving {
 public:
  struct Entry {
    Key key;
    uint64_t count;
    uint64_t error;  // count is at most this much above the key's true count
  };
  // Counters are numbered in 16 bits (0xffff marks an empty index slot): a
  // larger capacity is this.
  static constexpr uint32_t kMaxCapacity = 0xffff;
  // Counts stop here (2^48: 326 days of 10 Mpps from one source).
  static constexpr uint64_t kMaxCount = (uint64_t{1} << 48) - 1;

  explicit SpaceSaving(uint32_t capacity, uint64_t seed = 0x5a17ed)
      : capacity_(std::clamp<uint32_t>(capacity, 2, kMaxCapacity)), seed_(seed) {
    uint32_t slots = 1;
    while (slots < capacity_ * 2)
      slots <<= 1;
    mask_ = slots - 1;
    index_.assign(slots, static_cast<uint16_t>(kEmpty));
    counters_.reserve(capacity_);
    heap_.reserve(capacity_);
  }

  void add(const Key& key, uint64_t weight = 1) {
    total_ += weight;
    uint32_t slot = find(key);
    if (slot != kEmpty) {
      const uint32_t p = counters_[slot].pos();
      heap_[p] = withCount(heap_[p], countOf(heap_[p]) + weight);
      siftDown(p);
      return;
    }
    if (counters_.size() < capacity_) {
      slot = static_cast<uint32_t>(counters_.size());
      counters_.push_back({key, heap_.size()});
      heap_.push_back(withCount(slot, weight));
      insert(key, slot);
      siftUp(counters_[slot].pos());
      return;
    }
    // The smallest counter is taken over: its count is the newcomer's error.
    slot = slotOf(heap_[0]);
    erase(counters_[slot].key);
    const uint64_t min = countOf(heap_[0]);
    counters_[slot].setError(min);
    counters_[slot].key = key;
    heap_[0] = withCount(slot, min + weight);
    insert(key, slot);
    siftDown(0);
  }

  // How many times key was certainly seen (its count less its error); 0 when
  // it is not in the summary.
  uint64_t guaranteed(const Key& key) const {
    const uint32_t slot = find(key);
    if (slot == kEmpty) return 0;
    const Counter& c = counters_[slot];
    return countOf(heap_[c.pos()]) - c.error();
  }

  // The n heaviest, heaviest first.
  std::vector<Entry> top(size_t n) const {
    std::vector<Entry> out;
    out.reserve(counters_.size());
    for (const Counter& c : counters_)
      out.push_back({c.key, countOf(heap_[c.pos()]), c.error()});
    const size_t k = std::min(n, out.size());
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(),
                      [](const Entry& a, const Entry& b) { return a.count > b.count; });
    out.resize(k);
    return out;
  }

  void clear() {
    counters_.clear();
    heap_.clear();
    std::fill(index_.begin(), index_.end(), static_cast<uint16_t>(kEmpty));
    total_ = 0;
  }

  uint64_t total() const { return total_; }
  size_t size() const { return counters_.size(); }
  size_t capacity() const { return capacity_; }
  size_t memoryBytes() const {
    return sizeof(*this) + capacity_ * (sizeof(Counter) + sizeof(uint64_t)) +
           index_.size() * sizeof(uint16_t);
  }

 private:
  static constexpr uint32_t kEmpty = 0xffff;
  // A key's counter: its error (48 bits, as counts) and where its count is
  // in the heap (16 bits) share a word; the count is in the heap.
  struct Counter {
    Key key;
    uint64_t error_pos;
    uint64_t error() const { return error_pos >> 16; }
    uint32_t pos() const { return static_cast<uint32_t>(error_pos & 0xffff); }
    void setError(uint64_t e) { error_pos = e << 16 | (error_pos & 0xffff); }
    void setPos(uint32_t p) { error_pos = (error_pos & ~uint64_t{0xffff}) | p; }
  };
  // A heap element: count << 16 | counter. Compared whole, it orders by
  // count (ties by counter number), and a sift reads only the heap's array:
  // with the count beside the key, a sift from the root under a spoofed flood
  // (every sample a new key) waited on two scattered loads per level.
  static uint64_t countOf(uint64_t h) { return h >> 16; }
  static uint32_t slotOf(uint64_t h) { return static_cast<uint32_t>(h & 0xffff); }
  static uint64_t withCount(uint64_t h, uint64_t count) {
    return std::min(count, kMaxCount) << 16 | (h & 0xffff);
  }

  uint32_t home(const Key& key) const {
    return static_cast<uint32_t>(hashBytes(&key, sizeof key, seed_)) & mask_;
  }
  uint32_t find(const Key& key) const {
    for (uint32_t i = home(key);; i = (i + 1) & mask_) {
      const uint32_t s = index_[i];
      if (s == kEmpty) return kEmpty;
      if (counters_[s].key == key) return s;
    }
  }
  void insert(const Key& key, uint32_t slot) {
    uint32_t i = home(key);
    while (index_[i] != kEmpty)
      i = (i + 1) & mask_;
    index_[i] = static_cast<uint16_t>(slot);
  }
  // Linear probing with backward-shift deletion: no tombstones to pile up.
  void erase(const Key& key) {
    uint32_t i = home(key);
    while (counters_[index_[i]].key != key)
      i = (i + 1) & mask_;
    const size_t hole = backwardShift(
        i, index_.size(), [&](size_t j) { return index_[j] != kEmpty; },
        [&](size_t j) { return home(counters_[index_[j]].key); },
        [&](size_t from, size_t to) { index_[to] = index_[from]; });
    index_[hole] = static_cast<uint16_t>(kEmpty);
  }
  void place(uint32_t p, uint64_t h) {
    heap_[p] = h;
    counters_[slotOf(h)].setPos(p);
  }
  void siftUp(uint32_t p) {
    const uint64_t h = heap_[p];
    while (p > 0) {
      const uint32_t parent = (p - 1) / 2;
      if (heap_[parent] <= h) break;
      place(p, heap_[parent]);
      p = parent;
    }
    place(p, h);
  }
  void siftDown(uint32_t p) {
    const uint32_t n = static_cast<uint32_t>(heap_.size());
    const uint64_t h = heap_[p];
    for (;;) {
      const uint32_t l = 2 * p + 1, r = l + 1;
      if (l >= n) break;
      const uint32_t m = r < n && heap_[r] < heap_[l] ? r : l;
      if (heap_[m] >= h) break;
      place(p, heap_[m]);
      p = m;
    }
    place(p, h);
  }

  uint32_t capacity_;
  uint64_t seed_;
  uint32_t mask_ = 0;
  uint64_t total_ = 0;
  std::vector<Counter> counters_;
  std::vector<uint64_t> heap_;   // count << 16 | counter, smallest first
  std::vector<uint16_t> index_;  // hash slot -> counter, kEmpty if none
};

class SourceSpread {
 public:
  static constexpr size_t kBins = 256;

  void add(uint64_t source_hash) {
    ++bins_[source_hash & (kBins - 1)];
    const uint32_t bit = static_cast<uint32_t>(source_hash >> 8) & (kBits - 1);
    seen_[bit / 64] |= uint64_t{1} << (bit % 64);
    ++n_;
  }
  // 0 when every packet came from one source (or none), 1 when spread evenly.
  double entropy() const {
    if (n_ == 0) return 0;
    double h = 0;
    for (uint32_t c : bins_) {
      if (c == 0) continue;
      const double p = static_cast<double>(c) / static_cast<double>(n_);
      h -= p * std::log2(p);
    }
    return h / std::log2(static_cast<double>(kBins));
  }
  // Distinct sources (linear counting over 4096 bits; saturates near 30,000).
  uint64_t distinct() const {
    size_t zero = 0;
    for (uint64_t w : seen_)
      zero += static_cast<size_t>(64 - __builtin_popcountll(w));
    if (zero == 0) zero = 1;
    return static_cast<uint64_t>(
        std::llround(-static_cast<double>(kBits) * std::log(static_cast<double>(zero) / kBits)));
  }
  uint64_t packets() const { return n_; }
  void clear() {
    bins_.fill(0);
    seen_.fill(0);
    n_ = 0;
  }

 private:
  static constexpr uint32_t kBits = 4096;
  std::array<uint32_t, kBins> bins_{};
  std::array<uint64_t, kBits / 64> seen_{};
  uint64_t n_ = 0;
};

}  // namespace palisade::ddos
