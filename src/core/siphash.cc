#include "core/siphash.h"

#include <cstring>

namespace palisade {
namespace {

// Eight 64-bit lanes; GCC and Clang lower each operation to what the target
// function's instruction set has (one AVX-512 instruction, two AVX2 ones, or
// four SSE2 ones). Vectors are never passed to or returned from a function
// here: their ABI depends on the instruction set.
using U64x8 = uint64_t __attribute__((vector_size(64)));

#define PALISADE_SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define PALISADE_SIP_ROUND          \
  do {                              \
    v0 += v1;                       \
    v1 = PALISADE_SIP_ROTL(v1, 13); \
    v1 ^= v0;                       \
    v0 = PALISADE_SIP_ROTL(v0, 32); \
    v2 += v3;                       \
    v3 = PALISADE_SIP_ROTL(v3, 16); \
    v3 ^= v2;                       \
    v0 += v3;                       \
    v3 = PALISADE_SIP_ROTL(v3, 21); \
    v3 ^= v0;                       \
    v2 += v1;                       \
    v1 = PALISADE_SIP_ROTL(v1, 17); \
    v1 ^= v2;                       \
    v2 = PALISADE_SIP_ROTL(v2, 32); \
  } while (0)

[[gnu::always_inline]] inline void sipBody(const uint64_t* k0, const uint64_t* k1,
                                           const uint64_t* m, size_t words, const uint64_t* tail,
                                           size_t tail_len, uint64_t* out) {
  U64x8 a, b, w;
  std::memcpy(&a, k0, sizeof a);
  std::memcpy(&b, k1, sizeof b);
  U64x8 v0 = a ^ 0x736f6d6570736575ULL, v1 = b ^ 0x646f72616e646f6dULL,
        v2 = a ^ 0x6c7967656e657261ULL, v3 = b ^ 0x7465646279746573ULL;
  for (size_t i = 0; i < words; ++i) {
    std::memcpy(&w, m + i * kSipLanes, sizeof w);
    v3 ^= w;
    PALISADE_SIP_ROUND;
    PALISADE_SIP_ROUND;
    v0 ^= w;
  }
  std::memcpy(&w, tail, sizeof w);
  // Bytes past tail_len are ignored, as the scalar function never reads them.
  const uint64_t keep = tail_len ? ~uint64_t{0} >> (64 - 8 * tail_len) : 0;
  w = (w & keep) | static_cast<uint64_t>(words * 8 + tail_len) << 56;
  v3 ^= w;
  PALISADE_SIP_ROUND;
  PALISADE_SIP_ROUND;
  v0 ^= w;
  v2 ^= 0xff;
  PALISADE_SIP_ROUND;
  PALISADE_SIP_ROUND;
  PALISADE_SIP_ROUND;
  PALISADE_SIP_ROUND;
  const U64x8 r = v0 ^ v1 ^ v2 ^ v3;
  std::memcpy(out, &r, sizeof r);
}

#undef PALISADE_SIP_ROUND
#undef PALISADE_SIP_ROTL

[[gnu::target("avx512f")]] void x8Avx512(const uint64_t* k0, const uint64_t* k1, const uint64_t* m,
                                         size_t words, const uint64_t* tail, size_t tail_len,
                                         uint64_t* out) {
  sipBody(k0, k1, m, words, tail, tail_len, out);
}
[[gnu::target("avx2")]] void x8Avx2(const uint64_t* k0, const uint64_t* k1, const uint64_t* m,
                                    size_t words, const uint64_t* tail, size_t tail_len,
                                    uint64_t* out) {
  sipBody(k0, k1, m, words, tail, tail_len, out);
}
void x8Base(const uint64_t* k0, const uint64_t* k1, const uint64_t* m, size_t words,
            const uint64_t* tail, size_t tail_len, uint64_t* out) {
  sipBody(k0, k1, m, words, tail, tail_len, out);
}

detail::SipHash24x8Fn pick() {
  if (auto f = detail::sipHash24x8Avx512()) return f;
  if (auto f = detail::sipHash24x8Avx2()) return f;
  return detail::sipHash24x8Base();
}

}  // namespace

namespace detail {
SipHash24x8Fn sipHash24x8Avx512() {
  return __builtin_cpu_supports("avx512f") ? x8Avx512 : nullptr;
}
SipHash24x8Fn sipHash24x8Avx2() {
  return __builtin_cpu_supports("avx2") ? x8Avx2 : nullptr;
}
SipHash24x8Fn sipHash24x8Base() {
  return x8Base;
}
}  // namespace detail

void sipHash24x8(const uint64_t* k0, const uint64_t* k1, const uint64_t* m, size_t words,
                 const uint64_t* tail, size_t tail_len, uint64_t* out) {
  static const detail::SipHash24x8Fn impl = pick();
  impl(k0, k1, m, words, tail, tail_len, out);
}

}  // namespace palisade
