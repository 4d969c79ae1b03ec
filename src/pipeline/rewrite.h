// Header rewrites for NAT and forwarding, with incremental checksum updates
// (RFC 1624) so a rewrite costs the same whatever the packet's size.
#pragma once

#include <cstddef>
#include <span>

#include "core/net.h"
#include "packet/packet.h"

namespace palisade::pipeline {

// Rewrites the source (or destination) address and port of the IP packet that
// `p` describes inside `frame` (a writable copy of p.frame). For ICMP echo the
// "port" is the echo identifier. Address family must match the packet's. The
// old values are read from p.frame: the address, the port and the checksums
// must not have been changed in `frame` before.
void rewriteEndpoint(std::span<std::byte> frame, const pkt::Packet& p, bool source,
                     const IpAddr& addr, uint16_t port);

// An ICMP or ICMPv6 error in `frame` (described by `p`): rewrites the source (or
// destination) address and port of the packet it quotes, fixing the quoted IPv4
// header checksum and the quoted TCP/UDP/ICMP checksum when it was quoted, then
// recomputes the ICMP checksum over the message (call it after every other
// rewrite of the frame, since ICMPv6's covers the outer addresses). So a NAT'd
// host sees its own address and port in errors about its packets (RFC 5508 4.2).
void rewriteQuoted(std::span<std::byte> frame, const pkt::Packet& p, bool source,
                   const IpAddr& addr, uint16_t port);

// Adds seq_add and ack_add to the sequence and acknowledgment numbers of the
// TCP segment an ICMP error quotes, as far as the error quotes them, fixing
// the quoted TCP checksum when it is quoted: so a SYN proxy's translation
// reaches the errors about its connections. Call it before rewriteQuoted,
// which recomputes the ICMP checksum.
void shiftQuotedTcp(std::span<std::byte> frame, const pkt::Packet& p, uint32_t seq_add,
                    uint32_t ack_add);

// Sets the Ethernet source and destination of `frame` (when it has an Ethernet header).
void setMacs(std::span<std::byte> frame, const pkt::Packet& p, const MacAddr& src,
             const MacAddr& dst);

// The outer headers of a VXLAN packet (RFC 7348) between two hypervisor hosts.
struct VxlanOuter {
  MacAddr src_mac, dst_mac;
  IpAddr src, dst;  // underlay addresses, one family
  uint16_t sport = 0, dport = 4789;
  uint32_t vni = 0;
  uint16_t ip_id = 0;
};

// Bytes of Ethernet + IP + UDP + VXLAN in front of the inner frame.
constexpr size_t vxlanOverhead(bool v4) {
  return 14 + (v4 ? 20 : 40) + 8 + 8;
}

// Writes o's headers into frame[0, vxlanOverhead) for the inner Ethernet frame
// that follows them. IPv4 carries a zero UDP checksum (RFC 7348 5); IPv6 a full
// one (RFC 8200 8.1: zero is not allowed by default).
void writeVxlan(std::span<std::byte> frame, const VxlanOuter& o);

}  // namespace palisade::pipeline
