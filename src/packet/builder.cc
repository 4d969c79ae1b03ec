#include "packet/builder.h"

#include <cstring>

#include "packet/checksum.h"

namespace palisade::pkt {

uint32_t PacketBuilder::append(std::initializer_list<uint8_t> bytes) {
  const auto off = static_cast<uint32_t>(buf_.size());
  buf_.insert(buf_.end(), bytes);
  return off;
}

uint32_t PacketBuilder::appendZeros(size_t n) {
  const auto off = static_cast<uint32_t>(buf_.size());
  buf_.resize(buf_.size() + n, 0);
  return off;
}

void PacketBuilder::put16(uint32_t off, uint16_t v) {
  buf_[off] = static_cast<uint8_t>(v >> 8);
  buf_[off + 1] = static_cast<uint8_t>(v);
}

void PacketBuilder::put32(uint32_t off, uint32_t v) {
  put16(off, static_cast<uint16_t>(v >> 16));
  put16(off + 2, static_cast<uint16_t>(v));
}

void PacketBuilder::setNext(uint16_t ethertype_value, uint8_t ip_proto) {
  if (marks_.empty()) return;
  const Mark& m = marks_.back();
  switch (m.kind) {
    case Kind::Eth:
      put16(m.off + 12, ethertype_value);
      break;
    case Kind::Vlan:
      put16(m.off + 2, ethertype_value);
      break;
    case Kind::Ipv4:
      buf_[m.off + 9] = ip_proto;
      break;
    case Kind::Ipv6:
      buf_[m.off + 6] = ip_proto;
      break;
    case Kind::Ipv6Ext:
      buf_[m.off] = ip_proto;
      break;
    default:
      break;
  }
}

PacketBuilder& PacketBuilder::eth(const MacAddr& src, const MacAddr& dst) {
  const uint32_t off = appendZeros(14);
  std::memcpy(raw(off), dst.b.data(), 6);
  std::memcpy(raw(off + 6), src.b.data(), 6);
  marks_.push_back({Kind::Eth, off});
  return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t id, uint16_t tpid) {
  setNext(tpid, 0);
  const uint32_t off = appendZeros(4);
  put16(off, id & 0x0fff);
  marks_.push_back({Kind::Vlan, off});
  return *this;
}

PacketBuilder& PacketBuilder::ethertypeRaw(uint16_t type) {
  setNext(type, 0);
  marks_.push_back({Kind::Other, static_cast<uint32_t>(buf_.size())});
  return *this;
}

PacketBuilder& PacketBuilder::arp(uint16_t op, const MacAddr& sha, const IpAddr& spa,
                                  const MacAddr& tha, const IpAddr& tpa) {
  setNext(ethertype::kArp, 0);
  const uint32_t off = append({0, 1, 0x08, 0x00, 6, 4});
  appendZeros(22);
  put16(off + 6, op);
  std::memcpy(raw(off + 8), sha.b.data(), 6);
  std::memcpy(raw(off + 14), spa.b.data() + 12, 4);
  std::memcpy(raw(off + 18), tha.b.data(), 6);
  std::memcpy(raw(off + 24), tpa.b.data() + 12, 4);
  marks_.push_back({Kind::Other, off});
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(const IpAddr& src, const IpAddr& dst, uint8_t ttl) {
  setNext(ethertype::kIpv4, ipproto::kIpv4Encap);
  const uint32_t off = appendZeros(20);
  buf_[off] = 0x45;
  buf_[off + 8] = ttl;
  std::memcpy(raw(off + 12), src.b.data() + 12, 4);
  std::memcpy(raw(off + 16), dst.b.data() + 12, 4);
  marks_.push_back({Kind::Ipv4, off});
  return *this;
}

PacketBuilder& PacketBuilder::ipv4Options(std::vector<uint8_t> options) {
  while (options.size() % 4)
    options.push_back(0);
  const uint32_t ip = marks_.back().off;
  buf_.insert(buf_.end(), options.begin(), options.end());
  buf_[ip] = static_cast<uint8_t>(0x40 | ((20 + options.size()) / 4));
  return *this;
}

PacketBuilder& PacketBuilder::ipv4Fragment(uint16_t id, uint16_t offset_bytes, bool more) {
  const uint32_t ip = marks_.back().off;
  put16(ip + 4, id);
  put16(ip + 6, static_cast<uint16_t>((offset_bytes / 8) | (more ? 0x2000 : 0)));
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(const IpAddr& src, const IpAddr& dst, uint8_t hop_limit) {
  setNext(ethertype::kIpv6, ipproto::kIpv6Encap);
  const uint32_t off = appendZeros(40);
  buf_[off] = 0x60;
  buf_[off + 7] = hop_limit;
  std::memcpy(raw(off + 8), src.b.data(), 16);
  std::memcpy(raw(off + 24), dst.b.data(), 16);
  marks_.push_back({Kind::Ipv6, off});
  return *this;
}

PacketBuilder& PacketBuilder::ipv6Extension(uint8_t type, std::vector<uint8_t> body) {
  setNext(0, type);
  const uint32_t off = append({ipproto::kNoNext, 0});
  buf_.insert(buf_.end(), body.begin(), body.end());
  while ((buf_.size() - off) % 8 || buf_.size() - off < 8)
    buf_.push_back(0);
  const auto total = static_cast<uint32_t>(buf_.size() - off);
  buf_[off + 1] = static_cast<uint8_t>(type == ipproto::kAh ? total / 4 - 2 : total / 8 - 1);
  marks_.push_back({Kind::Ipv6Ext, off});
  return *this;
}

PacketBuilder& PacketBuilder::ipv6Fragment(uint32_t id, uint16_t offset_bytes, bool more) {
  setNext(0, ipproto::kFragment);
  const uint32_t off = append({ipproto::kNoNext, 0});
  appendZeros(6);
  put16(off + 2, static_cast<uint16_t>((offset_bytes & 0xfff8) | (more ? 1 : 0)));
  put32(off + 4, id);
  marks_.push_back({Kind::Ipv6Ext, off});
  return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                                  uint32_t ack, const TcpOptions& opt, uint16_t window) {
  setNext(0, ipproto::kTcp);
  const uint32_t off = appendZeros(20);
  put16(off, sport);
  put16(off + 2, dport);
  put32(off + 4, seq);
  put32(off + 8, ack);
  buf_[off + 13] = flags;
  put16(off + 14, window);
  if (opt.has_mss)
    append({2, 4, static_cast<uint8_t>(opt.mss >> 8), static_cast<uint8_t>(opt.mss)});
  if (opt.sack_permitted) append({4, 2});
  if (opt.has_timestamp) {
    const uint32_t ts = append({8, 10});
    appendZeros(8);
    put32(ts + 2, opt.ts_val);
    put32(ts + 6, opt.ts_ecr);
  }
  if (opt.has_wscale) append({1, 3, 3, opt.wscale});
  while ((buf_.size() - off) % 4)
    buf_.push_back(0);
  buf_[off + 12] = static_cast<uint8_t>(((buf_.size() - off) / 4) << 4);
  marks_.push_back({Kind::Tcp, off});
  return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  setNext(0, ipproto::kUdp);
  const uint32_t off = appendZeros(8);
  put16(off, sport);
  put16(off + 2, dport);
  marks_.push_back({Kind::Udp, off});
  return *this;
}

PacketBuilder& PacketBuilder::icmp(uint8_t type, uint8_t code, uint16_t id, uint16_t seq) {
  setNext(0, ipproto::kIcmp);
  const uint32_t off = append({type, code});
  appendZeros(6);
  put16(off + 4, id);
  put16(off + 6, seq);
  marks_.push_back({Kind::Icmp, off});
  return *this;
}

PacketBuilder& PacketBuilder::icmpv6(uint8_t type, uint8_t code, uint32_t word) {
  setNext(0, ipproto::kIcmpv6);
  const uint32_t off = append({type, code});
  appendZeros(6);
  put32(off + 4, word);
  marks_.push_back({Kind::Icmpv6, off});
  return *this;
}

PacketBuilder& PacketBuilder::nd(uint8_t type, const IpAddr& target, const MacAddr* lladdr) {
  icmpv6(type, 0, type == 136 ? 0x60000000u : 0u);  // NA: solicited + override
  buf_.insert(buf_.end(), target.b.begin(), target.b.end());
  if (lladdr) {
    append({static_cast<uint8_t>(type == 135 ? 1 : 2), 1});
    buf_.insert(buf_.end(), lladdr->b.begin(), lladdr->b.end());
  }
  return *this;
}

PacketBuilder& PacketBuilder::dhcp(const Dhcp& d) {
  const uint32_t off = appendZeros(236);
  buf_[off] = d.op;
  buf_[off + 1] = 1;  // Ethernet
  buf_[off + 2] = 6;
  put32(off + 4, d.xid);
  std::memcpy(raw(off + 16), d.yiaddr.b.data() + 12, 4);
  std::memcpy(raw(off + 28), d.client_mac.b.data(), 6);
  append({99, 130, 83, 99, 53, 1, d.msg_type});
  if (d.requested) {
    append({50, 4});
    buf_.insert(buf_.end(), d.requested->b.begin() + 12, d.requested->b.end());
  }
  if (d.server_id) {
    append({54, 4});
    buf_.insert(buf_.end(), d.server_id->b.begin() + 12, d.server_id->b.end());
  }
  const size_t at = buf_.size();
  buf_.resize(at + d.options.size());
  if (!d.options.empty()) std::memcpy(buf_.data() + at, d.options.data(), d.options.size());
  append({255});
  marks_.push_back({Kind::Other, off});
  return *this;
}

PacketBuilder& PacketBuilder::vxlan(uint32_t vni) {
  const uint32_t off = append({0x08, 0, 0, 0});
  appendZeros(4);
  put32(off + 4, vni << 8);
  marks_.push_back({Kind::Other, off});
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::string_view bytes) {
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::vector<uint8_t> bytes) {
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  return *this;
}

std::vector<std::byte> PacketBuilder::build() const {
  PacketBuilder b = *this;
  std::vector<uint8_t>& buf = b.buf_;
  const auto end = static_cast<uint32_t>(buf.size());
  auto ipFor = [&](size_t i) -> const Mark* {
    while (i-- > 0) {
      if (b.marks_[i].kind == Kind::Ipv4 || b.marks_[i].kind == Kind::Ipv6) return &b.marks_[i];
    }
    return nullptr;
  };
  auto addrOf = [&](const Mark& ip, bool source) {
    const uint8_t* p = buf.data() + ip.off;
    if (ip.kind == Kind::Ipv4) return IpAddr::v4(p + (source ? 12 : 16));
    return IpAddr::v6(p + (source ? 8 : 24));
  };
  // Innermost first, so outer checksums cover finished inner headers.
  for (size_t i = b.marks_.size(); i-- > 0;) {
    const Mark m = b.marks_[i];
    const uint32_t len = end - m.off;
    Bytes seg = asBytes(buf.data() + m.off, len);
    switch (m.kind) {
      case Kind::Tcp:
      case Kind::Udp:
      case Kind::Icmpv6: {
        const Mark* ip = ipFor(i);
        const uint8_t proto = m.kind == Kind::Tcp   ? ipproto::kTcp
                              : m.kind == Kind::Udp ? ipproto::kUdp
                                                    : ipproto::kIcmpv6;
        const uint32_t ck_off = m.off + (m.kind == Kind::Tcp ? 16 : m.kind == Kind::Udp ? 6 : 2);
        if (m.kind == Kind::Udp) b.put16(m.off + 4, static_cast<uint16_t>(len));
        b.put16(ck_off, 0);
        if (!ip) break;
        uint16_t ck = checksumFinish(checksumPartial(
            seg, pseudoHeaderSum(addrOf(*ip, true), addrOf(*ip, false), proto, len)));
        if (m.kind == Kind::Udp && ck == 0) ck = 0xffff;
        b.put16(ck_off, ck);
        break;
      }
      case Kind::Icmp:
        b.put16(m.off + 2, 0);
        b.put16(m.off + 2, internetChecksum(seg));
        break;
      case Kind::Ipv4: {
        b.put16(m.off + 2, static_cast<uint16_t>(len));
        const uint32_t ihl = (buf[m.off] & 0x0fu) * 4;
        b.put16(m.off + 10, 0);
        b.put16(m.off + 10, internetChecksum(asBytes(buf.data() + m.off, ihl)));
        break;
      }
      case Kind::Ipv6:
        b.put16(m.off + 4, static_cast<uint16_t>(len - 40));
        break;
      default:
        break;
    }
  }
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

std::vector<std::vector<std::byte>> fragmentFrame(const std::vector<std::byte>& frame,
                                                  std::vector<size_t> cuts, uint32_t id) {
  constexpr size_t l3 = 14;
  const bool v6 = frame.size() > l3 && (static_cast<uint8_t>(frame[l3]) >> 4) == 6;
  const size_t hdr = v6 ? 40 : 20;
  if (frame.size() < l3 + hdr) return {};
  const size_t len = frame.size() - l3 - hdr;
  cuts.insert(cuts.begin(), 0);
  cuts.push_back(len);
  auto put16 = [](std::vector<std::byte>& f, size_t at, size_t v) {
    f[at] = static_cast<std::byte>(v >> 8);
    f[at + 1] = static_cast<std::byte>(v & 0xff);
  };
  std::vector<std::vector<std::byte>> out;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const size_t a = cuts[i], b = cuts[i + 1];
    const bool more = b < len;
    std::vector<std::byte> f(frame.begin(), frame.begin() + static_cast<long>(l3 + hdr));
    if (v6) {
      const std::byte next = f[l3 + 6];
      f[l3 + 6] = std::byte{ipproto::kFragment};
      f.insert(f.end(), {next, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                         std::byte{0}, std::byte{0}});
      put16(f, l3 + 42, a | (more ? 1 : 0));
      put16(f, l3 + 44, id >> 16);
      put16(f, l3 + 46, id & 0xffff);
      put16(f, l3 + 4, 8 + (b - a));
    } else {
      put16(f, l3 + 2, hdr + (b - a));
      put16(f, l3 + 4, id & 0xffff);
      put16(f, l3 + 6, a / 8 | (more ? 0x2000 : 0));
      put16(f, l3 + 10, 0);
      put16(f, l3 + 10, internetChecksum(Bytes(f.data() + l3, hdr)));
    }
    f.insert(f.end(), frame.begin() + static_cast<long>(l3 + hdr + a),
             frame.begin() + static_cast<long>(l3 + hdr + b));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace palisade::pkt
