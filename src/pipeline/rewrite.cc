#include "pipeline/rewrite.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "packet/checksum.h"

namespace palisade::pipeline {

void rewriteEndpoint(std::span<std::byte> frame, const pkt::Packet& p, bool source,
                     const IpAddr& addr, uint16_t port) {
  // Every old value is read from p.frame, the packet as received; `frame` is
  // only written. Its bytes were copied from p.frame just before, and reading
  // them back would wait on that copy's stores (a store-forwarding stall per
  // field).
  std::byte* base = frame.data();
  const std::byte* in = p.frame.data();
  if (frame.size() != p.frame.size()) return;
  const bool v4 = p.has(pkt::kIpv4);
  const size_t alen = v4 ? 4 : 16;
  const uint32_t aoff = p.l3_off + (v4 ? (source ? 12u : 16u) : (source ? 8u : 24u));
  if (aoff + alen > frame.size()) return;
  const uint8_t* new_addr = addr.b.data() + (v4 ? 12 : 0);

  // Which L4 checksum covers the pseudo-header (and where it is).
  uint32_t csum_off = UINT32_MAX;
  bool pseudo = true;
  uint32_t port_off = UINT32_MAX;
  if (p.has(pkt::kTcp) && p.l4_off + 18 <= frame.size()) {
    csum_off = p.l4_off + 16;
    port_off = p.l4_off + (source ? 0u : 2u);
  } else if (p.has(pkt::kUdp) && p.l4_off + 8 <= frame.size()) {
    // IPv4 UDP with checksum 0 carries none; leave it so.
    if (!(v4 && load16(in + p.l4_off + 6) == 0)) csum_off = p.l4_off + 6;
    port_off = p.l4_off + (source ? 0u : 2u);
  } else if ((p.has(pkt::kIcmp) || p.has(pkt::kIcmpv6)) && p.l4_off + 8 <= frame.size()) {
    csum_off = p.l4_off + 2;
    pseudo = p.has(pkt::kIcmpv6);
    const uint8_t type = static_cast<uint8_t>(in[p.l4_off]);
    const bool echo = v4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
    if (echo) port_off = p.l4_off + 4;  // the identifier, both ways
  }

  const uint32_t d_addr =
      pkt::checksumDelta(in + aoff, reinterpret_cast<const std::byte*>(new_addr), alen);
  uint32_t d_port = 0;
  if (port_off != UINT32_MAX) {
    d_port = static_cast<uint16_t>(~load16(in + port_off)) + uint32_t{port};
    store16(base + port_off, port);
  }
  if (v4) {
    const uint32_t ip_csum = p.l3_off + 10;
    store16(base + ip_csum, pkt::checksumAdjusted(load16(in + ip_csum), d_addr, false));
  }
  // The L4 checksum covers the pseudo-header (addresses) and the ports; a first
  // fragment's covers the whole datagram, which this changes the same way.
  if (csum_off != UINT32_MAX)
    store16(base + csum_off,
            pkt::checksumAdjusted(load16(in + csum_off), (pseudo ? d_addr : 0) + d_port,
                                  p.has(pkt::kUdp)));
  std::memcpy(base + aoff, new_addr, alen);
}

void shiftQuotedTcp(std::span<std::byte> frame, const pkt::Packet& p, uint32_t seq_add,
                    uint32_t ack_add) {
  std::byte* base = frame.data();
  const size_t end = std::min<size_t>(p.l3_end, frame.size());
  const size_t ip = p.icmp.inner_off;
  if (ip == 0 || ip + 20 > end) return;
  const unsigned version = static_cast<unsigned>(base[ip]) >> 4;
  size_t l4;
  if (version == 4 && static_cast<uint8_t>(base[ip + 9]) == pkt::ipproto::kTcp)
    l4 = ip + (static_cast<unsigned>(base[ip]) & 0xf) * 4u;
  else if (version == 6 && ip + 40 <= end &&
           static_cast<uint8_t>(base[ip + 6]) == pkt::ipproto::kTcp)
    l4 = ip + 40;
  else
    return;
  if (l4 < ip + 20) return;  // a quoted IPv4 header shorter than 20 bytes
  uint32_t delta = 0;
  for (auto [off, add] : {std::pair{l4 + 4, seq_add}, std::pair{l4 + 8, ack_add}}) {
    if (add == 0 || off + 4 > end) continue;
    std::byte next[4];
    store32(next, load32(base + off) + add);
    delta += pkt::checksumDelta(base + off, next, 4);
    std::memcpy(base + off, next, 4);
  }
  if (delta && l4 + 18 <= end) pkt::checksumAdjust(base + l4 + 16, delta, false);
}

void rewriteQuoted(std::span<std::byte> frame, const pkt::Packet& p, bool source,
                   const IpAddr& addr, uint16_t port) {
  std::byte* base = frame.data();
  const size_t end = std::min<size_t>(p.l3_end, frame.size());
  const size_t ip = p.icmp.inner_off;
  if (ip == 0 || ip + 20 > end || p.l4_off + 4 > end) return;
  const unsigned version = static_cast<unsigned>(base[ip]) >> 4;
  const bool v4 = version == 4;
  size_t l4;
  uint8_t proto;
  if (v4) {
    l4 = ip + (static_cast<unsigned>(base[ip]) & 0xf) * 4u;
    proto = static_cast<uint8_t>(base[ip + 9]);
  } else if (version == 6 && ip + 40 <= end) {
    l4 = ip + 40;  // the quoted packet's extension headers are not walked
    proto = static_cast<uint8_t>(base[ip + 6]);
  } else {
    return;
  }
  if (addr.isV4() != v4 || l4 < ip + 20 || l4 > end) return;
  const size_t alen = v4 ? 4 : 16;
  const size_t aoff = ip + (v4 ? (source ? 12u : 16u) : (source ? 8u : 24u));
  std::byte new_addr[16];
  std::memcpy(new_addr, addr.b.data() + (v4 ? 12 : 0), alen);
  const uint32_t d_addr = pkt::checksumDelta(base + aoff, new_addr, alen);
  if (v4) pkt::checksumAdjust(base + ip + 10, d_addr, false);
  std::memcpy(base + aoff, new_addr, alen);
  // The quoted transport header: as much of it as the error carries.
  uint32_t d_port = 0;
  size_t port_off = SIZE_MAX, csum_off = SIZE_MAX;
  bool pseudo = true, udp = false;
  if (proto == pkt::ipproto::kTcp || proto == pkt::ipproto::kUdp) {
    port_off = l4 + (source ? 0u : 2u);
    udp = proto == pkt::ipproto::kUdp;
    csum_off = l4 + (udp ? 6u : 16u);
  } else if (proto == pkt::ipproto::kIcmp || proto == pkt::ipproto::kIcmpv6) {
    port_off = l4 + 4;  // the echo identifier, both ways
    csum_off = l4 + 2;
    pseudo = proto == pkt::ipproto::kIcmpv6;
  }
  if (port_off != SIZE_MAX && port_off + 2 <= end) {
    std::byte np[2];
    store16(np, port);
    d_port = pkt::checksumDelta(base + port_off, np, 2);
    std::memcpy(base + port_off, np, 2);
  }
  if (csum_off != SIZE_MAX && csum_off + 2 <= end && !(udp && v4 && load16(base + csum_off) == 0))
    pkt::checksumAdjust(base + csum_off, (pseudo ? d_addr : 0) + d_port, udp);
  // The error's own checksum, afresh over the whole message.
  std::byte* icmp_csum = base + p.l4_off + 2;
  store16(icmp_csum, 0);
  const Bytes msg(base + p.l4_off, end - p.l4_off);
  uint32_t sum = 0;
  if (p.has(pkt::kIcmpv6)) {
    const IpAddr src = IpAddr::v6(reinterpret_cast<const uint8_t*>(base + p.l3_off + 8));
    const IpAddr dst = IpAddr::v6(reinterpret_cast<const uint8_t*>(base + p.l3_off + 24));
    sum = pkt::pseudoHeaderSum(src, dst, pkt::ipproto::kIcmpv6, static_cast<uint32_t>(msg.size()));
  }
  store16(icmp_csum, pkt::checksumFinish(pkt::checksumPartial(msg, sum)));
}

void setMacs(std::span<std::byte> frame, const pkt::Packet& p, const MacAddr& src,
             const MacAddr& dst) {
  if (!p.has(pkt::kEth) || frame.size() < 12) return;
  std::memcpy(frame.data(), dst.b.data(), 6);
  std::memcpy(frame.data() + 6, src.b.data(), 6);
}

void writeVxlan(std::span<std::byte> frame, const VxlanOuter& o) {
  const bool v4 = o.src.isV4();
  const size_t ip_len = v4 ? 20 : 40;
  std::byte* b = frame.data();
  std::memcpy(b, o.dst_mac.b.data(), 6);
  std::memcpy(b + 6, o.src_mac.b.data(), 6);
  store16(b + 12, v4 ? 0x0800 : 0x86dd);
  std::byte* ip = b + 14;
  std::byte* udp = ip + ip_len;
  const size_t udp_len = frame.size() - 14 - ip_len;
  if (v4) {
    std::memset(ip, 0, 20);
    ip[0] = std::byte{0x45};
    store16(ip + 2, static_cast<uint16_t>(20 + udp_len));
    store16(ip + 4, o.ip_id);
    ip[8] = std::byte{64};  // TTL
    ip[9] = std::byte{17};
    std::memcpy(ip + 12, o.src.b.data() + 12, 4);
    std::memcpy(ip + 16, o.dst.b.data() + 12, 4);
    store16(ip + 10, pkt::internetChecksum(Bytes(ip, 20)));
  } else {
    std::memset(ip, 0, 8);
    ip[0] = std::byte{0x60};
    store16(ip + 4, static_cast<uint16_t>(udp_len));
    ip[6] = std::byte{17};
    ip[7] = std::byte{64};  // hop limit
    std::memcpy(ip + 8, o.src.b.data(), 16);
    std::memcpy(ip + 24, o.dst.b.data(), 16);
  }
  store16(udp, o.sport);
  store16(udp + 2, o.dport);
  store16(udp + 4, static_cast<uint16_t>(udp_len));
  store16(udp + 6, 0);
  std::byte* vx = udp + 8;
  std::memset(vx, 0, 8);
  vx[0] = std::byte{0x08};  // I flag: the VNI is valid
  vx[4] = static_cast<std::byte>(o.vni >> 16);
  vx[5] = static_cast<std::byte>(o.vni >> 8);
  vx[6] = static_cast<std::byte>(o.vni);
  if (!v4) {
    const uint32_t sum = pkt::checksumPartial(
        Bytes(udp, udp_len),
        pkt::pseudoHeaderSum(o.src, o.dst, 17, static_cast<uint32_t>(udp_len)));
    uint16_t c = pkt::checksumFinish(sum);
    if (c == 0) c = 0xffff;
    store16(udp + 6, c);
  }
}

}  // namespace palisade::pipeline
