#include "packet/checksum.h"

#include <bit>
#include <cstring>

namespace palisade::pkt {

namespace {

// Adds with the end-around carry of one's-complement arithmetic.
inline uint64_t addCarry(uint64_t acc, uint64_t w) {
  acc += w;
  return acc + (acc < w);
}

}  // namespace

// Eight bytes at a time in the host's order: the one's-complement sum does
// not depend on byte order (RFC 1071 2(B)), so the sum of native 64-bit
// words, folded to 16 bits, is the network-order sum with its bytes swapped
// on a little-endian host. (One 16-bit word at a time, byte-swapped, was
// four times the work.)
uint32_t checksumPartial(Bytes data, uint32_t sum) {
  const std::byte* p = data.data();
  size_t n = data.size();
  uint64_t acc = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    acc = addCarry(acc, w);
  }
  if (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    acc = addCarry(acc, w);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    acc = addCarry(acc, w);
    p += 2;
    n -= 2;
  }
  if (n) {
    // The odd last byte is a word's first (high, in network order) byte.
    const uint8_t b = load8(p);
    acc =
        addCarry(acc, std::endian::native == std::endian::little ? uint64_t{b} : uint64_t{b} << 8);
  }
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  uint32_t s = static_cast<uint32_t>(acc);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  if constexpr (std::endian::native == std::endian::little)
    s = __builtin_bswap16(static_cast<uint16_t>(s));
  sum += s;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint16_t internetChecksum(Bytes data) {
  return checksumFinish(checksumPartial(data));
}

uint32_t pseudoHeaderSum6(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length) {
  uint32_t sum = checksumPartial(asBytes(src.b.data(), 16));
  sum = checksumPartial(asBytes(dst.b.data(), 16), sum);
  sum += proto;
  sum += length >> 16;
  sum += length & 0xffff;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

}  // namespace palisade::pkt

namespace palisade::pkt {

bool completeTransportChecksum(std::span<std::byte> frame, const Packet& p) {
  if (!p.ok() || p.has(kFragment) || !(p.has(kTcp) || p.has(kUdp))) return false;
  if (p.l3_end > frame.size() || p.l4_off >= p.l3_end) return false;
  const uint32_t len = p.l3_end - p.l4_off;
  const size_t at = p.l4_off + (p.has(kTcp) ? 16 : 6);
  if (at + 2 > p.l3_end) return false;
  frame[at] = frame[at + 1] = std::byte{0};
  const uint8_t proto = p.has(kTcp) ? ipproto::kTcp : ipproto::kUdp;
  uint16_t sum = checksumFinish(checksumPartial(Bytes(frame.data() + p.l4_off, len),
                                                pseudoHeaderSum(p.src, p.dst, proto, len)));
  if (sum == 0 && proto == ipproto::kUdp) sum = 0xffff;  // 0 means "none" for UDP
  frame[at] = static_cast<std::byte>(sum >> 8);
  frame[at + 1] = static_cast<std::byte>(sum & 0xff);
  return true;
}

}  // namespace palisade::pkt
