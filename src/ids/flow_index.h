// The IDS engine's flows by key: open addressing with linear probing over
// (hash, flow) slots, at most half full, removal by backward shift (no
// tombstones). The caller owns the flows (each has a `key` member) and
// computes the hash with hash(), seeded per index from the kernel so that
// traffic cannot pick keys that collide. A lookup reads one slot line and the
// flow it finds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/hash.h"
#include "core/probe.h"

namespace palisade::ids {

template <class F, class Key>
class FlowIndex {
 public:
  FlowIndex() : seed_(randomSeed()) {}
  explicit FlowIndex(uint64_t seed) : seed_(seed) {}

  uint64_t hash(const Key& k) const { return hashKey(k, seed_); }
  // The flow with key k (whose hash is h), or null.
  F* find(const Key& k, uint64_t h) const {
    if (n_ == 0) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.flow) return nullptr;
      if (s.hash == h && s.flow->key == k) return s.flow;
    }
  }
  // f, not in the index, under hash h.
  void insert(F* f, uint64_t h) {
    if ((n_ + 1) * 2 > slots_.size()) grow();
    place({h, f});
    ++n_;
  }
  // f, in the index under hash h.
  void erase(const F* f, uint64_t h) {
    size_t at = h & mask_;
    while (slots_[at].flow != f)
      at = (at + 1) & mask_;
    const size_t hole = backwardShift(
        at, slots_.size(), [&](size_t j) { return slots_[j].flow != nullptr; },
        [&](size_t j) { return slots_[j].hash & mask_; },
        [&](size_t from, size_t to) { slots_[to] = slots_[from]; });
    slots_[hole] = {};
    --n_;
  }
  size_t size() const { return n_; }
  size_t slots() const { return slots_.size(); }
  void clear() {
    slots_.clear();
    mask_ = 0;
    n_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    F* flow = nullptr;  // null: empty
  };
  void place(Slot s) {
    size_t i = s.hash & mask_;
    while (slots_[i].flow)
      i = (i + 1) & mask_;
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old)
      if (s.flow) place(s);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, n_ = 0;
  uint64_t seed_;
};

}  // namespace palisade::ids
