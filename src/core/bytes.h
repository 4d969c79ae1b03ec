// Big-endian loads and stores on raw bytes. Callers check bounds first; these
// helpers only do the unaligned, endian-correct access (memcpy compiles to a
// single load).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace palisade {

using Bytes = std::span<const std::byte>;

inline uint8_t load8(const std::byte* p) {
  return static_cast<uint8_t>(*p);
}
inline uint16_t load16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return __builtin_bswap16(v);
}
inline uint32_t load32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline uint16_t load16le(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load32le(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline void store16(std::byte* p, uint16_t v) {
  v = __builtin_bswap16(v);
  std::memcpy(p, &v, 2);
}
inline void store32(std::byte* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}

inline Bytes asBytes(const void* p, size_t n) {
  return {static_cast<const std::byte*>(p), n};
}

}  // namespace palisade
