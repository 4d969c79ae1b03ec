#include "live/segment.h"

#include <algorithm>
#include <cstring>

#include "core/net.h"
#include "packet/checksum.h"
#include "packet/packet.h"

namespace palisade::live {
namespace {

uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
void store16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint32_t load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace

bool segmentTcp(Bytes frame, uint32_t mtu, std::vector<std::vector<std::byte>>& out) {
  constexpr size_t kEth = 14;
  if (frame.size() < kEth + 20) return false;
  const auto* f = reinterpret_cast<const uint8_t*>(frame.data());
  const uint16_t type = load16(f + 12);
  size_t ip_len = 0, l4 = 0, ip_total = 0;
  IpAddr src, dst;
  if (type == pkt::ethertype::kIpv4) {
    const uint8_t* ip = f + kEth;
    ip_len = size_t{ip[0] & 0x0fu} * 4;
    if ((ip[0] >> 4) != 4 || ip_len < 20 || ip[9] != pkt::ipproto::kTcp) return false;
    if ((load16(ip + 6) & 0x3fff) != 0) return false;  // a fragment
    ip_total = load16(ip + 2);
    src = IpAddr::v4(ip + 12);
    dst = IpAddr::v4(ip + 16);
  } else if (type == pkt::ethertype::kIpv6) {
    if (frame.size() < kEth + 40) return false;
    const uint8_t* ip = f + kEth;
    if ((ip[0] >> 4) != 6 || ip[6] != pkt::ipproto::kTcp) return false;
    ip_len = 40;
    ip_total = 40 + size_t{load16(ip + 4)};
    src = IpAddr::v6(ip + 8);
    dst = IpAddr::v6(ip + 24);
  } else {
    return false;
  }
  l4 = kEth + ip_len;
  if (ip_total < ip_len + 20 || kEth + ip_total > frame.size()) return false;
  const size_t tcp_len = size_t{f[l4 + 12]} / 16 * 4;
  if (tcp_len < 20 || ip_len + tcp_len > ip_total) return false;
  const size_t headers = ip_len + tcp_len;
  if (mtu <= headers + 8) return false;
  const size_t mss = mtu - headers;
  const size_t payload = ip_total - headers;
  const uint8_t* data = f + l4 + tcp_len;
  const uint32_t seq = load32(f + l4 + 4);
  const uint8_t flags = f[l4 + 13];
  const uint16_t ipv4_id = type == pkt::ethertype::kIpv4 ? load16(f + kEth + 4) : 0;
  const size_t count = (payload + mss - 1) / mss;
  for (size_t i = 0, off = 0; i < count; ++i, off += mss) {
    const size_t n = std::min(mss, payload - off);
    std::vector<std::byte> s(kEth + headers + n);
    auto* o = reinterpret_cast<uint8_t*>(s.data());
    std::memcpy(o, f, kEth + headers);
    std::memcpy(o + kEth + headers, data + off, n);
    uint8_t* ip = o + kEth;
    if (type == pkt::ethertype::kIpv4) {
      store16(ip + 2, headers + n);
      store16(ip + 4, static_cast<uint16_t>(ipv4_id + i));
      store16(ip + 10, 0);
      store16(ip + 10, pkt::internetChecksum(Bytes(s.data() + kEth, ip_len)));
    } else {
      store16(ip + 4, headers - 40 + n);
    }
    uint8_t* tcp = o + l4;
    store32(tcp + 4, seq + static_cast<uint32_t>(off));
    uint8_t fl = flags;
    if (i + 1 < count) fl &= static_cast<uint8_t>(~(pkt::tcpflag::kFin | pkt::tcpflag::kPsh));
    if (i > 0) fl &= static_cast<uint8_t>(~pkt::tcpflag::kCwr);
    tcp[13] = fl;
    store16(tcp + 16, 0);
    const Bytes seg(s.data() + l4, tcp_len + n);
    const uint32_t sum =
        pkt::pseudoHeaderSum(src, dst, pkt::ipproto::kTcp, static_cast<uint32_t>(seg.size()));
    store16(tcp + 16, pkt::checksumFinish(pkt::checksumPartial(seg, sum)));
    out.push_back(std::move(s));
  }
  return true;
}

}  // namespace palisade::live
