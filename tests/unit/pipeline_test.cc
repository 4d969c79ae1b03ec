// The data plane's behaviours, each from crafted packets through the example
// topology (examples/cloud.yaml), including the attacks of issue 3.
#include <gtest/gtest.h>

#include <functional>

#include "events/queue.h"
#include "packet/builder.h"
#include "packet/checksum.h"
#include "packet/decoder.h"
#include "packet/reassembly.h"
#include "pipeline/pipeline.h"
#include "pipeline/rewrite.h"
#include "policy/loader.h"

namespace palisade::pipeline {
namespace {

using pkt::PacketBuilder;
namespace tf = pkt::tcpflag;

IpAddr ip(const char* s) {
  return IpAddr::parse(s).value();
}
MacAddr mac(const char* s) {
  return MacAddr::parse(s).value();
}

const MacAddr kRouter = mac("02:00:00:00:00:01");
const MacAddr kWeb1 = mac("02:00:0a:00:00:04");
const MacAddr kApp1 = mac("02:00:0a:00:00:24");
const MacAddr kDb1 = mac("02:00:0a:00:00:44");
const MacAddr kFe1 = mac("02:00:0b:00:00:04");

std::shared_ptr<const policy::Policy> loadExample() {
  auto r = policy::loadPolicyFile(PALISADE_SOURCE_DIR "/examples/cloud.yaml");
  EXPECT_TRUE(r.policy.has_value()) << r.diagnostics.format();
  return std::make_shared<const policy::Policy>(std::move(*r.policy));
}

std::shared_ptr<const CompiledPolicy> compileOrDie(std::shared_ptr<const policy::Policy> p,
                                                   uint32_t gen = 1) {
  auto c = CompiledPolicy::compile(std::move(p), gen);
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return *c;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { make(Config{}); }
  void make(const Config& cfg, events::EventQueue* q = nullptr) {
    model_ = loadExample();
    cp_ = compileOrDie(model_);
    pl_ = std::make_unique<Pipeline>(cp_, cfg, q);
  }
  uint16_t port(const char* name) {
    const uint32_t p = cp_->portByName(name);
    EXPECT_NE(p, kNoIndex) << name;
    return static_cast<uint16_t>(p);
  }
  Verdict send(const char* port_name, const std::vector<std::byte>& frame, Trace* t = nullptr) {
    last_ = frame;
    ts_ += 1000;
    Verdict v = pl_->process(pkt::LinkType::Ethernet, Bytes(last_.data(), last_.size()),
                             static_cast<uint32_t>(last_.size()), port(port_name), ts_, t);
    if (!v.frame.empty())
      out_.assign(v.frame.begin(), v.frame.end());
    else
      out_.clear();
    return v;
  }
  // A TCP segment from a NIC (eth from the NIC to the gateway) or the uplink.
  // A DNS query from contoso/web1 to an Internet resolver.
  static std::vector<std::byte> dns(uint16_t sport, std::string_view payload = "query") {
    return PacketBuilder()
        .eth(kWeb1, kGatewayMac)
        .ipv4(ip("192.0.2.4"), ip("198.51.100.53"))
        .udp(sport, 53)
        .payload(payload)
        .build();
  }
  // A later fragment (offset 1480) of datagram `id` from the Internet to contoso's VIP.
  static std::vector<std::byte> laterFragmentFrom(uint16_t id,
                                                  std::string_view payload = "tail of a datagram") {
    return PacketBuilder()
        .eth(kRouter, kGatewayMac)
        .ipv4(ip("198.51.100.7"), ip("203.0.113.10"))
        .ipv4Fragment(id, 1480, false)
        .payload(payload)
        .build();
  }
  std::vector<std::byte> tcp(const MacAddr& src_mac, const char* src, uint16_t sport,
                             const char* dst, uint16_t dport, uint8_t flags, uint32_t seq = 1000,
                             uint32_t ack = 0, std::string_view payload = {}) {
    pkt::TcpOptions opt;
    PacketBuilder b;
    b.eth(src_mac, kGatewayMac);
    if (ip(src).isV4())
      b.ipv4(ip(src), ip(dst));
    else
      b.ipv6(ip(src), ip(dst));
    return b.tcp(sport, dport, flags, seq, ack, opt, 65535).payload(payload).build();
  }
  pkt::Packet decodeOut() {
    pkt::Packet p;
    decoder_.decode(pkt::LinkType::Ethernet, Bytes(out_.data(), out_.size()),
                    static_cast<uint32_t>(out_.size()), p);
    return p;
  }
  bool checksumsValid() {
    pkt::Packet p = decodeOut();
    const Bytes ip_hdr(out_.data() + p.l3_off, p.l4_off - p.l3_off);
    if (p.has(pkt::kIpv4) && pkt::internetChecksum(ip_hdr) != 0) return false;  // IPv6 has none
    const Bytes l4(out_.data() + p.l4_off, p.l3_end - p.l4_off);
    const uint32_t sum =
        pkt::pseudoHeaderSum(p.src, p.dst, p.proto, static_cast<uint32_t>(l4.size()));
    return pkt::checksumFinish(pkt::checksumPartial(l4, sum)) == 0;
  }
  uint64_t drops(Reason r) const { return pl_->stats().drops[static_cast<size_t>(r)]; }
  // Sends a datagram's fragments in order on one port; each must be forwarded
  // as a fragment with a valid IPv4 header checksum. What came out is put
  // back together as the receiver would: out_ holds the datagram (empty if it
  // did not reassemble), and the decoded datagram is returned.
  pkt::Packet sendFragments(const char* port, const std::vector<std::vector<std::byte>>& frags) {
    pkt::Reassembler r;
    std::vector<std::byte> whole;
    for (size_t i = 0; i < frags.size(); ++i) {
      const Verdict v = send(port, frags[i]);
      EXPECT_EQ(v.action, Action::Forward) << "fragment " << i << ": " << toString(v.reason);
      const pkt::Packet p = decodeOut();
      EXPECT_TRUE(p.has(pkt::kFragment)) << i;
      if (p.has(pkt::kIpv4)) {
        EXPECT_EQ(pkt::internetChecksum(Bytes(out_.data() + p.l3_off, p.l4_off - p.l3_off)), 0)
            << i;
      }
      if (const auto done = r.add(p, ts_); !done.empty()) whole.assign(done.begin(), done.end());
    }
    out_ = whole;
    return decodeOut();
  }

  std::shared_ptr<const policy::Policy> model_;
  std::shared_ptr<const CompiledPolicy> cp_;
  std::unique_ptr<Pipeline> pl_;
  std::vector<std::byte> last_, out_;
  pkt::Decoder decoder_;
  TimeNs ts_ = 1'000'000'000;
};

// --- trusted packet filters -------------------------------------------------

TEST_F(PipelineTest, MacSpoofingIsDropped) {
  auto f = tcp(mac("02:00:0a:00:00:99"), "192.0.2.4", 40000, "198.51.100.9", 80, tf::kSyn);
  EXPECT_EQ(send("contoso/web1", f).reason, Reason::MacSpoof);
}

TEST_F(PipelineTest, IpSpoofingIsDroppedButAllowedAddressPairsPass) {
  EXPECT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.5", 40000, "198.51.100.9", 80, tf::kSyn)).reason,
      Reason::IpSpoof);
  // db1 may use the cluster's floating address 192.0.2.80 (an allowed address pair).
  const Verdict v = send("contoso/db1", tcp(kDb1, "192.0.2.80", 40000, "192.0.2.36", 22, tf::kSyn));
  EXPECT_NE(v.reason, Reason::IpSpoof);
}

TEST_F(PipelineTest, GratuitousArpClaimingTheGatewayIsDropped) {
  const auto garp_reply = PacketBuilder()
                              .eth(kWeb1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                              .arp(2, kWeb1, ip("192.0.2.1"), kWeb1, ip("192.0.2.1"))
                              .build();
  EXPECT_EQ(send("contoso/web1", garp_reply).reason, Reason::ArpReplyFromVm);
  const auto garp_request = PacketBuilder()
                                .eth(kWeb1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                                .arp(1, kWeb1, ip("192.0.2.1"), MacAddr{}, ip("192.0.2.1"))
                                .build();
  EXPECT_EQ(send("contoso/web1", garp_request).reason, Reason::ArpSpoof);
}

TEST_F(PipelineTest, ArpIsAnsweredByTheSwitchAndRateCapped) {
  const auto req = PacketBuilder()
                       .eth(kWeb1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                       .arp(1, kWeb1, ip("192.0.2.4"), MacAddr{}, ip("192.0.2.68"))
                       .build();
  const Verdict v = send("contoso/web1", req);
  ASSERT_EQ(v.action, Action::Answer);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  const pkt::Packet p = decodeOut();
  ASSERT_TRUE(p.has(pkt::kArp));
  EXPECT_EQ(p.arp.op, 2);
  EXPECT_EQ(p.arp.sha, kGatewayMac);
  EXPECT_EQ(p.arp.spa, ip("192.0.2.68"));
  EXPECT_EQ(p.arp.tpa, ip("192.0.2.4"));
  // A storm at one instant: the burst (50) passes, the rest is capped.
  for (int i = 0; i < 100; ++i)
    pl_->process(pkt::LinkType::Ethernet, Bytes(req.data(), req.size()),
                 static_cast<uint32_t>(req.size()), port("contoso/web1"), ts_);
  EXPECT_GE(drops(Reason::ArpRate), 45u);
  EXPECT_LE(drops(Reason::ArpRate), 55u);
}

TEST_F(PipelineTest, RogueDhcpServerIsDroppedAndDhcpIsAnsweredFromPolicy) {
  pkt::PacketBuilder::Dhcp offer;
  offer.op = 2;
  offer.msg_type = 2;
  offer.client_mac = kApp1;
  offer.yiaddr = ip("192.0.2.99");
  const auto rogue = PacketBuilder()
                         .eth(kWeb1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                         .ipv4(ip("192.0.2.4"), ip("255.255.255.255"))
                         .udp(67, 68)
                         .dhcp(offer)
                         .build();
  EXPECT_EQ(send("contoso/web1", rogue).reason, Reason::DhcpServerFromVm);

  pkt::PacketBuilder::Dhcp discover;
  discover.client_mac = kWeb1;
  discover.xid = 0xabcd;
  const auto disc = PacketBuilder()
                        .eth(kWeb1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                        .ipv4(ip("0.0.0.0"), ip("255.255.255.255"))
                        .udp(68, 67)
                        .dhcp(discover)
                        .build();
  const Verdict v = send("contoso/web1", disc);
  ASSERT_EQ(v.action, Action::Answer);
  const pkt::Packet p = decodeOut();
  ASSERT_TRUE(p.has(pkt::kDhcp));
  EXPECT_EQ(p.dhcp.op, 2);
  EXPECT_EQ(p.dhcp.msg_type, 2);  // OFFER
  EXPECT_EQ(p.dhcp.xid, 0xabcdu);
  EXPECT_EQ(p.dhcp.yiaddr, ip("192.0.2.4"));
  EXPECT_EQ(p.dhcp.server_id, ip("192.0.2.1"));
}

TEST_F(PipelineTest, OnlyArpAndIpEthertypesLeaveAVm) {
  const auto lldp = PacketBuilder()
                        .eth(kWeb1, mac("01:80:c2:00:00:0e"))
                        .ethertypeRaw(0x88cc)
                        .payload("x")
                        .build();
  EXPECT_EQ(send("contoso/web1", lldp).reason, Reason::Ethertype);
}

TEST_F(PipelineTest, InfrastructureEndpointsOnlyAreReachable) {
  auto dns = PacketBuilder()
                 .eth(kWeb1, kGatewayMac)
                 .ipv4(ip("192.0.2.4"), ip("203.0.113.253"))
                 .udp(5353, 53)
                 .build();
  EXPECT_EQ(send("contoso/web1", dns).action, Action::Forward);
  EXPECT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "203.0.113.241", 3260, tf::kSyn)).reason,
      Reason::Infrastructure);
  EXPECT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "203.0.113.254", 22, tf::kSyn)).reason,
      Reason::Infrastructure);
}

// --- isolation, endpoints, groups ---------------------------------------------

TEST_F(PipelineTest, OverlappingTenantsStayApart) {
  // Both tenants own 192.0.2.68: each NIC reaches its own tenant's.
  Verdict v = send("contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/db1"));
  v = send("fabrikam/fe1", tcp(kFe1, "192.0.2.4", 40000, "192.0.2.68", 1433, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("fabrikam/be1"));
  // contoso's app1 address does not exist in fabrikam's VNet.
  EXPECT_EQ(
      send("fabrikam/fe1", tcp(kFe1, "192.0.2.4", 40000, "192.0.2.36", 8080, tf::kSyn)).reason,
      Reason::Isolation);
}

TEST_F(PipelineTest, InboundWithoutAnEndpointIsDenied) {
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 8080, tf::kSyn)).reason,
      Reason::NoEndpoint);
  EXPECT_EQ(send("uplink", tcp(kRouter, "198.51.100.7", 5555, "192.0.2.4", 443, tf::kSyn)).reason,
            Reason::NotVip);
}

TEST_F(PipelineTest, EndpointDnatAndReplyRewrite) {
  Verdict v = send("uplink", tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 443, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  pkt::Packet p = decodeOut();
  EXPECT_EQ(p.dst, ip("192.0.2.4"));
  EXPECT_EQ(p.dport, 443);
  EXPECT_EQ(p.eth_dst, kWeb1);
  EXPECT_TRUE(checksumsValid());
  v = send("contoso/web1",
           tcp(kWeb1, "192.0.2.4", 443, "198.51.100.7", 5555, tf::kSyn | tf::kAck, 7000, 1001));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, kUplinkPort);
  p = decodeOut();
  EXPECT_EQ(p.src, ip("203.0.113.10"));
  EXPECT_EQ(p.sport, 443);
  EXPECT_TRUE(checksumsValid());
}

TEST_F(PipelineTest, EndpointAclDenyOnlyAndPermitSemantics) {
  // fabrikam/https has only a deny entry: the listed source is denied, others pass.
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.66", 5555, "203.0.113.20", 443, tf::kSyn)).reason,
      Reason::EndpointAcl);
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.67", 5555, "203.0.113.20", 443, tf::kSyn)).action,
      Action::Forward);
}

TEST_F(PipelineTest, ManagementPortFromAnUnlistedSourceIsDenied) {
  uint16_t ssh = 0;
  for (const EndpointInfo& e : cp_->endpoints)
    if (e.name == "contoso/ssh") ssh = e.public_port;
  ASSERT_GE(ssh, 49152);
  // Permit entries exist, so a source that matches none is denied.
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", ssh, tf::kSyn)).reason,
      Reason::EndpointAcl);
  const Verdict v =
      send("uplink", tcp(kRouter, "198.51.100.130", 5555, "203.0.113.10", ssh, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/jump1"));
  EXPECT_EQ(decodeOut().dport, 22);
}

TEST_F(PipelineTest, TierSkippingIsDenied) {
  Trace t;
  const Verdict v =
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "192.0.2.68", 5432, tf::kSyn), &t);
  EXPECT_EQ(v.reason, Reason::SubnetGroup);
  ASSERT_NE(v.rule, kNoIndex);
  EXPECT_EQ(cp_->rules[v.rule].name, "contoso/db-tier/deny-rest-of-vnet");
  EXPECT_EQ(
      send("contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn)).action,
      Action::Forward);
}

TEST_F(PipelineTest, PerimeterDeniesBeforeTenantRules) {
  // Outbound SMTP is a provider-wide deny.
  const Verdict v =
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "198.51.100.25", 25, tf::kSyn));
  EXPECT_EQ(v.reason, Reason::Perimeter);
  EXPECT_EQ(cp_->rules[v.rule].name, "perimeter/no-outbound-smtp");
}

// The example's shop deployment is dual stack (203.0.113.10 and
// 2001:db8:ff::10): its endpoints answer on both VIPs, each DNAT goes to the
// NIC's address of the VIP's family, and outbound SNAT takes the VIP of the
// packet's family.
TEST_F(PipelineTest, DualStackDeploymentTranslatesEachFamily) {
  Verdict v =
      send("uplink", tcp(kRouter, "2001:db8:77::7", 5555, "2001:db8:ff::10", 443, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  pkt::Packet p = decodeOut();
  EXPECT_EQ(p.dst, ip("2001:db8:a:1::4"));
  EXPECT_EQ(p.dport, 443);
  EXPECT_TRUE(checksumsValid());
  v = send("contoso/web1", tcp(kWeb1, "2001:db8:a:1::4", 443, "2001:db8:77::7", 5555,
                               tf::kSyn | tf::kAck, 7000, 1001));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  p = decodeOut();
  EXPECT_EQ(p.src, ip("2001:db8:ff::10"));
  EXPECT_EQ(p.sport, 443);
  EXPECT_TRUE(checksumsValid());
  // A port with no endpoint on the IPv6 VIP is closed, as on the IPv4 one.
  v = send("uplink", tcp(kRouter, "2001:db8:77::7", 5556, "2001:db8:ff::10", 3306, tf::kSyn));
  EXPECT_EQ(v.reason, Reason::NoEndpoint);
  // Outbound: each family leaves from its own VIP.
  v = send("contoso/web1", tcp(kWeb1, "2001:db8:a:1::4", 40000, "2001:db8:77::9", 80, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  p = decodeOut();
  EXPECT_EQ(p.src, ip("2001:db8:ff::10"));
  const uint16_t nat_port = p.sport;
  EXPECT_TRUE(checksumsValid());
  v = send("uplink", tcp(kRouter, "2001:db8:77::9", 80, "2001:db8:ff::10", nat_port,
                         tf::kSyn | tf::kAck, 5000, 1001));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(decodeOut().dst, ip("2001:db8:a:1::4"));
  v = send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40001, "198.51.100.9", 80, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(decodeOut().src, ip("203.0.113.10"));
  // A single-stack deployment has no IPv6 VIP to leave from.
  auto m = std::make_shared<policy::Policy>(*model_);
  for (policy::Tenant& t : m->tenants)
    for (policy::Deployment& d : t.deployments)
      if (d.name == "shop") d.vips.resize(1);
  model_ = m;
  cp_ = compileOrDie(model_);
  pl_ = std::make_unique<Pipeline>(cp_, Config{});
  v = send("contoso/web1", tcp(kWeb1, "2001:db8:a:1::4", 40002, "2001:db8:77::9", 80, tf::kSyn));
  EXPECT_EQ(v.reason, Reason::NoOutboundAddress);
  v = send("uplink", tcp(kRouter, "2001:db8:77::7", 5557, "2001:db8:ff::10", 443, tf::kSyn));
  EXPECT_EQ(v.reason, Reason::NotVip);
}

TEST_F(PipelineTest, SnatOutboundAndReturn) {
  Verdict v = send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "198.51.100.9", 80, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  pkt::Packet p = decodeOut();
  EXPECT_EQ(p.src, ip("203.0.113.10"));
  const uint16_t nat_port = p.sport;
  EXPECT_GE(nat_port, 1024);
  EXPECT_TRUE(checksumsValid());
  v = send("uplink", tcp(kRouter, "198.51.100.9", 80, "203.0.113.10", nat_port, tf::kSyn | tf::kAck,
                         5000, 1001));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  p = decodeOut();
  EXPECT_EQ(p.dst, ip("192.0.2.4"));
  EXPECT_EQ(p.dport, 40000);
  EXPECT_TRUE(checksumsValid());
  // An ICMP error about the flow is related; one about nothing is not.
  auto inner = tcp(kRouter, "203.0.113.10", nat_port, "198.51.100.9", 80, tf::kAck, 1001, 5001);
  std::vector<uint8_t> quoted;
  for (size_t i = 14; i < inner.size(); ++i)
    quoted.push_back(static_cast<uint8_t>(inner[i]));
  auto icmp = PacketBuilder()
                  .eth(kRouter, kGatewayMac)
                  .ipv4(ip("198.51.100.254"), ip("203.0.113.10"))
                  .icmp(3, 4)
                  .payload(quoted)
                  .build();
  v = send("uplink", icmp);
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  EXPECT_EQ(decodeOut().dst, ip("192.0.2.4"));
  quoted[21] ^= 0x55;  // another source port: no such flow
  icmp = PacketBuilder()
             .eth(kRouter, kGatewayMac)
             .ipv4(ip("198.51.100.254"), ip("203.0.113.10"))
             .icmp(3, 4)
             .payload(quoted)
             .build();
  EXPECT_EQ(send("uplink", icmp).reason, Reason::IcmpUnrelated);
}

// An ICMP port-unreachable from (mac, src) to dst quoting the whole IP packet of `inner`.
std::vector<std::byte> icmpErrorQuoting(const MacAddr& mac, const char* src, const char* dst,
                                        const std::vector<std::byte>& inner) {
  std::vector<uint8_t> quoted;
  for (size_t i = 14; i < inner.size(); ++i)
    quoted.push_back(static_cast<uint8_t>(inner[i]));
  return PacketBuilder()
      .eth(mac, kGatewayMac)
      .ipv4(ip(src), ip(dst))
      .icmp(3, 3)
      .payload(quoted)
      .build();
}

// The quoted packet of an ICMP error `out`: its tuple, and whether the error's,
// the quoted IP header's and the quoted TCP segment's checksums all hold.
struct Quoted {
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  bool checksums_ok = false;
};
Quoted quotedIn(const std::vector<std::byte>& out) {
  pkt::Decoder d;
  pkt::Packet p;
  Quoted q;
  if (!d.decode(pkt::LinkType::Ethernet, Bytes(out.data(), out.size()),
                static_cast<uint32_t>(out.size()), p) ||
      p.icmp.inner_off == 0)
    return q;
  const std::byte* in = out.data() + p.icmp.inner_off;
  const size_t ihl = (static_cast<unsigned>(in[0]) & 0xf) * 4u;
  const auto u16 = [&](size_t o) {
    return static_cast<uint16_t>(static_cast<unsigned>(in[o]) << 8 |
                                 static_cast<unsigned>(in[o + 1]));
  };
  q.src = IpAddr::v4(reinterpret_cast<const uint8_t*>(in) + 12);
  q.dst = IpAddr::v4(reinterpret_cast<const uint8_t*>(in) + 16);
  q.sport = u16(ihl);
  q.dport = u16(ihl + 2);
  const size_t seg = u16(2) - ihl;
  const bool icmp_ok =
      pkt::internetChecksum(Bytes(out.data() + p.l4_off, p.l3_end - p.l4_off)) == 0;
  const bool ip_ok = pkt::internetChecksum(Bytes(in, ihl)) == 0;
  const bool tcp_ok = pkt::checksumFinish(pkt::checksumPartial(
                          Bytes(in + ihl, seg),
                          pkt::pseudoHeaderSum(q.src, q.dst, 6, static_cast<uint32_t>(seg)))) == 0;
  q.checksums_ok = icmp_ok && ip_ok && tcp_ok;
  return q;
}

TEST_F(PipelineTest, IcmpErrorsAboutNatFlowsAreTranslatedInsideToo) {
  // SNAT: web1 -> 198.51.100.9:80 leaves as 203.0.113.10:nat_port.
  ASSERT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "198.51.100.9", 80, tf::kSyn)).action,
      Action::Forward);
  const uint16_t nat_port = decodeOut().sport;
  // A router's error about the translated SYN reaches web1 naming web1's own tuple.
  Verdict v =
      send("uplink",
           icmpErrorQuoting(kRouter, "198.51.100.254", "203.0.113.10",
                            tcp(kRouter, "203.0.113.10", nat_port, "198.51.100.9", 80, tf::kSyn)));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  EXPECT_EQ(decodeOut().dst, ip("192.0.2.4"));
  Quoted q = quotedIn(out_);
  EXPECT_EQ(q.src, ip("192.0.2.4"));
  EXPECT_EQ(q.sport, 40000);
  EXPECT_EQ(q.dst, ip("198.51.100.9"));
  EXPECT_TRUE(q.checksums_ok);
  // web1's own error about a reply it got leaves from the VIP, quoting the VIP:
  // its private address appears nowhere on the uplink.
  v = send("contoso/web1", icmpErrorQuoting(kWeb1, "192.0.2.4", "198.51.100.9",
                                            tcp(kRouter, "198.51.100.9", 80, "192.0.2.4", 40000,
                                                tf::kSyn | tf::kAck, 5000, 1001)));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, kUplinkPort);
  EXPECT_EQ(decodeOut().src, ip("203.0.113.10"));
  q = quotedIn(out_);
  EXPECT_EQ(q.dst, ip("203.0.113.10"));
  EXPECT_EQ(q.dport, nat_port);
  EXPECT_TRUE(q.checksums_ok);

  // DNAT: 198.51.100.7:5555 -> 203.0.113.10:443 reaches web1 at 192.0.2.4:443.
  ASSERT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 443, tf::kSyn)).action,
      Action::Forward);
  v = send("contoso/web1",
           icmpErrorQuoting(kWeb1, "192.0.2.4", "198.51.100.7",
                            tcp(kRouter, "198.51.100.7", 5555, "192.0.2.4", 443, tf::kSyn)));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, kUplinkPort);
  EXPECT_EQ(decodeOut().src, ip("203.0.113.10"));
  q = quotedIn(out_);
  EXPECT_EQ(q.dst, ip("203.0.113.10"));
  EXPECT_EQ(q.dport, 443);
  EXPECT_TRUE(q.checksums_ok);
  // An error from the client's side about a reply from the VIP reaches web1.
  v = send("uplink", icmpErrorQuoting(kRouter, "198.51.100.254", "203.0.113.10",
                                      tcp(kRouter, "203.0.113.10", 443, "198.51.100.7", 5555,
                                          tf::kSyn | tf::kAck, 7000, 1001)));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  EXPECT_EQ(decodeOut().dst, ip("192.0.2.4"));
  q = quotedIn(out_);
  EXPECT_EQ(q.src, ip("192.0.2.4"));
  EXPECT_EQ(q.sport, 443);
  EXPECT_TRUE(q.checksums_ok);
}

// --- conntrack ---------------------------------------------------------------

TEST_F(PipelineTest, OutOfWindowInjectionIsDropped) {
  const char* c = "198.51.100.7";
  ASSERT_EQ(send("uplink", tcp(kRouter, c, 5555, "203.0.113.10", 443, tf::kSyn, 1000)).action,
            Action::Forward);
  ASSERT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 443, c, 5555, tf::kSyn | tf::kAck, 7000, 1001))
          .action,
      Action::Forward);
  ASSERT_EQ(send("uplink", tcp(kRouter, c, 5555, "203.0.113.10", 443, tf::kAck, 1001, 7001)).action,
            Action::Forward);
  EXPECT_EQ(send("uplink", tcp(kRouter, c, 5555, "203.0.113.10", 443, tf::kAck | tf::kPsh, 1001,
                               7001, "GET / HTTP/1.1\r\n\r\n"))
                .action,
            Action::Forward);
  // An attacker guessing the 4-tuple but not the sequence numbers.
  EXPECT_EQ(send("uplink", tcp(kRouter, c, 5555, "203.0.113.10", 443, tf::kAck | tf::kPsh,
                               1001 + 50'000'000, 7001, "evil"))
                .reason,
            Reason::TcpOutOfWindow);
  EXPECT_EQ(
      send("uplink", tcp(kRouter, c, 5555, "203.0.113.10", 443, tf::kRst, 900'000'000, 0)).reason,
      Reason::TcpOutOfWindow);
  // The connection goes on.
  EXPECT_EQ(send("contoso/web1",
                 tcp(kWeb1, "192.0.2.4", 443, c, 5555, tf::kAck | tf::kPsh, 7001, 1019, "OK"))
                .action,
            Action::Forward);
}

TEST_F(PipelineTest, StrictTrackingRefusesMidStreamLooseAcceptsIt) {
  auto mid = tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 443, tf::kAck, 5000, 9000);
  EXPECT_EQ(send("uplink", mid).reason, Reason::TcpNoSyn);
  Config loose;
  loose.conntrack.loose = true;
  make(loose);
  EXPECT_EQ(send("uplink", mid).action, Action::Forward);
}

TEST_F(PipelineTest, EstablishedFlowSurvivesRuleRemovalUnlessReevaluated) {
  for (bool reevaluate : {false, true}) {
    Config cfg;
    cfg.reevaluate_on_change = reevaluate;
    events::EventQueue q(64, 512);
    make(cfg, &q);
    ASSERT_EQ(
        send("contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn, 1000))
            .action,
        Action::Forward);
    ASSERT_EQ(send("contoso/db1", tcp(kDb1, "192.0.2.68", 5432, "192.0.2.36", 40000,
                                      tf::kSyn | tf::kAck, 7000, 1001))
                  .action,
              Action::Forward);
    // Remove db-tier's from-app rule; swap the policy in.
    auto edited = std::make_shared<policy::Policy>(*model_);
    for (policy::Tenant& t : edited->tenants)
      for (policy::SecurityGroup& g : t.security_groups)
        std::erase_if(g.rules, [&](const policy::SecurityRule& r) {
          return g.name == "db-tier" && r.name == "from-app";
        });
    pl_->setPolicy(compileOrDie(edited, 2));
    const Verdict v = send(
        "contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kAck, 1001, 7001));
    if (reevaluate) {
      EXPECT_EQ(v.reason, Reason::PolicyRevoked);
      // Its end record says why it ended and which new rule ended it.
      std::string last;
      while (events::Event* e = q.front()) {
        last.clear();
        events::formatEveJson(*e, last);
        q.pop();
      }
      EXPECT_NE(last.find("\"state\":\"end\""), std::string::npos) << last;
      EXPECT_NE(last.find("\"reason\":\"policy_revoked\",\"revoked_by\":\"contoso/db-tier/"
                          "deny-rest-of-vnet\""),
                std::string::npos)
          << last;
      // The rule that let it in belongs to generation 1: not named after
      // whatever rule has its index in generation 2.
      EXPECT_NE(last.find("\"rule\":\"none\""), std::string::npos) << last;
      EXPECT_NE(last.find("\"policy_generation\":1"), std::string::npos) << last;
    } else {
      EXPECT_EQ(v.action, Action::Forward);
      EXPECT_EQ(pl_->stats().kept_after_change, 1u);
    }
    // A new connection is denied by the new policy.
    EXPECT_EQ(
        send("contoso/app1", tcp(kApp1, "192.0.2.36", 40001, "192.0.2.68", 5432, tf::kSyn, 1000))
            .reason,
        Reason::SubnetGroup);
  }
}

// A one-rule update applied in place (CompiledPolicy::apply) reaches the data
// plane at the next packet, keeps established flows unless re-evaluation is on,
// replaces a rule by name, and refuses bad updates without changing anything.
TEST_F(PipelineTest, IncrementalRuleUpdatesReachTheDataPlane) {
  for (bool reevaluate : {false, true}) {
    Config cfg;
    cfg.reevaluate_on_change = reevaluate;
    auto compiled = CompiledPolicy::compile(loadExample(), 1);
    ASSERT_TRUE(compiled);
    std::shared_ptr<CompiledPolicy> live = *compiled;
    cp_ = live;
    pl_ = std::make_unique<Pipeline>(cp_, cfg, nullptr);
    auto syn = [&](uint16_t sport, uint16_t dport) {
      return send("contoso/app1", tcp(kApp1, "192.0.2.36", sport, "192.0.2.68", dport, tf::kSyn));
    };
    ASSERT_EQ(syn(40000, 5432).action, Action::Forward);
    ASSERT_EQ(send("contoso/db1", tcp(kDb1, "192.0.2.68", 5432, "192.0.2.36", 40000,
                                      tf::kSyn | tf::kAck, 7000, 1001))
                  .action,
              Action::Forward);

    RuleUpdate remove;
    remove.op = RuleUpdate::Op::Remove;
    remove.group = "contoso/db-tier";
    remove.rule.name = "from-app";
    auto n = live->apply(remove, 2);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 1u);  // db-tier is compiled once: the db subnet's group in contoso/prod
    const Verdict est = send(
        "contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kAck, 1001, 7001));
    EXPECT_EQ(est.reason, reevaluate ? Reason::PolicyRevoked : Reason::None);
    const Verdict denied = syn(40001, 5432);
    EXPECT_EQ(denied.reason, Reason::SubnetGroup);
    ASSERT_NE(denied.rule, kNoIndex);
    EXPECT_EQ(cp_->rules[denied.rule].name, "contoso/db-tier/deny-rest-of-vnet");

    // Put it back for another port: the same name replaces, it does not add.
    RuleUpdate add;
    add.group = "contoso/db-tier";
    add.rule.name = "from-app";
    add.rule.priority = 100;
    add.rule.direction = policy::Direction::Inbound;
    add.rule.access = policy::Access::Allow;
    add.rule.protocol = policy::Protocol::Tcp;
    policy::AddressRef app;
    app.kind = policy::AddressRef::Kind::Prefix;
    app.prefix = Prefix::parse("192.0.2.32/27").value();
    add.rule.sources = {app};
    add.rule.destination_ports = {{6432, 6432}};
    ASSERT_TRUE(live->apply(add, 3));
    EXPECT_EQ(syn(40002, 6432).action, Action::Forward);
    add.rule.destination_ports = {{5432, 5432}};
    ASSERT_TRUE(live->apply(add, 4));
    EXPECT_EQ(syn(40003, 5432).action, Action::Forward);
    EXPECT_EQ(syn(40004, 6432).reason, Reason::SubnetGroup);
    size_t live_from_app = 0;
    for (const RuleInfo& r : cp_->rules)
      live_from_app += r.name == "contoso/db-tier/from-app" && !r.removed;
    EXPECT_EQ(live_from_app, 1u);

    // Refused, and nothing changes: unknown group, a taken priority, an
    // unknown tag, a priority out of range.
    const size_t rules_before = cp_->rules.size();
    RuleUpdate bad = add;
    bad.group = "contoso/no-such-group";
    EXPECT_FALSE(live->apply(bad, 5));
    bad = add;
    bad.rule.name = "clash";
    bad.rule.priority = 4000;  // deny-rest-of-vnet
    auto clash = live->apply(bad, 5);
    ASSERT_FALSE(clash);
    EXPECT_NE(clash.error().message.find("deny-rest-of-vnet"), std::string::npos);
    bad = add;
    bad.rule.name = "tagged";
    bad.rule.priority = 150;
    policy::AddressRef tag;
    tag.kind = policy::AddressRef::Kind::Tag;
    tag.tag = "NoSuchTag";
    bad.rule.sources = {tag};
    EXPECT_FALSE(live->apply(bad, 5));
    bad.rule.sources = {app};
    bad.rule.priority = 50;
    EXPECT_FALSE(live->apply(bad, 5));
    EXPECT_EQ(cp_->generation, 4u);
    EXPECT_EQ(cp_->rules.size(), rules_before);
    EXPECT_EQ(syn(40005, 5432).action, Action::Forward);

    // The group's rule list stays in evaluation order.
    for (const GroupTable& g : cp_->groups) {
      for (size_t i = 1; i < g.rules.size(); ++i) {
        const RuleInfo& a = cp_->rules[g.rules[i - 1]];
        const RuleInfo& b = cp_->rules[g.rules[i]];
        EXPECT_TRUE(a.direction < b.direction ||
                    (a.direction == b.direction && a.priority < b.priority))
            << g.name << ": " << a.name << " before " << b.name;
      }
    }
  }
}

TEST_F(PipelineTest, TableFullEvictsEmbryonicFlowsFirstAndEnforcesNicQuota) {
  Config cfg;
  cfg.conntrack.capacity = 4;
  make(cfg);
  // Four established connections fill the table.
  for (uint16_t i = 0; i < 4; ++i) {
    const uint16_t sp = static_cast<uint16_t>(6000 + i);
    ASSERT_EQ(
        send("uplink", tcp(kRouter, "198.51.100.7", sp, "203.0.113.10", 443, tf::kSyn)).action,
        Action::Forward);
    ASSERT_EQ(send("contoso/web1", tcp(kWeb1, "192.0.2.4", 443, "198.51.100.7", sp,
                                       tf::kSyn | tf::kAck, 7000, 1001))
                  .action,
              Action::Forward);
    ASSERT_EQ(
        send("uplink", tcp(kRouter, "198.51.100.7", sp, "203.0.113.10", 443, tf::kAck, 1001, 7001))
            .action,
        Action::Forward);
  }
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.8", 7000, "203.0.113.10", 443, tf::kSyn)).reason,
      Reason::ConntrackFull);

  cfg.conntrack.capacity = 1024;
  cfg.conntrack.per_nic_limit = 2;
  make(cfg);
  for (uint16_t i = 0; i < 2; ++i)
    ASSERT_EQ(send("uplink", tcp(kRouter, "198.51.100.7", static_cast<uint16_t>(6000 + i),
                                 "203.0.113.10", 443, tf::kSyn))
                  .action,
              Action::Forward);
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.7", 6002, "203.0.113.10", 443, tf::kSyn)).reason,
      Reason::NicQuota);
}

TEST_F(PipelineTest, PolicyConntrackSettingsReachTheDataPlane) {
  // Every timeout name lands in its own field, in the documented order.
  auto model = std::make_shared<policy::Policy>(*loadExample());
  model->conntrack = {};  // the example's own settings aside
  for (uint32_t i = 0; i < std::size(policy::ConntrackSettings::kTimeoutNames); ++i)
    model->conntrack.timeouts.emplace_back(policy::ConntrackSettings::kTimeoutNames[i], 100 + i);
  Config cfg = withPolicySettings({}, *model);
  const flow::Timeouts& t = cfg.conntrack.timeouts;
  EXPECT_EQ(
      (std::vector<uint32_t>{t.tcp_syn_sent, t.tcp_syn_recv, t.tcp_established, t.tcp_fin_wait,
                             t.tcp_close_wait, t.tcp_last_ack, t.tcp_time_wait, t.tcp_close, t.udp,
                             t.udp_stream, t.icmp, t.other}),
      (std::vector<uint32_t>{100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111}));
  EXPECT_EQ(cfg.conntrack.capacity, Config{}.conntrack.capacity);  // not written: default kept
  EXPECT_EQ(cfg.fragment_timeout_ms, Config{}.fragment_timeout_ms);
  model->conntrack.fragment_timeout = 2;
  model->conntrack.fragment_datagrams = 0;  // an explicit 0: no later fragment follows
  EXPECT_EQ(cfg.fragments_held, Config{}.fragments_held);
  model->conntrack.fragments_held = 0;
  cfg = withPolicySettings({}, *model);
  EXPECT_EQ(cfg.fragment_timeout_ms, 2000u);
  EXPECT_EQ(cfg.fragment_datagrams, 0u);
  EXPECT_EQ(cfg.fragments_held, 0u);

  // A 5-second UDP timeout and a quota of one connection per NIC, from the policy.
  model->conntrack.timeouts = {{"udp", 5}};
  model->conntrack.per_nic_limit = 1;
  Config base;
  base.conntrack.capacity = 64;  // so one tick() sweeps the whole table
  cfg = withPolicySettings(base, *model);
  EXPECT_EQ(cfg.conntrack.timeouts.udp, 5u);
  EXPECT_EQ(cfg.conntrack.timeouts.tcp_established, flow::Timeouts{}.tcp_established);
  cp_ = compileOrDie(model);
  pl_ = std::make_unique<Pipeline>(cp_, cfg);
  ASSERT_EQ(send("contoso/web1", dns(5353)).action, Action::Forward);
  EXPECT_EQ(send("contoso/web1", dns(5354)).reason, Reason::NicQuota);
  pl_->tick(ts_ + 4'000'000'000);
  EXPECT_EQ(pl_->flows().size(), 1u);
  pl_->tick(ts_ + 6'000'000'000);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->stats().flows_expired, 1u);
}

// A reloaded policy's conntrack settings reach a running pipeline: the quota
// and timeouts change at once; what shapes the table is reported and kept.
TEST_F(PipelineTest, ReconfigureRetunesConntrackLive) {
  Config cfg;
  cfg.conntrack.capacity = 64;
  cfg.conntrack.per_nic_limit = 1;
  make(cfg);
  ASSERT_EQ(send("contoso/web1", dns(5353)).action, Action::Forward);
  EXPECT_EQ(send("contoso/web1", dns(5354)).reason, Reason::NicQuota);

  Config next = cfg;
  next.conntrack.per_nic_limit = 0;
  next.conntrack.timeouts.udp = 5;
  next.conntrack.loose = true;
  next.conntrack.capacity = 128;
  next.host = "hv1";
  EXPECT_EQ(pl_->reconfigure(next), (std::vector<std::string>{"conntrack capacity", "host"}));
  EXPECT_EQ(pl_->flows().capacity(), 64u);
  EXPECT_EQ(pl_->config().host, "");
  EXPECT_TRUE(pl_->flows().config().loose);
  ASSERT_EQ(send("contoso/web1", dns(5354)).action, Action::Forward);  // no quota now
  // The 30 s flows now time out after 5 s.
  pl_->tick(ts_ + 4'000'000'000);
  EXPECT_EQ(pl_->flows().size(), 2u);
  pl_->tick(ts_ + 6'000'000'000);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_TRUE(pl_->reconfigure(pl_->config()).empty());
}

TEST_F(PipelineTest, EmbryonicFlowsAreEvictedWhenFull) {
  Config cfg;
  cfg.conntrack.capacity = 4;
  make(cfg);
  for (uint16_t i = 0; i < 20; ++i)
    EXPECT_EQ(send("uplink", tcp(kRouter, "198.51.100.7", static_cast<uint16_t>(6000 + i),
                                 "203.0.113.10", 443, tf::kSyn))
                  .action,
              Action::Forward)
        << i;
  EXPECT_EQ(pl_->flows().size(), 4u);
}

// --- fragments -----------------------------------------------------------------

std::string fragBody(size_t n) {
  std::string s(n, 0);
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

// Virtual reassembly: each fragment is forwarded as it comes, the later ones
// with the verdict and address rewrite of their datagram's first, so that the
// receiver puts together a datagram whose checksums hold after NAT.
TEST_F(PipelineTest, LaterFragmentsFollowTheirFirstWithItsRewrite) {
  // Outbound: a 3,000-byte UDP query from web1, SNAT to the VIP, in three fragments.
  const std::string query = fragBody(3000);
  const auto q = dns(5353, query);
  pkt::Packet w = sendFragments("contoso/web1", pkt::fragmentFrame(q, {1480, 2960}, 0x4242));
  ASSERT_TRUE(w.has(pkt::kUdp));
  EXPECT_FALSE(w.has(pkt::kFragment));
  EXPECT_EQ(w.src, ip("203.0.113.10"));
  EXPECT_EQ(w.dst, ip("198.51.100.53"));
  EXPECT_EQ(w.dport, 53);
  EXPECT_TRUE(checksumsValid());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out_.data()) + w.payload_off, w.payload_len),
            query);
  const uint16_t snat_port = w.sport;
  // The answer, 2,500 bytes in two fragments, back to web1 through the reverse rewrite.
  const std::string answer = fragBody(2500);
  const auto a = PacketBuilder()
                     .eth(kRouter, kGatewayMac)
                     .ipv4(ip("198.51.100.53"), ip("203.0.113.10"))
                     .udp(53, snat_port)
                     .payload(answer)
                     .build();
  w = sendFragments("uplink", pkt::fragmentFrame(a, {1480}, 0x77));
  ASSERT_TRUE(w.has(pkt::kUdp));
  EXPECT_EQ(w.dst, ip("192.0.2.4"));
  EXPECT_EQ(w.dport, 5353);
  EXPECT_TRUE(checksumsValid());
  EXPECT_EQ(w.eth_dst, kWeb1);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 3u);

  // IPv6 and TCP: a data segment of a connection to the IPv6 VIP (DNAT to
  // web1), cut into three fragments after the handshake.
  const char* client = "2001:db8:100::9";
  ASSERT_EQ(
      send("uplink", tcp(kRouter, client, 40000, "2001:db8:ff::10", 443, tf::kSyn, 1000)).action,
      Action::Forward);
  ASSERT_EQ(send("contoso/web1",
                 tcp(kWeb1, "2001:db8:a:1::4", 443, client, 40000, tf::kSyn | tf::kAck, 7000, 1001))
                .action,
            Action::Forward);
  ASSERT_EQ(
      send("uplink", tcp(kRouter, client, 40000, "2001:db8:ff::10", 443, tf::kAck, 1001, 7001))
          .action,
      Action::Forward);
  const std::string data = fragBody(3000);
  const auto seg =
      tcp(kRouter, client, 40000, "2001:db8:ff::10", 443, tf::kAck | tf::kPsh, 1001, 7001, data);
  w = sendFragments("uplink", pkt::fragmentFrame(seg, {1232, 2464}, 0x10203));
  ASSERT_TRUE(w.has(pkt::kTcp));
  EXPECT_EQ(w.dst, ip("2001:db8:a:1::4"));
  EXPECT_EQ(w.dport, 443);
  EXPECT_TRUE(checksumsValid());
  EXPECT_EQ(w.payload_len, data.size());
  EXPECT_EQ(pl_->stats().fragments_forwarded, 5u);
}

TEST_F(PipelineTest, FragmentsWithoutAForwardedFirstAreCountedDrops) {
  Config cfg;
  cfg.fragments_held = 0;  // what is held is LaterFragmentsBeforeTheirFirstAreHeldForIt's
  make(cfg);
  // A later fragment whose first never came.
  const auto stray = laterFragmentFrom(77);
  Trace t;
  EXPECT_EQ(send("uplink", stray, &t).reason, Reason::Fragment);
  ASSERT_FALSE(t.empty());
  EXPECT_NE(t.back().detail.find("first fragment was not forwarded"), std::string::npos);
  // A datagram to a port no endpoint opens: its first fragment is denied, so
  // are the rest.
  const auto denied = PacketBuilder()
                          .eth(kRouter, kGatewayMac)
                          .ipv4(ip("198.51.100.7"), ip("203.0.113.10"))
                          .udp(5000, 9999)
                          .payload(fragBody(2000))
                          .build();
  const auto df = pkt::fragmentFrame(denied, {1480}, 0x99);
  EXPECT_EQ(send("uplink", df[0]).action, Action::Drop);
  EXPECT_EQ(send("uplink", df[1]).reason, Reason::Fragment);
  // RFC 1858: a first fragment too short for the TCP header (the tiny
  // fragment attack) is malformed; a later one at offset 8, over the flags
  // the layers decided on, is refused as overlapping.
  const auto syn =
      tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 443, tf::kSyn, 1000, 0, fragBody(64));
  const auto tiny = pkt::fragmentFrame(syn, {8}, 0x31);
  EXPECT_EQ(send("uplink", tiny[0]).reason, Reason::Malformed);
  EXPECT_EQ(send("uplink", tiny[1]).reason, Reason::FragmentOverlap);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 0u);
}

TEST_F(PipelineTest, FragmentTrackingIsBoundedInTimeAndDatagrams) {
  Config cfg;
  cfg.fragment_datagrams = 2;
  cfg.fragment_timeout_ms = 100;
  cfg.fragments_held = 0;
  make(cfg);
  auto query = [](uint16_t sport) { return dns(sport, fragBody(2000)); };
  std::vector<std::vector<std::vector<std::byte>>> d;
  for (uint16_t i = 0; i < 3; ++i) {
    d.push_back(pkt::fragmentFrame(query(static_cast<uint16_t>(6000 + i)), {1480},
                                   static_cast<uint32_t>(100 + i)));
    ASSERT_EQ(send("contoso/web1", d[i][0]).action, Action::Forward);
  }
  // Room for two: the oldest datagram was forgotten.
  EXPECT_EQ(send("contoso/web1", d[0][1]).reason, Reason::Fragment);
  EXPECT_EQ(send("contoso/web1", d[2][1]).action, Action::Forward);
  // Past the timeout, the second's last fragment no longer follows it.
  ts_ += 200'000'000;
  EXPECT_EQ(send("contoso/web1", d[1][1]).reason, Reason::Fragment);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 1u);
  EXPECT_EQ(drops(Reason::Fragment), 2u);
  // Its first fragment sent again (the datagram retransmitted with the same
  // id): followed again, for a new timeout.
  ASSERT_EQ(send("contoso/web1", d[1][0]).action, Action::Forward);
  EXPECT_EQ(send("contoso/web1", d[1][1]).action, Action::Forward);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 2u);
}

// Reordered on the way (ECMP, a sender that sends the last fragment first):
// a later fragment that comes before its first is held, and leaves with the
// first's verdict and rewrite right after it.
TEST_F(PipelineTest, LaterFragmentsBeforeTheirFirstAreHeldForIt) {
  const std::string query = fragBody(3000);
  const auto q = dns(5353, query);
  const auto f = pkt::fragmentFrame(q, {1480, 2960}, 0x4343);
  Trace t;
  EXPECT_EQ(send("contoso/web1", f[2], &t).action, Action::Hold);
  ASSERT_FALSE(t.empty());
  EXPECT_NE(t.back().detail.find("held for it"), std::string::npos) << t.back().detail;
  EXPECT_TRUE(pl_->released().empty());
  EXPECT_EQ(send("contoso/web1", f[1]).action, Action::Hold);
  // The first: forwarded, and the two held leave after it, in the order they came.
  ASSERT_EQ(send("contoso/web1", f[0]).action, Action::Forward);
  pkt::Reassembler r;
  std::vector<std::byte> whole;
  auto add = [&](Bytes frame) {
    out_.assign(frame.begin(), frame.end());
    if (const auto done = r.add(decodeOut(), ts_); !done.empty())
      whole.assign(done.begin(), done.end());
  };
  add(Bytes(out_.data(), out_.size()));
  ASSERT_EQ(pl_->released().size(), 2u);
  for (const Pipeline::Released& rel : pl_->released()) {
    EXPECT_EQ(rel.verdict.action, Action::Forward) << toString(rel.verdict.reason);
    EXPECT_EQ(rel.verdict.out_port, port("uplink"));
    EXPECT_EQ(rel.in_port, port("contoso/web1"));
    add(rel.verdict.frame);
  }
  EXPECT_EQ(pl_->released()[0].frame.size(), f[2].size());  // as it arrived
  out_ = whole;
  const pkt::Packet w = decodeOut();
  ASSERT_TRUE(w.has(pkt::kUdp));
  EXPECT_EQ(w.src, ip("203.0.113.10"));  // SNAT, as its first
  EXPECT_TRUE(checksumsValid());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out_.data()) + w.payload_off, w.payload_len),
            query);
  EXPECT_EQ(pl_->stats().fragments_held, 2u);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 2u);
  // The next call forgets them.
  send("contoso/web1", dns(7000));
  EXPECT_TRUE(pl_->released().empty());

  // In one burst, the later fragment before its first: released at the burst's end.
  const auto g = pkt::fragmentFrame(q, {1480}, 0x4444);
  std::vector<Pipeline::Input> in;
  for (const auto* frame : {&g[1], &g[0]})
    in.push_back({pkt::LinkType::Ethernet, Bytes(frame->data(), frame->size()),
                  static_cast<uint32_t>(frame->size()), port("contoso/web1"), ts_ += 1000});
  std::array<Verdict, 2> v;
  ASSERT_EQ(pl_->processBurst(in, v), 2u);
  EXPECT_EQ(v[0].action, Action::Hold);
  EXPECT_EQ(v[1].action, Action::Forward);
  ASSERT_EQ(pl_->released().size(), 1u);
  EXPECT_EQ(pl_->released()[0].verdict.action, Action::Forward);
  EXPECT_EQ(pl_->released()[0].after, 1u);  // right after its first
  const Stats& s = pl_->stats();
  EXPECT_EQ(s.packets, s.forwarded + s.dropped + s.answered);  // nothing held now
}

TEST_F(PipelineTest, HeldFragmentsAreBoundedInNumberAndTime) {
  Config cfg;
  cfg.fragments_held = 2;
  cfg.fragment_timeout_ms = 100;
  make(cfg);
  for (uint16_t id = 1; id <= 3; ++id)
    EXPECT_EQ(send("uplink", laterFragmentFrom(id)).action, Action::Hold);
  // Room for two: the oldest held went, a `fragment` drop.
  EXPECT_EQ(drops(Reason::Fragment), 1u);
  EXPECT_EQ(pl_->stats().fragments_held, 3u);
  // Their time is up at the next tick past it.
  pl_->tick(ts_ + 50'000'000);
  EXPECT_EQ(drops(Reason::Fragment), 1u);
  pl_->tick(ts_ + 150'000'000);
  EXPECT_EQ(drops(Reason::Fragment), 3u);
  // What is still held when the pipeline finishes is dropped then.
  ts_ += 200'000'000;
  EXPECT_EQ(send("uplink", laterFragmentFrom(4)).action, Action::Hold);
  pl_->finish(ts_);
  EXPECT_EQ(drops(Reason::Fragment), 4u);
  const Stats& s = pl_->stats();
  EXPECT_EQ(s.packets, s.forwarded + s.dropped + s.answered);
  EXPECT_EQ(s.fragments_forwarded, 0u);
  // A frame over a jumbo frame's size is not held.
  EXPECT_EQ(send("uplink", laterFragmentFrom(9, fragBody(10000))).reason, Reason::Fragment);
  // A new policy: what is held came in on the old one's ports, and is dropped.
  EXPECT_EQ(send("uplink", laterFragmentFrom(10)).action, Action::Hold);
  const uint64_t before = drops(Reason::Fragment);
  pl_->setPolicy(cp_);
  EXPECT_EQ(drops(Reason::Fragment), before + 1);
}

TEST_F(PipelineTest, FlowLogsRecordBeginAndEndWithTheDecidingRule) {
  events::EventQueue q(64, 512);
  make(Config{}, &q);
  ASSERT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 443, tf::kSyn)).action,
      Action::Forward);
  send("uplink", tcp(kRouter, "198.51.100.7", 5555, "203.0.113.10", 8080, tf::kSyn));
  pl_->finish(ts_ + 1000);
  std::vector<std::string> lines;
  while (events::Event* e = q.front()) {
    std::string s;
    events::formatEveJson(*e, s);
    lines.push_back(s);
    q.pop();
  }
  // Begin, deny, end, and the stats record of the whole run at finish().
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[3].find("\"event_type\":\"stats\""), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("\"packets\":2,"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("\"drop_reasons\":{\"no_endpoint\":1}"), std::string::npos) << lines[3];
  EXPECT_NE(lines[0].find("\"state\":\"begin\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"rule\":\"contoso/web-nic/web-in\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"type\":\"dnat\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("\"decision\":\"deny\""), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"reason\":\"no_endpoint\""), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("\"state\":\"end\""), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("\"pkts_toserver\":0"), std::string::npos) << lines[2];
}

// --- VXLAN between hosts ----------------------------------------------------
// Two pipelines, one per hypervisor host of the example (hv1: web1, db1, jump1,
// fabrikam/fe1; hv2: web2, app1, fabrikam/be1), pass frames to each other the
// way their uplinks would.

class OverlayTest : public PipelineTest {
 protected:
  void SetUp() override {
    Config c1;
    c1.host = "hv1";
    make(c1);
    Config c2;
    c2.host = "hv2";
    hv2_ = std::make_unique<Pipeline>(cp_, c2);
  }
  // What hv2 does with a frame from its uplink; its output lands in out2_.
  Verdict toHv2(const std::vector<std::byte>& frame, Trace* t = nullptr) {
    in2_ = frame;
    ts_ += 1000;
    Verdict v = hv2_->process(pkt::LinkType::Ethernet, Bytes(in2_.data(), in2_.size()),
                              static_cast<uint32_t>(in2_.size()), kUplinkPort, ts_, t);
    out2_.assign(v.frame.begin(), v.frame.end());
    return v;
  }
  Verdict fromHv2(const char* port_name, const std::vector<std::byte>& frame) {
    in2_ = frame;
    ts_ += 1000;
    const uint32_t p = cp_->portByName(port_name);
    Verdict v = hv2_->process(pkt::LinkType::Ethernet, Bytes(in2_.data(), in2_.size()),
                              static_cast<uint32_t>(in2_.size()), static_cast<uint16_t>(p), ts_);
    out2_.assign(v.frame.begin(), v.frame.end());
    return v;
  }
  // A VXLAN frame on the underlay from `src` to hv1 carrying `inner`.
  std::vector<std::byte> tunnel(const char* src, uint32_t vni, const char* inner_src,
                                uint16_t sport, const char* inner_dst, uint16_t dport,
                                uint8_t flags, const MacAddr& inner_dst_mac = kDb1) {
    return PacketBuilder()
        .eth(mac("02:00:c6:33:64:ca"), mac("02:00:c6:33:64:c9"))
        .ipv4(ip(src), ip("198.51.100.201"))
        .udp(50000, 4789)
        .vxlan(vni)
        .eth(kGatewayMac, inner_dst_mac)
        .ipv4(ip(inner_src), ip(inner_dst))
        .tcp(sport, dport, flags, 5000, 0, {}, 65535)
        .build();
  }
  static pkt::Packet decode(const std::vector<std::byte>& f) {
    pkt::Decoder d;
    pkt::Packet p;
    EXPECT_TRUE(d.decode(pkt::LinkType::Ethernet, Bytes(f.data(), f.size()),
                         static_cast<uint32_t>(f.size()), p));
    return p;
  }
  uint64_t drops2(Reason r) const { return hv2_->stats().drops[static_cast<size_t>(r)]; }

  std::unique_ptr<Pipeline> hv2_;
  std::vector<std::byte> in2_, out2_;
};

TEST_F(OverlayTest, EastWestCrossesHostsInVxlanBothWays) {
  // web1 (hv1) opens 8080 on app1 (hv2): hv1 encapsulates to hv2's underlay.
  Trace t;
  Verdict v =
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "192.0.2.36", 8080, tf::kSyn), &t);
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.out_port, kUplinkPort);
  const pkt::Packet outer = decode(out_);
  ASSERT_TRUE(outer.has(pkt::kVxlan));
  EXPECT_EQ(outer.src, ip("198.51.100.201"));
  EXPECT_EQ(outer.dst, ip("198.51.100.202"));
  EXPECT_EQ(outer.vxlan.vni, 5001u);
  EXPECT_GE(outer.sport, 49152);
  EXPECT_EQ(pkt::internetChecksum(Bytes(out_.data() + outer.l3_off, 20)), 0);
  pkt::Decoder d;
  pkt::Packet inner;
  ASSERT_TRUE(d.decodeInner(outer, inner));
  EXPECT_EQ(inner.eth_dst, kApp1);
  EXPECT_EQ(inner.eth_src, kGatewayMac);
  EXPECT_EQ(inner.src, ip("192.0.2.4"));
  EXPECT_EQ(inner.dst, ip("192.0.2.36"));
  EXPECT_EQ(pl_->stats().vxlan_encapsulated, 1u);

  // hv2 decapsulates, checks app1's inbound layers itself, delivers to app1.
  const std::vector<std::byte> wire = out_;
  v = toHv2(wire);
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, cp_->portByName("contoso/app1"));
  pkt::Packet delivered = decode(out2_);
  EXPECT_FALSE(delivered.has(pkt::kVxlan));
  EXPECT_EQ(delivered.eth_dst, kApp1);
  EXPECT_EQ(delivered.dst, ip("192.0.2.36"));
  EXPECT_EQ(delivered.dport, 8080);
  EXPECT_EQ(hv2_->stats().vxlan_decapsulated, 1u);
  const FlowAction& a2 = hv2_->action(hv2_->flows().at(0).action);
  EXPECT_EQ(cp_->rules[a2.rules[static_cast<size_t>(Layer::SubnetGroup)]].name,
            "contoso/app-tier/from-web");

  // app1 answers; hv2 sends it back through the tunnel, hv1 hands it to web1.
  v = fromHv2("contoso/app1",
              tcp(kApp1, "192.0.2.36", 8080, "192.0.2.4", 40000, tf::kSyn | tf::kAck, 9000, 1001));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, kUplinkPort);
  const pkt::Packet back = decode(out2_);
  ASSERT_TRUE(back.has(pkt::kVxlan));
  EXPECT_EQ(back.src, ip("198.51.100.202"));
  EXPECT_EQ(back.dst, ip("198.51.100.201"));
  v = send("uplink", out2_);
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, cp_->portByName("contoso/web1"));
  EXPECT_EQ(decode(out_).eth_dst, kWeb1);
  EXPECT_EQ(pl_->stats().flow_hits, 1u);  // the reply of web1's flow, not a new one
  v = send("contoso/web1",
           tcp(kWeb1, "192.0.2.4", 40000, "192.0.2.36", 8080, tf::kAck, 1001, 9001));
  EXPECT_EQ(v.action, Action::Forward);
  EXPECT_EQ(toHv2(out_).action, Action::Forward);
  EXPECT_EQ(hv2_->stats().flow_hits, 2u);
}

TEST_F(OverlayTest, ReceivingHostEnforcesTheDestinationsLayers) {
  // A compromised hv2 skips its own checks and tunnels web2 -> db1:5432 (only
  // app -> db is allowed): hv1 still denies it at db1's subnet group.
  Verdict v = send(
      "uplink", tunnel("198.51.100.202", 5001, "192.0.2.5", 40000, "192.0.2.68", 5432, tf::kSyn));
  EXPECT_EQ(v.reason, Reason::SubnetGroup);
  EXPECT_EQ(cp_->rules[v.rule].name, "contoso/db-tier/deny-rest-of-vnet");
  v = send("uplink",
           tunnel("198.51.100.202", 5001, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn));
  EXPECT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, cp_->portByName("contoso/db1"));
}

TEST_F(OverlayTest, TunnelAttacksAreDropped) {
  Trace t;
  // Not from a host's underlay address.
  EXPECT_EQ(send("uplink",
                 tunnel("198.51.100.9", 5001, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn))
                .reason,
            Reason::VxlanUnknownHost);
  // From hv1's own address (a reflection).
  EXPECT_EQ(send("uplink",
                 tunnel("198.51.100.201", 5001, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn))
                .reason,
            Reason::VxlanUnknownHost);
  // A VNI no VNet has.
  EXPECT_EQ(send("uplink",
                 tunnel("198.51.100.202", 7777, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn))
                .reason,
            Reason::VxlanUnknownVni);
  // hv2 speaking for web1, which runs on hv1.
  EXPECT_EQ(
      send("uplink",
           tunnel("198.51.100.202", 5001, "192.0.2.4", 40000, "192.0.2.68", 5432, tf::kSyn), &t)
          .reason,
      Reason::VxlanSpoof);
  EXPECT_NE(t.back().detail.find("no NIC of contoso/prod on host hv2"), std::string::npos)
      << t.back().detail;
  // A packet for a NIC that is on hv2 itself.
  EXPECT_EQ(
      send("uplink", tunnel("198.51.100.202", 5001, "192.0.2.36", 40000, "192.0.2.5", 80, tf::kSyn))
          .reason,
      Reason::VxlanMisdelivered);
  // ARP inside the tunnel.
  const auto arp = PacketBuilder()
                       .eth(mac("02:00:c6:33:64:ca"), mac("02:00:c6:33:64:c9"))
                       .ipv4(ip("198.51.100.202"), ip("198.51.100.201"))
                       .udp(50000, 4789)
                       .vxlan(5001)
                       .eth(kApp1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                       .arp(1, kApp1, ip("192.0.2.36"), MacAddr{}, ip("192.0.2.68"))
                       .build();
  EXPECT_EQ(send("uplink", arp).reason, Reason::VxlanNonIp);
  // A truncated inner frame.
  auto cut = tunnel("198.51.100.202", 5001, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn);
  cut.resize(cut.size() - 30);
  EXPECT_EQ(send("uplink", cut).reason, Reason::Malformed);
  // Nothing arrives on the port of a NIC of another host.
  EXPECT_EQ(
      send("contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.68", 5432, tf::kSyn)).reason,
      Reason::RemoteNic);
  EXPECT_EQ(pl_->stats().layer_drop[static_cast<size_t>(Layer::Overlay)], 6u);
}

TEST_F(OverlayTest, OverlappingTenantsStayApartAcrossHosts) {
  // fabrikam/be1 (hv2) and contoso/db1 (hv1) are both 192.0.2.68; fabrikam/fe1
  // (hv1) and contoso/web1 (hv1) are both 192.0.2.4. The VNI says whose.
  Verdict v = send("fabrikam/fe1", tcp(kFe1, "192.0.2.4", 41000, "192.0.2.68", 1433, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(decode(out_).vxlan.vni, 6001u);
  v = toHv2(out_);
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, cp_->portByName("fabrikam/be1"));
  // The same inner packet under contoso's VNI from hv2 is no contoso NIC's.
  v = send("uplink",
           tunnel("198.51.100.202", 5001, "192.0.2.68", 1433, "192.0.2.4", 41000, tf::kSyn, kWeb1));
  EXPECT_EQ(v.reason, Reason::VxlanSpoof);
}

TEST_F(OverlayTest, EndpointsAreServedByTheirNicsHost) {
  // fabrikam's RDP endpoint leads to be1 on hv2: hv1 does not take its traffic.
  Trace t;
  const auto syn = PacketBuilder()
                       .eth(kRouter, kGatewayMac)
                       .ipv4(ip("198.51.100.7"), ip("203.0.113.20"))
                       .tcp(5555, 3389, tf::kSyn, 1)
                       .build();
  Verdict v = send("uplink", syn, &t);
  EXPECT_EQ(v.reason, Reason::EndpointElsewhere);
  v = toHv2(syn);
  EXPECT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, cp_->portByName("fabrikam/be1"));
  // Outbound SNAT leaves through the local uplink, not a tunnel.
  v = send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40001, "198.51.100.9", 443, tf::kSyn));
  ASSERT_EQ(v.action, Action::Forward);
  EXPECT_FALSE(decode(out_).has(pkt::kVxlan));
  EXPECT_EQ(decode(out_).src, ip("203.0.113.10"));
}

// Deployment shop runs on both hosts: each translates into its own share of
// the VIP's ports (hv1 1024-33279, hv2 33280-65535 in the example), so the edge
// can route each reply by port to the host that holds its flow.
TEST_F(OverlayTest, SnatPortsStayInTheHostsShare) {
  for (uint16_t i = 0; i < 200; ++i) {
    Verdict v = send("contoso/web1", tcp(kWeb1, "192.0.2.4", static_cast<uint16_t>(20000 + i),
                                         "198.51.100.9", 443, tf::kSyn));
    ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
    const pkt::Packet p1 = decode(out_);
    EXPECT_EQ(p1.src, ip("203.0.113.10"));
    EXPECT_GE(p1.sport, 1024);
    EXPECT_LE(p1.sport, 33279);
    v = fromHv2("contoso/app1", PacketBuilder()
                                    .eth(kApp1, kGatewayMac)
                                    .ipv4(ip("192.0.2.36"), ip("198.51.100.9"))
                                    .tcp(static_cast<uint16_t>(20000 + i), 443, tf::kSyn, 1)
                                    .build());
    ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
    const pkt::Packet p2 = decode(out2_);
    EXPECT_EQ(p2.src, ip("203.0.113.10"));
    EXPECT_GE(p2.sport, 33280);
  }
}

TEST_F(PipelineTest, AHostThePolicyLacksSendsNothingUnencapsulated) {
  // The CLI refuses such a --host; a later policy may still lack it. NICs of a
  // host are then unreachable, never reached in clear over the uplink. web1
  // here has no host, so it is local wherever the switch runs.
  auto edited = std::make_shared<policy::Policy>(*loadExample());
  edited->tenants[0].nics[0].host = {};
  cp_ = compileOrDie(edited);
  Config c;
  c.host = "hv9";
  pl_ = std::make_unique<Pipeline>(cp_, c);
  Trace t;
  const Verdict v =
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 40000, "192.0.2.36", 8080, tf::kSyn), &t);
  EXPECT_EQ(v.reason, Reason::Isolation);
  EXPECT_NE(t.back().detail.find("no VXLAN tunnel"), std::string::npos) << t.back().detail;
  EXPECT_EQ(send("contoso/app1", tcp(kApp1, "192.0.2.36", 40000, "192.0.2.4", 80, tf::kSyn)).reason,
            Reason::RemoteNic);
  EXPECT_EQ(pl_->stats().forwarded, 0u);
}

TEST(Vxlan, OuterHeadersAreValidOnBothUnderlayFamilies) {
  const auto inner = PacketBuilder()
                         .eth(kGatewayMac, kApp1)
                         .ipv4(ip("192.0.2.4"), ip("192.0.2.36"))
                         .udp(5000, 53)
                         .payload("hello")
                         .build();
  for (const char* pair : {"198.51.100.201 198.51.100.202", "2001:db8:ff::1 2001:db8:ff::2"}) {
    const std::string s(pair);
    VxlanOuter o;
    o.src = ip(s.substr(0, s.find(' ')).c_str());
    o.dst = ip(s.substr(s.find(' ') + 1).c_str());
    o.sport = 50123;
    o.vni = 0xabcdef;
    std::vector<std::byte> f(vxlanOverhead(o.src.isV4()) + inner.size());
    std::copy(inner.begin(), inner.end(),
              f.begin() + static_cast<long>(vxlanOverhead(o.src.isV4())));
    writeVxlan(f, o);
    pkt::Decoder d;
    pkt::Packet p;
    ASSERT_TRUE(d.decode(pkt::LinkType::Ethernet, Bytes(f.data(), f.size()),
                         static_cast<uint32_t>(f.size()), p))
        << pair;
    ASSERT_TRUE(p.has(pkt::kVxlan)) << pair;
    EXPECT_EQ(p.vxlan.vni, 0xabcdefu);
    EXPECT_EQ(p.src, o.src);
    EXPECT_EQ(p.sport, 50123);
    EXPECT_EQ(p.dport, 4789);
    EXPECT_EQ(p.vxlan.inner_len, inner.size());
    const Bytes udp(f.data() + p.l4_off, p.l3_end - p.l4_off);
    if (o.src.isV4()) {
      EXPECT_EQ(pkt::internetChecksum(Bytes(f.data() + p.l3_off, 20)), 0);
      EXPECT_EQ(p.udp.length, udp.size());
    } else {  // IPv6 needs the UDP checksum
      const uint32_t sum =
          pkt::pseudoHeaderSum(p.src, p.dst, 17, static_cast<uint32_t>(udp.size()));
      EXPECT_EQ(pkt::checksumFinish(pkt::checksumPartial(udp, sum)), 0);
    }
    pkt::Packet in;
    ASSERT_TRUE(d.decodeInner(p, in));
    EXPECT_EQ(in.dst, ip("192.0.2.36"));
  }
}

TEST_F(PipelineTest, EveryDropReasonHasANameAndALayer) {
  for (size_t r = 1; r < static_cast<size_t>(Reason::Count); ++r) {
    EXPECT_STRNE(toString(static_cast<Reason>(r)), "");
    EXPECT_LT(layerOf(static_cast<Reason>(r)), Layer::Count);
  }
}

TEST(Complement, CoversEverythingOutsideTheExcludedPrefixes) {
  const std::vector<Prefix> ex = {Prefix::parse("192.0.2.0/25").value(),
                                  Prefix::parse("203.0.113.224/27").value()};
  const auto c = complement(ex, true);
  auto inside = [&](const char* a) {
    for (const Prefix& p : c)
      if (p.contains(ip(a))) return true;
    return false;
  };
  EXPECT_FALSE(inside("192.0.2.4"));
  EXPECT_FALSE(inside("203.0.113.250"));
  EXPECT_TRUE(inside("192.0.2.200"));
  EXPECT_TRUE(inside("198.51.100.7"));
  EXPECT_TRUE(inside("0.0.0.0"));
  EXPECT_TRUE(inside("255.255.255.255"));
  const auto c6 = complement({Prefix::parse("2001:db8:a::/48").value()}, false);
  bool v6_in = false, v6_out = false, mapped = false;
  for (const Prefix& p : c6) {
    v6_in |= p.contains(ip("2001:db8:a::1"));
    v6_out |= p.contains(ip("2001:db8:b::1"));
    mapped |= p.contains(ip("198.51.100.7"));
  }
  EXPECT_FALSE(v6_in);
  EXPECT_TRUE(v6_out);
  EXPECT_FALSE(mapped);  // the IPv4 family is not part of an IPv6 complement
}

}  // namespace
}  // namespace palisade::pipeline

namespace palisade::pipeline {
namespace {

// The DDoS stage: on while the policy protects something, gone after a
// reload that drops the section (and a packet that stops before the flow
// lookup right after does not touch it), back with state when it returns.
TEST_F(PipelineTest, DdosStageFollowsThePolicy) {
  // A SYN-ACK flood on contoso's VIP: detected, then dropped by the stage.
  for (uint32_t i = 0; i < 3000; ++i) {
    ts_ += 100'000;  // 10 kpps
    send("uplink", tcp(kRouter, ("198.51.100." + std::to_string(1 + i % 250)).c_str(),
                       static_cast<uint16_t>(80 + i / 250), "203.0.113.10", 40000,
                       pkt::tcpflag::kSyn | pkt::tcpflag::kAck));
  }
  EXPECT_GT(drops(Reason::Ddos), 1000u);
  EXPECT_EQ(pl_->stats().ddos_attacks, 1u);
  Trace t;
  send("uplink",
       tcp(kRouter, "198.51.100.9", 80, "203.0.113.10", 40001,
           pkt::tcpflag::kSyn | pkt::tcpflag::kAck),
       &t);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t[0].layer, Layer::Ddos);
  EXPECT_NE(t[0].detail.find("under attack #1 (synack_reflection)"), std::string::npos)
      << t[0].detail;
  // Reloaded without the section: no stage; an early-dropped packet is fine.
  auto plain = std::make_shared<policy::Policy>(*model_);
  plain->ddos = {};
  pl_->setPolicy(compileOrDie(plain, 2));
  send("uplink", PacketBuilder().eth(kRouter, kGatewayMac).ethertypeRaw(0x88cc).build());
  const uint64_t before = drops(Reason::Ddos);
  send("uplink", tcp(kRouter, "198.51.100.9", 80, "203.0.113.10", 40002,
                     pkt::tcpflag::kSyn | pkt::tcpflag::kAck));
  EXPECT_EQ(drops(Reason::Ddos), before);
  // Back: a new detector (its history went with the section).
  pl_->setPolicy(compileOrDie(model_, 3));
  Trace t2;
  send("uplink", tcp(kRouter, "198.51.100.9", 443, "203.0.113.10", 443, pkt::tcpflag::kSyn), &t2);
  ASSERT_FALSE(t2.empty());
  EXPECT_EQ(t2[0].layer, Layer::Ddos);
  EXPECT_NE(t2[0].detail.find("no attack on it"), std::string::npos) << t2[0].detail;
}

}  // namespace
}  // namespace palisade::pipeline

// --- SYN proxy --------------------------------------------------------------

namespace palisade::pipeline {
namespace {

class SynProxyTest : public PipelineTest {
 protected:
  // contoso's VIP behind the SYN proxy (`mode` for its profile).
  void proxied(policy::DdosSynProxy mode) {
    auto m = std::make_shared<policy::Policy>(*loadExample());
    m->ddos.profiles.at(0).syn_proxy = mode;
    model_ = m;
    cp_ = compileOrDie(model_);
    Config cfg;
    cfg.conntrack.seed = 7;
    pl_ = std::make_unique<Pipeline>(cp_, cfg);
  }
  // A segment from the Internet client to the VIP's https endpoint.
  std::vector<std::byte> fromClient(uint8_t flags, uint32_t seq, uint32_t ack,
                                    const pkt::TcpOptions& opt, uint16_t window,
                                    std::string_view payload = {}, uint16_t sport = 40000) {
    return PacketBuilder()
        .eth(kRouter, kGatewayMac)
        .ipv4(ip("198.51.100.9"), ip("203.0.113.10"))
        .tcp(sport, 443, flags, seq, ack, opt, window)
        .payload(payload)
        .build();
  }
  // A segment from web1 (the endpoint's NIC) back to the client.
  std::vector<std::byte> fromServer(uint8_t flags, uint32_t seq, uint32_t ack,
                                    const pkt::TcpOptions& opt, uint16_t window,
                                    std::string_view payload = {}) {
    return PacketBuilder()
        .eth(kWeb1, kGatewayMac)
        .ipv4(ip("192.0.2.4"), ip("198.51.100.9"))
        .tcp(443, 40000, flags, seq, ack, opt, window)
        .payload(payload)
        .build();
  }
  static pkt::TcpOptions ts(uint32_t val, uint32_t ecr) {
    pkt::TcpOptions o;
    o.has_timestamp = true;
    o.ts_val = val;
    o.ts_ecr = ecr;
    return o;
  }
  static constexpr uint32_t kIsn = 0x10000000, kServerIsn = 0xfffffff0;  // wraps on the way
};

// The whole connection: cookie, the server's handshake, translation both
// ways, with timestamps, window scaling (the server's differs from what the
// proxy offered), SACK and ECN kept.
TEST_F(SynProxyTest, ProxiesAHandshakeAndTranslatesTheConnection) {
  proxied(policy::DdosSynProxy::Always);
  pkt::TcpOptions syn = ts(1000, 0);
  syn.has_mss = syn.has_wscale = syn.sack_permitted = true;
  syn.mss = 1460;
  syn.wscale = 7;
  Trace t;
  Verdict v = send("uplink", fromClient(tf::kSyn | tf::kEce | tf::kCwr, kIsn, 0, syn, 64240), &t);
  ASSERT_EQ(v.action, Action::Answer) << toString(v.reason);
  EXPECT_EQ(v.out_port, kUplinkPort);
  EXPECT_EQ(pl_->flows().size(), 0u);  // nothing kept for a SYN
  EXPECT_EQ(pl_->stats().syn_cookies_sent, 1u);
  EXPECT_TRUE(checksumsValid());
  pkt::Packet sa = decodeOut();
  EXPECT_EQ(sa.eth_dst, kRouter);
  EXPECT_EQ(sa.src, ip("203.0.113.10"));
  EXPECT_EQ(sa.dst, ip("198.51.100.9"));
  EXPECT_EQ(sa.tcp.flags, tf::kSyn | tf::kAck | tf::kEce);
  EXPECT_EQ(sa.tcp.ack, kIsn + 1);
  EXPECT_EQ(sa.tcp.opt.mss, 1460);
  EXPECT_TRUE(sa.tcp.opt.has_wscale);
  EXPECT_EQ(sa.tcp.opt.wscale, 7);
  EXPECT_TRUE(sa.tcp.opt.sack_permitted);
  EXPECT_EQ(sa.tcp.opt.ts_ecr, 1000u);
  const uint32_t cookie = sa.tcp.seq, proxy_ts = sa.tcp.opt.ts_val;
  bool said = false;
  for (const TraceStep& s : t)
    said |= s.detail.find("SYN cookie") != std::string::npos;
  EXPECT_TRUE(said);

  // The client's ACK: the server gets the SYN it would have sent.
  v = send("uplink", fromClient(tf::kAck, kIsn + 1, cookie + 1, ts(1010, proxy_ts), 502));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  EXPECT_EQ(pl_->stats().syn_cookies_valid, 1u);
  EXPECT_EQ(pl_->stats().ddos_handshakes, 1u);  // the client's, with the proxy
  EXPECT_TRUE(checksumsValid());
  pkt::Packet s1 = decodeOut();
  EXPECT_EQ(s1.dst, ip("192.0.2.4"));
  EXPECT_EQ(s1.eth_dst, kWeb1);
  EXPECT_EQ(s1.tcp.flags, tf::kSyn | tf::kEce | tf::kCwr);
  EXPECT_EQ(s1.tcp.seq, kIsn);
  EXPECT_EQ(s1.tcp.opt.mss, 1460);
  EXPECT_EQ(s1.tcp.opt.wscale, 7);
  EXPECT_TRUE(s1.tcp.opt.sack_permitted);
  EXPECT_EQ(s1.tcp.opt.ts_val, 1010u);
  EXPECT_EQ(s1.tcp.window, 64256);  // 502 << 7: a SYN's window is not scaled

  // Data before the server answered: dropped, the client sends it again. The
  // flow is the proxy's (a completed handshake): not the DDoS stage's.
  const uint64_t ddos_seen = pl_->stats().layer_pass[static_cast<size_t>(Layer::Ddos)];
  EXPECT_EQ(send("uplink", fromClient(tf::kAck | tf::kPsh, kIsn + 1, cookie + 1, ts(1011, proxy_ts),
                                      502, "GET / HTTP/1.1\r\n\r\n"))
                .reason,
            Reason::SynProxyPending);
  EXPECT_EQ(pl_->stats().layer_pass[static_cast<size_t>(Layer::Ddos)], ddos_seen);

  // The server's SYN-ACK (scale 9, its own clock): the proxy ACKs it.
  pkt::TcpOptions ssa = ts(777777, 1010);
  ssa.has_mss = ssa.has_wscale = ssa.sack_permitted = true;
  ssa.mss = 1400;
  ssa.wscale = 9;
  v = send("contoso/web1",
           fromServer(tf::kSyn | tf::kAck | tf::kEce, kServerIsn, kIsn + 1, ssa, 65160));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  EXPECT_EQ(pl_->stats().syn_proxied, 1u);
  EXPECT_TRUE(checksumsValid());
  pkt::Packet a = decodeOut();
  EXPECT_EQ(a.src, ip("198.51.100.9"));
  EXPECT_EQ(a.dst, ip("192.0.2.4"));
  EXPECT_EQ(a.tcp.flags, tf::kAck);
  EXPECT_EQ(a.tcp.seq, kIsn + 1);
  EXPECT_EQ(a.tcp.ack, kServerIsn + 1);
  EXPECT_EQ(a.tcp.window, 502);
  EXPECT_EQ(a.tcp.opt.ts_val, 1010u);
  EXPECT_EQ(a.tcp.opt.ts_ecr, 777777u);
  // A retransmitted SYN-ACK (the ACK was lost) is answered again.
  v = send("contoso/web1", fromServer(tf::kSyn | tf::kAck, kServerIsn, kIsn + 1, ssa, 65160));
  EXPECT_EQ(v.action, Action::Forward);
  EXPECT_EQ(decodeOut().tcp.ack, kServerIsn + 1);

  // Client to server: its acknowledgment and echoed timestamp move into the
  // server's spaces.
  v = send("uplink", fromClient(tf::kAck | tf::kPsh, kIsn + 1, cookie + 1, ts(1020, proxy_ts), 502,
                                "GET / HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_TRUE(checksumsValid());
  pkt::Packet c = decodeOut();
  EXPECT_EQ(c.tcp.seq, kIsn + 1);
  EXPECT_EQ(c.tcp.ack, kServerIsn + 1);
  EXPECT_EQ(c.tcp.opt.ts_ecr, 777777u);
  EXPECT_EQ(c.tcp.opt.ts_val, 1020u);
  EXPECT_EQ(c.payload_len, 18u);

  // Server to client: its sequence number and clock move into the ones the
  // client knows; its window (scale 9) into the scale the client was offered (7).
  v = send("contoso/web1", fromServer(tf::kAck | tf::kPsh, kServerIsn + 1, kIsn + 19,
                                      ts(777800, 1020), 100, "HTTP/1.1 200 OK\r\n"));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, kUplinkPort);
  EXPECT_TRUE(checksumsValid());
  pkt::Packet r = decodeOut();
  EXPECT_EQ(r.src, ip("203.0.113.10"));
  EXPECT_EQ(r.tcp.seq, cookie + 1);
  EXPECT_EQ(r.tcp.ack, kIsn + 19);
  EXPECT_EQ(r.tcp.opt.ts_val, proxy_ts + 23);
  EXPECT_EQ(r.tcp.opt.ts_ecr, 1020u);
  EXPECT_EQ(r.tcp.window, 400);  // 100 << 9 >> 7

  // The client's FIN and the server's: conntrack follows the translated numbers.
  v = send("uplink",
           fromClient(tf::kAck | tf::kFin, kIsn + 19, cookie + 18, ts(1030, proxy_ts + 23), 502));
  EXPECT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(decodeOut().tcp.ack, kServerIsn + 18);
  v = send("contoso/web1",
           fromServer(tf::kAck | tf::kFin, kServerIsn + 18, kIsn + 20, ts(777810, 1030), 100));
  EXPECT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(decodeOut().tcp.seq, cookie + 18);
  EXPECT_EQ(drops(Reason::TcpOutOfWindow), 0u);
  EXPECT_EQ(pl_->stats().ddos_handshakes, 1u);  // the proxy's own with the server is not one
}

// Without timestamps the cookie keeps only the MSS: the SYN-ACK offers no
// window scale or SACK, and the server's SYN has none.
TEST_F(SynProxyTest, WithoutTimestampsOnlyTheMssSurvives) {
  proxied(policy::DdosSynProxy::Always);
  pkt::TcpOptions syn;
  syn.has_mss = syn.has_wscale = syn.sack_permitted = true;
  syn.mss = 1300;
  syn.wscale = 7;
  Verdict v = send("uplink", fromClient(tf::kSyn, kIsn, 0, syn, 64240));
  ASSERT_EQ(v.action, Action::Answer);
  pkt::Packet sa = decodeOut();
  EXPECT_FALSE(sa.tcp.opt.has_wscale);
  EXPECT_FALSE(sa.tcp.opt.sack_permitted);
  EXPECT_FALSE(sa.tcp.opt.has_timestamp);
  v = send("uplink", fromClient(tf::kAck, kIsn + 1, sa.tcp.seq + 1, {}, 64240));
  ASSERT_EQ(v.action, Action::Forward);
  pkt::Packet s1 = decodeOut();
  EXPECT_EQ(s1.tcp.opt.mss, 1220);  // the class not above 1300
  EXPECT_FALSE(s1.tcp.opt.has_wscale);
  EXPECT_FALSE(s1.tcp.opt.has_timestamp);
}

// A server that does not scale its window while the client does: the
// client's windows are scaled up for it, its own scaled down for the client.
TEST_F(SynProxyTest, ServerWithoutWindowScaling) {
  proxied(policy::DdosSynProxy::Always);
  pkt::TcpOptions syn = ts(5, 0);
  syn.has_wscale = true;
  syn.wscale = 2;
  send("uplink", fromClient(tf::kSyn, kIsn, 0, syn, 64240));
  const pkt::Packet sa = decodeOut();
  ASSERT_TRUE(sa.tcp.opt.has_wscale);
  send("uplink", fromClient(tf::kAck, kIsn + 1, sa.tcp.seq + 1, ts(6, sa.tcp.opt.ts_val), 1000));
  send("contoso/web1", fromServer(tf::kSyn | tf::kAck, kServerIsn, kIsn + 1, ts(50, 6), 29200));
  EXPECT_EQ(decodeOut().tcp.window, 4000);  // 1000 << 2, what the server reads unscaled
  const Verdict v =
      send("contoso/web1", fromServer(tf::kAck, kServerIsn + 1, kIsn + 1, ts(51, 6), 29200));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(decodeOut().tcp.window, 29200 >> 7);
}

// ICMP errors about a proxied connection quote its segments in each side's
// numbers: a router's "fragmentation needed" about a server segment reaches
// the server with the sequence number the server sent (else Linux ignores it
// and path MTU discovery fails); an error from the server's side about a
// client segment reaches the client with the acknowledgment number it sent.
TEST_F(SynProxyTest, IcmpErrorsCarryEachSidesSequenceNumbers) {
  proxied(policy::DdosSynProxy::Always);
  send("uplink", fromClient(tf::kSyn, kIsn, 0, {}, 64240));
  const uint32_t cookie = decodeOut().tcp.seq;
  send("uplink", fromClient(tf::kAck, kIsn + 1, cookie + 1, {}, 64240));
  send("contoso/web1", fromServer(tf::kSyn | tf::kAck, kServerIsn, kIsn + 1, {}, 29200));
  ASSERT_EQ(send("contoso/web1", fromServer(tf::kAck | tf::kPsh, kServerIsn + 1, kIsn + 1, {},
                                            29200, std::string(1400, 'x')))
                .action,
            Action::Forward);
  ASSERT_EQ(decodeOut().tcp.seq, cookie + 1);
  // The segment as the Internet saw it, quoted (IP header and all of TCP's 20 bytes).
  auto quote = [](const std::vector<std::byte>& frame) {
    std::vector<uint8_t> q;
    for (size_t i = 14; i < 14 + 20 + 20; ++i)
      q.push_back(static_cast<uint8_t>(frame[i]));
    return q;
  };
  const auto seen = PacketBuilder()
                        .eth(kRouter, kGatewayMac)
                        .ipv4(ip("203.0.113.10"), ip("198.51.100.9"))
                        .tcp(443, 40000, tf::kAck | tf::kPsh, cookie + 1, kIsn + 1)
                        .payload(std::string(1400, 'x'))
                        .build();
  Verdict v = send("uplink", PacketBuilder()
                                 .eth(kRouter, kGatewayMac)
                                 .ipv4(ip("198.51.100.254"), ip("203.0.113.10"))
                                 .icmp(3, 4, 0, 1280)
                                 .payload(quote(seen))
                                 .build());
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_EQ(v.out_port, port("contoso/web1"));
  pkt::Packet e = decodeOut();
  ASSERT_NE(e.icmp.inner_off, 0u);
  const uint8_t* in = reinterpret_cast<const uint8_t*>(out_.data()) + e.icmp.inner_off;
  auto be32 = [](const uint8_t* b) {
    return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
  };
  EXPECT_EQ(be32(in + 20 + 4), kServerIsn + 1);         // the server's own number
  EXPECT_EQ(be32(in + 12), ip("192.0.2.4").v4Value());  // and its own address (DNAT undone)
  // The quoted TCP checksum is the one the server's own segment had, and the
  // error's checksum holds.
  const auto sent = PacketBuilder()
                        .eth(kWeb1, kGatewayMac)
                        .ipv4(ip("192.0.2.4"), ip("198.51.100.9"))
                        .tcp(443, 40000, tf::kAck | tf::kPsh, kServerIsn + 1, kIsn + 1)
                        .payload(std::string(1400, 'x'))
                        .build();
  EXPECT_EQ(std::memcmp(in + 20 + 16, sent.data() + 14 + 20 + 16, 2), 0);
  auto icmpValid = [&](const pkt::Packet& p) {
    return pkt::internetChecksum(Bytes(out_.data() + p.l4_off, p.l3_end - p.l4_off)) == 0;
  };
  EXPECT_TRUE(icmpValid(e));
  // From the server's side, about a client segment the server received.
  const auto got = PacketBuilder()
                       .eth(kWeb1, kGatewayMac)
                       .ipv4(ip("198.51.100.9"), ip("192.0.2.4"))
                       .tcp(40000, 443, tf::kAck, kIsn + 1, kServerIsn + 1401)
                       .build();
  v = send("contoso/web1", PacketBuilder()
                               .eth(kWeb1, kGatewayMac)
                               .ipv4(ip("192.0.2.4"), ip("198.51.100.9"))
                               .icmp(3, 3)
                               .payload(quote(got))
                               .build());
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  e = decodeOut();
  in = reinterpret_cast<const uint8_t*>(out_.data()) + e.icmp.inner_off;
  EXPECT_EQ(be32(in + 20 + 8), cookie + 1401);  // the client's numbering
  EXPECT_TRUE(icmpValid(e));
}

// An ACK with a forged cookie opens nothing; a server that refuses the
// connection resets the client with a number it accepts.
TEST_F(SynProxyTest, ForgedCookiesAndRefusedConnections) {
  proxied(policy::DdosSynProxy::Always);
  Verdict v = send("uplink", fromClient(tf::kAck, kIsn + 1, 0x12345678, ts(1, 2), 502));
  EXPECT_EQ(v.action, Action::Drop);
  EXPECT_EQ(v.reason, Reason::TcpNoSyn);
  EXPECT_EQ(pl_->stats().syn_cookies_invalid, 1u);
  EXPECT_EQ(pl_->flows().size(), 0u);

  send("uplink", fromClient(tf::kSyn, kIsn, 0, ts(1, 0), 64240));
  const pkt::Packet sa = decodeOut();
  // Off by one in the acknowledgment: not this handshake's cookie.
  EXPECT_EQ(
      send("uplink", fromClient(tf::kAck, kIsn + 1, sa.tcp.seq + 2, ts(2, sa.tcp.opt.ts_val), 502))
          .action,
      Action::Drop);
  ASSERT_EQ(
      send("uplink", fromClient(tf::kAck, kIsn + 1, sa.tcp.seq + 1, ts(2, sa.tcp.opt.ts_val), 502))
          .action,
      Action::Forward);
  v = send("contoso/web1", fromServer(tf::kRst | tf::kAck, 0, kIsn + 1, {}, 0));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_TRUE(checksumsValid());
  EXPECT_EQ(decodeOut().tcp.seq, sa.tcp.seq + 1);
}

// The proxy answers only for a local input endpoint whose ACL admits the
// source: the ssh endpoint's ACL refuses an Internet client, a port with no
// endpoint has nothing to answer for.
TEST_F(SynProxyTest, AnswersOnlyWhatAnEndpointAdmits) {
  proxied(policy::DdosSynProxy::Always);
  uint16_t ssh = 0;
  for (const EndpointInfo& e : cp_->endpoints)
    if (e.name == "contoso/ssh") ssh = e.public_port;
  ASSERT_NE(ssh, 0);
  auto syn = [&](uint16_t dport) {
    return PacketBuilder()
        .eth(kRouter, kGatewayMac)
        .ipv4(ip("198.51.100.9"), ip("203.0.113.10"))
        .tcp(40000, dport, tf::kSyn, kIsn, 0, ts(1, 0), 64240)
        .build();
  };
  EXPECT_EQ(send("uplink", syn(ssh)).reason, Reason::EndpointAcl);
  EXPECT_EQ(send("uplink", syn(8080)).reason, Reason::NoEndpoint);
  EXPECT_EQ(pl_->stats().syn_cookies_sent, 0u);
  EXPECT_EQ(send("uplink", syn(443)).action, Action::Answer);
  // The last endpoint found is tried first: another one in between, and a
  // port with none, each still get their own answer.
  EXPECT_EQ(send("uplink", syn(443)).action, Action::Answer);
  EXPECT_EQ(send("uplink", syn(ssh)).reason, Reason::EndpointAcl);
  EXPECT_EQ(send("uplink", syn(443)).action, Action::Answer);
  EXPECT_EQ(send("uplink", syn(8080)).reason, Reason::NoEndpoint);
  EXPECT_EQ(send("uplink", syn(443)).action, Action::Answer);
  EXPECT_EQ(pl_->stats().syn_cookies_sent, 4u);

  // A new policy moves the https endpoint to 8443: what was remembered of
  // the old one is not used.
  auto moved = std::make_shared<policy::Policy>(*model_);
  bool found = false;
  for (auto& t : moved->tenants)
    for (auto& e : t.endpoints)
      if (e.public_port == 443) {
        e.public_port = 8443;
        found = true;
      }
  ASSERT_TRUE(found);
  pl_->setPolicy(compileOrDie(moved, 2));
  EXPECT_EQ(send("uplink", syn(443)).reason, Reason::NoEndpoint);
  EXPECT_EQ(send("uplink", syn(8443)).action, Action::Answer);
}

// On-attack (the default): SYNs open flows until a SYN flood on the address
// is detected, then get cookies; the flood creates no flows from then on.
TEST_F(SynProxyTest, TurnsOnWhenASynFloodIsDetected) {
  proxied(policy::DdosSynProxy::OnAttack);
  EXPECT_EQ(send("uplink", fromClient(tf::kSyn, kIsn, 0, ts(1, 0), 64240)).action, Action::Forward);
  for (uint32_t i = 0; i < 6000; ++i) {
    ts_ += 100'000;  // 10 kpps, over the profile's 2 kpps
    send("uplink", tcp(kRouter, ("198.51.100." + std::to_string(1 + i % 250)).c_str(),
                       static_cast<uint16_t>(1024 + i), "203.0.113.10", 443, tf::kSyn));
  }
  EXPECT_EQ(pl_->stats().ddos_attacks, 1u);
  EXPECT_GT(pl_->stats().syn_cookies_sent, 3000u);
  EXPECT_LT(pl_->flows().size(), 3000u);
  Verdict v = send("uplink", fromClient(tf::kSyn, kIsn, 0, ts(1, 0), 64240, {}, 40001));
  EXPECT_EQ(v.action, Action::Answer);
}

// IPv6 as IPv4: contoso's deployment on an IPv6 VIP, proxied; the cookie,
// the server's handshake and the translation with IPv6 checksums.
// A burst's SYN-ACKs get their cookies' MACs at the burst's end, eight at
// a time: each must come out byte for byte as process() answers the same SYN
// alone, with valid checksums, and its ACK must open the connection.
TEST_F(SynProxyTest, ABurstAnswersAsOneByOne) {
  proxied(policy::DdosSynProxy::Always);
  constexpr size_t kSyns = 19;  // two groups of eight and a remainder
  std::vector<std::vector<std::byte>> syns;
  for (size_t i = 0; i < kSyns; ++i) {
    pkt::TcpOptions o;
    if (i % 2) o = ts(1000 + static_cast<uint32_t>(i), 0);  // half with timestamps
    o.has_mss = i % 4 != 3;
    o.mss = static_cast<uint16_t>(1200 + 20 * i);
    o.has_wscale = i % 3 == 0;
    o.wscale = static_cast<uint8_t>(i % 15);
    o.sack_permitted = i % 5 == 0;
    syns.push_back(fromClient(tf::kSyn, kIsn + static_cast<uint32_t>(i) * 7919, 0, o, 64240, {},
                              static_cast<uint16_t>(41000 + i)));
  }
  ts_ += 1000;
  std::vector<Pipeline::Input> in;
  for (const auto& f : syns)
    in.push_back({pkt::LinkType::Ethernet, Bytes(f.data(), f.size()),
                  static_cast<uint32_t>(f.size()), port("uplink"), ts_});
  std::vector<Verdict> out(kSyns);
  ASSERT_EQ(pl_->processBurst(in, out), kSyns);
  std::vector<std::vector<std::byte>> burst;
  for (const Verdict& v : out) {
    ASSERT_EQ(v.action, Action::Answer) << toString(v.reason);
    burst.emplace_back(v.frame.begin(), v.frame.end());
  }
  for (size_t i = 0; i < kSyns; ++i) {
    const Verdict v = pl_->process(pkt::LinkType::Ethernet, Bytes(syns[i].data(), syns[i].size()),
                                   static_cast<uint32_t>(syns[i].size()), port("uplink"), ts_);
    ASSERT_EQ(v.action, Action::Answer);
    out_.assign(v.frame.begin(), v.frame.end());
    EXPECT_EQ(out_, burst[i]) << "SYN " << i;
    out_ = burst[i];
    EXPECT_TRUE(checksumsValid()) << "SYN " << i;
  }
  EXPECT_EQ(pl_->stats().syn_cookies_sent, 2 * kSyns);
  for (size_t i = 0; i < kSyns; i += 6) {
    out_ = burst[i];
    const pkt::Packet sa = decodeOut();
    const pkt::TcpOptions o =
        sa.tcp.opt.has_timestamp ? ts(2000, sa.tcp.opt.ts_val) : pkt::TcpOptions{};
    const Verdict v = send("uplink", fromClient(tf::kAck, sa.tcp.ack, sa.tcp.seq + 1, o, 502, {},
                                                static_cast<uint16_t>(41000 + i)));
    EXPECT_EQ(v.action, Action::Forward) << "SYN " << i << ": " << toString(v.reason);
    EXPECT_EQ(v.out_port, port("contoso/web1"));
  }
  EXPECT_EQ(pl_->stats().syn_cookies_valid, (kSyns + 5) / 6);
}

TEST_F(SynProxyTest, Ipv6AsIpv4) {
  auto m = std::make_shared<policy::Policy>(*loadExample());
  const IpAddr vip = ip("2001:db8:ff::10");
  for (policy::Tenant& t : m->tenants)
    for (policy::Deployment& d : t.deployments)
      if (d.name == "shop") d.vips = {vip};
  m->ddos.profiles.at(0).syn_proxy = policy::DdosSynProxy::Always;
  m->ddos.protect.at(0).prefixes = {*Prefix::parse("2001:db8:ff::10/128")};
  model_ = m;
  cp_ = compileOrDie(model_);
  Config cfg;
  cfg.conntrack.seed = 7;
  pl_ = std::make_unique<Pipeline>(cp_, cfg);
  auto client = [&](uint8_t flags, uint32_t seq, uint32_t ack, const pkt::TcpOptions& o,
                    std::string_view payload = {}) {
    return PacketBuilder()
        .eth(kRouter, kGatewayMac)
        .ipv6(ip("2001:db8:100::9"), vip)
        .tcp(40000, 443, flags, seq, ack, o, 502)
        .payload(payload)
        .build();
  };
  auto server = [&](uint8_t flags, uint32_t seq, uint32_t ack, const pkt::TcpOptions& o,
                    std::string_view payload = {}) {
    return PacketBuilder()
        .eth(kWeb1, kGatewayMac)
        .ipv6(ip("2001:db8:a:1::4"), ip("2001:db8:100::9"))
        .tcp(443, 40000, flags, seq, ack, o, 1000)
        .payload(payload)
        .build();
  };
  pkt::TcpOptions syn = ts(1000, 0);
  syn.has_mss = syn.has_wscale = syn.sack_permitted = true;
  syn.mss = 1440;
  syn.wscale = 7;
  Verdict v = send("uplink", client(tf::kSyn, kIsn, 0, syn));
  ASSERT_EQ(v.action, Action::Answer) << toString(v.reason);
  EXPECT_TRUE(checksumsValid());
  const pkt::Packet sa = decodeOut();
  EXPECT_EQ(sa.src, vip);
  EXPECT_EQ(sa.tcp.opt.mss, 1440);  // the IPv6 default
  v = send("uplink", client(tf::kAck, kIsn + 1, sa.tcp.seq + 1, ts(1010, sa.tcp.opt.ts_val)));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_TRUE(checksumsValid());
  EXPECT_EQ(decodeOut().dst, ip("2001:db8:a:1::4"));
  pkt::TcpOptions ssa = ts(5000, 1010);
  ssa.has_wscale = true;
  ssa.wscale = 7;
  v = send("contoso/web1", server(tf::kSyn | tf::kAck, kServerIsn, kIsn + 1, ssa));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_TRUE(checksumsValid());
  v = send("contoso/web1",
           server(tf::kAck | tf::kPsh, kServerIsn + 1, kIsn + 1, ts(5001, 1010), "hello"));
  ASSERT_EQ(v.action, Action::Forward) << toString(v.reason);
  EXPECT_TRUE(checksumsValid());
  const pkt::Packet r = decodeOut();
  EXPECT_EQ(r.src, vip);
  EXPECT_EQ(r.tcp.seq, sa.tcp.seq + 1);
  EXPECT_EQ(r.tcp.opt.ts_val, sa.tcp.opt.ts_val + 1);
}

// The words a rewrite changes need not be aligned: a timestamp after one NOP
// and a SACK block after it straddle 16-bit words, and the checksum follows.
TEST(SynProxyTranslate, UnalignedOptionsKeepTheChecksumRight) {
  std::vector<std::byte> f =
      PacketBuilder()
          .eth(kRouter, kGatewayMac)
          .ipv4(ip("198.51.100.9"), ip("192.0.2.4"))
          .tcp(40000, 443, tf::kAck, 100, 200, {}, 1000)
          .payload(std::string_view("\x01\x08\x0a\x00\x00\x00\x05\x00\x00\x00\x07"
                                    "\x05\x0a\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00",
                                    24))
          .build();
  // Turn the 24 payload bytes into options: data offset 11 words.
  const size_t l4 = 14 + 20;
  f[l4 + 12] = std::byte{11 << 4};
  pkt::Decoder d;
  pkt::Packet p;
  ASSERT_TRUE(d.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p));
  ASSERT_TRUE(pkt::completeTransportChecksum(f, p));
  ASSERT_TRUE(d.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p));
  ASSERT_TRUE(p.tcp.opt.has_timestamp);
  synproxy::Translation t;
  t.state = synproxy::Translation::State::Open;
  t.timestamps = true;
  t.seq_delta = 0x01000000;
  t.ts_delta = 0x10;
  synproxy::translate(f, p, t, true);
  pkt::Packet q;
  ASSERT_TRUE(d.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), q));
  EXPECT_EQ(q.tcp.ack, 200u + 0x01000000);
  EXPECT_EQ(q.tcp.opt.ts_ecr, 7u + 0x10);
  const auto get32 = [&](size_t at) {
    return uint32_t{static_cast<uint8_t>(f[at])} << 24 |
           uint32_t{static_cast<uint8_t>(f[at + 1])} << 16 |
           uint32_t{static_cast<uint8_t>(f[at + 2])} << 8 |
           uint32_t{static_cast<uint8_t>(f[at + 3])};
  };
  EXPECT_EQ(get32(l4 + 20 + 13), 1u + 0x01000000);  // SACK left edge
  EXPECT_EQ(get32(l4 + 20 + 17), 2u + 0x01000000);  // right edge
  const Bytes seg(f.data() + l4, f.size() - l4);
  EXPECT_EQ(pkt::checksumFinish(
                pkt::checksumPartial(seg, pkt::pseudoHeaderSum(q.src, q.dst, pkt::ipproto::kTcp,
                                                               static_cast<uint32_t>(seg.size())))),
            0);
}

}  // namespace
}  // namespace palisade::pipeline

// --- connection limits --------------------------------------------------------

namespace palisade::pipeline {
namespace {

class ConnLimitTest : public PipelineTest {
 protected:
  void limited(const std::function<void(policy::DdosProfile&)>& set) {
    auto m = std::make_shared<policy::Policy>(*loadExample());
    m->ddos.profiles.at(0).syn_proxy = policy::DdosSynProxy::Off;
    set(m->ddos.profiles.at(0));
    model_ = m;
    cp_ = compileOrDie(model_);
    pl_ = std::make_unique<Pipeline>(cp_, Config{});
  }
  Verdict syn(const char* client, uint16_t sport) {
    return send("uplink", tcp(kRouter, client, sport, "203.0.113.10", 443, tf::kSyn));
  }
};

// Per client: at most 2 at once; another client is not affected; a closed
// connection's place is free again once its flow ends.
TEST_F(ConnLimitTest, ConcurrentConnectionsPerClient) {
  limited([](policy::DdosProfile& p) { p.source_connections = 2; });
  EXPECT_EQ(syn("198.51.100.9", 40000).action, Action::Forward);
  EXPECT_EQ(syn("198.51.100.9", 40001).action, Action::Forward);
  Trace t;
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.9", 40002, "203.0.113.10", 443, tf::kSyn), &t).reason,
      Reason::ConnLimit);
  ASSERT_FALSE(t.empty());
  EXPECT_NE(t.back().detail.find("concurrent connections"), std::string::npos) << t.back().detail;
  EXPECT_EQ(syn("198.51.100.10", 40002).action, Action::Forward);
  // The client resets its first connection: closed, it counts no more (its
  // flow lingers in CLOSE until tcp_close).
  send("uplink", tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443, tf::kRst, 1001));
  EXPECT_EQ(pl_->flows().size(), 3u);
  EXPECT_EQ(syn("198.51.100.9", 40002).action, Action::Forward);
  EXPECT_EQ(syn("198.51.100.9", 40003).reason, Reason::ConnLimit);
}

// The per-source rate limit reaches established connections: one client's
// data past its 10 pps (a second's burst) is dropped as ddos_limit, the
// server's replies and another client are not held back.
TEST_F(ConnLimitTest, PerSourceRateLimitOnEstablishedConnections) {
  limited([](policy::DdosProfile& p) { p.source_pps = 10; });
  auto open = [&](const char* client) {
    ASSERT_EQ(syn(client, 40000).action, Action::Forward);
    send("contoso/web1",
         tcp(kWeb1, "192.0.2.4", 443, client, 40000, tf::kSyn | tf::kAck, 5000, 1001));
    ASSERT_EQ(send("uplink", tcp(kRouter, client, 40000, "203.0.113.10", 443, tf::kAck, 1001, 5001))
                  .action,
              Action::Forward);
  };
  open("198.51.100.9");
  size_t passed = 0;
  for (uint32_t i = 0; i < 100; ++i) {
    ts_ += 1'000'000;  // 1,000 pps
    passed += send("uplink", tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443,
                                 tf::kAck | tf::kPsh, 1001, 5001))
                  .action == Action::Forward;
  }
  EXPECT_GE(passed, 5u);
  EXPECT_LE(passed, 12u);  // what the SYN and ACK left of the burst, and 0.1 s of 10 pps
  EXPECT_GT(drops(Reason::DdosLimit), 85u);
  Trace t;
  send("uplink",
       tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443, tf::kAck | tf::kPsh, 1001, 5001),
       &t);
  ASSERT_FALSE(t.empty());
  EXPECT_NE(t.back().detail.find("rate limit for 198.51.100.9 (established connection"),
            std::string::npos)
      << t.back().detail;
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(send("contoso/web1", tcp(kWeb1, "192.0.2.4", 443, "198.51.100.9", 40000,
                                       tf::kAck | tf::kPsh, 5001, 1001))
                  .action,
              Action::Forward);
  open("198.51.100.10");
}

// A flow never answered is no conversation: the DDoS stage counts each of its
// packets, so one source and port flooding the VIP with SYNs is a SYN flood
// (before, only the first SYN was counted: the rest belonged to its flow).
TEST_F(ConnLimitTest, AFloodInsideOneUnansweredFlowIsSeen) {
  limited([](policy::DdosProfile&) {});
  for (uint32_t i = 0; i < 5000; ++i) {
    ts_ += 100'000;  // 10 kpps, one 5-tuple
    syn("198.51.100.9", 40000);
  }
  EXPECT_EQ(pl_->stats().ddos_attacks, 1u);
}

// Per endpoint: at most 3 half-open; a finished handshake makes room.
TEST_F(ConnLimitTest, HalfOpenConnectionsPerEndpoint) {
  limited([](policy::DdosProfile& p) { p.target_half_open = 3; });
  for (uint16_t i = 0; i < 3; ++i)
    EXPECT_EQ(syn("198.51.100.9", static_cast<uint16_t>(40000 + i)).action, Action::Forward);
  EXPECT_EQ(syn("198.51.100.11", 40000).reason, Reason::HalfOpenLimit);
  // 40000's handshake completes (the DDoS stage's SYN-to-ACK ratio counts it
  // for the VIP, once).
  send("contoso/web1",
       tcp(kWeb1, "192.0.2.4", 443, "198.51.100.9", 40000, tf::kSyn | tf::kAck, 5000, 1001));
  EXPECT_EQ(pl_->stats().ddos_handshakes, 0u);
  ASSERT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443, tf::kAck, 1001, 5001))
          .action,
      Action::Forward);
  EXPECT_EQ(pl_->stats().ddos_handshakes, 1u);
  send("uplink",
       tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443, tf::kAck | tf::kPsh, 1001, 5001));
  EXPECT_EQ(pl_->stats().ddos_handshakes, 1u);
  EXPECT_EQ(syn("198.51.100.11", 40000).action, Action::Forward);
  EXPECT_EQ(syn("198.51.100.12", 40000).reason, Reason::HalfOpenLimit);
}

// New connections per second per client: a second's worth at once, then
// the rate; refused attempts spend nothing.
TEST_F(ConnLimitTest, NewConnectionsPerSecond) {
  limited([](policy::DdosProfile& p) { p.source_cps = 5; });
  for (uint16_t i = 0; i < 5; ++i)
    EXPECT_EQ(syn("198.51.100.9", static_cast<uint16_t>(40000 + i)).action, Action::Forward);
  EXPECT_EQ(syn("198.51.100.9", 40005).reason, Reason::ConnRateLimit);
  EXPECT_EQ(syn("198.51.100.9", 40006).reason, Reason::ConnRateLimit);
  ts_ += 200'000'000;  // one more token
  EXPECT_EQ(syn("198.51.100.9", 40007).action, Action::Forward);
  EXPECT_EQ(syn("198.51.100.9", 40008).reason, Reason::ConnRateLimit);
  EXPECT_EQ(drops(Reason::ConnRateLimit), 3u);
}

// The NIC behind the endpoint gets at most nic_pps from the uplink, every
// packet of its connections counted; what it sends back is not limited.
TEST_F(ConnLimitTest, PacketsToTheNicBehindAnEndpoint) {
  limited([](policy::DdosProfile& p) { p.nic_pps = 100; });
  ASSERT_EQ(syn("198.51.100.9", 40000).action, Action::Forward);
  send("contoso/web1",
       tcp(kWeb1, "192.0.2.4", 443, "198.51.100.9", 40000, tf::kSyn | tf::kAck, 5000, 1001));
  int passed = 0;
  Trace t;
  for (uint32_t i = 0; i < 150; ++i) {
    t.clear();
    const Verdict v = send(
        "uplink",
        tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443, tf::kAck, 1001 + i, 5001), &t);
    passed += v.action == Action::Forward;
    if (v.action == Action::Drop) {
      EXPECT_EQ(v.reason, Reason::NicLimit);
    }
  }
  EXPECT_GE(passed, 98);  // a second's worth (the SYN took one), and what 150 us earned
  EXPECT_LE(passed, 101);
  EXPECT_NE(t.back().detail.find("rate limit for contoso/web1"), std::string::npos)
      << t.back().detail;
  EXPECT_EQ(send("contoso/web1",
                 tcp(kWeb1, "192.0.2.4", 443, "198.51.100.9", 40000, tf::kAck, 5001, 1151))
                .action,
            Action::Forward);
  ts_ += 1'000'000'000;  // a second later: a second's worth again
  EXPECT_EQ(
      send("uplink", tcp(kRouter, "198.51.100.9", 40000, "203.0.113.10", 443, tf::kAck, 1151, 5001))
          .action,
      Action::Forward);
}

// Counts come back to zero however flows end (expiry here): the same
// client opens as many again.
TEST_F(ConnLimitTest, ExpiredFlowsGiveTheirPlaceBack) {
  limited([](policy::DdosProfile& p) {
    p.source_connections = 3;
    p.target_connections = 3;
  });
  for (int round = 0; round < 3; ++round) {
    for (uint16_t i = 0; i < 3; ++i)
      EXPECT_EQ(syn("198.51.100.9", static_cast<uint16_t>(40000 + round * 10 + i)).action,
                Action::Forward);
    EXPECT_EQ(syn("198.51.100.13", static_cast<uint16_t>(41000 + round)).reason, Reason::ConnLimit);
    ts_ += 200'000'000'000;  // past tcp_syn_sent
    pl_->tick(ts_, 1u << 20);
    EXPECT_EQ(pl_->flows().size(), 0u);
  }
}

}  // namespace
}  // namespace palisade::pipeline

// --- quarantine -----------------------------------------------------------------

namespace palisade::pipeline {
namespace {

// A UDP flood launched from web1 leaves by contoso's VIP (SNAT): the DDoS
// stage sees an outbound attack from the protected VIP, and the profile's
// quarantine (isolate, the default) cuts web1 off on its own port, its
// established connections too, while another NIC of the deployment goes on.
// When the attack ends, web1 is released; both are events.
TEST_F(PipelineTest, AnAttackFromAVmQuarantinesItsNic) {
  events::EventQueue q(1 << 16, 256);
  make(Config{}, &q);
  std::vector<std::string> events;
  auto drain = [&] {
    while (events::Event* e = q.front()) {
      std::string s;
      events::formatEveJson(*e, s);
      if (s.find("\"nic\":") != std::string::npos) events.push_back(s);
      q.pop();
    }
  };
  auto udp = [&](const MacAddr& m, const char* src, const char* dst, uint16_t dport) {
    return PacketBuilder()
        .eth(m, kGatewayMac)
        .ipv4(ip(src), ip(dst))
        .udp(5000, dport)
        .payload("x")
        .build();
  };
  // A connection of web1's, and one of web2's, before the flood.
  ASSERT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 33000, "198.51.100.50", 443, tf::kSyn)).action,
      Action::Forward);
  const MacAddr kWeb2 = mac("02:00:0a:00:00:05");
  ASSERT_EQ(
      send("contoso/web2", tcp(kWeb2, "192.0.2.5", 40000, "198.51.100.9", 80, tf::kSyn)).action,
      Action::Forward);
  for (uint32_t i = 0; i < 10000; ++i) {
    ts_ += 50'000;  // 20 kpps
    send("contoso/web1",
         udp(kWeb1, "192.0.2.4", ("198.51.100." + std::to_string(1 + i % 200)).c_str(),
             static_cast<uint16_t>(1024 + i)));
    if (i % 1000 == 0) drain();
  }
  drain();
  EXPECT_GT(drops(Reason::Quarantine), 1000u);
  EXPECT_EQ(pl_->stats().quarantined, 1u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("\"event\":\"quarantine\""), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"nic\":\"contoso/web1\""), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"quarantine\":\"isolate\""), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"target\":\"203.0.113.10\""), std::string::npos) << events[0];
  // Its connection is cut off too; web2 is not; the switch
  // still answers web1's ARP.
  Trace t;
  EXPECT_EQ(
      send("contoso/web1", tcp(kWeb1, "192.0.2.4", 33000, "198.51.100.50", 443, tf::kAck, 1001), &t)
          .reason,
      Reason::Quarantine);
  ASSERT_FALSE(t.empty());
  EXPECT_NE(t.back().detail.find("quarantined (isolate) for attack #"), std::string::npos)
      << t.back().detail;
  EXPECT_EQ(
      send("contoso/web2", tcp(kWeb2, "192.0.2.5", 40001, "198.51.100.9", 80, tf::kSyn)).action,
      Action::Forward);
  const auto arp = PacketBuilder()
                       .eth(kWeb1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                       .arp(1, kWeb1, ip("192.0.2.4"), MacAddr{}, ip("192.0.2.1"))
                       .build();
  EXPECT_EQ(send("contoso/web1", arp).action, Action::Answer);
  // The flood stops; 15 s later the attack is over and web1 is released.
  for (int s = 0; s < 15; ++s) {
    ts_ += 1'000'000'000;
    pl_->tick(ts_);
  }
  drain();
  EXPECT_EQ(pl_->stats().quarantined, 0u);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[1].find("\"event\":\"release\""), std::string::npos) << events[1];
  EXPECT_NE(events[1].find("\"nic\":\"contoso/web1\""), std::string::npos) << events[1];
  EXPECT_EQ(send("contoso/web1", udp(kWeb1, "192.0.2.4", "198.51.100.53", 53)).action,
            Action::Forward);
}

// The same from one flow: web1 floods one port of one host from one port, a
// flow no reply comes back on; every packet of it is counted leaving by the
// VIP, and web1 is quarantined.
TEST_F(PipelineTest, AFloodInsideOneFlowFromAVmQuarantinesItsNic) {
  make(Config{});
  const auto flood = PacketBuilder()
                         .eth(kWeb1, kGatewayMac)
                         .ipv4(ip("192.0.2.4"), ip("198.51.100.66"))
                         .udp(5000, 9999)
                         .payload("x")
                         .build();
  for (uint32_t i = 0; i < 10000; ++i) {
    ts_ += 50'000;  // 20 kpps
    send("contoso/web1", flood);
  }
  EXPECT_EQ(pl_->flows().size(), 1u);
  EXPECT_EQ(pl_->stats().quarantined, 1u);
  EXPECT_GT(drops(Reason::Quarantine), 1000u);
}

}  // namespace
}  // namespace palisade::pipeline
