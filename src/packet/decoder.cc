#include "packet/decoder.h"

namespace palisade::pkt {
namespace {

constexpr uint32_t kEthHeader = 14;
constexpr uint32_t kMaxIpv6ExtHeaders = 8;

const uint8_t* u8(const Packet& pkt, uint32_t off) {
  return reinterpret_cast<const uint8_t*>(pkt.frame.data()) + off;
}
const std::byte* at(const Packet& pkt, uint32_t off) {
  return pkt.frame.data() + off;
}

// Bytes available from off to the end of the IP datagram (or the frame).
uint32_t availTo(uint32_t end, uint32_t off) {
  return off <= end ? end - off : 0;
}

bool isExtensionHeader(uint8_t nh) {
  switch (nh) {
    case ipproto::kHopByHop:
    case ipproto::kRouting:
    case ipproto::kFragment:
    case ipproto::kDestOpts:
    case ipproto::kAh:
    case 135:  // mobility
    case 139:  // HIP
    case 140:  // shim6
      return true;
    default:
      return false;
  }
}

}  // namespace

bool Decoder::fail(Packet& pkt, DecodeError e) {
  pkt.error = e;
  stats_.count(e);
  return false;
}

bool Decoder::decode(LinkType link, Bytes frame, uint32_t wire_len, Packet& pkt) {
  pkt.frame = frame;
  pkt.link = link;
  pkt.wire_len = wire_len < frame.size() ? static_cast<uint32_t>(frame.size()) : wire_len;
  pkt.layers = 0;
  pkt.error = DecodeError::None;
  pkt.truncated_capture = frame.size() < wire_len;
  pkt.vlan_count = 0;
  pkt.payload_off = pkt.payload_len = 0;
  pkt.l3_off = pkt.l3_end = pkt.l4_off = 0;
  ++stats_.packets;
  stats_.bytes += pkt.wire_len;
  if (pkt.truncated_capture) ++stats_.truncated_captures;

  const auto size = static_cast<uint32_t>(frame.size());
  switch (link) {
    case LinkType::Ethernet:
      return ethernet(pkt, 0);
    case LinkType::LinuxSll:
      stats_.count(Proto::LinuxSll);
      if (size < 16) return fail(pkt, DecodeError::SllTruncated);
      pkt.layers |= kSll;
      return afterEthertype(pkt, load16(at(pkt, 14)), 16);
    case LinkType::LinuxSll2:
      stats_.count(Proto::LinuxSll);
      if (size < 20) return fail(pkt, DecodeError::SllTruncated);
      pkt.layers |= kSll;
      return afterEthertype(pkt, load16(at(pkt, 0)), 20);
    case LinkType::Null:
    case LinkType::Loop: {
      if (size < 4) return fail(pkt, DecodeError::NullTruncated);
      uint32_t family = link == LinkType::Loop ? load32(at(pkt, 0)) : load32le(at(pkt, 0));
      if (family > 0xffff) family = __builtin_bswap32(family);  // written on the other endianness
      if (family == 2) return ipv4(pkt, 4);
      if (family == 24 || family == 28 || family == 30) return ipv6(pkt, 4);
      stats_.count(Proto::OtherEthertype);
      return true;
    }
    case LinkType::Raw:
    case LinkType::Ipv4:
    case LinkType::Ipv6:
      stats_.count(Proto::RawIp);
      if (size < 1) return fail(pkt, DecodeError::Ipv4Truncated);
      return (*u8(pkt, 0) >> 4) == 6 ? ipv6(pkt, 0) : ipv4(pkt, 0);
  }
  return fail(pkt, DecodeError::UnknownLinkType);
}

bool Decoder::decodeInner(const Packet& outer, Packet& inner) {
  const Bytes f = outer.vxlanInner();
  return decode(LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), inner);
}

bool Decoder::ethernet(Packet& pkt, uint32_t off) {
  stats_.count(Proto::Ethernet);
  if (pkt.frame.size() < off + kEthHeader) return fail(pkt, DecodeError::EthTruncated);
  pkt.layers |= kEth;
  pkt.eth_dst = MacAddr::from(u8(pkt, off));
  pkt.eth_src = MacAddr::from(u8(pkt, off + 6));
  uint16_t type = load16(at(pkt, off + 12));
  off += kEthHeader;
  bool vlan_counted = false;
  while (type == ethertype::kVlan || type == ethertype::kQinQ || type == ethertype::kQinQOld) {
    if (!vlan_counted) {
      stats_.count(Proto::Vlan);
      vlan_counted = true;
    }
    if (pkt.vlan_count == 2) return fail(pkt, DecodeError::VlanTooManyTags);
    if (pkt.frame.size() < off + 4) return fail(pkt, DecodeError::VlanTruncated);
    pkt.layers |= kVlan;
    pkt.vlan_tpid[pkt.vlan_count] = type;
    pkt.vlan_id[pkt.vlan_count] = load16(at(pkt, off)) & 0x0fff;
    ++pkt.vlan_count;
    type = load16(at(pkt, off + 2));
    off += 4;
  }
  return afterEthertype(pkt, type, off);
}

bool Decoder::afterEthertype(Packet& pkt, uint16_t type, uint32_t off) {
  pkt.ethertype = type;
  pkt.l3_off = off;
  switch (type) {
    case ethertype::kIpv4:
      return ipv4(pkt, off);
    case ethertype::kIpv6:
      return ipv6(pkt, off);
    case ethertype::kArp:
      return arp(pkt, off);
    default:
      stats_.count(Proto::OtherEthertype);  // 802.3 length fields, LLDP, MPLS, ...
      pkt.payload_off = off;
      pkt.payload_len = availTo(static_cast<uint32_t>(pkt.frame.size()), off);
      return true;
  }
}

bool Decoder::arp(Packet& pkt, uint32_t off) {
  stats_.count(Proto::Arp);
  if (pkt.frame.size() < off + 28) return fail(pkt, DecodeError::ArpTruncated);
  const uint8_t* p = u8(pkt, off);
  if (load16(at(pkt, off)) != 1 || load16(at(pkt, off + 2)) != ethertype::kIpv4 || p[4] != 6 ||
      p[5] != 4) {
    return fail(pkt, DecodeError::ArpUnsupported);
  }
  pkt.layers |= kArp;
  pkt.arp.op = load16(at(pkt, off + 6));
  pkt.arp.sha = MacAddr::from(p + 8);
  pkt.arp.spa = IpAddr::v4(p + 14);
  pkt.arp.tha = MacAddr::from(p + 18);
  pkt.arp.tpa = IpAddr::v4(p + 24);
  pkt.l3_end = off + 28;
  return true;
}

bool Decoder::ipv4(Packet& pkt, uint32_t off) {
  stats_.count(Proto::Ipv4);
  const auto size = static_cast<uint32_t>(pkt.frame.size());
  pkt.l3_off = off;
  if (size < off + 20) return fail(pkt, DecodeError::Ipv4Truncated);
  const uint8_t* p = u8(pkt, off);
  if ((p[0] >> 4) != 4) return fail(pkt, DecodeError::Ipv4BadVersion);
  const uint32_t ihl = (p[0] & 0x0fu) * 4;
  if (ihl < 20) return fail(pkt, DecodeError::Ipv4BadIhl);
  if (size < off + ihl) {
    return fail(pkt, pkt.truncated_capture ? DecodeError::Ipv4Truncated : DecodeError::Ipv4BadIhl);
  }
  uint32_t total = load16(at(pkt, off + 2));
  if (total == 0) total = size - off;  // segmentation offload on the capturing host
  if (total < ihl) return fail(pkt, DecodeError::Ipv4BadTotalLength);
  if (off + total > size && !pkt.truncated_capture) {
    return fail(pkt, DecodeError::Ipv4BadTotalLength);
  }
  pkt.layers |= kIpv4;
  pkt.tos = p[1];
  pkt.ttl = p[8];
  pkt.proto = p[9];
  pkt.src = IpAddr::v4(p + 12);
  pkt.dst = IpAddr::v4(p + 16);
  pkt.l3_end = off + total < size ? off + total : size;
  pkt.ipv4_options_len = static_cast<uint8_t>(ihl - 20);

  // Options: a well-formed TLV sequence (EOL and NOP are single bytes).
  for (uint32_t o = off + 20; o < off + ihl;) {
    const uint8_t kind = *u8(pkt, o);
    if (kind == 0) break;
    if (kind == 1) {
      ++o;
      continue;
    }
    if (o + 1 >= off + ihl) return fail(pkt, DecodeError::Ipv4BadOption);
    const uint8_t len = *u8(pkt, o + 1);
    if (len < 2 || o + len > off + ihl) return fail(pkt, DecodeError::Ipv4BadOption);
    o += len;
  }

  const uint16_t frag_field = load16(at(pkt, off + 6));
  pkt.dont_fragment = (frag_field & 0x4000) != 0;
  pkt.frag = {load16(at(pkt, off + 4)), static_cast<uint16_t>((frag_field & 0x1fff) * 8),
              (frag_field & 0x2000) != 0, off + ihl, 0};
  pkt.l4_off = off + ihl;
  if (pkt.frag.more || pkt.frag.offset != 0) {
    stats_.count(Proto::Ipv4Fragment);
    pkt.layers |= kFragment;
    if (uint32_t{pkt.frag.offset} + (total - ihl) > 65535) {
      return fail(pkt, DecodeError::Ipv4FragmentOverflow);
    }
    if (pkt.frag.offset != 0) {  // later fragments carry no transport header
      pkt.payload_off = pkt.l4_off;
      pkt.payload_len = availTo(pkt.l3_end, pkt.l4_off);
      return true;
    }
  }
  return l4(pkt);
}

bool Decoder::ipv6(Packet& pkt, uint32_t off) {
  stats_.count(Proto::Ipv6);
  const auto size = static_cast<uint32_t>(pkt.frame.size());
  pkt.l3_off = off;
  if (size < off + 40) return fail(pkt, DecodeError::Ipv6Truncated);
  const uint8_t* p = u8(pkt, off);
  if ((p[0] >> 4) != 6) return fail(pkt, DecodeError::Ipv6BadVersion);
  const uint32_t payload_len = load16(at(pkt, off + 4));
  uint8_t nh = p[6];
  uint32_t end = off + 40 + payload_len;
  if (payload_len == 0 && nh == ipproto::kHopByHop) end = size;  // jumbogram
  if (end > size) {
    if (!pkt.truncated_capture) return fail(pkt, DecodeError::Ipv6BadPayloadLength);
    end = size;
  }
  pkt.layers |= kIpv6;
  pkt.tos = static_cast<uint8_t>((load16(at(pkt, off)) >> 4) & 0xff);
  pkt.ttl = p[7];
  pkt.src = IpAddr::v6(p + 8);
  pkt.dst = IpAddr::v6(p + 24);
  pkt.l3_end = end;
  pkt.ipv6_ext_count = 0;
  pkt.dont_fragment = false;

  uint32_t o = off + 40;
  uint32_t nh_at = off + 6;  // the byte naming header `nh`
  bool non_first_fragment = false;
  while (isExtensionHeader(nh)) {
    if (nh == ipproto::kHopByHop && pkt.ipv6_ext_count != 0) {
      return fail(pkt, DecodeError::Ipv6HopByHopNotFirst);
    }
    if (pkt.ipv6_ext_count == kMaxIpv6ExtHeaders) {
      return fail(pkt, DecodeError::Ipv6TooManyExtHeaders);
    }
    if (end < o + 8) return fail(pkt, DecodeError::Ipv6ExtTruncated);
    const uint8_t next = *u8(pkt, o);
    uint32_t len;
    if (nh == ipproto::kFragment) {
      len = 8;
      const uint16_t f = load16(at(pkt, o + 2));
      pkt.frag = {load32(at(pkt, o + 4)), static_cast<uint16_t>(f & 0xfff8), (f & 1) != 0, o + 8,
                  nh_at};
      if (pkt.frag.more || pkt.frag.offset != 0) {  // an atomic fragment is not a fragment
        stats_.count(Proto::Ipv6Fragment);
        pkt.layers |= kFragment;
        if (uint32_t{pkt.frag.offset} + availTo(end, o + 8) > 65535) {
          return fail(pkt, DecodeError::Ipv6FragmentOverflow);
        }
        non_first_fragment = pkt.frag.offset != 0;
      }
    } else if (nh == ipproto::kAh) {
      len = (uint32_t{*u8(pkt, o + 1)} + 2) * 4;
    } else {
      len = (uint32_t{*u8(pkt, o + 1)} + 1) * 8;
    }
    if (end < o + len) return fail(pkt, DecodeError::Ipv6ExtTruncated);
    ++pkt.ipv6_ext_count;
    nh = next;
    nh_at = o;
    o += len;
    if (non_first_fragment) break;
  }
  pkt.proto = nh;
  pkt.l4_off = o;
  if (non_first_fragment || nh == ipproto::kNoNext) {
    pkt.payload_off = o;
    pkt.payload_len = availTo(end, o);
    return true;
  }
  return l4(pkt);
}

bool Decoder::l4(Packet& pkt) {
  switch (pkt.proto) {
    case ipproto::kTcp:
      return tcp(pkt);
    case ipproto::kUdp:
      return udp(pkt);
    case ipproto::kIcmp:
      if (pkt.has(kIpv4)) return icmp(pkt);
      break;
    case ipproto::kIcmpv6:
      if (pkt.has(kIpv6)) return icmpv6(pkt);
      break;
    default:
      break;
  }
  stats_.count(Proto::OtherIpProto);  // GRE, ESP, SCTP, ...
  pkt.payload_off = pkt.l4_off;
  pkt.payload_len = availTo(pkt.l3_end, pkt.l4_off);
  return true;
}

bool Decoder::tcp(Packet& pkt) {
  stats_.count(Proto::Tcp);
  const uint32_t off = pkt.l4_off;
  const uint32_t avail = availTo(pkt.l3_end, off);
  if (avail < 20) return fail(pkt, DecodeError::TcpTruncated);
  const uint8_t* p = u8(pkt, off);
  const uint32_t hlen = (p[12] >> 4) * 4u;
  if (hlen < 20) return fail(pkt, DecodeError::TcpBadDataOffset);
  if (hlen > avail) {
    return fail(pkt,
                pkt.truncated_capture ? DecodeError::TcpTruncated : DecodeError::TcpBadDataOffset);
  }
  pkt.layers |= kTcp;
  pkt.sport = load16(at(pkt, off));
  pkt.dport = load16(at(pkt, off + 2));
  pkt.tcp.seq = load32(at(pkt, off + 4));
  pkt.tcp.ack = load32(at(pkt, off + 8));
  pkt.tcp.flags = p[13];
  pkt.tcp.window = load16(at(pkt, off + 14));
  pkt.tcp.opt = TcpOptions{};
  pkt.payload_off = off + hlen;
  pkt.payload_len = avail - hlen;
  return hlen == 20 || tcpOptions(pkt, off + 20, hlen - 20);
}

bool Decoder::tcpOptions(Packet& pkt, uint32_t off, uint32_t len) {
  TcpOptions& opt = pkt.tcp.opt;
  const uint32_t end = off + len;
  for (uint32_t o = off; o < end;) {
    const uint8_t kind = *u8(pkt, o);
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // no-op
      ++o;
      continue;
    }
    if (o + 1 >= end) return fail(pkt, DecodeError::TcpBadOption);
    const uint8_t olen = *u8(pkt, o + 1);
    if (olen < 2 || o + olen > end) return fail(pkt, DecodeError::TcpBadOption);
    switch (kind) {
      case 2:
        if (olen != 4) return fail(pkt, DecodeError::TcpBadOption);
        opt.has_mss = true;
        opt.mss = load16(at(pkt, o + 2));
        break;
      case 3:
        if (olen != 3) return fail(pkt, DecodeError::TcpBadOption);
        opt.has_wscale = true;
        opt.wscale = *u8(pkt, o + 2);
        break;
      case 4:
        if (olen != 2) return fail(pkt, DecodeError::TcpBadOption);
        opt.sack_permitted = true;
        break;
      case 5:
        if ((olen - 2) % 8 != 0 || olen == 2) return fail(pkt, DecodeError::TcpBadOption);
        opt.has_sack = true;
        break;
      case 8:
        if (olen != 10) return fail(pkt, DecodeError::TcpBadOption);
        opt.has_timestamp = true;
        opt.ts_val = load32(at(pkt, o + 2));
        opt.ts_ecr = load32(at(pkt, o + 6));
        break;
      case 34:
        opt.has_fast_open = true;
        break;
      case 254:  // experimental options (RFC 6994): 0xF989 is TCP Fast Open's ExID
        if (olen >= 4 && load16(at(pkt, o + 2)) == 0xF989) opt.has_fast_open = true;
        break;
      default:
        break;  // unknown options are skipped by their length
    }
    o += olen;
  }
  return true;
}

bool Decoder::udp(Packet& pkt) {
  stats_.count(Proto::Udp);
  const uint32_t off = pkt.l4_off;
  const uint32_t avail = availTo(pkt.l3_end, off);
  if (avail < 8) return fail(pkt, DecodeError::UdpTruncated);
  const uint16_t len = load16(at(pkt, off + 4));
  const bool first_fragment = pkt.has(kFragment);  // length covers the whole datagram
  if (len < 8 && !(len == 0 && pkt.has(kIpv6))) return fail(pkt, DecodeError::UdpBadLength);
  if (len > avail && !first_fragment && !pkt.truncated_capture) {
    return fail(pkt, DecodeError::UdpBadLength);
  }
  pkt.layers |= kUdp;
  pkt.sport = load16(at(pkt, off));
  pkt.dport = load16(at(pkt, off + 2));
  pkt.udp.length = len;
  pkt.payload_off = off + 8;
  const uint32_t datagram = (len == 0 || first_fragment) ? avail : len;
  pkt.payload_len = (datagram < avail ? datagram : avail) - 8;
  if (first_fragment) return true;  // the rest is in later fragments: nothing more to decode
  if (pkt.dport == config_.vxlan_port) return vxlan(pkt);
  if ((pkt.sport == 67 || pkt.sport == 68) && (pkt.dport == 67 || pkt.dport == 68)) {
    return dhcp(pkt);
  }
  return true;
}

bool Decoder::icmp(Packet& pkt) {
  stats_.count(Proto::Icmp);
  const uint32_t off = pkt.l4_off;
  const uint32_t avail = availTo(pkt.l3_end, off);
  if (avail < 8) return fail(pkt, DecodeError::IcmpTruncated);
  pkt.layers |= kIcmp;
  pkt.icmp.type = *u8(pkt, off);
  pkt.icmp.code = *u8(pkt, off + 1);
  pkt.icmp.id = load16(at(pkt, off + 4));
  pkt.icmp.seq = load16(at(pkt, off + 6));
  pkt.icmp.inner_off = 0;
  switch (pkt.icmp.type) {
    case 3:
    case 4:
    case 5:
    case 11:
    case 12:  // errors quote the offending datagram
      if (avail >= 8 + 20) pkt.icmp.inner_off = off + 8;
      break;
    default:
      break;
  }
  pkt.payload_off = off + 8;
  pkt.payload_len = avail - 8;
  return true;
}

bool Decoder::icmpv6(Packet& pkt) {
  stats_.count(Proto::Icmpv6);
  const uint32_t off = pkt.l4_off;
  const uint32_t avail = availTo(pkt.l3_end, off);
  if (avail < 4) return fail(pkt, DecodeError::Icmpv6Truncated);
  const uint8_t type = *u8(pkt, off);
  pkt.icmp.type = type;
  pkt.icmp.code = *u8(pkt, off + 1);
  pkt.icmp.id = pkt.icmp.seq = 0;
  pkt.icmp.inner_off = 0;
  uint32_t fixed = 8;  // type, code, checksum and the 4-byte message-specific word
  switch (type) {
    case 133:
      fixed = 8;
      break;  // router solicitation
    case 134:
      fixed = 16;
      break;  // router advertisement
    case 135:
    case 136:
      fixed = 24;
      break;  // neighbour solicitation / advertisement
    case 137:
      fixed = 40;
      break;  // redirect
    default:
      break;
  }
  if (avail < fixed) return fail(pkt, DecodeError::Icmpv6Truncated);
  pkt.layers |= kIcmpv6;
  pkt.payload_off = off + fixed;
  pkt.payload_len = avail - fixed;
  if (type == 128 || type == 129) {
    pkt.icmp.id = load16(at(pkt, off + 4));
    pkt.icmp.seq = load16(at(pkt, off + 6));
    return true;
  }
  if (type >= 1 && type <= 4) {
    if (avail >= 8 + 40) pkt.icmp.inner_off = off + 8;
    return true;
  }
  if (type < 133 || type > 137) return true;

  stats_.count(Proto::NeighborDiscovery);
  if (pkt.ttl != 255) return fail(pkt, DecodeError::NdBadHopLimit);  // RFC 4861: off-link forgery
  pkt.layers |= kNd;
  pkt.nd.has_target = type >= 135;
  if (pkt.nd.has_target) pkt.nd.target = IpAddr::v6(u8(pkt, off + 8));
  pkt.nd.has_lladdr = false;
  for (uint32_t o = off + fixed; o < off + avail;) {
    if (o + 2 > off + avail) return fail(pkt, DecodeError::NdBadOption);
    const uint32_t olen = uint32_t{*u8(pkt, o + 1)} * 8;
    if (olen == 0 || o + olen > off + avail) return fail(pkt, DecodeError::NdBadOption);
    const uint8_t kind = *u8(pkt, o);
    if ((kind == 1 || kind == 2) && olen == 8) {  // source / target link-layer address
      pkt.nd.has_lladdr = true;
      pkt.nd.lladdr = MacAddr::from(u8(pkt, o + 2));
    }
    o += olen;
  }
  return true;
}

bool Decoder::dhcp(Packet& pkt) {
  stats_.count(Proto::Dhcp);
  const uint32_t off = pkt.payload_off;
  const uint32_t len = pkt.payload_len;
  if (len < 236) return fail(pkt, DecodeError::DhcpTruncated);
  const uint8_t* p = u8(pkt, off);
  pkt.layers |= kDhcp;
  Packet::Dhcp& d = pkt.dhcp;
  d.op = p[0];
  d.msg_type = 0;
  d.xid = load32(at(pkt, off + 4));
  d.client_mac = MacAddr::from(p + 28);  // chaddr; hlen is 6 for Ethernet
  d.ciaddr = IpAddr::v4(p + 12);
  d.yiaddr = IpAddr::v4(p + 16);
  d.has_requested = d.has_server_id = false;
  if (len < 240 || load32(at(pkt, off + 236)) != 0x63825363) return true;  // plain BOOTP

  for (uint32_t o = 240; o < len;) {
    const uint8_t code = p[o];
    if (code == 255) break;
    if (code == 0) {
      ++o;
      continue;
    }
    if (o + 2 > len || o + 2 + p[o + 1] > len) {
      if (pkt.truncated_capture) break;
      return fail(pkt, DecodeError::DhcpBadOption);
    }
    const uint8_t olen = p[o + 1];
    const uint8_t* v = p + o + 2;
    if (code == 53 && olen == 1) d.msg_type = v[0];
    if (code == 50 && olen == 4) {
      d.has_requested = true;
      d.requested = IpAddr::v4(v);
    }
    if (code == 54 && olen == 4) {
      d.has_server_id = true;
      d.server_id = IpAddr::v4(v);
    }
    o += 2u + olen;
  }
  return true;
}

bool Decoder::vxlan(Packet& pkt) {
  stats_.count(Proto::Vxlan);
  const uint32_t off = pkt.payload_off;
  if (pkt.payload_len < 8 + kEthHeader) return fail(pkt, DecodeError::VxlanTruncated);
  if ((*u8(pkt, off) & 0x08) == 0) return fail(pkt, DecodeError::VxlanBadFlags);
  pkt.layers |= kVxlan;
  pkt.vxlan.vni = load32(at(pkt, off + 4)) >> 8;
  pkt.vxlan.inner_off = off + 8;
  pkt.vxlan.inner_len = pkt.payload_len - 8;
  return true;
}

}  // namespace palisade::pkt
