// FlatIndex: a key -> uint32_t index for tables the data plane reads per
// packet and builds once (the compiled policy's endpoints, VIPs, MACs).
//
// Open addressing with linear probing in one array, a power-of-two size and
// a load of at most one half: a lookup is a hash, a mask and, most often,
// one slot compared with fixed-size loads. std::unordered_map's lookup (a
// division by a prime, a node to chase, a memcmp call) measured several
// times dearer on the SYN-flood path (bench/RESULTS.md).
//
// Keys are the policy's, never a peer's, so no attacker chooses where they
// sit; a lookup of a key that is absent ends at the first empty slot, and
// the longest run of full slots is fixed when the table is built.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/hash.h"

namespace palisade {

// The default hash: the key's bytes. A key built on the stack just before
// a lookup may want its own, reading its fields as they were stored (a
// 64-bit read across a 2-byte and a 1-byte store waits for both).
template <class K>
struct BytesHash {
  uint64_t operator()(const K& k) const { return hashKey(k); }
};

template <class K, class Hash = BytesHash<K>>
class FlatIndex {
  static_assert(std::is_trivially_copyable_v<K>, "keys are plain values");

 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Sets k's value (replacing one there was). `value` must not be kNone.
  void insert(const K& k, uint32_t value) { put(k, value, true); }
  // Sets k's value unless k has one already.
  void insertIfAbsent(const K& k, uint32_t value) { put(k, value, false); }

  uint32_t find(const K& k) const {
    if (slots_.empty()) return kNone;
    for (size_t i = mask_ & Hash{}(k);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.key == k) return s.value;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    K key;
    uint32_t value = kNone;
  };

  void put(const K& k, uint32_t value, bool replace) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    for (size_t i = mask_ & Hash{}(k);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.value == kNone) {
        s.key = k;
        s.value = value;
        ++count_;
        return;
      }
      if (s.key == k) {
        if (replace) s.value = value;
        return;
      }
    }
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    count_ = 0;
    for (const Slot& s : old)
      if (s.value != kNone) put(s.key, s.value, true);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace palisade
