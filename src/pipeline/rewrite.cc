#include "pipeline/rewrite.h"

#include <cstring>

namespace palisade::pipeline {
namespace {

uint16_t get16(const std::byte* p) {
  return static_cast<uint16_t>(static_cast<unsigned>(p[0]) << 8 | static_cast<unsigned>(p[1]));
}
void put16(std::byte* p, uint16_t v) {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
uint16_t adjust(uint16_t hc, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~hc) + static_cast<uint16_t>(~old_word) + new_word;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void adjustField(std::byte* csum, const std::byte* old_bytes, const std::byte* new_bytes,
                 size_t n) {
  uint16_t c = get16(csum);
  for (size_t i = 0; i + 1 < n; i += 2)
    c = adjust(c, get16(old_bytes + i), get16(new_bytes + i));
  put16(csum, c);
}

}  // namespace

void rewriteEndpoint(std::span<std::byte> frame, const pkt::Packet& p, bool source,
                     const IpAddr& addr, uint16_t port) {
  std::byte* base = frame.data();
  const bool v4 = p.has(pkt::kIpv4);
  const size_t alen = v4 ? 4 : 16;
  const uint32_t aoff = p.l3_off + (v4 ? (source ? 12u : 16u) : (source ? 8u : 24u));
  if (aoff + alen > frame.size()) return;
  std::byte new_addr[16];
  std::memcpy(new_addr, addr.b.data() + (v4 ? 12 : 0), alen);
  std::byte old_addr[16];
  std::memcpy(old_addr, base + aoff, alen);

  // Which L4 checksum covers the pseudo-header (and where it is).
  std::byte* l4_csum = nullptr;
  bool pseudo = true;
  uint32_t port_off = UINT32_MAX;
  if (p.has(pkt::kTcp) && p.l4_off + 18 <= frame.size()) {
    l4_csum = base + p.l4_off + 16;
    port_off = p.l4_off + (source ? 0u : 2u);
  } else if (p.has(pkt::kUdp) && p.l4_off + 8 <= frame.size()) {
    // IPv4 UDP with checksum 0 carries none; leave it so.
    if (!(v4 && get16(base + p.l4_off + 6) == 0)) l4_csum = base + p.l4_off + 6;
    port_off = p.l4_off + (source ? 0u : 2u);
  } else if ((p.has(pkt::kIcmp) || p.has(pkt::kIcmpv6)) && p.l4_off + 8 <= frame.size()) {
    l4_csum = base + p.l4_off + 2;
    pseudo = p.has(pkt::kIcmpv6);
    const uint8_t type = static_cast<uint8_t>(base[p.l4_off]);
    const bool echo = v4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
    if (echo) port_off = p.l4_off + 4;  // the identifier, both ways
  }

  if (v4) adjustField(base + p.l3_off + 10, old_addr, new_addr, 4);
  if (l4_csum && pseudo && !p.has(pkt::kFragment)) adjustField(l4_csum, old_addr, new_addr, alen);
  std::memcpy(base + aoff, new_addr, alen);

  if (port_off != UINT32_MAX) {
    std::byte np[2];
    put16(np, port);
    if (l4_csum) adjustField(l4_csum, base + port_off, np, 2);
    std::memcpy(base + port_off, np, 2);
  }
}

void setMacs(std::span<std::byte> frame, const pkt::Packet& p, const MacAddr& src,
             const MacAddr& dst) {
  if (!p.has(pkt::kEth) || frame.size() < 12) return;
  std::memcpy(frame.data(), dst.b.data(), 6);
  std::memcpy(frame.data() + 6, src.b.data(), 6);
}

}  // namespace palisade::pipeline
