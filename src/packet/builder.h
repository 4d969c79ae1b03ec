// PacketBuilder: well-formed frames for tests, fuzz corpora and demo traffic.
//
// Layers are pushed outermost first; build() fills in every length, next-header
// field and checksum, so the result is a packet a real stack (and tshark) would
// accept. Tests that need a malformed packet build a good one and then break the
// field they are testing.
//
//   auto frame = PacketBuilder()
//       .eth(client_mac, gw_mac)
//       .ipv4(IpAddr::parse("198.51.100.7").value(), vip)
//       .tcp(5555, 443, tcpflag::kSyn, 1000, 0, {.mss = 1460, .has_mss = true})
//       .build();
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/net.h"
#include "packet/packet.h"

namespace palisade::pkt {

class PacketBuilder {
 public:
  PacketBuilder& eth(const MacAddr& src, const MacAddr& dst);
  PacketBuilder& vlan(uint16_t id, uint16_t tpid = ethertype::kVlan);
  PacketBuilder& ethertypeRaw(uint16_t type);  // for non-IP frames; payload() follows
  PacketBuilder& arp(uint16_t op, const MacAddr& sha, const IpAddr& spa, const MacAddr& tha,
                     const IpAddr& tpa);
  PacketBuilder& ipv4(const IpAddr& src, const IpAddr& dst, uint8_t ttl = 64);
  PacketBuilder& ipv4Options(std::vector<uint8_t> options);  // padded to 4 bytes
  PacketBuilder& ipv4Fragment(uint16_t id, uint16_t offset_bytes, bool more);
  PacketBuilder& ipv6(const IpAddr& src, const IpAddr& dst, uint8_t hop_limit = 64);
  // An extension header with `body` after the next-header/length bytes (padded to 8).
  PacketBuilder& ipv6Extension(uint8_t type, std::vector<uint8_t> body = {});
  PacketBuilder& ipv6Fragment(uint32_t id, uint16_t offset_bytes, bool more);
  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 0,
                     uint32_t ack = 0, const TcpOptions& opt = {}, uint16_t window = 64240);
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  PacketBuilder& icmp(uint8_t type, uint8_t code, uint16_t id = 0, uint16_t seq = 0);
  PacketBuilder& icmpv6(uint8_t type, uint8_t code, uint32_t word = 0);
  // Neighbour solicitation (135) or advertisement (136) for target, with an
  // optional link-layer address option (source for NS, target for NA).
  PacketBuilder& nd(uint8_t type, const IpAddr& target, const MacAddr* lladdr = nullptr);
  struct Dhcp {
    uint8_t op = 1;
    uint8_t msg_type = 1;  // DHCPDISCOVER
    uint32_t xid = 0x1234;
    MacAddr client_mac;
    IpAddr yiaddr = IpAddr::v4(0u);
    const IpAddr* requested = nullptr;
    const IpAddr* server_id = nullptr;
    std::vector<uint8_t> options;  // raw option TLVs, before the end option
  };
  PacketBuilder& dhcp(const Dhcp& d);
  PacketBuilder& vxlan(uint32_t vni);  // pushes the VXLAN header; inner layers follow
  PacketBuilder& payload(std::string_view bytes);
  PacketBuilder& payload(std::vector<uint8_t> bytes);

  std::vector<std::byte> build() const;

 private:
  enum class Kind : uint8_t { Eth, Vlan, Ipv4, Ipv6, Ipv6Ext, Tcp, Udp, Icmp, Icmpv6, Other };
  struct Mark {
    Kind kind;
    uint32_t off;
  };
  void setNext(uint16_t ethertype_value, uint8_t ip_proto);
  uint8_t* raw(uint32_t off) { return buf_.data() + off; }
  uint32_t append(std::initializer_list<uint8_t> bytes);
  uint32_t appendZeros(size_t n);
  void put16(uint32_t off, uint16_t v);
  void put32(uint32_t off, uint32_t v);

  std::vector<uint8_t> buf_;
  std::vector<Mark> marks_;
};

// Cuts an Ethernet frame's IPv4 or IPv6 datagram (no extension headers) as a
// router would: the payload after the IP header at `cuts` (multiples of 8,
// ascending), each piece in a fragment with identification `id`, in order.
std::vector<std::vector<std::byte>> fragmentFrame(const std::vector<std::byte>& frame,
                                                  std::vector<size_t> cuts, uint32_t id);

}  // namespace palisade::pkt
