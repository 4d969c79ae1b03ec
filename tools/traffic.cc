// palisade-traffic: writes a pcapng of traffic through a policy's topology, one
// pcapng interface per switch port (interface 0 is the uplink, then each NIC in
// policy order). Conversations are built from the policy itself: DHCP and ARP
// from every NIC, Internet clients reaching each input endpoint and closed
// ports, tier-to-tier TCP, outbound connections, DNS to the fabric resolver, IPv6
// neighbour discovery, and the attacks the switch must stop (IP and MAC spoofing,
// a gratuitous ARP claiming the gateway, a rogue DHCP server, sequence-number
// injection, tier skipping, refused endpoint ACL sources). Each packet is written
// on the port where it enters the switch, addressed as its sender sees the
// network, so `palisade replay` can run it through the pipeline.
//
// With --host H, the capture is what host H's switch sees: packets of NICs on
// other hosts that reach a NIC on H arrive on the uplink in VXLAN from their
// host's underlay address with their VNet's VNI (as the other switch sends
// them); their other traffic is the other host's and is left out. Two tunnel
// attacks follow: VXLAN from an address that is no host, and another host
// speaking for a NIC of H.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/strings.h"
#include "core/time.h"
#include "io/capture.h"
#include "packet/builder.h"
#include "packet/decoder.h"
#include "pipeline/compiled.h"
#include "policy/loader.h"

using namespace palisade;
using pkt::PacketBuilder;
namespace tf = pkt::tcpflag;

namespace {

using pipeline::kGatewayMac;
using pipeline::underlayMac;
const MacAddr kUplinkPeer = *MacAddr::parse("02:fe:00:00:00:01");  // the provider router
const MacAddr kBroadcast = *MacAddr::parse("ff:ff:ff:ff:ff:ff");

struct Port {
  std::string name;
  const policy::Nic* nic = nullptr;
  const policy::Tenant* tenant = nullptr;
};

class Traffic {
 public:
  // What one host's switch sees of a packet entering `port`: nothing (false),
  // or the packet as it arrives there (a remote NIC's, tunnelled to the uplink).
  using View = std::function<bool(uint32_t& port, std::vector<std::byte>& frame)>;

  Traffic(io::PacketWriter& w, TimeNs start, View view)
      : w_(w), t_(start), view_(std::move(view)) {}

  void emit(uint32_t port, std::vector<std::byte> frame, std::string_view comment = {}) {
    if (view_ && !view_(port, frame)) return;
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

  // One side of a TCP conversation as it enters the switch: its port, its MAC,
  // and the addresses as that side sees them (a client sees the VIP, the NIC
  // behind an endpoint sees the client and its own private address).
  struct Side {
    uint32_t port;
    MacAddr mac;
    IpAddr self, peer;
    uint16_t self_port, peer_port;
  };

  void segment(const Side& s, uint8_t flags, uint32_t seq, uint32_t ack,
               std::string_view payload = {}, std::string_view comment = {},
               const pkt::TcpOptions& opt = {}) {
    emit(s.port,
         l3(PacketBuilder().eth(s.mac, kGatewayMac), s.self, s.peer)
             .tcp(s.self_port, s.peer_port, flags, seq, ack, opt, 502)
             .payload(payload)
             .build(),
         comment);
  }

  // A whole TCP conversation: handshake, request, response, close. With
  // `inject`, an attacker's segment with a guessed sequence number goes in
  // after the handshake (it must be dropped; the conversation goes on).
  void tcpSession(const Side& a, const Side& b, std::string_view request, std::string_view response,
                  std::string_view comment, bool inject = false) {
    pkt::TcpOptions syn_opt;
    syn_opt.has_mss = true;
    syn_opt.mss = 1460;
    syn_opt.sack_permitted = true;
    syn_opt.has_wscale = true;
    syn_opt.wscale = 7;
    const uint32_t ca = 1000u + a.self_port, cb = 50000u + b.self_port;
    segment(a, tf::kSyn, ca, 0, {}, comment, syn_opt);
    segment(b, tf::kSyn | tf::kAck, cb, ca + 1, {}, {}, syn_opt);
    segment(a, tf::kAck, ca + 1, cb + 1);
    if (inject)
      segment(a, tf::kRst | tf::kAck, ca + 0x40000000u, cb + 1, {},
              "injected RST with a guessed sequence number (out of window)");
    if (request.empty()) return;
    const auto rl = static_cast<uint32_t>(request.size()),
               sl = static_cast<uint32_t>(response.size());
    segment(a, tf::kPsh | tf::kAck, ca + 1, cb + 1, request);
    segment(b, tf::kPsh | tf::kAck, cb + 1, ca + 1 + rl, response);
    segment(a, tf::kFin | tf::kAck, ca + 1 + rl, cb + 1 + sl);
    segment(b, tf::kFin | tf::kAck, cb + 1 + sl, ca + 2 + rl);
    segment(a, tf::kAck, ca + 2 + rl, cb + 2 + sl);
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
  // Moves the clock forward to t (never back: captures stay in time order).
  void at(TimeNs t) { t_ = std::max(t_, t); }

 private:
  io::PacketWriter& w_;
  TimeNs t_;
  View view_;
  bool ok_ = true;
  size_t count_ = 0;
};

// A month of everyday traffic through the policy's input endpoints, hour by
// hour: clients (a few heavy, many light) whose number follows the day and the
// week, responses of varied size, a scanner most nights, and two attack days: a
// sweep of closed ports and a password-guessing run against an endpoint's ACL.
// Deterministic (a fixed LCG), so every run writes the same capture.
void writeMonth(Traffic& tr, const policy::Policy& pol, TimeNs start,
                const std::function<uint32_t(const policy::Tenant&, std::string_view)>& portOf) {
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  auto next = [&](uint32_t bound) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>((rng >> 33) % bound);
  };
  struct Target {
    const policy::Tenant* tenant;
    const policy::Endpoint* endpoint;
    const policy::Nic* nic;
    uint32_t port;
    IpAddr vip;
    bool restricted;  // its ACL admits only some sources
  };
  std::vector<Target> targets;
  for (const auto& t : pol.tenants)
    for (const auto& e : t.endpoints) {
      const uint32_t port = portOf(t, e.nic.name);
      IpAddr vip;
      for (const auto& d : t.deployments)
        if (const IpAddr* v4 = d.vipOf(true); v4 && d.name == e.deployment.name) vip = *v4;
      const policy::Nic* n = nullptr;
      for (const auto& m : t.nics)
        if (m.name == e.nic.name) n = &m;
      if (port == 0 || !n || e.protocol != policy::Protocol::Tcp || !vip.isV4() ||
          !n->ips[0].isV4())
        continue;
      bool restricted = false;
      for (const auto& rule : e.acl)
        restricted |= rule.action == policy::AclAction::Permit;
      targets.push_back({&t, &e, n, port, vip, restricted});
    }
  if (targets.empty()) return;
  const TimeNs hour = 3600ull * 1000000000ull;
  const TimeNs end = monthStart(start, 1);
  uint16_t sport = 20000;
  auto nextPort = [&] { return sport = static_cast<uint16_t>(sport >= 60000 ? 20000 : sport + 1); };
  const size_t days = static_cast<size_t>((end - start) / kNsPerDay);
  const size_t sweep_day = days / 3, guess_day = days * 3 / 4;
  std::string body;
  for (TimeNs t = start; t < end; t += hour) {
    const auto day = static_cast<size_t>((t - start) / kNsPerDay);
    const unsigned h = static_cast<unsigned>(t / hour % 24);
    const int64_t weekday = (static_cast<int64_t>(t / kNsPerDay) + 4) % 7;  // 0: Sunday
    // Busy in the working day, quiet at night, lighter at the weekend.
    static constexpr uint8_t kShape[24] = {1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8,
                                           7, 8, 8, 8, 7, 6, 5, 4, 3, 2, 2, 1};
    const uint32_t sessions = kShape[h] * (weekday == 0 || weekday == 6 ? 1u : 2u);
    tr.at(t + next(600) * 1000000000ull);
    for (uint32_t i = 0; i < sessions; ++i) {
      const Target& g = targets[next(static_cast<uint32_t>(targets.size()))];
      // Clients: 198.51.100.1-.60, a handful of them far busier than the rest.
      const uint32_t r = next(100);
      const uint8_t last = static_cast<uint8_t>(r < 40 ? 1 + r % 4 : 1 + next(60));
      IpAddr client = *IpAddr::parse(g.restricted ? "198.51.100.130" : "198.51.100.0");
      if (!g.restricted) client.b[15] = last;
      body.assign(r < 40 ? 400 + next(1000) : 100 + next(400), 'x');
      const uint16_t sp = nextPort();
      tr.tcpSession({0, kUplinkPeer, client, g.vip, sp, g.endpoint->public_port},
                    {g.port, g.nic->mac, g.nic->ips[0], client, g.endpoint->private_port, sp},
                    "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n",
                    strCat("HTTP/1.1 200 OK\r\nContent-Length: ", std::to_string(body.size()),
                           "\r\n\r\n", body),
                    {});
    }
    // A web attack some working days at 11:00: SQL injection from one of a
    // few addresses (the IPS drops it; the monthly report lists its alerts).
    if (h == 11 && weekday != 0 && weekday != 6 && next(3) == 0) {
      const Target& g = targets[next(static_cast<uint32_t>(targets.size()))];
      if (!g.restricted) {
        IpAddr attacker = *IpAddr::parse("198.51.100.77");
        attacker.b[15] = static_cast<uint8_t>(77 + next(3));
        const uint16_t sp = nextPort();
        tr.tcpSession({0, kUplinkPeer, attacker, g.vip, sp, g.endpoint->public_port},
                      {g.port, g.nic->mac, g.nic->ips[0], attacker, g.endpoint->private_port, sp},
                      "GET /search?q=1'%20union%20select%20card_number%20from%20payments-- "
                      "HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: sqlmap/1.7.2\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {});
      }
    }
    // A scanner most nights: a few closed ports on a VIP.
    if (h == 3 && next(4) != 0) {
      const Target& g = targets[next(static_cast<uint32_t>(targets.size()))];
      IpAddr scanner = *IpAddr::parse("198.51.100.66");
      scanner.b[15] = static_cast<uint8_t>(66 + next(3));
      for (uint16_t closed : {23, 445, 3389, 5432})
        tr.segment({0, kUplinkPeer, scanner, g.vip, nextPort(), closed}, tf::kSyn, 7, 0);
    }
    // Attack days: a sweep of 300 ports from one address, a run of guesses at
    // a restricted endpoint from outside its ACL.
    if (day == sweep_day && h == 14) {
      const Target& g = targets[0];
      for (uint16_t p = 1000; p < 1300; ++p)
        tr.segment({0, kUplinkPeer, *IpAddr::parse("198.51.100.250"), g.vip, nextPort(), p},
                   tf::kSyn, 7, 0, {}, p == 1000 ? "port sweep" : "");
    }
    if (day == guess_day && h >= 1 && h < 4)
      for (const Target& g : targets) {
        if (!g.restricted) continue;
        for (int k = 0; k < 60; ++k)
          tr.segment({0, kUplinkPeer, *IpAddr::parse("198.51.100.240"), g.vip, nextPort(),
                      g.endpoint->public_port},
                     tf::kSyn, 7, 0, {}, k == 0 ? "guesses at a restricted endpoint" : "");
      }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write a pcapng of example traffic through a policy's topology"};
  app.name("palisade-traffic");
  std::string policy_path, out_path, host, month;
  app.add_option("-p,--policy", policy_path, "Policy file")->required();
  app.add_option("-o,--out", out_path, "Output pcapng")->required();
  app.add_option("--host", host,
                 "Write what this policy host's switch sees: NICs of other hosts behind VXLAN");
  app.add_option("--month", month,
                 "Instead of the scenario, a month of everyday traffic (YYYY-MM): Internet "
                 "clients on every endpoint through the day and week, scans, two attack days");
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
  const policy::Host* self = nullptr;
  for (const auto& h : pol.hosts)
    if (h.name == host) self = &h;
  if (!host.empty() && !self) {
    std::fprintf(stderr, "palisade-traffic: --host '%s' is not a host of %s\n", host.c_str(),
                 policy_path.c_str());
    return 2;
  }
  auto hostOf = [&](const policy::Nic& n) -> const policy::Host* {
    for (const auto& h : pol.hosts)
      if (h.name == n.host.name) return &h;
    return nullptr;
  };
  auto isLocal = [&](const policy::Nic& n) { return !self || n.host.empty() || hostOf(n) == self; };
  auto vnetOf = [&](const policy::Tenant& t, const policy::Nic& n) -> const policy::VNet* {
    const std::string vnet = n.subnet.name.substr(0, n.subnet.name.find('/'));
    for (const auto& v : t.vnets)
      if (v.name == vnet) return &v;
    return nullptr;
  };
  // The frame `inner` (from `from`, to the gateway) as `from`'s host tunnels it
  // to `self`, the switch having routed it to NIC `to`.
  auto tunnelled = [&](const IpAddr& underlay_src, uint32_t vni, const MacAddr& to_mac,
                       std::vector<std::byte> inner) {
    std::memcpy(inner.data(), to_mac.b.data(), 6);
    std::memcpy(inner.data() + 6, kGatewayMac.b.data(), 6);
    std::vector<uint8_t> body(inner.size());
    std::memcpy(body.data(), inner.data(), inner.size());
    return Traffic::l3(
               PacketBuilder().eth(underlayMac(underlay_src), underlayMac(self->underlay_ip)),
               underlay_src, self->underlay_ip)
        .udp(static_cast<uint16_t>(49152 + (inner.size() * 7919) % 16384), 4789)
        .vxlan(vni)
        .payload(std::move(body))
        .build();
  };
  Traffic::View view;
  if (self) {
    view = [&](uint32_t& port, std::vector<std::byte>& frame) {
      if (port == 0 || isLocal(*ports[port].nic)) return true;
      // From a NIC of another host: only what reaches a NIC here, by VXLAN.
      const policy::Nic& n = *ports[port].nic;
      const policy::VNet* v = vnetOf(*ports[port].tenant, n);
      pkt::Decoder d;
      pkt::Packet p;
      if (!v ||
          !d.decode(pkt::LinkType::Ethernet, Bytes(frame), static_cast<uint32_t>(frame.size()),
                    p) ||
          (!p.has(pkt::kIpv4) && !p.has(pkt::kIpv6)) || p.eth_dst.isMulticast())
        return false;
      for (const auto& m : ports[port].tenant->nics) {
        if (!isLocal(m) || vnetOf(*ports[port].tenant, m) != v) continue;
        if (std::find(m.ips.begin(), m.ips.end(), p.dst) == m.ips.end()) continue;
        frame = tunnelled(hostOf(n)->underlay_ip, v->vni, m.mac, std::move(frame));
        port = 0;
        return true;
      }
      return false;
    };
  }
  std::optional<TimeNs> month_start;
  if (!month.empty()) {
    month_start = month.size() == 7 ? parseTimestamp(strCat(month, "-01")) : std::nullopt;
    if (!month_start) {
      std::fprintf(stderr, "palisade-traffic: --month '%s' is not YYYY-MM\n", month.c_str());
      return 2;
    }
  }
  Traffic tr(**w, month_start ? *month_start : 1795341845ull * 1000000000ull, view);
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
  if (month_start) {
    writeMonth(tr, pol, *month_start, [&](const policy::Tenant& t, std::string_view name) {
      const policy::Nic* n = findNic(t, name);
      return n && isLocal(*n) ? portOf(n) : 0u;
    });
    if (Status s = (*w)->close(); !s || !tr.ok()) {
      std::fprintf(stderr, "palisade-traffic: %s\n",
                   s ? "write failed" : s.error().message.c_str());
      return 1;
    }
    std::printf("wrote %zu packets of %s on %zu ports to %s\n", tr.count(), month.c_str(),
                ports.size(), out_path.c_str());
    return 0;
  }
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

  // Internet clients reach every input endpoint (DNAT to the NIC); the NIC's
  // packets enter on its own port. A scanner tries ports with no endpoint.
  uint16_t sport = 41000;
  bool injected = false, attacked = false;
  const IpAddr attacker = *IpAddr::parse("198.51.100.77");
  for (const auto& t : pol.tenants) {
    for (const auto& e : t.endpoints) {
      const policy::Nic* n = findNic(t, e.nic.name);
      IpAddr vip;
      for (const auto& d : t.deployments)
        if (const IpAddr* v4 = d.vipOf(true); v4 && d.name == e.deployment.name) vip = *v4;
      if (!n || e.protocol != policy::Protocol::Tcp || !vip.isV4() || !isLocal(*n)) continue;
      // A source each ACL admits, and one it refuses.
      bool has_permit = false;
      IpAddr denied_src = internet;
      for (const auto& rule : e.acl) {
        has_permit |= rule.action == policy::AclAction::Permit;
        if (rule.action == policy::AclAction::Deny && rule.remote.isV4())
          denied_src = rule.remote.addr;
      }
      const IpAddr client = has_permit ? office : internet;
      const uint16_t sp = sport++;
      tr.tcpSession({0, kUplinkPeer, client, vip, sp, e.public_port},
                    {portOf(n), n->mac, n->ips[0], client, e.private_port, sp},
                    "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n",
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                    "Internet client to an input endpoint", !injected);
      injected = true;
      // Web attacks at the first endpoint open to the Internet: the IPS
      // drops each at its request (the response never comes), and the
      // scanner's user agent alerts.
      if (!has_permit && !attacked) {
        attacked = true;
        const std::pair<const char*, const char*> attacks[] = {
            {"GET /products?id=1%20UNION%20SELECT%20password%20FROM%20users HTTP/1.1\r\nHost: "
             "shop.example\r\nUser-Agent: sqlmap/1.7.2#stable\r\n\r\n",
             "SQL injection through an input endpoint (the IPS drops it)"},
            {"GET /static/..%2f..%2f..%2fetc/passwd HTTP/1.1\r\nHost: shop.example\r\n\r\n",
             "path traversal through an input endpoint (the IPS drops it)"}};
        for (const auto& [request, why] : attacks) {
          const uint16_t asp = sport++;
          tr.tcpSession({0, kUplinkPeer, attacker, vip, asp, e.public_port},
                        {portOf(n), n->mac, n->ips[0], attacker, e.private_port, asp}, request,
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", why);
        }
        // Fragment attacks on the endpoint (RFC 1858): a SYN cut after 8 bytes
        // of its TCP header, the rest at offset 8 over its flags; and a later
        // fragment of a datagram whose first was never sent.
        const auto syn = PacketBuilder()
                             .eth(kUplinkPeer, kGatewayMac)
                             .ipv4(attacker, vip)
                             .tcp(sport++, e.public_port, tf::kSyn, 1)
                             .payload(std::string(64, 'A'))
                             .build();
        const auto tiny = pkt::fragmentFrame(syn, {8}, 0x7171);
        tr.emit(0, tiny[0], "tiny fragment: a first fragment too short for the TCP header");
        tr.emit(0, tiny[1], "a fragment over the TCP header's flags (offset 8)");
        tr.emit(0,
                PacketBuilder()
                    .eth(kUplinkPeer, kGatewayMac)
                    .ipv4(attacker, vip)
                    .ipv4Fragment(0x7272, 1480, false)
                    .payload(std::string(200, 'B'))
                    .build(),
                "a later fragment whose datagram's first was never sent");
      }
      if (!e.acl.empty())
        tr.segment(
            {0, kUplinkPeer, has_permit ? internet : denied_src, vip, sport++, e.public_port},
            tf::kSyn, 7, 0, {}, "a source the endpoint's ACL refuses");
    }
    for (const auto& d : t.deployments) {
      const IpAddr* vip = d.vipOf(true);
      if (!vip) continue;
      for (uint16_t closed : {23, 3306, 5432})
        tr.segment({0, kUplinkPeer, scanner, *vip, sport++, closed}, tf::kSyn, 7, 0, {},
                   "scan of a port with no endpoint");
      tr.segment({0, kUplinkPeer, internet, *vip, sport++, 443}, tf::kAck, 99999, 12345, {},
                 "mid-stream ACK without a connection (strict tracking)");
    }
    if (!t.nics.empty() && t.nics[0].ips[0].isV4())
      tr.segment({0, kUplinkPeer, internet, t.nics[0].ips[0], sport++, 22}, tf::kSyn, 7, 0, {},
                 "straight to a private address from outside");
  }

  // East-west: NIC i to NIC i+1, and the first NIC to every other (a web tier
  // trying to skip a tier), each on the port the destination's subnet group
  // opens for someone (8080 when none).
  auto allowedPort = [&](const policy::Tenant& t, const policy::Nic& n) -> uint16_t {
    const auto slash = n.subnet.name.find('/');
    for (const auto& v : t.vnets)
      for (const auto& sn : v.subnets) {
        if (v.name != n.subnet.name.substr(0, slash) || sn.name != n.subnet.name.substr(slash + 1))
          continue;
        for (const auto& g : t.security_groups) {
          if (g.name != sn.security_group.name) continue;
          for (const auto& rule : g.rules)
            if (rule.direction == policy::Direction::Inbound &&
                rule.access == policy::Access::Allow && rule.destination_ports.size() == 1 &&
                rule.destination_ports[0].lo > 0 &&
                rule.destination_ports[0].lo == rule.destination_ports[0].hi &&
                rule.destination_ports[0].lo != 22)
              return rule.destination_ports[0].lo;
        }
      }
    return 8080;
  };
  for (const auto& t : pol.tenants) {
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t i = 0; i + 1 < t.nics.size(); ++i)
      pairs.push_back({i, i + 1});
    for (size_t k = 2; k < t.nics.size(); ++k)
      pairs.push_back({0, k});
    for (auto [i, k] : pairs) {
      const policy::Nic& a = t.nics[i];
      const policy::Nic& b = t.nics[k];
      if (a.ips[0].isV4() != b.ips[0].isV4()) continue;
      const uint16_t port = allowedPort(t, b);
      const uint16_t sp = sport++;
      tr.tcpSession({portOf(&a), a.mac, a.ips[0], b.ips[0], sp, port},
                    {portOf(&b), b.mac, b.ips[0], a.ips[0], port, sp},
                    "GET /api HTTP/1.1\r\nHost: app\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
                    t.name + ": " + a.name + " to " + b.name);
    }
  }

  // Outbound: each NIC opens a connection to the Internet (SNAT to its VIP); the
  // first tries SMTP (a perimeter deny), the infrastructure's metadata service
  // (reachable) and a storage address (not).
  const IpAddr web_server = *IpAddr::parse("198.51.100.9");
  for (uint32_t i = 1; i < ports.size(); ++i) {
    const policy::Nic& n = *ports[i].nic;
    if (!n.ips[0].isV4()) continue;
    tr.segment({i, n.mac, n.ips[0], web_server, static_cast<uint16_t>(45000 + i), 443}, tf::kSyn, 1,
               0, {}, "outbound to the Internet");
  }
  if (ports.size() > 1) {
    const policy::Nic& n = *ports[1].nic;
    if (n.ips[0].isV4()) {
      // A datagram over the MTU, in fragments as the VM's stack cuts it: the
      // later ones follow the first through SNAT.
      const auto big = PacketBuilder()
                           .eth(n.mac, kGatewayMac)
                           .ipv4(n.ips[0], web_server)
                           .udp(45200, 514)
                           .payload(std::string(3000, 'L'))
                           .build();
      const auto pieces = pkt::fragmentFrame(big, {1480, 2960}, 0x4d31);
      for (size_t k = 0; k < pieces.size(); ++k)
        tr.emit(1, pieces[k],
                k == 0 ? "a 3,000-byte UDP datagram in three fragments, out through SNAT" : "");
      // Another, its fragments reordered on the way (the last first): the
      // later ones are held until the first comes, then follow it.
      const auto reordered = pkt::fragmentFrame(big, {1480, 2960}, 0x4d32);
      for (size_t k = reordered.size(); k-- > 0;)
        tr.emit(1, reordered[k],
                k == 2 ? "a 3,000-byte UDP datagram whose fragments came last first" : "");
    }
    tr.segment({1, n.mac, n.ips[0], web_server, 45100, 25}, tf::kSyn, 1, 0, {},
               "outbound SMTP (the perimeter denies it)");
    for (const auto& ie : pol.infra_endpoints)
      if (ie.service == policy::InfraService::Metadata && ie.protocol == policy::Protocol::Tcp &&
          !ie.ports.empty())
        tr.segment({1, n.mac, n.ips[0], ie.ip, 45101, ie.ports[0].lo}, tf::kSyn, 1, 0, {},
                   "instance metadata service");
    for (const auto& seg : pol.segments)
      if (seg.kind == policy::SegmentKind::Storage && !seg.prefixes.empty()) {
        IpAddr target = seg.prefixes[0].addr;
        target.b[15] = static_cast<uint8_t>(target.b[15] + 1);
        tr.segment({1, n.mac, n.ips[0], target, 45102, 3260}, tf::kSyn, 1, 0, {},
                   "a storage-network address (infrastructure, not reachable)");
      }
  }

  if (!pol.tenants.empty() && pol.tenants[0].nics.size() >= 2) {
    const auto& t = pol.tenants[0];
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

  // Attacks on the overlay: VXLAN from an address that is no host, and another
  // host claiming to send for a NIC that runs here.
  const policy::Host* other = nullptr;
  for (const auto& h : pol.hosts)
    if (self && &h != self && h.underlay_ip.isV4() == self->underlay_ip.isV4()) other = &h;
  if (self && other && self->underlay_ip.isV4()) {
    for (const auto& t : pol.tenants) {
      const policy::Nic* here = nullptr;
      for (const auto& n : t.nics)
        if (isLocal(n) && !here && n.ips[0].isV4()) here = &n;
      if (!here) continue;
      const policy::VNet* v = vnetOf(t, *here);
      if (!v) continue;
      const auto inner = [&](const IpAddr& src) {
        return PacketBuilder()
            .eth(kGatewayMac, here->mac)
            .ipv4(src, here->ips[0])
            .tcp(31337, 22, tf::kSyn, 1)
            .build();
      };
      IpAddr neighbour = here->ips[0];
      neighbour.b[15] = static_cast<uint8_t>(neighbour.b[15] ^ 1);
      tr.emit(0, tunnelled(*IpAddr::parse("198.51.100.9"), v->vni, here->mac, inner(neighbour)),
              "VXLAN from an address that is no host's");
      for (const auto& n : t.nics)
        if (isLocal(n) && &n != here && n.ips[0].isV4()) {
          tr.emit(0, tunnelled(other->underlay_ip, v->vni, here->mac, inner(n.ips[0])),
                  "another host speaking for a NIC that runs here (VXLAN spoofing)");
          break;
        }
      break;
    }
  }

  if (Status s = (*w)->close(); !s || !tr.ok()) {
    std::fprintf(stderr, "palisade-traffic: %s\n", s ? "write failed" : s.error().message.c_str());
    return 1;
  }
  std::printf("wrote %zu packets on %zu ports to %s\n", tr.count(), ports.size(), out_path.c_str());
  return 0;
}
