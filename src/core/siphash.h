// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudo-random function
// for short inputs, where an attacker sees outputs and must not forge them
// (SYN cookies) or steer them (hash-flooding). 64-bit output, 128-bit key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace palisade {

struct SipKey {
  uint64_t k0 = 0, k1 = 0;
};

inline uint64_t sipHash24(const SipKey& key, const void* data, size_t n) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  uint64_t v0 = 0x736f6d6570736575ULL ^ key.k0, v1 = 0x646f72616e646f6dULL ^ key.k1,
           v2 = 0x6c7967656e657261ULL ^ key.k0, v3 = 0x7465646279746573ULL ^ key.k1;
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t full = n & ~size_t{7};
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m;
    std::memcpy(&m, p + i, 8);  // little-endian hosts (x86-64, arm64)
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(n) << 56;
  for (size_t i = 0; i < (n & 7); ++i)
    last |= static_cast<uint64_t>(p[full + i]) << (8 * i);
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

// SipHash-2-4 of eight messages at once, one per lane of 512-bit vectors:
// lane i's result equals sipHash24({k0[i], k1[i]}, its message). Each message
// is `words` whole 64-bit words (word w of lane i at m[w * 8 + i]) and then
// `tail_len` bytes (0 to 7), the low bytes of tail[i], so its length is
// words * 8 + tail_len. With AVX-512 a round is 14 instructions for all eight,
// against 14 for each one alone: a SYN flood's cookies are made a burst at a
// time this way. Chosen at run time: AVX-512, AVX2 (the same code in two
// halves, rotations as shifts), or SSE2.
inline constexpr size_t kSipLanes = 8;
void sipHash24x8(const uint64_t* k0, const uint64_t* k1, const uint64_t* m, size_t words,
                 const uint64_t* tail, size_t tail_len, uint64_t* out);

namespace detail {
// The three builds of sipHash24x8, for tests (each only where the CPU has it).
using SipHash24x8Fn = void (*)(const uint64_t*, const uint64_t*, const uint64_t*, size_t,
                               const uint64_t*, size_t, uint64_t*);
SipHash24x8Fn sipHash24x8Avx512();  // null without AVX-512F
SipHash24x8Fn sipHash24x8Avx2();    // null without AVX2
SipHash24x8Fn sipHash24x8Base();
}  // namespace detail

}  // namespace palisade
