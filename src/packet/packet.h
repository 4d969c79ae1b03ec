// Packet: a decoded view over one frame.
//
// The frame's bytes are not copied: offsets point into `frame`, which the caller
// keeps alive while the view is used (a ring slot, a replay buffer). Header
// fields the pipeline reads on every packet (addresses, ports, flags) are parsed
// once into plain members. A member group is meaningful only when its layer bit
// is set in `layers`; decode() resets the bits, not the whole struct, so reusing
// one Packet per worker costs nothing per packet.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/net.h"
#include "packet/decode_stats.h"

namespace palisade::pkt {

// pcap LINKTYPE_ values (the ones this decoder understands).
enum class LinkType : uint32_t {
  Null = 0,  // BSD loopback, host-order address family
  Ethernet = 1,
  Raw = 101,   // raw IPv4 or IPv6
  Loop = 108,  // OpenBSD loopback, network-order address family
  LinuxSll = 113,
  Ipv4 = 228,
  Ipv6 = 229,
  LinuxSll2 = 276,
};

enum Layer : uint32_t {
  kEth = 1u << 0,
  kVlan = 1u << 1,
  kArp = 1u << 2,
  kIpv4 = 1u << 3,
  kIpv6 = 1u << 4,
  kFragment = 1u << 5,  // IPv4 MF/offset or IPv6 fragment header (non-atomic)
  kTcp = 1u << 6,
  kUdp = 1u << 7,
  kIcmp = 1u << 8,
  kIcmpv6 = 1u << 9,
  kNd = 1u << 10,
  kDhcp = 1u << 11,
  kVxlan = 1u << 12,
  kSll = 1u << 13,
};

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10,
                         kUrg = 0x20, kEce = 0x40, kCwr = 0x80;
}

namespace ethertype {
inline constexpr uint16_t kIpv4 = 0x0800, kArp = 0x0806, kVlan = 0x8100, kQinQ = 0x88a8,
                          kQinQOld = 0x9100, kIpv6 = 0x86dd;
}

namespace ipproto {
inline constexpr uint8_t kHopByHop = 0, kIcmp = 1, kIpv4Encap = 4, kTcp = 6, kIpv6Encap = 41,
                         kUdp = 17, kRouting = 43, kFragment = 44, kEsp = 50, kAh = 51,
                         kIcmpv6 = 58, kNoNext = 59, kDestOpts = 60;
}

struct TcpOptions {
  uint16_t mss = 0;
  uint8_t wscale = 0;
  bool has_mss = false;
  bool has_wscale = false;
  bool sack_permitted = false;
  bool has_sack = false;
  bool has_timestamp = false;
  bool has_fast_open = false;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
};

struct Packet {
  Bytes frame;
  LinkType link = LinkType::Ethernet;  // what `frame` was decoded as
  uint32_t wire_len = 0;
  uint32_t layers = 0;
  DecodeError error = DecodeError::None;
  bool truncated_capture = false;  // caplen < wire length

  bool has(uint32_t layer_bits) const { return (layers & layer_bits) == layer_bits; }
  bool ok() const { return error == DecodeError::None; }
  // A fragment past the first: no transport header, only a piece of payload.
  bool isLaterFragment() const { return has(kFragment) && frag.offset != 0; }

  // Offsets into frame. l3_end is where the IP datagram ends (Ethernet padding excluded).
  uint32_t l3_off = 0, l3_end = 0, l4_off = 0, payload_off = 0, payload_len = 0;

  // Ethernet / VLAN (kEth, kVlan)
  MacAddr eth_src, eth_dst;
  uint16_t ethertype = 0;  // innermost, after VLAN tags
  uint8_t vlan_count = 0;
  uint16_t vlan_id[2] = {0, 0};  // outer first
  uint16_t vlan_tpid[2] = {0, 0};

  // ARP (kArp)
  struct Arp {
    uint16_t op;
    MacAddr sha, tha;
    IpAddr spa, tpa;
  } arp;

  // IPv4 / IPv6 (kIpv4 | kIpv6)
  IpAddr src, dst;
  uint8_t proto = 0;  // upper-layer protocol after any IPv6 extension headers
  uint8_t ttl = 0;    // TTL or hop limit
  uint8_t tos = 0;    // DSCP+ECN / traffic class
  uint8_t ipv4_options_len = 0;
  uint8_t ipv6_ext_count = 0;
  bool dont_fragment = false;
  struct Fragment {
    uint32_t id;
    uint16_t offset;  // in bytes
    bool more;
    // Where the fragment's data (the fragmentable part) starts in the frame,
    // and for IPv6 the next-header byte that names the fragment header
    // (reassembly splices the fragment header out there).
    uint32_t data_off;
    uint32_t nh_at;
  } frag;

  // TCP / UDP ports (kTcp | kUdp)
  uint16_t sport = 0, dport = 0;

  struct Tcp {
    uint32_t seq, ack;
    uint16_t window;
    uint8_t flags;
    TcpOptions opt;
  } tcp;

  struct Udp {
    uint16_t length;
  } udp;

  // ICMP / ICMPv6 (kIcmp | kIcmpv6)
  struct Icmp {
    uint8_t type, code;
    uint16_t id, seq;    // echo and timestamp messages
    uint32_t inner_off;  // offending packet of an error message; 0 when none
  } icmp;

  // Neighbour discovery (kNd): target of NS/NA/redirect, link-layer address option.
  struct Nd {
    IpAddr target;
    MacAddr lladdr;
    bool has_target, has_lladdr;
  } nd;

  // DHCPv4 (kDhcp)
  struct Dhcp {
    uint8_t op;        // 1 request, 2 reply
    uint8_t msg_type;  // option 53; 0 for plain BOOTP
    uint32_t xid;
    MacAddr client_mac;
    IpAddr ciaddr, yiaddr, requested, server_id;
    bool has_requested, has_server_id;
  } dhcp;

  // VXLAN (kVxlan): the inner Ethernet frame starts at inner_off.
  struct Vxlan {
    uint32_t vni;
    uint32_t inner_off, inner_len;
  } vxlan;

  Bytes payload() const { return frame.subspan(payload_off, payload_len); }
  Bytes vxlanInner() const { return frame.subspan(vxlan.inner_off, vxlan.inner_len); }
};

}  // namespace palisade::pkt
