#include "live/uplink.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>

#include "packet/builder.h"

namespace palisade::live {
namespace {

constexpr TimeNs kAskEvery = 1'000'000'000;
constexpr size_t kMaxNeighbours = 65536;  // beyond this, only ARP-confirmed entries are added

IpAddr destinationOf(std::span<const std::byte> frame) {
  const auto type =
      static_cast<uint16_t>(static_cast<uint8_t>(frame[12]) << 8 | static_cast<uint8_t>(frame[13]));
  const auto* b = reinterpret_cast<const uint8_t*>(frame.data());
  if (type == 0x0800 && frame.size() >= 14 + 20) return IpAddr::v4(b + 14 + 16);
  if (type == 0x86dd && frame.size() >= 14 + 40) return IpAddr::v6(b + 14 + 24);
  return IpAddr{};
}

void putMac(std::byte* at, const MacAddr& m) {
  std::memcpy(at, m.b.data(), 6);
}

}  // namespace

void Uplink::setOwned(std::vector<IpAddr> owned) {
  std::sort(owned.begin(), owned.end());
  owned.erase(std::unique(owned.begin(), owned.end()), owned.end());
  std::unique_lock lock(mu_);
  owned_ = std::move(owned);
}

bool Uplink::owns(const IpAddr& ip) const {
  return std::binary_search(owned_.begin(), owned_.end(), ip);
}

void Uplink::learn(const IpAddr& ip, const MacAddr& mac, bool from_arp) {
  if (ip.isUnspecified() || ip.isMulticast() || mac.isMulticast() || mac.isZero()) return;
  {
    std::shared_lock lock(mu_);
    auto it = table_.find(ip);
    if (it != table_.end() && it->second.mac == mac && (it->second.from_arp || !from_arp)) return;
    if (it != table_.end() && it->second.from_arp && !from_arp) return;  // ARP is authoritative
    if (it == table_.end() && !from_arp && table_.size() >= kMaxNeighbours) return;
  }
  std::unique_lock lock(mu_);
  table_[ip] = Entry{mac, from_arp};
  asked_.erase(ip);
}

bool Uplink::onNd(const pkt::Packet& p, std::vector<std::byte>& reply) {
  if (!p.has(pkt::kIcmpv6) || p.ttl != 255 || p.icmp.code != 0) return false;
  const uint8_t type = p.icmp.type;
  if (type == 134) {  // router advertisement: a default router while its lifetime lasts
    if (p.l4_off + 8 > p.l3_end || !p.src.isLinkLocal()) return false;
    const auto* b = reinterpret_cast<const uint8_t*>(p.frame.data()) + p.l4_off;
    const auto lifetime = static_cast<uint16_t>(b[6] << 8 | b[7]);
    learn(p.src, p.eth_src, true);
    std::unique_lock lock(mu_);
    if (lifetime > 0)
      ra_router_ = p.src;
    else if (ra_router_ == p.src)
      ra_router_.reset();
    return false;
  }
  if (type == 136) {  // advertisement: the target is at its target link-layer address
    if (p.nd.has_target && !p.nd.target.isMulticast())
      learn(p.nd.target, p.nd.has_lladdr ? p.nd.lladdr : p.eth_src, true);
    return false;
  }
  if (type != 135 || !p.nd.has_target) return false;
  const bool dad = p.src.isUnspecified();  // duplicate address detection
  if (!dad && p.nd.has_lladdr) learn(p.src, p.nd.lladdr, true);
  {
    std::shared_lock lock(mu_);
    if (!owns(p.nd.target)) return false;
  }
  // An advertisement from the owned address: solicited and override, to the
  // asker; a node probing for the address (DAD) hears it on all-nodes, unsolicited.
  static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const IpAddr all_nodes = IpAddr::v6(kAllNodes);
  const MacAddr all_nodes_mac{{0x33, 0x33, 0, 0, 0, 1}};
  const MacAddr to_mac = dad ? all_nodes_mac : p.nd.has_lladdr ? p.nd.lladdr : p.eth_src;
  std::vector<uint8_t> body(p.nd.target.b.begin(), p.nd.target.b.end());
  body.insert(body.end(), {2, 1});  // target link-layer address
  body.insert(body.end(), cfg_.mac.b.begin(), cfg_.mac.b.end());
  reply = pkt::PacketBuilder()
              .eth(cfg_.mac, to_mac)
              .ipv6(p.nd.target, dad ? all_nodes : p.src, 255)
              .icmpv6(136, 0, dad ? 0x20000000u : 0x60000000u)
              .payload(std::move(body))
              .build();
  return true;
}

bool Uplink::onArp(const pkt::Packet& p, std::vector<std::byte>& reply) {
  if (!p.arp.spa.isUnspecified()) learn(p.arp.spa, p.arp.sha, true);
  if (p.arp.op != 1) return false;
  {
    std::shared_lock lock(mu_);
    if (!owns(p.arp.tpa)) return false;
  }
  reply = pkt::PacketBuilder()
              .eth(cfg_.mac, p.arp.sha)
              .arp(2, cfg_.mac, p.arp.tpa, p.arp.sha, p.arp.spa)
              .build();
  return true;
}

std::optional<MacAddr> Uplink::lookup(const IpAddr& ip) const {
  std::shared_lock lock(mu_);
  auto it = table_.find(ip);
  if (it == table_.end()) return std::nullopt;
  return it->second.mac;
}

size_t Uplink::neighbours() const {
  std::shared_lock lock(mu_);
  return table_.size();
}

void Uplink::arpRequest(const IpAddr& target, std::vector<std::byte>& out) const {
  const IpAddr from =
      cfg_.v4.address && cfg_.v4.address->isV4() ? *cfg_.v4.address : IpAddr::v4(0u);
  const MacAddr broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  out = pkt::PacketBuilder()
            .eth(cfg_.mac, broadcast)
            .arp(1, cfg_.mac, from, MacAddr{}, target)
            .build();
}

void Uplink::solicit(const IpAddr& target, std::vector<std::byte>& out) const {
  // From the switch's IPv6 address on the uplink, else its MAC's link-local
  // address; to the target's solicited-node group (ff02::1:ffXX:XXXX).
  IpAddr from;
  if (cfg_.v6.address && !cfg_.v6.address->isV4()) {
    from = *cfg_.v6.address;
  } else {
    std::array<uint8_t, 16> ll{0xfe, 0x80};
    ll[8] = cfg_.mac.b[0] ^ 0x02;
    ll[9] = cfg_.mac.b[1];
    ll[10] = cfg_.mac.b[2];
    ll[11] = 0xff;
    ll[12] = 0xfe;
    ll[13] = cfg_.mac.b[3];
    ll[14] = cfg_.mac.b[4];
    ll[15] = cfg_.mac.b[5];
    from = IpAddr::v6(ll.data());
  }
  std::array<uint8_t, 16> group{0xff, 0x02};
  group[11] = 0x01;
  group[12] = 0xff;
  std::copy(target.b.begin() + 13, target.b.end(), group.begin() + 13);
  const MacAddr group_mac{{0x33, 0x33, 0xff, target.b[13], target.b[14], target.b[15]}};
  out = pkt::PacketBuilder()
            .eth(cfg_.mac, group_mac)
            .ipv6(from, IpAddr::v6(group.data()), 255)
            .nd(135, target, &cfg_.mac)
            .build();
}

std::optional<IpAddr> Uplink::gatewayOf(bool v4) const {
  if (const auto& g = cfg_.of(v4).gateway) return g;
  if (v4) return std::nullopt;
  std::shared_lock lock(mu_);
  return ra_router_;
}

bool Uplink::address(std::span<std::byte> frame, TimeNs now, std::vector<std::byte>& request) {
  request.clear();
  if (frame.size() < 14) return false;
  const IpAddr dst = destinationOf(frame);
  IpAddr hop = dst;
  std::optional<MacAddr> mac = lookup(dst);
  const UplinkFamily& fam = cfg_.of(dst.isV4());
  if (!mac && !(fam.subnet && fam.subnet->contains(dst)))
    if (const std::optional<IpAddr> gw = gatewayOf(dst.isV4())) {
      hop = *gw;
      mac = lookup(hop);
    }
  if (mac) {
    putMac(frame.data(), *mac);
    putMac(frame.data() + 6, cfg_.mac);
    return true;
  }
  if (!hop.isUnspecified() && !hop.isMulticast()) {
    std::unique_lock lock(mu_);
    TimeNs& last = asked_[hop];
    if (last == 0 || now - last >= kAskEvery) {
      last = now;
      if (asked_.size() > kMaxNeighbours) asked_.clear();
      lock.unlock();
      if (hop.isV4())
        arpRequest(hop, request);
      else
        solicit(hop, request);
    }
  }
  return false;
}

}  // namespace palisade::live
