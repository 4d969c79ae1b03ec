// The uplink's layer 2, which replay never needed: the switch answers ARP for
// the addresses it owns there (every deployment VIP and the host's underlay
// address: proxy ARP), learns its neighbours' MACs, and gives every frame it
// sends out of the uplink its own source MAC and the next hop's destination MAC.
//
// Next hop: the destination itself when its MAC is known (learnt from ARP, or
// from the source of packets that arrived from it, which is the router's MAC
// for routed traffic: replies go back the way their flow came), else the
// configured gateway. An unresolved next hop is asked for by ARP (at most once
// a second per address) and the frame is dropped and counted, as a host drops
// what it cannot resolve; TCP's retransmission brings the next one.
//
// IPv6 works the same way through neighbour discovery (RFC 4861): the switch
// answers neighbour solicitations for the addresses it owns (proxy ND: a
// neighbour advertisement from the uplink's MAC), learns neighbours from
// solicitations, advertisements and router advertisements, and asks for an
// unresolved next hop with a solicitation to its solicited-node multicast
// group, from the switch's IPv6 address on the uplink or else the link-local
// address of the uplink's MAC (EUI-64). Without a configured IPv6 gateway the
// next hop off-link is the router that last advertised itself as a default
// router. Neighbour discovery with a hop limit other than 255 came from off
// the link and is ignored, as RFC 4861 requires.
//
// Threading: one Uplink shared by every worker; lookups take a shared lock,
// learning an exclusive one only when an entry changes.
#pragma once

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/hash.h"
#include "core/net.h"
#include "core/time.h"
#include "packet/packet.h"

namespace palisade::live {

// One address family's layer 3 on the uplink.
struct UplinkFamily {
  std::optional<IpAddr> address;  // the switch's address there (ARP/NS requests come from it)
  std::optional<Prefix> subnet;   // on-link destinations; others go to the gateway
  std::optional<IpAddr> gateway;
};

struct UplinkConfig {
  MacAddr mac;  // the uplink interface's own
  UplinkFamily v4, v6;
  UplinkFamily& of(bool is_v4) { return is_v4 ? v4 : v6; }
  const UplinkFamily& of(bool is_v4) const { return is_v4 ? v4 : v6; }
};

class Uplink {
 public:
  explicit Uplink(UplinkConfig cfg) : cfg_(cfg) {}

  // The addresses answered by proxy ARP (VIPs and the underlay address);
  // replaced on reload.
  void setOwned(std::vector<IpAddr> owned);

  // An ARP frame that arrived on the uplink: learns the sender and, for a
  // request about an owned address, writes the reply into `reply` and returns true.
  bool onArp(const pkt::Packet& p, std::vector<std::byte>& reply);
  // A neighbour discovery message (ICMPv6 133-137) that arrived on the
  // uplink: learns from it and, for a solicitation of an owned address,
  // writes the advertisement into `reply` and returns true.
  bool onNd(const pkt::Packet& p, std::vector<std::byte>& reply);
  // An IP packet that arrived on the uplink: its source is reachable through
  // its source MAC.
  void learn(const IpAddr& ip, const MacAddr& mac, bool from_arp = false);

  // Rewrites the Ethernet addresses of `frame` (leaving by the uplink) for its
  // next hop. False when that is unresolved: then `request` holds an ARP
  // request or neighbour solicitation to send (when one is due) and the
  // frame must be dropped.
  bool address(std::span<std::byte> frame, TimeNs now, std::vector<std::byte>& request);

  std::optional<MacAddr> lookup(const IpAddr& ip) const;
  size_t neighbours() const;

 private:
  struct IpHash {
    size_t operator()(const IpAddr& a) const { return hashKey(a); }
  };
  struct Entry {
    MacAddr mac;
    bool from_arp = false;
  };
  bool owns(const IpAddr& ip) const;
  void arpRequest(const IpAddr& target, std::vector<std::byte>& out) const;
  void solicit(const IpAddr& target, std::vector<std::byte>& out) const;
  std::optional<IpAddr> gatewayOf(bool v4) const;

  UplinkConfig cfg_;
  mutable std::shared_mutex mu_;
  std::vector<IpAddr> owned_;
  std::unordered_map<IpAddr, Entry, IpHash> table_;
  std::unordered_map<IpAddr, TimeNs, IpHash> asked_;  // last ARP request per address
  std::optional<IpAddr> ra_router_;  // the IPv6 default router, from its advertisements
};

}  // namespace palisade::live
