// Hashing of plain-data keys (flow keys, classifier keys).
//
// Keys are fixed-layout structs without padding (has_unique_object_representations),
// hashed as whole 64-bit words. The mix is a multiply-xorshift in the style of
// wyhash/murmur finalisers: not cryptographic, but well spread and a few cycles
// per word. Flow tables that face attacker-chosen keys seed it per process.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace palisade {

inline uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// Hashes `n` bytes; n need not be a multiple of 8 (the tail is zero-padded).
inline uint64_t hashBytes(const void* data, size_t n, uint64_t seed = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
  }
  return mix64(h);
}

template <class T>
inline uint64_t hashKey(const T& key, uint64_t seed = 0) {
  static_assert(std::has_unique_object_representations_v<T>, "hash only padding-free keys");
  return hashBytes(&key, sizeof(T), seed);
}

}  // namespace palisade
