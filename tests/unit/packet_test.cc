#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "packet/builder.h"
#include "packet/checksum.h"
#include "packet/decoder.h"
#include "packet/summary.h"

namespace palisade::pkt {
namespace {

const MacAddr kVmMac = *MacAddr::parse("02:00:0a:00:00:04");
const MacAddr kGwMac = *MacAddr::parse("02:00:5e:00:00:01");
const IpAddr kClient = *IpAddr::parse("198.51.100.7");
const IpAddr kVip = *IpAddr::parse("203.0.113.10");
const IpAddr kVm = *IpAddr::parse("192.0.2.4");
const IpAddr kVm6 = *IpAddr::parse("2001:db8:a:1::4");
const IpAddr kPeer6 = *IpAddr::parse("2001:db8:100::9");

using Frame = std::vector<std::byte>;

// Owns a copy of the frame: the Packet view points into it.
struct Decoded {
  Frame frame;
  Packet pkt;
  Decoder dec;
  bool ok;
  explicit Decoded(Frame f, LinkType link = LinkType::Ethernet, uint32_t wire = 0)
      : frame(std::move(f)),
        ok(dec.decode(link, Bytes(frame), wire ? wire : static_cast<uint32_t>(frame.size()), pkt)) {
  }
};

void set8(Frame& f, size_t off, uint8_t v) {
  f[off] = std::byte{v};
}
void set16(Frame& f, size_t off, uint16_t v) {
  f[off] = std::byte(v >> 8);
  f[off + 1] = std::byte(v & 0xff);
}

Frame tcpSyn() {
  TcpOptions o;
  o.has_mss = true;
  o.mss = 1460;
  o.sack_permitted = true;
  o.has_timestamp = true;
  o.ts_val = 111;
  o.ts_ecr = 0;
  o.has_wscale = true;
  o.wscale = 7;
  return PacketBuilder()
      .eth(kGwMac, kVmMac)
      .ipv4(kClient, kVip)
      .tcp(5555, 443, tcpflag::kSyn, 1000, 0, o)
      .build();
}

// The word-at-a-time checksum against RFC 1071's definition, one 16-bit
// network-order word at a time, over every length and alignment.
TEST(Checksum, MatchesTheDefinitionAtEveryLengthAndAlignment) {
  auto reference = [](const std::byte* p, size_t n, uint32_t sum) {
    size_t i = 0;
    for (; i + 1 < n; i += 2)
      sum += (uint32_t{static_cast<uint8_t>(p[i])} << 8) | static_cast<uint8_t>(p[i + 1]);
    if (i < n) sum += uint32_t{static_cast<uint8_t>(p[i])} << 8;
    while (sum >> 16)
      sum = (sum & 0xffff) + (sum >> 16);
    return sum;
  };
  std::vector<std::byte> buf(1600);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int round = 0; round < 4; ++round) {
    for (auto& b : buf) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      // Round 1: all ones (every carry); round 2: zeros; others random.
      b = round == 1 ? std::byte{0xff} : round == 2 ? std::byte{0} : static_cast<std::byte>(x);
    }
    for (size_t off = 0; off < 8; ++off)
      for (size_t n = 0; n + off <= 1500; n += n < 80 ? 1 : 37)
        for (uint32_t seed : {0u, 0xffffu, 0x1fffeu, 0x12345u}) {
          ASSERT_EQ(checksumPartial(Bytes(buf.data() + off, n), seed),
                    reference(buf.data() + off, n, seed))
              << "round " << round << " offset " << off << " length " << n << " seed " << seed;
        }
  }
}

// The inline pseudo-header sum against the pseudo-header laid out in bytes
// (RFC 9293 3.1, RFC 8200 8.1) and summed by definition; checksumFinish at
// the folds' edges; an incremental update against recomputing.
TEST(Checksum, PseudoHeaderAndIncrementalUpdateMatchTheDefinition) {
  auto fold = [](uint32_t sum) {
    while (sum >> 16)
      sum = (sum & 0xffff) + (sum >> 16);
    return sum;
  };
  uint64_t x = 0x243f6a8885a308d3ull;
  auto next = [&] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  for (int i = 0; i < 4000; ++i) {
    const bool v4 = i % 2 == 0;
    uint8_t a[16], b[16];
    for (int k = 0; k < 16; ++k) {
      // Some rounds all ones, where every add carries.
      a[k] = i % 7 == 0 ? 0xff : static_cast<uint8_t>(next());
      b[k] = i % 7 == 0 ? 0xff : static_cast<uint8_t>(next());
    }
    const IpAddr src = v4 ? IpAddr::v4(a) : IpAddr::v6(a), dst = v4 ? IpAddr::v4(b) : IpAddr::v6(b);
    const uint8_t proto = i % 7 == 0 ? 0xff : static_cast<uint8_t>(next());
    const uint32_t len = i % 7 == 0 ? 0xffffffffu : static_cast<uint32_t>(next() >> (i % 32));
    std::vector<std::byte> ph;
    auto put = [&](const uint8_t* p, size_t n) {
      for (size_t k = 0; k < n; ++k)
        ph.push_back(std::byte{p[k]});
    };
    put(a, v4 ? 4 : 16);
    put(b, v4 ? 4 : 16);
    const uint8_t tail[8] = {static_cast<uint8_t>(len >> 24),
                             static_cast<uint8_t>(len >> 16),
                             static_cast<uint8_t>(len >> 8),
                             static_cast<uint8_t>(len),
                             0,
                             0,
                             0,
                             proto};
    put(tail, 8);  // length as 32 bits and the protocol: the same sum as IPv4's 12-byte form
    ASSERT_EQ(pseudoHeaderSum(src, dst, proto, len), checksumPartial(Bytes(ph)))
        << (v4 ? "IPv4" : "IPv6") << " round " << i;
  }
  for (uint32_t sum : {0u, 1u, 0xffffu, 0x10000u, 0x1fffeu, 0xfffffu, 0xffffffffu})
    EXPECT_EQ(checksumFinish(sum), static_cast<uint16_t>(~fold(sum))) << sum;
  // A field rewritten in place: the adjusted checksum is the recomputed one.
  std::vector<std::byte> seg(64);
  for (int i = 0; i < 2000; ++i) {
    for (auto& c : seg)
      c = static_cast<std::byte>(next());
    const uint16_t before = checksumFinish(checksumPartial(Bytes(seg)));
    const size_t n = 2 + (next() % 9) * 2, at = (next() % ((seg.size() - n) / 2 + 1)) * 2;
    std::vector<std::byte> old(seg.begin() + static_cast<long>(at),
                               seg.begin() + static_cast<long>(at + n));
    for (size_t k = 0; k < n; ++k)
      seg[at + k] = i % 5 == 0 ? std::byte{0xff} : static_cast<std::byte>(next());
    const uint32_t delta = checksumDelta(old.data(), seg.data() + at, n);
    const uint16_t recomputed = checksumFinish(checksumPartial(Bytes(seg)));
    const uint16_t adjusted = checksumAdjusted(before, delta, false);
    // One's complement has two zeros (0x0000 and 0xffff); both verify.
    const bool zeros =
        std::min(adjusted, recomputed) == 0 && std::max(adjusted, recomputed) == 0xffff;
    EXPECT_TRUE(adjusted == recomputed || zeros)
        << "round " << i << ": " << adjusted << " against " << recomputed;
  }
}

TEST(Decode, TcpWithEveryOptionKind) {
  Decoded d(tcpSyn());
  ASSERT_TRUE(d.ok) << errorName(d.pkt.error);
  const Packet& p = d.pkt;
  EXPECT_TRUE(p.has(kEth | kIpv4 | kTcp));
  EXPECT_EQ(p.eth_src, kGwMac);
  EXPECT_EQ(p.src, kClient);
  EXPECT_EQ(p.dst, kVip);
  EXPECT_EQ(p.sport, 5555);
  EXPECT_EQ(p.dport, 443);
  EXPECT_EQ(p.tcp.flags, tcpflag::kSyn);
  EXPECT_EQ(p.tcp.seq, 1000u);
  EXPECT_EQ(p.tcp.opt.mss, 1460);
  EXPECT_TRUE(p.tcp.opt.sack_permitted);
  EXPECT_TRUE(p.tcp.opt.has_timestamp);
  EXPECT_EQ(p.tcp.opt.ts_val, 111u);
  EXPECT_EQ(p.tcp.opt.wscale, 7);
  EXPECT_EQ(p.payload_len, 0u);
  EXPECT_EQ(d.dec.stats().of(Proto::Tcp), 1u);
  // Checksums the builder wrote verify.
  EXPECT_EQ(internetChecksum(p.frame.subspan(p.l3_off, 20)), 0);
  std::string s;
  appendSummary(s, p);
  EXPECT_EQ(s,
            "02:00:5e:00:00:01 > 02:00:0a:00:00:04, IP 198.51.100.7.5555 > 203.0.113.10.443: "
            "Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 111 ecr 0,wscale 7], "
            "length 0");
}

TEST(Decode, PayloadExcludesEthernetPadding) {
  Frame f =
      PacketBuilder().eth(kGwMac, kVmMac).ipv4(kClient, kVip).udp(1234, 53).payload("ab").build();
  f.resize(60);  // padded to the Ethernet minimum
  Decoded d(f);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.pkt.payload_len, 2u);
  EXPECT_EQ(std::memcmp(d.pkt.payload().data(), "ab", 2), 0);
}

TEST(Decode, VlanAndQinQ) {
  Frame f = PacketBuilder()
                .eth(kGwMac, kVmMac)
                .vlan(100, ethertype::kQinQ)
                .vlan(200)
                .ipv4(kClient, kVip)
                .udp(1, 2)
                .build();
  Decoded d(f);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.pkt.vlan_count, 2);
  EXPECT_EQ(d.pkt.vlan_id[0], 100);
  EXPECT_EQ(d.pkt.vlan_id[1], 200);
  EXPECT_EQ(d.pkt.vlan_tpid[0], ethertype::kQinQ);
  EXPECT_TRUE(d.pkt.has(kUdp));
  Frame three =
      PacketBuilder().eth(kGwMac, kVmMac).vlan(1).vlan(2).vlan(3).ipv4(kClient, kVip).build();
  Decoded t(three);
  EXPECT_EQ(t.pkt.error, DecodeError::VlanTooManyTags);
}

TEST(Decode, Arp) {
  Frame f = PacketBuilder()
                .eth(kVmMac, *MacAddr::parse("ff:ff:ff:ff:ff:ff"))
                .arp(1, kVmMac, kVm, MacAddr{}, *IpAddr::parse("192.0.2.1"))
                .build();
  Decoded d(f);
  ASSERT_TRUE(d.ok);
  EXPECT_TRUE(d.pkt.has(kArp));
  EXPECT_EQ(d.pkt.arp.op, 1);
  EXPECT_EQ(d.pkt.arp.sha, kVmMac);
  EXPECT_EQ(d.pkt.arp.spa, kVm);
  EXPECT_EQ(d.pkt.arp.tpa, *IpAddr::parse("192.0.2.1"));
  Frame bad = f;
  set16(bad, 14, 6);  // hardware type 6 (IEEE 802)
  EXPECT_EQ(Decoded(bad).pkt.error, DecodeError::ArpUnsupported);
  bad = f;
  bad.resize(14 + 20);
  EXPECT_EQ(Decoded(bad).pkt.error, DecodeError::ArpTruncated);
}

TEST(Decode, Ipv4OptionsAndFragments) {
  Frame f = PacketBuilder()
                .eth(kGwMac, kVmMac)
                .ipv4(kClient, kVip)
                .ipv4Options({7, 7, 4, 0, 0, 0, 0})
                .tcp(1, 2, tcpflag::kAck)
                .build();
  Decoded d(f);
  ASSERT_TRUE(d.ok) << errorName(d.pkt.error);
  EXPECT_EQ(d.pkt.ipv4_options_len, 8);
  EXPECT_TRUE(d.pkt.has(kTcp));

  Frame bad_opt = PacketBuilder()
                      .eth(kGwMac, kVmMac)
                      .ipv4(kClient, kVip)
                      .ipv4Options({7, 9, 4, 0})
                      .tcp(1, 2, 0)
                      .build();
  EXPECT_EQ(Decoded(bad_opt).pkt.error, DecodeError::Ipv4BadOption);

  Frame first = PacketBuilder()
                    .eth(kGwMac, kVmMac)
                    .ipv4(kClient, kVip)
                    .ipv4Fragment(77, 0, true)
                    .udp(53, 53)
                    .payload(std::string(32, 'x'))
                    .build();
  Decoded f1(first);
  ASSERT_TRUE(f1.ok) << errorName(f1.pkt.error);
  EXPECT_TRUE(f1.pkt.has(kFragment | kUdp));  // first fragment: transport header decoded
  EXPECT_EQ(f1.pkt.frag.id, 77u);
  EXPECT_TRUE(f1.pkt.frag.more);

  Frame later = PacketBuilder()
                    .eth(kGwMac, kVmMac)
                    .ipv4(kClient, kVip)
                    .ipv4Fragment(77, 1480, false)
                    .payload(std::string(40, 'y'))
                    .build();
  set8(later, 23, ipproto::kUdp);
  Decoded f2(later);
  ASSERT_TRUE(f2.ok);
  EXPECT_TRUE(f2.pkt.has(kFragment));
  EXPECT_FALSE(f2.pkt.has(kUdp));  // later fragments carry no transport header
  EXPECT_EQ(f2.pkt.frag.offset, 1480);
  EXPECT_EQ(f2.pkt.payload_len, 40u);
  EXPECT_EQ(f2.dec.stats().of(Proto::Udp), 0u);

  // Ping of death: a fragment that would end past 65535.
  Frame pod = PacketBuilder()
                  .eth(kGwMac, kVmMac)
                  .ipv4(kClient, kVip)
                  .ipv4Fragment(1, 65528, false)
                  .payload(std::string(100, 'z'))
                  .build();
  EXPECT_EQ(Decoded(pod).pkt.error, DecodeError::Ipv4FragmentOverflow);
}

TEST(Decode, Ipv4HeaderMalformations) {
  const Frame good = tcpSyn();
  Frame f = good;
  set8(f, 14, 0x44);  // IHL 4
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::Ipv4BadIhl);
  f = good;
  set8(f, 14, 0x55);  // version 5
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::Ipv4BadVersion);
  f = good;
  set16(f, 16, 4000);  // total length past the frame
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::Ipv4BadTotalLength);
  f = good;
  set16(f, 16, 10);  // total length below the header
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::Ipv4BadTotalLength);
  f = good;
  f.resize(14 + 12);
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::Ipv4Truncated);
  f = good;
  f.resize(10);
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::EthTruncated);
}

TEST(Decode, TcpMalformations) {
  const Frame good = tcpSyn();
  const size_t tcp = 14 + 20;
  Frame f = good;
  set8(f, tcp + 12, 0x40);  // data offset 4
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::TcpBadDataOffset);
  f = good;
  set8(f, tcp + 12, 0xf0);  // 60-byte header in a 40-byte segment
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::TcpBadDataOffset);
  f = good;
  set8(f, tcp + 21, 3);  // MSS option claims length 3
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::TcpBadOption);
  f = good;
  set8(f, tcp + 21, 0);  // option length 0 would loop forever in a naive parser
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::TcpBadOption);
  Decoded d(f);
  EXPECT_EQ(d.dec.stats().of(DecodeError::TcpBadOption), 1u);
  EXPECT_EQ(d.dec.stats().malformed, 1u);
}

TEST(DecodeStats, MergeAddsEveryCounter) {
  Decoder a, b;
  Packet p;
  const Frame good = tcpSyn();
  Frame bad = good;
  set8(bad, 14, 0x44);  // IHL 4
  a.decode(LinkType::Ethernet, Bytes(good), static_cast<uint32_t>(good.size()), p);
  b.decode(LinkType::Ethernet, Bytes(bad), static_cast<uint32_t>(bad.size()), p);
  DecodeStats total = a.stats();
  total.merge(b.stats());
  EXPECT_EQ(total.packets, 2u);
  EXPECT_EQ(total.bytes, good.size() + bad.size());
  EXPECT_EQ(total.of(Proto::Ipv4), 2u);
  EXPECT_EQ(total.of(Proto::Tcp), 1u);
  EXPECT_EQ(total.of(DecodeError::Ipv4BadIhl), 1u);
  EXPECT_EQ(total.malformed, 1u);
}

TEST(Decode, TruncatedCaptureDecodesWhatIsThere) {
  Frame f = PacketBuilder()
                .eth(kGwMac, kVmMac)
                .ipv4(kClient, kVip)
                .tcp(1, 80, tcpflag::kAck)
                .payload(std::string(1000, 'x'))
                .build();
  const auto wire = static_cast<uint32_t>(f.size());
  f.resize(96);  // snaplen 96
  Decoded d(f, LinkType::Ethernet, wire);
  ASSERT_TRUE(d.ok) << errorName(d.pkt.error);
  EXPECT_TRUE(d.pkt.truncated_capture);
  EXPECT_TRUE(d.pkt.has(kTcp));
  EXPECT_EQ(d.pkt.payload_len, 96u - 54u);
  EXPECT_EQ(d.dec.stats().truncated_captures, 1u);
}

TEST(Decode, UdpLengths) {
  const Frame good = PacketBuilder()
                         .eth(kGwMac, kVmMac)
                         .ipv4(kClient, kVip)
                         .udp(1000, 2000)
                         .payload("hello")
                         .build();
  Decoded d(good);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.pkt.udp.length, 13);
  EXPECT_EQ(d.pkt.payload_len, 5u);
  Frame f = good;
  set16(f, 34 + 4, 7);
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::UdpBadLength);
  f = good;
  set16(f, 34 + 4, 200);
  EXPECT_EQ(Decoded(f).pkt.error, DecodeError::UdpBadLength);
}

TEST(Decode, IcmpEchoAndErrors) {
  Frame echo = PacketBuilder()
                   .eth(kGwMac, kVmMac)
                   .ipv4(kClient, kVip)
                   .icmp(8, 0, 0x1234, 7)
                   .payload("ping")
                   .build();
  Decoded d(echo);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.pkt.icmp.type, 8);
  EXPECT_EQ(d.pkt.icmp.id, 0x1234);
  EXPECT_EQ(d.pkt.icmp.seq, 7);
  EXPECT_EQ(internetChecksum(d.pkt.frame.subspan(d.pkt.l4_off)), 0);

  const Frame quoted = PacketBuilder().ipv4(kVip, kClient).udp(53, 1000).build();
  std::vector<uint8_t> q;
  for (std::byte b : quoted)
    q.push_back(static_cast<uint8_t>(b));
  Frame unreach =
      PacketBuilder().eth(kGwMac, kVmMac).ipv4(kClient, kVip).icmp(3, 3).payload(q).build();
  Decoded u(unreach);
  ASSERT_TRUE(u.ok);
  EXPECT_EQ(u.pkt.icmp.inner_off, 14u + 20u + 8u);

  Frame shortf = echo;
  shortf.resize(14 + 20 + 4);
  set16(shortf, 16, 24);
  EXPECT_EQ(Decoded(shortf).pkt.error, DecodeError::IcmpTruncated);
}

TEST(Decode, Ipv6ExtensionChainAndFragments) {
  Frame f = PacketBuilder()
                .eth(kGwMac, kVmMac)
                .ipv6(kPeer6, kVm6)
                .ipv6Extension(ipproto::kHopByHop, {1, 4, 0, 0, 0, 0})
                .ipv6Extension(ipproto::kDestOpts)
                .tcp(4000, 22, tcpflag::kSyn)
                .build();
  Decoded d(f);
  ASSERT_TRUE(d.ok) << errorName(d.pkt.error);
  EXPECT_EQ(d.pkt.ipv6_ext_count, 2);
  EXPECT_EQ(d.pkt.proto, ipproto::kTcp);
  EXPECT_EQ(d.pkt.dport, 22);

  Frame hbh_late = PacketBuilder()
                       .eth(kGwMac, kVmMac)
                       .ipv6(kPeer6, kVm6)
                       .ipv6Extension(ipproto::kDestOpts)
                       .ipv6Extension(ipproto::kHopByHop)
                       .udp(1, 2)
                       .build();
  EXPECT_EQ(Decoded(hbh_late).pkt.error, DecodeError::Ipv6HopByHopNotFirst);

  PacketBuilder many;
  many.eth(kGwMac, kVmMac).ipv6(kPeer6, kVm6);
  for (int i = 0; i < 9; ++i)
    many.ipv6Extension(ipproto::kDestOpts);
  EXPECT_EQ(Decoded(many.udp(1, 2).build()).pkt.error, DecodeError::Ipv6TooManyExtHeaders);

  Frame frag = PacketBuilder()
                   .eth(kGwMac, kVmMac)
                   .ipv6(kPeer6, kVm6)
                   .ipv6Fragment(0xabcd, 1232, true)
                   .payload(std::string(64, 'q'))
                   .build();
  Decoded fr(frag);
  ASSERT_TRUE(fr.ok);
  EXPECT_TRUE(fr.pkt.has(kFragment));
  EXPECT_EQ(fr.pkt.frag.id, 0xabcdu);
  EXPECT_EQ(fr.pkt.frag.offset, 1232);
  EXPECT_FALSE(fr.pkt.has(kUdp | kTcp));

  Frame atomic = PacketBuilder()
                     .eth(kGwMac, kVmMac)
                     .ipv6(kPeer6, kVm6)
                     .ipv6Fragment(5, 0, false)
                     .udp(7, 8)
                     .build();
  Decoded at(atomic);
  ASSERT_TRUE(at.ok);
  EXPECT_FALSE(at.pkt.has(kFragment));  // RFC 6946 atomic fragment
  EXPECT_TRUE(at.pkt.has(kUdp));

  Frame bad_len = f;
  set16(bad_len, 14 + 4, 2000);
  EXPECT_EQ(Decoded(bad_len).pkt.error, DecodeError::Ipv6BadPayloadLength);
  Frame cut = f;
  set8(cut, 14 + 40 + 1, 200);  // hop-by-hop length past the packet
  EXPECT_EQ(Decoded(cut).pkt.error, DecodeError::Ipv6ExtTruncated);
}

TEST(Decode, NeighbourDiscovery) {
  const MacAddr m = kVmMac;
  Frame ns = PacketBuilder()
                 .eth(kVmMac, *MacAddr::parse("33:33:ff:00:00:01"))
                 .ipv6(kVm6, *IpAddr::parse("ff02::1:ff00:1"), 255)
                 .nd(135, *IpAddr::parse("2001:db8:a:1::1"), &m)
                 .build();
  Decoded d(ns);
  ASSERT_TRUE(d.ok) << errorName(d.pkt.error);
  EXPECT_TRUE(d.pkt.has(kNd));
  EXPECT_EQ(d.pkt.nd.target, *IpAddr::parse("2001:db8:a:1::1"));
  EXPECT_TRUE(d.pkt.nd.has_lladdr);
  EXPECT_EQ(d.pkt.nd.lladdr, kVmMac);
  const Bytes icmp6 = d.pkt.frame.subspan(d.pkt.l4_off);
  EXPECT_EQ(
      checksumFinish(checksumPartial(icmp6, pseudoHeaderSum(d.pkt.src, d.pkt.dst, ipproto::kIcmpv6,
                                                            static_cast<uint32_t>(icmp6.size())))),
      0);

  Frame offlink =
      PacketBuilder().eth(kVmMac, kGwMac).ipv6(kVm6, kPeer6, 64).nd(136, kVm6, &m).build();
  EXPECT_EQ(Decoded(offlink).pkt.error, DecodeError::NdBadHopLimit);
  Frame zero_opt = ns;
  set8(zero_opt, zero_opt.size() - 7, 0);  // option length 0
  EXPECT_EQ(Decoded(zero_opt).pkt.error, DecodeError::NdBadOption);
}

TEST(Decode, Dhcp) {
  const IpAddr want = *IpAddr::parse("192.0.2.4");
  PacketBuilder::Dhcp req;
  req.msg_type = 3;
  req.client_mac = kVmMac;
  req.xid = 0xdeadbeef;
  req.requested = &want;
  Frame f = PacketBuilder()
                .eth(kVmMac, *MacAddr::parse("ff:ff:ff:ff:ff:ff"))
                .ipv4(IpAddr::v4(0u), IpAddr::v4(0xffffffffu))
                .udp(68, 67)
                .dhcp(req)
                .build();
  Decoded d(f);
  ASSERT_TRUE(d.ok) << errorName(d.pkt.error);
  EXPECT_TRUE(d.pkt.has(kDhcp));
  EXPECT_EQ(d.pkt.dhcp.op, 1);
  EXPECT_EQ(d.pkt.dhcp.msg_type, 3);
  EXPECT_EQ(d.pkt.dhcp.xid, 0xdeadbeefu);
  EXPECT_EQ(d.pkt.dhcp.client_mac, kVmMac);
  EXPECT_TRUE(d.pkt.dhcp.has_requested);
  EXPECT_EQ(d.pkt.dhcp.requested, want);
  std::string s;
  appendSummary(s, d.pkt);
  EXPECT_NE(s.find("BOOTP/DHCP, Request from 02:00:0a:00:00:04, DHCPREQUEST, xid 0xdeadbeef, "
                   "requested 192.0.2.4"),
            std::string::npos)
      << s;

  Frame bad = f;
  // The options end with 255; replace it with an option whose length runs past the packet.
  set8(bad, bad.size() - 1, 12);
  bad.push_back(std::byte{40});
  set16(bad, 14 + 2, static_cast<uint16_t>(bad.size() - 14));
  set16(bad, 14 + 20 + 4, static_cast<uint16_t>(bad.size() - 34));
  EXPECT_EQ(Decoded(bad).pkt.error, DecodeError::DhcpBadOption);
}

TEST(Decode, VxlanInnerFrame) {
  const IpAddr hv1 = *IpAddr::parse("198.51.100.201"), hv2 = *IpAddr::parse("198.51.100.202");
  Frame f = PacketBuilder()
                .eth(kGwMac, kVmMac)
                .ipv4(hv1, hv2)
                .udp(49152, 4789)
                .vxlan(5001)
                .eth(kVmMac, kGwMac)
                .ipv4(kVm, *IpAddr::parse("192.0.2.36"))
                .tcp(40000, 8080, tcpflag::kSyn)
                .build();
  Decoder dec;
  Packet outer, inner;
  ASSERT_TRUE(dec.decode(LinkType::Ethernet, Bytes(f), static_cast<uint32_t>(f.size()), outer));
  ASSERT_TRUE(outer.has(kVxlan));
  EXPECT_EQ(outer.vxlan.vni, 5001u);
  Decoder inner_dec;
  ASSERT_TRUE(inner_dec.decodeInner(outer, inner));
  EXPECT_EQ(inner.src, kVm);
  EXPECT_EQ(inner.dport, 8080);
  std::string s;
  appendSummary(s, outer, &inner);
  EXPECT_NE(s.find("VXLAN, vni 5001: 02:00:0a:00:00:04 > 02:00:5e:00:00:01, IP 192.0.2.4.40000 > "
                   "192.0.2.36.8080"),
            std::string::npos)
      << s;
  Frame noflag = f;
  set8(noflag, 42, 0);
  EXPECT_EQ(Decoded(noflag).pkt.error, DecodeError::VxlanBadFlags);
}

TEST(Decode, OtherLinkTypes) {
  Frame ip = PacketBuilder().ipv4(kClient, kVip).udp(1, 2).build();
  Decoded raw(ip, LinkType::Raw);
  ASSERT_TRUE(raw.ok);
  EXPECT_TRUE(raw.pkt.has(kIpv4 | kUdp));

  Frame sll(16);
  set16(sll, 14, ethertype::kIpv4);
  sll.insert(sll.end(), ip.begin(), ip.end());
  Decoded s(sll, LinkType::LinuxSll);
  ASSERT_TRUE(s.ok);
  EXPECT_TRUE(s.pkt.has(kSll | kUdp));

  Frame loop = {std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}};  // AF_INET, little-endian
  loop.insert(loop.end(), ip.begin(), ip.end());
  Decoded n(loop, LinkType::Null);
  ASSERT_TRUE(n.ok);
  EXPECT_TRUE(n.pkt.has(kIpv4));

  Decoded unknown(ip, static_cast<LinkType>(9999));
  EXPECT_EQ(unknown.pkt.error, DecodeError::UnknownLinkType);
}

// Every prefix of a valid packet decodes without reading past the end (ASan
// checks the reads) and reports either success or a counted reason.
TEST(Decode, EveryTruncationIsSafeAndCounted) {
  const MacAddr m = kVmMac;
  const std::vector<Frame> frames = {
      tcpSyn(),
      PacketBuilder()
          .eth(kGwMac, kVmMac)
          .vlan(5)
          .ipv6(kPeer6, kVm6)
          .ipv6Extension(0)
          .nd(135, kVm6, &m)
          .build(),
      PacketBuilder()
          .eth(kGwMac, kVmMac)
          .ipv4(kClient, kVip)
          .udp(49152, 4789)
          .vxlan(1)
          .eth(m, m)
          .ipv4(kVm, kVm)
          .icmp(8, 0)
          .build(),
  };
  for (const Frame& full : frames) {
    for (size_t n = 0; n <= full.size(); ++n) {
      Frame cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      Decoded d(cut);
      EXPECT_EQ(d.dec.stats().malformed, d.ok ? 0u : 1u) << "cut at " << n;
    }
  }
}

}  // namespace
}  // namespace palisade::pkt
