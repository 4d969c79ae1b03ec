// palisade-traffic: writes a pcapng of traffic through a policy's topology, one
// pcapng interface per switch port (interface 0 is the uplink, then each NIC in
// policy order). Conversations are built from the policy itself: DHCP and ARP
// from every NIC, Internet clients reaching each input endpoint and closed
// ports, tier-to-tier TCP, DNS to the fabric resolver, IPv6 neighbour discovery,
// VXLAN between hosts, and the attacks a trusted packet filter must stop (IP and
// MAC spoofing, a gratuitous ARP claiming the gateway, a rogue DHCP server).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "io/capture.h"
#include "packet/builder.h"
#include "policy/loader.h"

using namespace palisade;
using pkt::PacketBuilder;
namespace tf = pkt::tcpflag;

namespace {

const MacAddr kGatewayMac = *MacAddr::parse("12:34:56:78:9a:bc");
const MacAddr kUplinkPeer = *MacAddr::parse("02:fe:00:00:00:01");  // the provider router
const MacAddr kBroadcast = *MacAddr::parse("ff:ff:ff:ff:ff:ff");

struct Port {
  std::string name;
  const policy::Nic* nic = nullptr;
  const policy::Tenant* tenant = nullptr;
};

class Traffic {
 public:
  Traffic(io::PacketWriter& w, TimeNs start) : w_(w), t_(start) {}

  void emit(uint32_t port, const std::vector<std::byte>& frame, std::string_view comment = {}) {
    t_ += 250'000;  // 250 us between packets
    io::RawPacket p{
        Bytes(frame), t_, static_cast<uint32_t>(frame.size()), port, pkt::LinkType::Ethernet,
        comment};
    if (Status s = w_.write(p); !s) {
      std::fprintf(stderr, "palisade-traffic: %s\n", s.error().message.c_str());
      ok_ = false;
    }
    ++count_;
  }

  // A whole TCP conversation: handshake, request, response, close.
  void tcpSession(uint32_t port_a, uint32_t port_b, MacAddr mac_a, MacAddr mac_b, IpAddr a,
                  IpAddr b, uint16_t sport, uint16_t dport, std::string_view request,
                  std::string_view response, std::string_view comment) {
    pkt::TcpOptions syn_opt;
    syn_opt.has_mss = true;
    syn_opt.mss = 1460;
    syn_opt.sack_permitted = true;
    syn_opt.has_wscale = true;
    syn_opt.wscale = 7;
    uint32_t ca = 1000 + sport, cb = 50000 + dport;
    auto ab = [&] { return PacketBuilder().eth(mac_a, mac_b); };
    auto ba = [&] { return PacketBuilder().eth(mac_b, mac_a); };
    emit(port_a, l3(ab(), a, b).tcp(sport, dport, tf::kSyn, ca, 0, syn_opt).build(), comment);
    emit(port_b,
         l3(ba(), b, a).tcp(dport, sport, tf::kSyn | tf::kAck, cb, ca + 1, syn_opt).build());
    emit(port_a, l3(ab(), a, b).tcp(sport, dport, tf::kAck, ca + 1, cb + 1).build());
    if (request.empty()) return;
    emit(port_a, l3(ab(), a, b)
                     .tcp(sport, dport, tf::kPsh | tf::kAck, ca + 1, cb + 1)
                     .payload(request)
                     .build());
    const auto rl = static_cast<uint32_t>(request.size()),
               sl = static_cast<uint32_t>(response.size());
    emit(port_b, l3(ba(), b, a)
                     .tcp(dport, sport, tf::kPsh | tf::kAck, cb + 1, ca + 1 + rl)
                     .payload(response)
                     .build());
    emit(port_a,
         l3(ab(), a, b).tcp(sport, dport, tf::kFin | tf::kAck, ca + 1 + rl, cb + 1 + sl).build());
    emit(port_b,
         l3(ba(), b, a).tcp(dport, sport, tf::kFin | tf::kAck, cb + 1 + sl, ca + 2 + rl).build());
    emit(port_a, l3(ab(), a, b).tcp(sport, dport, tf::kAck, ca + 2 + rl, cb + 2 + sl).build());
  }

  static PacketBuilder l3(PacketBuilder b, const IpAddr& src, const IpAddr& dst) {
    if (src.isV4())
      b.ipv4(src, dst);
    else
      b.ipv6(src, dst);
    return b;
  }

  bool ok() const { return ok_; }
  size_t count() const { return count_; }

 private:
  io::PacketWriter& w_;
  TimeNs t_;
  bool ok_ = true;
  size_t count_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write a pcapng of example traffic through a policy's topology"};
  app.name("palisade-traffic");
  std::string policy_path, out_path;
  app.add_option("-p,--policy", policy_path, "Policy file")->required();
  app.add_option("-o,--out", out_path, "Output pcapng")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const policy::LoadResult r = policy::loadPolicyFile(policy_path);
  if (!r.policy) {
    std::fputs(r.diagnostics.format().c_str(), stderr);
    return 1;
  }
  const policy::Policy& pol = *r.policy;

  std::vector<Port> ports{{"uplink", nullptr, nullptr}};
  for (const auto& t : pol.tenants)
    for (const auto& n : t.nics)
      ports.push_back({t.name + "/" + n.name, &n, &t});
  std::vector<io::InterfaceInfo> ifaces;
  for (const Port& p : ports) {
    ifaces.push_back({pkt::LinkType::Ethernet, 262144, p.name,
                      p.nic ? "NIC port" : "uplink: Internet, on-premises, VXLAN to other hosts"});
  }
  auto w = io::createCapture(out_path, io::CaptureFormat::Pcapng, ifaces);
  if (!w) {
    std::fprintf(stderr, "palisade-traffic: %s\n", w.error().message.c_str());
    return 3;
  }
  Traffic tr(**w, 1795341845ull * 1000000000ull);
  auto portOf = [&](const policy::Nic* n) {
    for (uint32_t i = 0; i < ports.size(); ++i)
      if (ports[i].nic == n) return i;
    return 0u;
  };
  auto findNic = [&](const policy::Tenant& t, std::string_view name) -> const policy::Nic* {
    for (const auto& n : t.nics)
      if (n.name == name) return &n;
    return nullptr;
  };
  // The gateway of a NIC's subnet in one family: the first host address (Azure's .1).
  auto gatewayOf = [&](const policy::Tenant& t, const policy::Nic& n, bool v4) {
    const auto slash = n.subnet.name.find('/');
    for (const auto& v : t.vnets) {
      if (v.name != n.subnet.name.substr(0, slash)) continue;
      for (const auto& sn : v.subnets) {
        if (sn.name != n.subnet.name.substr(slash + 1)) continue;
        for (const Prefix& p : sn.prefixes) {
          if (p.isV4() != v4) continue;
          IpAddr gw = p.addr;
          gw.b[15] = static_cast<uint8_t>(gw.b[15] + 1);
          return gw;
        }
      }
    }
    return IpAddr{};
  };
  const IpAddr internet = *IpAddr::parse("198.51.100.7");
  const IpAddr office = *IpAddr::parse("198.51.100.130");
  const IpAddr scanner = *IpAddr::parse("198.51.100.66");
  const IpAddr fabric_dns = pol.infra_endpoints.empty() ? IpAddr{} : pol.infra_endpoints[0].ip;

  // Every NIC boots: DHCP discover and request, ARP for its gateway, DNS to the fabric.
  for (uint32_t i = 1; i < ports.size(); ++i) {
    const policy::Nic& n = *ports[i].nic;
    const IpAddr ip = n.ips[0];
    PacketBuilder::Dhcp d;
    d.client_mac = n.mac;
    d.xid = 0x5000 + i;
    tr.emit(i,
            PacketBuilder()
                .eth(n.mac, kBroadcast)
                .ipv4(IpAddr::v4(0u), IpAddr::v4(0xffffffffu))
                .udp(68, 67)
                .dhcp(d)
                .build(),
            "DHCP discover");
    d.msg_type = 3;
    d.requested = &ip;
    tr.emit(i, PacketBuilder()
                   .eth(n.mac, kBroadcast)
                   .ipv4(IpAddr::v4(0u), IpAddr::v4(0xffffffffu))
                   .udp(68, 67)
                   .dhcp(d)
                   .build());
    const IpAddr gw = gatewayOf(*ports[i].tenant, n, true);
    tr.emit(i, PacketBuilder().eth(n.mac, kBroadcast).arp(1, n.mac, ip, MacAddr{}, gw).build(),
            "ARP for the gateway");
    if (!fabric_dns.isUnspecified()) {
      std::vector<uint8_t> q = {0x12, 0x34, 1,   0,   0,   1,   0, 0,   0,   0,
                                0,    0,    3,   'a', 'p', 'p', 8, 'i', 'n', 't',
                                'e',  'r',  'n', 'a', 'l', 0,   0, 1,   0,   1};
      tr.emit(i,
              PacketBuilder()
                  .eth(n.mac, kGatewayMac)
                  .ipv4(ip, fabric_dns)
                  .udp(40000 + static_cast<uint16_t>(i), 53)
                  .payload(q)
                  .build(),
              "DNS to the fabric resolver");
    }
    for (const IpAddr& a : n.ips) {
      if (a.isV4()) continue;
      const IpAddr target = gatewayOf(*ports[i].tenant, n, false);
      IpAddr solicited = *IpAddr::parse("ff02::1:ff00:0");  // solicited-node multicast of target
      std::copy(target.b.begin() + 13, target.b.end(), solicited.b.begin() + 13);
      tr.emit(i,
              PacketBuilder()
                  .eth(n.mac, *MacAddr::parse("33:33:ff:00:00:01"))
                  .ipv6(a, solicited, 255)
                  .nd(135, target, &n.mac)
                  .build(),
              "IPv6 neighbour solicitation");
    }
  }

  // Internet clients reach every input endpoint; a scanner tries ports with no endpoint.
  uint16_t sport = 41000;
  for (const auto& t : pol.tenants) {
    for (const auto& e : t.endpoints) {
      const policy::Nic* n = findNic(t, e.nic.name);
      IpAddr vip;
      for (const auto& d : t.deployments)
        if (d.name == e.deployment.name) vip = d.vip;
      if (!n || e.protocol != policy::Protocol::Tcp) continue;
      const IpAddr client = e.management ? office : internet;
      // Outside the switch the client talks to VIP:public_port; inside, the NIC sees its own port.
      tr.tcpSession(0, 0, kUplinkPeer, kGatewayMac, client, vip, sport++, e.public_port,
                    "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n",
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                    "Internet client to an input endpoint");
      tr.tcpSession(0, portOf(n), kGatewayMac, n->mac, client, n->ips[0], sport++, e.private_port,
                    "", "", "the same connection after DNAT");
    }
    for (const auto& d : t.deployments) {
      for (uint16_t closed : {23, 3306, 5432}) {
        tr.emit(0,
                PacketBuilder()
                    .eth(kUplinkPeer, kGatewayMac)
                    .ipv4(scanner, d.vip)
                    .tcp(sport++, closed, tf::kSyn, 7)
                    .build(),
                "scan of a port with no endpoint");
      }
    }
  }

  // East-west inside the first tenant: each NIC opens a connection to the next one
  // (web -> app is allowed, web -> db skips a tier), over VXLAN when hosts differ.
  if (!pol.tenants.empty() && pol.tenants[0].nics.size() >= 2) {
    const auto& t = pol.tenants[0];
    const policy::VNet& v = t.vnets[0];
    for (size_t i = 0; i + 1 < t.nics.size(); ++i) {
      const policy::Nic& a = t.nics[i];
      const policy::Nic& b = t.nics[i + 1];
      const std::string note = a.name + " to " + b.name;
      tr.tcpSession(portOf(&a), portOf(&b), a.mac, b.mac, a.ips[0], b.ips[0], sport++, 8080,
                    "GET /api HTTP/1.1\r\nHost: app\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
                    note);
      if (a.host.name != b.host.name && !pol.hosts.empty()) {
        IpAddr ha, hb;
        for (const auto& h : pol.hosts) {
          if (h.name == a.host.name) ha = h.underlay_ip;
          if (h.name == b.host.name) hb = h.underlay_ip;
        }
        tr.emit(0,
                PacketBuilder()
                    .eth(kGatewayMac, kUplinkPeer)
                    .ipv4(ha, hb)
                    .udp(49152, 4789)
                    .vxlan(v.vni)
                    .eth(a.mac, b.mac)
                    .ipv4(a.ips[0], b.ips[0])
                    .tcp(sport++, 8080, tf::kSyn, 1)
                    .build(),
                "VXLAN between hosts, VNI = VNet");
      }
    }
    // Attacks from the first NIC.
    const policy::Nic& bad = t.nics[0];
    const policy::Nic& victim = t.nics[1];
    const uint32_t bp = portOf(&bad);
    tr.emit(bp,
            PacketBuilder()
                .eth(bad.mac, kGatewayMac)
                .ipv4(victim.ips[0], internet)
                .tcp(6666, 80, tf::kSyn)
                .build(),
            "IP spoofing: another NIC's address");
    tr.emit(bp,
            PacketBuilder()
                .eth(victim.mac, kGatewayMac)
                .ipv4(bad.ips[0], internet)
                .tcp(6667, 80, tf::kSyn)
                .build(),
            "MAC spoofing: another NIC's MAC");
    const IpAddr gw = gatewayOf(t, bad, true);
    tr.emit(bp,
            PacketBuilder().eth(bad.mac, kBroadcast).arp(2, bad.mac, gw, kBroadcast, gw).build(),
            "gratuitous ARP claiming the gateway");
    PacketBuilder::Dhcp offer;
    offer.op = 2;
    offer.msg_type = 2;
    offer.client_mac = victim.mac;
    offer.yiaddr = *IpAddr::parse("192.0.2.99");
    tr.emit(bp,
            PacketBuilder()
                .eth(bad.mac, kBroadcast)
                .ipv4(bad.ips[0], IpAddr::v4(0xffffffffu))
                .udp(67, 68)
                .dhcp(offer)
                .build(),
            "rogue DHCP offer from a VM");
    tr.emit(bp,
            PacketBuilder()
                .eth(bad.mac, kGatewayMac)
                .ethertypeRaw(0x88cc)
                .payload(std::string(46, '\0'))
                .build(),
            "LLDP from a VM");
  }

  if (Status s = (*w)->close(); !s || !tr.ok()) {
    std::fprintf(stderr, "palisade-traffic: %s\n", s ? "write failed" : s.error().message.c_str());
    return 1;
  }
  std::printf("wrote %zu packets on %zu ports to %s\n", tr.count(), ports.size(), out_path.c_str());
  return 0;
}
