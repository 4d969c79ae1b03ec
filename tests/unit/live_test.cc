// The live mode's pure parts: the fanout program (both directions of every
// kind of flow reach one worker), the uplink's proxy ARP and next-hop
// addressing, and checksum completion for offloaded frames.
#include <gtest/gtest.h>

#include <set>

#include "live/fanout.h"
#include "live/segment.h"
#include "live/uplink.h"
#include "packet/builder.h"
#include "packet/checksum.h"
#include "packet/decoder.h"

namespace palisade::live {
namespace {

using pkt::PacketBuilder;

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}
Prefix pfx(const char* s) {
  return *Prefix::parse(s);
}
const MacAddr kA{{2, 0, 0, 0, 0, 1}}, kB{{2, 0, 0, 0, 0, 2}};

std::vector<std::byte> tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  const IpAddr s = ip(src), d = ip(dst);
  PacketBuilder b;
  b.eth(kA, kB);
  if (s.isV4())
    b.ipv4(s, d);
  else
    b.ipv6(s, d);
  return b.tcp(sport, dport, pkt::tcpflag::kSyn).build();
}

std::vector<std::byte> vxlan(const char* inner_src, const char* inner_dst, uint16_t port = 4789,
                             bool v6_underlay = false) {
  PacketBuilder b;
  b.eth(kA, kB);
  if (v6_underlay)
    b.ipv6(ip("2001:db8:ff::1"), ip("2001:db8:ff::2"));
  else
    b.ipv4(ip("198.51.100.202"), ip("198.51.100.201"));
  b.udp(50000, port).vxlan(5001).eth(kA, kB);
  const IpAddr s = ip(inner_src), d = ip(inner_dst);
  if (s.isV4())
    b.ipv4(s, d);
  else
    b.ipv6(s, d);
  return b.tcp(40000, 5432, pkt::tcpflag::kAck).build();
}

class FanoutTest : public ::testing::Test {
 protected:
  const std::vector<Prefix> vnet_{pfx("192.0.2.0/25"), pfx("2001:db8:a::/48")};
  const std::vector<sock_filter> nic_ = fanoutProgram(PortRole::Nic, vnet_, 0);
  const std::vector<sock_filter> uplink_ = fanoutProgram(PortRole::Uplink, {}, 4789);
  uint32_t onNic(const std::vector<std::byte>& f) { return runFanoutProgram(nic_, f); }
  uint32_t onUplink(const std::vector<std::byte>& f) { return runFanoutProgram(uplink_, f); }
};

TEST_F(FanoutTest, DnatFlowMeetsOnOneWorker) {
  // Client -> VIP:443 on the uplink; NIC 192.0.2.4:443 -> client on its port.
  for (const char* client : {"198.51.100.7", "198.51.100.99", "203.0.113.77"}) {
    const uint32_t in = onUplink(tcp(client, 5555, "203.0.113.10", 443));
    const uint32_t back = onNic(tcp("192.0.2.4", 443, client, 5555));
    EXPECT_EQ(in, back) << client;
  }
  EXPECT_EQ(onUplink(tcp("2001:db8:100::7", 5555, "2001:db8:ee::10", 443)),
            onNic(tcp("2001:db8:a:1::4", 443, "2001:db8:100::7", 5555)));
}

TEST_F(FanoutTest, SnatFlowMeetsOnOneWorker) {
  // NIC -> server on its port; server -> VIP:allocated port on the uplink.
  EXPECT_EQ(onNic(tcp("192.0.2.4", 40000, "198.51.100.7", 80)),
            onUplink(tcp("198.51.100.7", 80, "203.0.113.10", 61234)));
}

TEST_F(FanoutTest, EastWestAndVxlanMeetOnOneWorker) {
  // Two NICs of the VNet, each on its own port (same VNet program).
  EXPECT_EQ(onNic(tcp("192.0.2.4", 40000, "192.0.2.68", 5432)),
            onNic(tcp("192.0.2.68", 5432, "192.0.2.4", 40000)));
  // From a NIC on another host, by VXLAN over IPv4 or IPv6, to a local NIC.
  EXPECT_EQ(onUplink(vxlan("192.0.2.36", "192.0.2.68")),
            onNic(tcp("192.0.2.68", 5432, "192.0.2.36", 40000)));
  EXPECT_EQ(onUplink(vxlan("192.0.2.36", "192.0.2.68", 4789, true)),
            onNic(tcp("192.0.2.68", 5432, "192.0.2.36", 40000)));
  EXPECT_EQ(onUplink(vxlan("2001:db8:a:1::5", "2001:db8:a:1::4")),
            onNic(tcp("2001:db8:a:1::4", 5432, "2001:db8:a:1::5", 40000)));
  // UDP to another port is not VXLAN: hashed on its (remote) source.
  EXPECT_EQ(onUplink(vxlan("192.0.2.36", "192.0.2.68", 4790)),
            onUplink(tcp("198.51.100.202", 1, "203.0.113.10", 2)));
}

TEST_F(FanoutTest, SpreadsFlowsAndSendsNonIpToWorkerZero) {
  std::set<uint32_t> workers;
  for (int i = 1; i < 200; ++i) {
    const std::string client = "198.51.100." + std::to_string(i);
    workers.insert(onUplink(tcp(client.c_str(), 5555, "203.0.113.10", 443)) % 4);
  }
  EXPECT_EQ(workers.size(), 4u);
  const auto arp = PacketBuilder()
                       .eth(kA, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                       .arp(1, kA, ip("192.0.2.4"), MacAddr{}, ip("192.0.2.1"))
                       .build();
  EXPECT_EQ(onNic(arp), 0u);
  EXPECT_EQ(onUplink(arp), 0u);
  // Truncated headers end the program with 0, as in the kernel.
  auto cut = tcp("198.51.100.7", 1, "203.0.113.10", 2);
  cut.resize(20);
  EXPECT_EQ(onUplink(cut), 0u);
}

TEST(Fanout, ManyPrefixesStayWithinTheKernelsLimits) {
  std::vector<Prefix> many;
  for (int i = 0; i < 250; ++i)
    many.push_back(pfx(("10." + std::to_string(i) + ".0.0/16").c_str()));
  many.push_back(pfx("2001:db8:a::/48"));
  const auto prog = fanoutProgram(PortRole::Nic, many, 0);
  EXPECT_LE(prog.size(), size_t{BPF_MAXINSNS});
  for (const sock_filter& f : prog)  // conditionals only ever hop over one `ja`
    if (BPF_CLASS(f.code) == BPF_JMP && BPF_OP(f.code) != BPF_JA) {
      EXPECT_LE(f.jt, 1);
      EXPECT_LE(f.jf, 1);
    }
  // The last prefix still counts as private: symmetric.
  EXPECT_EQ(runFanoutProgram(prog, tcp("10.249.0.1", 1, "10.249.3.3", 2)),
            runFanoutProgram(prog, tcp("10.249.3.3", 2, "10.249.0.1", 1)));
  EXPECT_EQ(runFanoutProgram(prog, tcp("2001:db8:a::1", 1, "2001:db8:a::2", 2)),
            runFanoutProgram(prog, tcp("2001:db8:a::2", 2, "2001:db8:a::1", 1)));
}

TEST(Uplink, AnswersArpForOwnedAddressesOnly) {
  const MacAddr own{{2, 0xaa, 0, 0, 0, 1}};
  Uplink up({own, {ip("198.51.100.201"), pfx("198.51.100.0/24"), std::nullopt}, {}});
  up.setOwned({ip("203.0.113.10"), ip("198.51.100.201")});
  pkt::Decoder dec;
  pkt::Packet p;
  auto ask = [&](const char* target) {
    const auto f = PacketBuilder()
                       .eth(kA, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                       .arp(1, kA, ip("198.51.100.7"), MacAddr{}, ip(target))
                       .build();
    EXPECT_TRUE(dec.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p));
    std::vector<std::byte> reply;
    const bool answered = up.onArp(p, reply);
    if (answered) {
      pkt::Packet r;
      EXPECT_TRUE(
          dec.decode(pkt::LinkType::Ethernet, reply, static_cast<uint32_t>(reply.size()), r));
      EXPECT_EQ(r.arp.op, 2);
      EXPECT_EQ(r.arp.sha, own);
      EXPECT_EQ(r.arp.spa, ip(target));
      EXPECT_EQ(r.arp.tpa, ip("198.51.100.7"));
      EXPECT_EQ(r.eth_dst, kA);
    }
    return answered;
  };
  EXPECT_TRUE(ask("203.0.113.10"));
  EXPECT_TRUE(ask("198.51.100.201"));
  EXPECT_FALSE(ask("203.0.113.11"));
  // The asker was learnt from its request.
  EXPECT_EQ(up.lookup(ip("198.51.100.7")), kA);
}

TEST(Uplink, AddressesFramesForTheirNextHop) {
  const MacAddr own{{2, 0xaa, 0, 0, 0, 1}}, router{{2, 0xbb, 0, 0, 0, 1}};
  Uplink up({own, {ip("198.51.100.201"), pfx("198.51.100.0/24"), ip("198.51.100.1")}, {}});
  auto frame = tcp("203.0.113.10", 443, "198.51.100.7", 5555);
  std::vector<std::byte> arp;
  // Nothing known: an ARP request for the on-link destination, once a second.
  EXPECT_FALSE(up.address(frame, 1'000'000'000, arp));
  ASSERT_FALSE(arp.empty());
  pkt::Decoder dec;
  pkt::Packet p;
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, arp, static_cast<uint32_t>(arp.size()), p));
  EXPECT_EQ(p.arp.tpa, ip("198.51.100.7"));
  EXPECT_EQ(p.arp.spa, ip("198.51.100.201"));
  EXPECT_FALSE(up.address(frame, 1'500'000'000, arp));
  EXPECT_TRUE(arp.empty());
  EXPECT_FALSE(up.address(frame, 2'100'000'000, arp));
  EXPECT_FALSE(arp.empty());
  // Learnt from an arriving packet: the frame goes to that MAC, from ours.
  up.learn(ip("198.51.100.7"), kB);
  ASSERT_TRUE(up.address(frame, 3'000'000'000, arp));
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p));
  EXPECT_EQ(p.eth_dst, kB);
  EXPECT_EQ(p.eth_src, own);
  // Off the uplink's subnet and unknown: through the gateway once it is known.
  auto far = tcp("203.0.113.10", 443, "192.0.2.200", 5555);
  EXPECT_FALSE(up.address(far, 3'000'000'000, arp));
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, arp, static_cast<uint32_t>(arp.size()), p));
  EXPECT_EQ(p.arp.tpa, ip("198.51.100.1"));
  up.learn(ip("198.51.100.1"), router, true);
  ASSERT_TRUE(up.address(far, 3'000'000'000, arp));
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, far, static_cast<uint32_t>(far.size()), p));
  EXPECT_EQ(p.eth_dst, router);
  // An ARP-confirmed entry is not overwritten by a packet's source.
  up.learn(ip("198.51.100.1"), kA);
  EXPECT_EQ(up.lookup(ip("198.51.100.1")), router);
}

// ICMPv6 checksums of what the switch sends are right (a Linux stack drops
// neighbour discovery with a bad one).
bool icmpv6ChecksumOk(const std::vector<std::byte>& f, const pkt::Packet& p) {
  const Bytes l4(f.data() + p.l4_off, p.l3_end - p.l4_off);
  const uint32_t sum = pkt::pseudoHeaderSum(p.src, p.dst, 58, static_cast<uint32_t>(l4.size()));
  return pkt::checksumFinish(pkt::checksumPartial(l4, sum)) == 0;
}

TEST(Uplink, AnswersNeighbourSolicitationsForOwnedAddressesOnly) {
  const MacAddr own{{2, 0xaa, 0, 0, 0, 1}};
  Uplink up({own, {}, {}});
  up.setOwned({ip("2001:db8:ff::10"), ip("203.0.113.10")});
  pkt::Decoder dec;
  pkt::Packet p, r;
  std::vector<std::byte> reply;
  auto ns = [&](const char* src, const char* target, uint8_t hop_limit = 255) {
    const auto f = PacketBuilder()
                       .eth(kA, MacAddr{{0x33, 0x33, 0xff, 0, 0, 0x10}})
                       .ipv6(ip(src), ip("ff02::1:ff00:10"), hop_limit)
                       .nd(135, ip(target), &kA)
                       .build();
    reply.clear();
    if (!dec.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p)) return false;
    const bool answered = up.onNd(p, reply);
    if (answered) {
      EXPECT_TRUE(
          dec.decode(pkt::LinkType::Ethernet, reply, static_cast<uint32_t>(reply.size()), r));
    }
    return answered;
  };
  ASSERT_TRUE(ns("2001:db8:77::7", "2001:db8:ff::10"));
  EXPECT_EQ(r.eth_src, own);
  EXPECT_EQ(r.eth_dst, kA);
  EXPECT_EQ(r.src, ip("2001:db8:ff::10"));
  EXPECT_EQ(r.dst, ip("2001:db8:77::7"));
  EXPECT_EQ(r.ttl, 255);
  EXPECT_EQ(r.icmp.type, 136);
  EXPECT_EQ(r.nd.target, ip("2001:db8:ff::10"));
  EXPECT_TRUE(r.nd.has_lladdr);
  EXPECT_EQ(r.nd.lladdr, own);
  const auto* icmp = reinterpret_cast<const uint8_t*>(reply.data()) + r.l4_off;
  EXPECT_EQ(icmp[4], 0x60);  // solicited, override
  EXPECT_TRUE(icmpv6ChecksumOk(reply, r));
  // The asker was learnt from its source link-layer address option.
  EXPECT_EQ(up.lookup(ip("2001:db8:77::7")), kA);
  // Not ours: no answer. From off the link (hop limit not 255): refused by
  // the decoder, and by onNd itself should a decoded one reach it.
  EXPECT_FALSE(ns("2001:db8:77::7", "2001:db8:ff::11"));
  EXPECT_FALSE(ns("2001:db8:77::8", "2001:db8:ff::10", 64));
  EXPECT_EQ(p.error, pkt::DecodeError::NdBadHopLimit);
  p.error = pkt::DecodeError::None;
  p.ttl = 64;
  EXPECT_FALSE(up.onNd(p, reply));
  EXPECT_FALSE(up.lookup(ip("2001:db8:77::8")));
  // Duplicate address detection (from ::) hears the defence on all-nodes, unsolicited.
  ASSERT_TRUE(ns("::", "2001:db8:ff::10"));
  EXPECT_EQ(r.dst, ip("ff02::1"));
  EXPECT_EQ(r.eth_dst, (MacAddr{{0x33, 0x33, 0, 0, 0, 1}}));
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(reply.data())[r.l4_off + 4], 0x20);  // override only
  EXPECT_TRUE(icmpv6ChecksumOk(reply, r));
}

TEST(Uplink, SolicitsUnresolvedIpv6NextHopsAndLearnsTheRouter) {
  const MacAddr own{{2, 0xaa, 0, 0, 0, 1}}, router{{2, 0xbb, 0, 0, 0, 1}};
  Uplink up({own, {}, {std::nullopt, pfx("2001:db8:77::/64"), std::nullopt}});
  pkt::Decoder dec;
  pkt::Packet p;
  std::vector<std::byte> req;
  auto frame = tcp("2001:db8:ff::10", 443, "2001:db8:77::7", 5555);
  // On-link and unknown: a solicitation to its solicited-node group, from
  // the link-local address of the uplink's MAC (no IPv6 address configured).
  EXPECT_FALSE(up.address(frame, 1'000'000'000, req));
  ASSERT_FALSE(req.empty());
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, req, static_cast<uint32_t>(req.size()), p));
  EXPECT_EQ(p.icmp.type, 135);
  EXPECT_EQ(p.nd.target, ip("2001:db8:77::7"));
  EXPECT_EQ(p.dst, ip("ff02::1:ff00:7"));
  EXPECT_EQ(p.eth_dst, (MacAddr{{0x33, 0x33, 0xff, 0, 0, 7}}));
  EXPECT_EQ(p.src, ip("fe80::aa:ff:fe00:1"));
  EXPECT_EQ(p.ttl, 255);
  EXPECT_TRUE(p.nd.has_lladdr);
  EXPECT_EQ(p.nd.lladdr, own);
  EXPECT_TRUE(icmpv6ChecksumOk(req, p));
  EXPECT_FALSE(up.address(frame, 1'500'000'000, req));  // at most once a second
  EXPECT_TRUE(req.empty());
  // Its advertisement resolves it.
  const auto na = PacketBuilder()
                      .eth(kB, own)
                      .ipv6(ip("2001:db8:77::7"), ip("fe80::aa:ff:fe00:1"), 255)
                      .nd(136, ip("2001:db8:77::7"), &kB)
                      .build();
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, na, static_cast<uint32_t>(na.size()), p));
  EXPECT_FALSE(up.onNd(p, req));
  ASSERT_TRUE(up.address(frame, 2'000'000'000, req));
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p));
  EXPECT_EQ(p.eth_dst, kB);
  // Off-link with no gateway configured and no router heard: nothing to ask.
  auto far = tcp("2001:db8:ff::10", 443, "2001:db8:99::9", 5555);
  EXPECT_FALSE(up.address(far, 3'000'000'000, req));
  ASSERT_FALSE(req.empty());  // asked for the destination itself, as if on-link
  // A router advertisement with a lifetime makes its sender the default router.
  auto advertise = [&](uint16_t lifetime) {
    const auto ra = PacketBuilder()
                        .eth(router, MacAddr{{0x33, 0x33, 0, 0, 0, 1}})
                        .ipv6(ip("fe80::1"), ip("ff02::1"), 255)
                        .icmpv6(134, 0, 0x40000000u | lifetime)  // hop limit 64
                        .payload(std::vector<uint8_t>(8, 0))
                        .build();
    ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, ra, static_cast<uint32_t>(ra.size()), p));
    EXPECT_FALSE(up.onNd(p, req));
  };
  advertise(1800);
  ASSERT_TRUE(up.address(far, 4'000'000'000, req));
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, far, static_cast<uint32_t>(far.size()), p));
  EXPECT_EQ(p.eth_dst, router);
  // Lifetime 0: it is no default router any more.
  advertise(0);
  far = tcp("2001:db8:ff::10", 443, "2001:db8:99::9", 5555);
  EXPECT_FALSE(up.address(far, 5'000'000'000, req));
}

// A TSO super-frame cut as the kernel's GSO would: segments that fit the
// MTU, sequence numbers advancing, FIN/PSH on the last only, CWR on the first
// only, lengths and checksums right, the payload intact in order.
TEST(Segment, CutsTcpSuperFramesToTheMtu) {
  for (const bool v6 : {false, true}) {
    std::string payload(10000, 0);
    for (size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    PacketBuilder b;
    b.eth(kA, kB);
    if (v6)
      b.ipv6(ip("2001:db8::4"), ip("2001:db8::7"));
    else
      b.ipv4(ip("192.0.2.4"), ip("198.51.100.7"));
    pkt::TcpOptions opt;
    opt.has_timestamp = true;
    opt.ts_val = 7;
    const auto big =
        b.tcp(443, 40000,
              pkt::tcpflag::kAck | pkt::tcpflag::kPsh | pkt::tcpflag::kFin | pkt::tcpflag::kCwr,
              1000, 5000, opt)
            .payload(payload)
            .build();
    std::vector<std::vector<std::byte>> segs;
    ASSERT_TRUE(segmentTcp(big, 1500, segs));
    pkt::Decoder dec;
    std::string joined;
    uint32_t seq = 1000;
    for (size_t i = 0; i < segs.size(); ++i) {
      const auto& s = segs[i];
      EXPECT_LE(s.size(), 14u + 1500u);
      pkt::Packet p;
      ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, s, static_cast<uint32_t>(s.size()), p));
      EXPECT_EQ(p.tcp.seq, seq);
      EXPECT_TRUE(p.tcp.opt.has_timestamp);
      const bool last = i + 1 == segs.size();
      EXPECT_EQ((p.tcp.flags & pkt::tcpflag::kFin) != 0, last);
      EXPECT_EQ((p.tcp.flags & pkt::tcpflag::kPsh) != 0, last);
      EXPECT_EQ((p.tcp.flags & pkt::tcpflag::kCwr) != 0, i == 0);
      if (!v6) {
        EXPECT_EQ(pkt::internetChecksum(Bytes(s.data() + p.l3_off, p.l4_off - p.l3_off)), 0);
      }
      const Bytes l4(s.data() + p.l4_off, p.l3_end - p.l4_off);
      const uint32_t sum = pkt::pseudoHeaderSum(p.src, p.dst, 6, static_cast<uint32_t>(l4.size()));
      EXPECT_EQ(pkt::checksumFinish(pkt::checksumPartial(l4, sum)), 0);
      joined.append(reinterpret_cast<const char*>(s.data()) + p.payload_off, p.payload_len);
      seq += p.payload_len;
    }
    EXPECT_EQ(joined, payload);
    EXPECT_EQ(segs.size(), v6 ? 8u : 7u);  // MSS 1448 (IPv4) or 1428 (IPv6) with timestamps
  }
  // Not TCP, or no room for data: left alone.
  const auto udp = PacketBuilder()
                       .eth(kA, kB)
                       .ipv4(ip("192.0.2.4"), ip("198.51.100.7"))
                       .udp(1, 2)
                       .payload(std::string(3000, 'x'))
                       .build();
  std::vector<std::vector<std::byte>> segs;
  EXPECT_FALSE(segmentTcp(udp, 1500, segs));
  EXPECT_FALSE(segmentTcp(tcp("192.0.2.4", 1, "198.51.100.7", 2), 40, segs));
  EXPECT_TRUE(segs.empty());
}

TEST(Checksum, CompletesWhatOffloadLeftOut) {
  for (const bool udp : {false, true}) {
    PacketBuilder b;
    b.eth(kA, kB).ipv4(ip("192.0.2.4"), ip("198.51.100.7"));
    if (udp)
      b.udp(5353, 53);
    else
      b.tcp(40000, 443, pkt::tcpflag::kAck, 1, 2);
    auto good = b.payload("hello, offload").build();
    pkt::Decoder dec;
    pkt::Packet p;
    ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, good, static_cast<uint32_t>(good.size()), p));
    auto partial = good;
    const size_t at = p.l4_off + (udp ? 6 : 16);
    partial[at] = std::byte{0x12};  // what a CHECKSUM_PARTIAL sender leaves: not the sum
    partial[at + 1] = std::byte{0x34};
    ASSERT_TRUE(pkt::completeTransportChecksum(partial, p));
    EXPECT_EQ(partial, good) << (udp ? "udp" : "tcp");
  }
  // Not TCP/UDP: untouched.
  auto icmp =
      PacketBuilder().eth(kA, kB).ipv4(ip("192.0.2.4"), ip("192.0.2.1")).icmp(8, 0, 1, 1).build();
  pkt::Decoder dec;
  pkt::Packet p;
  ASSERT_TRUE(dec.decode(pkt::LinkType::Ethernet, icmp, static_cast<uint32_t>(icmp.size()), p));
  EXPECT_FALSE(pkt::completeTransportChecksum(icmp, p));
}

}  // namespace
}  // namespace palisade::live
