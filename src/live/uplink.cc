#include "live/uplink.h"

#include <algorithm>
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
  const IpAddr from = cfg_.address && cfg_.address->isV4() ? *cfg_.address : IpAddr::v4(0u);
  const MacAddr broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  out = pkt::PacketBuilder()
            .eth(cfg_.mac, broadcast)
            .arp(1, cfg_.mac, from, MacAddr{}, target)
            .build();
}

bool Uplink::address(std::span<std::byte> frame, TimeNs now, std::vector<std::byte>& arp_request) {
  arp_request.clear();
  if (frame.size() < 14) return false;
  const IpAddr dst = destinationOf(frame);
  IpAddr hop = dst;
  std::optional<MacAddr> mac = lookup(dst);
  if (!mac && cfg_.gateway && !(cfg_.subnet && cfg_.subnet->contains(dst))) {
    hop = *cfg_.gateway;
    mac = lookup(hop);
  }
  if (mac) {
    putMac(frame.data(), *mac);
    putMac(frame.data() + 6, cfg_.mac);
    return true;
  }
  if (hop.isV4() && !hop.isUnspecified()) {
    std::unique_lock lock(mu_);
    TimeNs& last = asked_[hop];
    if (last == 0 || now - last >= kAskEvery) {
      last = now;
      if (asked_.size() > kMaxNeighbours) asked_.clear();
      lock.unlock();
      arpRequest(hop, arp_request);
    }
  }
  return false;
}

}  // namespace palisade::live
