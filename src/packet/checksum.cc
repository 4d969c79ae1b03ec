#include "packet/checksum.h"

namespace palisade::pkt {

uint32_t checksumPartial(Bytes data, uint32_t sum) {
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2)
    sum += load16(data.data() + i);
  if (i < data.size()) sum += uint32_t{load8(data.data() + i)} << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint16_t checksumFinish(uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint16_t internetChecksum(Bytes data) {
  return checksumFinish(checksumPartial(data));
}

uint32_t pseudoHeaderSum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length) {
  uint32_t sum = 0;
  if (src.isV4()) {
    sum = checksumPartial(asBytes(src.b.data() + 12, 4), sum);
    sum = checksumPartial(asBytes(dst.b.data() + 12, 4), sum);
  } else {
    sum = checksumPartial(asBytes(src.b.data(), 16), sum);
    sum = checksumPartial(asBytes(dst.b.data(), 16), sum);
  }
  sum += proto;
  sum += length >> 16;
  sum += length & 0xffff;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

}  // namespace palisade::pkt
