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

}  // namespace palisade::pkt
