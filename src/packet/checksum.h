// Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-header sums.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/net.h"

namespace palisade::pkt {

// One's-complement sum folded to 16 bits, not yet inverted.
uint32_t checksumPartial(Bytes data, uint32_t sum = 0);
// The sums below are inline: the SYN proxy and the NAT rewrite take several
// per packet, each a few instructions, which a call cost as much as.
inline uint16_t checksumFinish(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);  // at most 0x1fffe
  sum = (sum & 0xffff) + (sum >> 16);  // at most 0xffff
  return static_cast<uint16_t>(~sum & 0xffff);
}
uint16_t internetChecksum(Bytes data);
// Sum of the pseudo-header for a transport segment of `length` bytes (the
// family is src's), folded to 16 bits.
uint32_t pseudoHeaderSum6(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length);
inline uint32_t pseudoHeaderSum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                                uint32_t length) {
  if (!src.isV4()) return pseudoHeaderSum6(src, dst, proto, length);
  const uint32_t s = src.v4Value(), d = dst.v4Value();
  uint32_t sum = (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + proto + (length >> 16) +
                 (length & 0xffff);
  sum = (sum & 0xffff) + (sum >> 16);
  return (sum & 0xffff) + (sum >> 16);
}

// Incremental updates (RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m')) over every
// changed word at once: checksumDelta() sums ~m + m' over the 16-bit words of
// a field (n even, words counted from the start of the checksummed data),
// checksumAdjust() adds a sum of deltas to the checksum at `csum` with one
// fold. For UDP a computed zero is stored as all ones (RFC 768).
inline uint32_t checksumDelta(const std::byte* old_bytes, const std::byte* new_bytes, size_t n) {
  uint32_t d = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    d += static_cast<uint16_t>(~load16(old_bytes + i)) + uint32_t{load16(new_bytes + i)};
  return d;
}
// The same on a checksum's value (host order): the value to store.
inline uint16_t checksumAdjusted(uint16_t csum, uint32_t delta, bool udp) {
  uint32_t sum = static_cast<uint16_t>(~csum) + delta;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = static_cast<uint16_t>(~sum);
  if (udp && c == 0) c = 0xffff;
  return c;
}
inline void checksumAdjust(std::byte* csum, uint32_t delta, bool udp) {
  store16(csum, checksumAdjusted(load16(csum), delta, udp));
}

}  // namespace palisade::pkt

#include <span>

#include "packet/packet.h"

namespace palisade::pkt {

// Computes and stores the TCP or UDP checksum of the packet `p` describes in
// `frame` (p decoded from frame), whatever its checksum field held. For frames
// a local sender left to checksum offload (AF_PACKET's TP_STATUS_CSUMNOTREADY:
// the field holds only the pseudo-header sum). Returns false when the packet
// is not a whole TCP or UDP segment (fragments, other protocols): untouched.
bool completeTransportChecksum(std::span<std::byte> frame, const Packet& p);

}  // namespace palisade::pkt
