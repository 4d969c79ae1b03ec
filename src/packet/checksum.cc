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

uint32_t checksumDelta(const std::byte* old_bytes, const std::byte* new_bytes, size_t n) {
  uint32_t d = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    d += static_cast<uint16_t>(~load16(old_bytes + i)) + uint32_t{load16(new_bytes + i)};
  return d;
}

void checksumAdjust(std::byte* csum, uint32_t delta, bool udp) {
  uint32_t sum = static_cast<uint16_t>(~load16(csum)) + delta;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = static_cast<uint16_t>(~sum);
  if (udp && c == 0) c = 0xffff;
  store16(csum, c);
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
