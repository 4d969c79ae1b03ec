// Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-header sums.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/net.h"

namespace palisade::pkt {

// One's-complement sum folded to 16 bits, not yet inverted.
uint32_t checksumPartial(Bytes data, uint32_t sum = 0);
uint16_t checksumFinish(uint32_t sum);
uint16_t internetChecksum(Bytes data);
// Sum of the pseudo-header for a transport segment of `length` bytes.
uint32_t pseudoHeaderSum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length);

// Incremental updates (RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m')) over every
// changed word at once: checksumDelta() sums ~m + m' over the 16-bit words of
// a field (n even, words counted from the start of the checksummed data),
// checksumAdjust() adds a sum of deltas to the checksum at `csum` with one
// fold. For UDP a computed zero is stored as all ones (RFC 768).
uint32_t checksumDelta(const std::byte* old_bytes, const std::byte* new_bytes, size_t n);
void checksumAdjust(std::byte* csum, uint32_t delta, bool udp);
// The same on a checksum's value (host order): the value to store.
uint16_t checksumAdjusted(uint16_t csum, uint32_t delta, bool udp);

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
