// What the decoder counts: protocols seen and malformed cases by reason.
// Declared once here (X-macro lists); arrays are indexed by enum, never by name.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace palisade::pkt {

// Protocol layers, counted once per frame in which the layer is reached (even if
// that layer then turns out malformed), like tshark's protocol hierarchy.
#define PALISADE_DECODE_PROTOCOLS(X)   \
  X(Ethernet, "eth")                   \
  X(LinuxSll, "sll")                   \
  X(RawIp, "raw")                      \
  X(Vlan, "vlan")                      \
  X(Arp, "arp")                        \
  X(Ipv4, "ip")                        \
  X(Ipv6, "ipv6")                      \
  X(Ipv4Fragment, "ip.fragment")       \
  X(Ipv6Fragment, "ipv6.fragment")     \
  X(Tcp, "tcp")                        \
  X(Udp, "udp")                        \
  X(Icmp, "icmp")                      \
  X(Icmpv6, "icmpv6")                  \
  X(NeighborDiscovery, "ndp")          \
  X(Dhcp, "dhcp")                      \
  X(Vxlan, "vxlan")                    \
  X(OtherEthertype, "other-ethertype") \
  X(OtherIpProto, "other-ip-proto")

// Malformed input by reason. A packet with any of these is not decoded further.
#define PALISADE_DECODE_ERRORS(X)                                                         \
  X(EthTruncated, "eth_truncated", "frame shorter than an Ethernet header")               \
  X(SllTruncated, "sll_truncated", "frame shorter than a Linux cooked header")            \
  X(NullTruncated, "null_truncated", "frame shorter than a loopback header")              \
  X(UnknownLinkType, "unknown_link_type", "link type not supported")                      \
  X(VlanTruncated, "vlan_truncated", "802.1Q/802.1ad tag cut short")                      \
  X(VlanTooManyTags, "vlan_too_many_tags", "more than two VLAN tags")                     \
  X(ArpTruncated, "arp_truncated", "ARP shorter than 28 bytes")                           \
  X(ArpUnsupported, "arp_unsupported", "ARP not Ethernet/IPv4")                           \
  X(Ipv4Truncated, "ipv4_truncated", "IPv4 header cut short")                             \
  X(Ipv4BadVersion, "ipv4_bad_version", "IP version field is not 4")                      \
  X(Ipv4BadIhl, "ipv4_bad_ihl", "IPv4 header length below 20 or past the data")           \
  X(Ipv4BadTotalLength, "ipv4_bad_total_length", "IPv4 total length inconsistent")        \
  X(Ipv4BadOption, "ipv4_bad_option", "IPv4 option length invalid")                       \
  X(Ipv4FragmentOverflow, "ipv4_fragment_overflow", "fragment ends past 65535")           \
  X(Ipv6Truncated, "ipv6_truncated", "IPv6 header cut short")                             \
  X(Ipv6BadVersion, "ipv6_bad_version", "IP version field is not 6")                      \
  X(Ipv6BadPayloadLength, "ipv6_bad_payload_length", "IPv6 payload length past the data") \
  X(Ipv6ExtTruncated, "ipv6_ext_truncated", "IPv6 extension header cut short")            \
  X(Ipv6HopByHopNotFirst, "ipv6_hbh_not_first", "hop-by-hop header not first")            \
  X(Ipv6TooManyExtHeaders, "ipv6_too_many_ext", "more than 8 extension headers")          \
  X(Ipv6FragmentOverflow, "ipv6_fragment_overflow", "fragment ends past 65535")           \
  X(TcpTruncated, "tcp_truncated", "TCP header cut short")                                \
  X(TcpBadDataOffset, "tcp_bad_data_offset", "TCP data offset below 5 or past the data")  \
  X(TcpBadOption, "tcp_bad_option", "TCP option length invalid")                          \
  X(UdpTruncated, "udp_truncated", "UDP header cut short")                                \
  X(UdpBadLength, "udp_bad_length", "UDP length below 8 or past the data")                \
  X(IcmpTruncated, "icmp_truncated", "ICMP header cut short")                             \
  X(Icmpv6Truncated, "icmpv6_truncated", "ICMPv6 message cut short")                      \
  X(NdBadHopLimit, "nd_bad_hop_limit", "neighbour discovery with hop limit != 255")       \
  X(NdBadOption, "nd_bad_option", "neighbour discovery option length invalid")            \
  X(DhcpTruncated, "dhcp_truncated", "BOOTP/DHCP shorter than its fixed part")            \
  X(DhcpBadOption, "dhcp_bad_option", "DHCP option runs past the data")                   \
  X(VxlanTruncated, "vxlan_truncated", "VXLAN header or inner frame cut short")           \
  X(VxlanBadFlags, "vxlan_bad_flags", "VXLAN I flag not set")

enum class Proto : uint8_t {
#define PALISADE_X(id, name) id,
  PALISADE_DECODE_PROTOCOLS(PALISADE_X)
#undef PALISADE_X
      kCount
};

enum class DecodeError : uint8_t {
  None = 0,
#define PALISADE_X(id, name, text) id,
  PALISADE_DECODE_ERRORS(PALISADE_X)
#undef PALISADE_X
      kCount
};

std::string_view protoName(Proto p);
std::string_view errorName(DecodeError e);
std::string_view errorText(DecodeError e);

// Per-worker counters; plain integers, no atomics (one owner thread).
struct DecodeStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t malformed = 0;
  uint64_t truncated_captures = 0;  // caplen < wire length: decoded as far as captured
  std::array<uint64_t, static_cast<size_t>(Proto::kCount)> protocols{};
  std::array<uint64_t, static_cast<size_t>(DecodeError::kCount)> errors{};

  void count(Proto p) { ++protocols[static_cast<size_t>(p)]; }
  void count(DecodeError e) {
    ++errors[static_cast<size_t>(e)];
    ++malformed;
  }
  uint64_t of(Proto p) const { return protocols[static_cast<size_t>(p)]; }
  uint64_t of(DecodeError e) const { return errors[static_cast<size_t>(e)]; }
  void merge(const DecodeStats& o);
};

}  // namespace palisade::pkt
