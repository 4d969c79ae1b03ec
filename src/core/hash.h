// Hashing of plain-data keys (flow keys, classifier keys).
//
// Keys are fixed-layout structs without padding (has_unique_object_representations),
// hashed as whole 64-bit words. The mix is wyhash's folded 128-bit multiply (and a
// multiply-xorshift for long inputs): not cryptographic, but well spread and a
// few cycles per word. Flow tables that face attacker-chosen keys seed it per process.
#pragma once

#include <sys/random.h>

#include <chrono>
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

// 64x64 -> 128-bit multiply, folded: the mixing step of wyhash.
inline uint64_t mum(uint64_t a, uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

namespace detail {
inline constexpr uint64_t kSecret[8] = {
    0xa0761d6478bd642fULL, 0xe7037ed1a0b428dbULL, 0x8ebc6af09c88c6e3ULL, 0x589965cc75374cc3ULL,
    0x1d8e4e27c47d124fULL, 0xbd6f8aa1e3c6b5a7ULL, 0x72be5d74f27b896fULL, 0x9e3779b97f4a7c15ULL};
}  // namespace detail

// Hashes `n` bytes; n need not be a multiple of 8 (the tail is zero-padded).
// Up to 64 bytes (every key the data plane hashes), each 16-byte block is
// multiplied with its own secret independently of the others, so the blocks
// of a flow key are mixed in parallel rather than in one dependency chain.
inline uint64_t hashBytes(const void* data, size_t n, uint64_t seed = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  auto word = [&](size_t i) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i >= 8 ? 8 : n - i);
    return w;
  };
  if (n <= 64) {
    uint64_t h = seed ^ (n * detail::kSecret[7]);
    for (size_t i = 0, k = 0; i < n; i += 16, k += 2) {
      const uint64_t a = word(i), b = i + 8 < n ? word(i + 8) : 0;
      h ^= mum(a ^ detail::kSecret[k], b ^ detail::kSecret[k + 1] ^ seed);
    }
    return mum(h ^ detail::kSecret[0], n ^ seed ^ detail::kSecret[7]);
  }
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    h = (h ^ word(i)) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
  }
  if (i < n) h = (h ^ word(i)) * 0x9e3779b97f4a7c15ULL;
  return mix64(h);
}

// A seed for a table keyed by what an attacker chooses: from the kernel, so
// keys cannot be picked in advance to collide (the clock if the kernel has no
// randomness yet).
inline uint64_t randomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed))
    seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return mix64(seed);
}

template <class T>
inline uint64_t hashKey(const T& key, uint64_t seed = 0) {
  static_assert(std::has_unique_object_representations_v<T>, "hash only padding-free keys");
  return hashBytes(&key, sizeof(T), seed);
}

}  // namespace palisade
