// The DDoS layer: the heavy-hitter summary, the source spread, vectors by
// port, and the detector end to end on built packets with their own clock.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/strings.h"
#include "ddos/board.h"
#include "ddos/config.h"
#include "ddos/detector.h"
#include "ddos/sketch.h"
#include "ddos/syncookie.h"
#include "ddos/vectors.h"
#include "packet/builder.h"
#include "packet/decoder.h"

namespace palisade::ddos {
namespace {

using pkt::PacketBuilder;
namespace tf = pkt::tcpflag;

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

TEST(DdosSketch, SpaceSavingIsExactUnderCapacity) {
  SpaceSaving<uint64_t> s(16);
  for (uint64_t k = 0; k < 10; ++k)
    for (uint64_t i = 0; i <= k; ++i)
      s.add(k);
  const auto top = s.top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key, 9u);
  EXPECT_EQ(top[0].count, 10u);
  EXPECT_EQ(top[0].error, 0u);
  EXPECT_EQ(top[2].key, 7u);
  EXPECT_EQ(s.guaranteed(4), 5u);
  EXPECT_EQ(s.guaranteed(99), 0u);
  EXPECT_EQ(s.total(), 55u);
}

TEST(DdosSketch, SpaceSavingKeepsItsGuaranteesOnASkewedStream) {
  // Zipf-like: key k drawn with weight 1/(k+1) out of 20,000 keys.
  std::mt19937_64 rng(7);
  std::vector<double> w(20000);
  for (size_t k = 0; k < w.size(); ++k)
    w[k] = 1.0 / static_cast<double>(k + 1);
  std::discrete_distribution<uint64_t> pick(w.begin(), w.end());
  SpaceSaving<uint64_t> s(512);
  std::map<uint64_t, uint64_t> truth;
  const uint64_t n = 300000;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t k = pick(rng);
    ++truth[k];
    s.add(k);
  }
  // Every reported count is within its error of the truth, and every key
  // heavier than n/k is in the summary.
  for (const auto& e : s.top(512)) {
    EXPECT_GE(e.count, truth[e.key]);
    EXPECT_LE(e.count - e.error, truth[e.key]);
  }
  for (const auto& [k, c] : truth) {
    if (c > n / 512) {
      EXPECT_GT(s.guaranteed(k), 0u) << k;
    }
  }
  // The true top 20 are the summary's top 20.
  std::vector<std::pair<uint64_t, uint64_t>> sorted(truth.begin(), truth.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second > b.second; });
  const auto top = s.top(20);
  for (size_t i = 0; i < 20; ++i)
    EXPECT_TRUE(
        std::any_of(top.begin(), top.end(), [&](auto& e) { return e.key == sorted[i].first; }))
        << "rank " << i;
  EXPECT_LT(s.memoryBytes(), 32u * 1024);
}

// The summary is the algorithm's definition, step by step: a reference that
// finds the smallest counter by a scan (the lowest numbered of equals, as the
// heap orders them) and gives each newcomer the next free number, then the
// evicted one's. Weighted adds, streams of few and of many keys, after every
// add every counter and error the same; counts saturate instead of wrapping.
TEST(DdosSketch, SpaceSavingIsTheDefinitionStepByStep) {
  struct Reference {
    struct C {
      uint64_t key, count, error;
    };
    std::vector<C> c;
    size_t cap;
    void add(uint64_t key, uint64_t w) {
      for (C& x : c)
        if (x.key == key) {
          x.count += w;
          return;
        }
      if (c.size() < cap) {
        c.push_back({key, w, 0});
        return;
      }
      size_t m = 0;
      for (size_t i = 1; i < c.size(); ++i)
        if (c[i].count < c[m].count) m = i;
      c[m] = {key, c[m].count + w, c[m].count};
    }
  };
  std::mt19937_64 rng(2005);
  for (const uint32_t cap : {2u, 8u, 64u}) {
    for (const uint64_t keys : {uint64_t{cap} + 1, uint64_t{cap} * 20}) {
      SpaceSaving<uint64_t> s(cap);
      Reference ref{{}, cap};
      for (int i = 0; i < 5000; ++i) {
        const uint64_t k = rng() % keys, w = 1 + rng() % 64;
        s.add(k, w);
        ref.add(k, w);
        auto got = s.top(cap);
        std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.key < b.key; });
        auto want = ref.c;
        std::sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.key < b.key; });
        ASSERT_EQ(got.size(), want.size());
        for (size_t j = 0; j < got.size(); ++j) {
          ASSERT_EQ(got[j].key, want[j].key) << "capacity " << cap << ", add " << i;
          ASSERT_EQ(got[j].count, want[j].count) << "capacity " << cap << ", add " << i;
          ASSERT_EQ(got[j].error, want[j].error) << "capacity " << cap << ", add " << i;
          ASSERT_EQ(s.guaranteed(got[j].key), got[j].count - got[j].error);
        }
      }
    }
  }
  SpaceSaving<uint64_t> s(4);
  s.add(1, SpaceSaving<uint64_t>::kMaxCount - 1);
  s.add(1, 10);
  s.add(2, 3);
  EXPECT_EQ(s.top(1)[0].count, SpaceSaving<uint64_t>::kMaxCount);
  EXPECT_EQ(s.top(1)[0].key, 1u);
  EXPECT_EQ(s.guaranteed(2), 3u);
}

TEST(DdosSketch, SourceSpread) {
  SourceSpread one;
  for (int i = 0; i < 1000; ++i)
    one.add(hashBytes("a", 1));
  EXPECT_EQ(one.entropy(), 0.0);
  EXPECT_EQ(one.distinct(), 1u);
  SourceSpread many;
  for (uint64_t i = 0; i < 5000; ++i)
    many.add(mix64(i + 1));
  EXPECT_GT(many.entropy(), 0.95);
  EXPECT_NEAR(static_cast<double>(many.distinct()), 5000.0, 400.0);
}

TEST(DdosVectors, AmplificationByReflectorPort) {
  EXPECT_EQ(amplificationVector(53), Vector::Dns);
  EXPECT_EQ(amplificationVector(123), Vector::Ntp);
  EXPECT_EQ(amplificationVector(500), Vector::Isakmp);
  EXPECT_EQ(amplificationVector(4500), Vector::Isakmp);
  EXPECT_EQ(amplificationVector(11211), Vector::Memcached);
  EXPECT_EQ(amplificationVector(80), Vector::None);
  EXPECT_EQ(vectorName(Vector::SynFlood), "syn_flood");
  EXPECT_EQ(classOf(Vector::Cldap), VectorClass::Amplification);
  EXPECT_EQ(className(VectorClass::AckRst), "ack_rst");
}

constexpr TimeNs kSec = 1'000'000'000;

// A detector over one protected address with its events collected.
struct Rig {
  explicit Rig(Profile prof = {}, const char* protect = "192.0.2.10/32") {
    DetectorConfig cfg;
    cfg.profiles = {std::move(prof)};
    cfg.protect.push_back({*Prefix::parse(protect), 0, "web"});
    det = std::make_unique<Detector>(cfg);
    det->setSink([this](const events::Event& e) { events.push_back(e.body); });
  }
  Detector::Verdict send(const std::vector<std::byte>& frame, TimeNs ts) {
    dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
    return det->process(p, ts);
  }
  // n packets made by make(i) spread evenly over [from, from + secs).
  template <class F>
  void stream(TimeNs from, double secs, uint64_t n, F make) {
    for (uint64_t i = 0; i < n; ++i)
      send(make(i), from + static_cast<TimeNs>(secs * 1e9 * static_cast<double>(i) /
                                               static_cast<double>(n)));
  }
  size_t count(const std::string& what) const {
    size_t c = 0;
    for (const auto& e : events)
      c += e.find("\"event\":\"" + what + "\"") != std::string::npos;
    return c;
  }
  std::unique_ptr<Detector> det;
  pkt::Decoder dec;
  pkt::Packet p;
  std::vector<std::string> events;
};

const MacAddr kMac{};
IpAddr spoofed(uint64_t i) {
  return IpAddr::v4(static_cast<uint32_t>(mix64(i) | 0x01000000));
}

std::vector<std::byte> udp(const char* src, const char* dst, uint16_t sport, uint16_t dport,
                           std::string_view payload) {
  return PacketBuilder()
      .eth(kMac, kMac)
      .ipv4(ip(src), ip(dst))
      .udp(sport, dport)
      .payload(payload)
      .build();
}

std::vector<std::byte> syn(const IpAddr& src, uint16_t sport, const char* dst = "192.0.2.10") {
  return PacketBuilder().eth(kMac, kMac).ipv4(src, ip(dst)).tcp(sport, 80, tf::kSyn, 1).build();
}

TEST(DdosDetector, SynFloodStartsUpdatesAndEnds) {
  Profile prof;
  prof.update_s = 2;
  Rig r(prof);
  const TimeNs t0 = 1000 * kSec;
  // 5 s of 100 legitimate SYNs a second: nothing.
  r.stream(t0, 5, 500, [](uint64_t i) { return syn(ip("198.51.100.7"), 1024 + i % 60000); });
  EXPECT_TRUE(r.events.empty());
  // 3 s of 20,000 spoofed SYNs a second.
  r.stream(t0 + 5 * kSec, 3, 60000, [](uint64_t i) { return syn(spoofed(i), 1024 + i % 60000); });
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"attack\":\"syn_flood\""), std::string::npos) << r.events[0];
  EXPECT_NE(r.events[0].find("\"target\":\"192.0.2.10\""), std::string::npos);
  EXPECT_NE(r.events[0].find("\"direction\":\"inbound\""), std::string::npos);
  EXPECT_GE(r.count("update"), 1u);
  // Back to the legitimate trickle: it ends after end_after (10 s) of quiet, once.
  r.stream(t0 + 8 * kSec, 15, 1500, [](uint64_t i) { return syn(ip("198.51.100.7"), 2000 + i); });
  EXPECT_EQ(r.count("end"), 1u);
  EXPECT_EQ(r.count("start"), 1u);
  ASSERT_EQ(r.det->attacks().size(), 1u);
  const AttackInfo& a = r.det->attacks()[0];
  EXPECT_EQ(a.primary, Vector::SynFlood);
  // It began with the flood's first packet and was seen within 200 ms.
  EXPECT_GE(a.start_ns, t0 + 5 * kSec - kSec / 10);
  EXPECT_LE(a.detected_ns - (t0 + 5 * kSec), kSec / 5);
  EXPECT_GT(a.peak_pps, 15000);
  EXPECT_GT(a.entropy, 0.9);  // spoofed: spread over every bin
  // Each spoofed SYN its own connection: thousands a second (linear counting
  // saturates near 30,000).
  EXPECT_GT(a.sessions, 5000u);
  EXPECT_NE(r.events[0].find("\"sessions\":"), std::string::npos) << r.events[0];
  EXPECT_FALSE(a.cut_short);
}

// Two workers' detectors, each seeing half of a flood (the fanout's split)
// with half the floors, report it once: one start, updates from one of
// them, one end with both halves' packets, all under one id.
TEST(DdosDetector, WorkersSharingABoardReportOneAttack) {
  auto board = std::make_shared<AttackBoard>();
  std::vector<std::string> events;
  std::unique_ptr<Detector> det[2];
  for (uint32_t w = 0; w < 2; ++w) {
    DetectorConfig cfg;
    Profile prof;
    prof.update_s = 1;
    cfg.profiles = {prof};
    cfg.protect.push_back({*Prefix::parse("192.0.2.10/32"), 0, "web"});
    scaleForShare(cfg, 2);
    cfg.board = board;
    cfg.worker = w;
    det[w] = std::make_unique<Detector>(cfg);
    det[w]->setSink([&events, w](const events::Event& e) {
      events.push_back(strCat("w", std::to_string(w), " ", e.body));
    });
  }
  pkt::Decoder dec;
  pkt::Packet p;
  const TimeNs t0 = 1000 * kSec;
  // 3 s of 20,000 spoofed SYNs a second, alternately to each worker; then quiet.
  for (uint64_t i = 0; i < 60000; ++i) {
    const auto f = syn(spoofed(i), static_cast<uint16_t>(1024 + i % 60000));
    dec.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p);
    det[i % 2]->process(p, t0 + static_cast<TimeNs>(i) * 50'000);
  }
  // Both clocks run on together, as the workers' do.
  for (TimeNs t = t0 + 3 * kSec; t <= t0 + 20 * kSec; t += kSec / 10)
    for (uint32_t w = 0; w < 2; ++w)
      det[w]->advance(t);
  auto count = [&](const char* what) {
    return std::count_if(events.begin(), events.end(), [&](const std::string& e) {
      return e.find(strCat("\"event\":\"", what, "\"")) != std::string::npos;
    });
  };
  ASSERT_EQ(count("start"), 1) << testing::PrintToString(events);
  EXPECT_EQ(count("end"), 1) << testing::PrintToString(events);
  EXPECT_GE(count("update"), 1);
  const std::string speaker = events.front().substr(0, 2);
  for (const std::string& e : events) {
    if (e.find("\"event\":\"update\"") != std::string::npos) {
      EXPECT_EQ(e.substr(0, 2), speaker) << e;  // one worker speaks for it
    }
    EXPECT_NE(e.find("\"id\":1,"), std::string::npos) << e;
  }
  // The end has both halves: each worker counted about 30,000 packets of it.
  ASSERT_EQ(det[0]->attacks().size(), 1u);
  ASSERT_EQ(det[1]->attacks().size(), 1u);
  const uint64_t both = det[0]->attacks()[0].packets + det[1]->attacks()[0].packets;
  const std::string& end = events.back();
  EXPECT_NE(end.find(strCat("\"packets\":", std::to_string(both), ",")), std::string::npos)
      << end << " (want " << both << ")";
  EXPECT_GT(both, 50000u);
  EXPECT_EQ(board->openAttacks(), 0u);
  EXPECT_EQ(det[0]->stats().attacks + det[1]->stats().attacks, 1u);  // counted once
}

// A worker whose share went quiet leaves the attack and may see it again
// while the others still do: both of its stints count in the end.
TEST(DdosBoard, AWorkerThatLeavesAndReturnsKeepsBothStints) {
  AttackBoard board;
  AttackInfo v;
  v.target = IpAddr::v4(0xc000020a);
  v.direction = Direction::Inbound;
  v.start_ns = 5;
  auto view = [&](uint64_t packets, TimeNs end) {
    AttackInfo x = v;
    x.packets = packets;
    x.end_ns = end;
    x.vectors = {{Vector::SynFlood, packets}};
    return x;
  };
  bool speak0 = false, speak1 = false;
  const uint64_t id = board.open(0, view(100, 0), &speak0);
  EXPECT_EQ(board.open(1, view(200, 0), &speak1), id);
  EXPECT_TRUE(speak0);
  EXPECT_FALSE(speak1);
  AttackInfo m;
  EXPECT_FALSE(board.close(0, view(150, 9), &m));  // worker 1 still sees it
  EXPECT_EQ(board.open(0, view(10, 0), &speak0), id);
  EXPECT_FALSE(speak0);
  EXPECT_TRUE(board.post(1, view(300, 0), &m));  // worker 1 speaks now: first still in it
  EXPECT_EQ(m.packets, 150u + 300 + 10);
  EXPECT_FALSE(board.close(1, view(320, 20), &m));
  ASSERT_TRUE(board.close(0, view(40, 30), &m));
  EXPECT_EQ(m.id, id);
  EXPECT_EQ(m.packets, 150u + 320 + 40);
  EXPECT_EQ(m.end_ns, 30);
  ASSERT_EQ(m.vectors.size(), 1u);
  EXPECT_EQ(m.vectors[0].second, 150u + 320 + 40);
  EXPECT_EQ(board.openAttacks(), 0u);
}

TEST(DdosDetector, LearnedBaselineRaisesTheThreshold) {
  Profile prof;
  prof.learning_s = 20;
  prof.floors[static_cast<size_t>(VectorClass::Syn)].pps = 100;
  Rig r(prof);
  const TimeNs t0 = 50 * kSec;
  // A busy service: 80 SYNs a second, learned for 30 s.
  r.stream(t0, 30, 2400, [](uint64_t i) { return syn(spoofed(i % 500), 1024 + i % 60000); });
  // 130 a second is over the floor but under 3x the baseline: still normal.
  r.stream(t0 + 30 * kSec, 10, 1300, [](uint64_t i) { return syn(spoofed(i % 500), 3000 + i); });
  EXPECT_TRUE(r.events.empty()) << r.events[0];
  // 1,000 a second is not.
  r.stream(t0 + 40 * kSec, 3, 3000, [](uint64_t i) { return syn(spoofed(i), 5000 + i % 50000); });
  EXPECT_EQ(r.count("start"), 1u);
  r.det->finish(t0 + 44 * kSec);
  ASSERT_EQ(r.det->attacks().size(), 1u);
  // The baseline learned the 80, then the 130 of normal time.
  EXPECT_GE(r.det->attacks()[0].baseline_pps, 80);
  EXPECT_LE(r.det->attacks()[0].baseline_pps, 130);
  EXPECT_GE(r.det->attacks()[0].start_ns, t0 + 40 * kSec - kSec / 10);
}

// Connections to 192.0.2.10:80 over [from, from + secs): `rate` a second
// from real clients, of which `complete` in 10 finish the handshake (SYN,
// the server's SYN-ACK 1 ms later, the client's ACK 1 ms after), and
// `spoofed_rate` spoofed SYNs a second that never do.
void handshakes(Rig& r, TimeNs from, double secs, uint64_t rate, uint64_t complete,
                uint64_t spoofed_rate = 0) {
  std::vector<std::pair<TimeNs, std::vector<std::byte>>> pkts;
  const IpAddr server = ip("192.0.2.10");
  const auto n = static_cast<uint64_t>(secs * static_cast<double>(rate));
  for (uint64_t i = 0; i < n; ++i) {
    const TimeNs t =
        from + static_cast<TimeNs>(secs * 1e9 * static_cast<double>(i) / static_cast<double>(n));
    const IpAddr client = IpAddr::v4(0xc6336400 + static_cast<uint32_t>(i % 200));  // 198.51.100.x
    const auto port = static_cast<uint16_t>(1024 + (from / kSec * 977 + i) % 60000);
    pkts.emplace_back(t, syn(client, port));
    pkts.emplace_back(t + kSec / 1000, PacketBuilder()
                                           .eth(kMac, kMac)
                                           .ipv4(server, client)
                                           .tcp(80, port, tf::kSyn | tf::kAck, 5000, 2)
                                           .build());
    if (i % 10 < complete)
      pkts.emplace_back(t + 2 * kSec / 1000, PacketBuilder()
                                                 .eth(kMac, kMac)
                                                 .ipv4(client, server)
                                                 .tcp(port, 80, tf::kAck, 2, 5001)
                                                 .build());
  }
  const auto m = static_cast<uint64_t>(secs * static_cast<double>(spoofed_rate));
  for (uint64_t i = 0; i < m; ++i)
    pkts.emplace_back(
        from + static_cast<TimeNs>(secs * 1e9 * static_cast<double>(i) / static_cast<double>(m)),
        syn(spoofed(from + i), static_cast<uint16_t>(1024 + i % 60000)));
  std::stable_sort(pkts.begin(), pkts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [t, f] : pkts)
    r.send(f, t);
}

// The SYN-to-ACK ratio tells a crowd of clients from a flood: learned at
// 90%, a surge of SYNs whose handshakes complete is no attack however many,
// and spoofed SYNs that drag it down are one under the SYN floor.
TEST(DdosDetector, SynToAckRatioTellsACrowdFromAFlood) {
  Profile prof;
  prof.learning_s = 20;
  Rig r(prof);
  const TimeNs t0 = 100 * kSec;
  handshakes(r, t0, 30, 100, 9);  // 100 connections a second, 9 in 10 complete
  // A crowd: 3,000 a second (three times the SYN floor), as many completing.
  handshakes(r, t0 + 30 * kSec, 5, 3000, 9);
  EXPECT_TRUE(r.events.empty()) << r.events[0];
  EXPECT_EQ(r.det->stats().flash_crowds, 1u);
  handshakes(r, t0 + 35 * kSec, 10, 100, 9);
  // 400 spoofed SYNs a second beside the clients: under the 1,000 SYN floor,
  // but only 18% of SYNs complete.
  handshakes(r, t0 + 45 * kSec, 5, 100, 9, 400);
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"attack\":\"syn_flood\""), std::string::npos) << r.events[0];
  r.det->finish(t0 + 51 * kSec);
  ASSERT_EQ(r.det->attacks().size(), 1u);
  const AttackInfo& a = r.det->attacks()[0];
  EXPECT_GE(a.start_ns, t0 + 45 * kSec - kSec / 10);
  EXPECT_LE(a.detected_ns - (t0 + 45 * kSec), kSec);
  EXPECT_GT(a.syn_ack_ratio, 0.1);
  EXPECT_LT(a.syn_ack_ratio, 0.3);
  EXPECT_GT(a.syn_ack_baseline, 0.85);
  EXPECT_LT(a.syn_ack_baseline, 0.95);
  EXPECT_NE(r.events[0].find("\"syn_ack_ratio_pct\":"), std::string::npos) << r.events[0];
  EXPECT_NE(r.events[0].find("\"syn_ack_baseline_pct\":"), std::string::npos) << r.events[0];
  // The crowd fed no baseline: the SYN threshold is that of about 100 a second.
  const size_t at = r.events[0].find("\"threshold_pps\":");
  ASSERT_NE(at, std::string::npos);
  EXPECT_LT(std::stoi(r.events[0].substr(at + 16)), 600) << r.events[0];
  EXPECT_GT(r.det->stats().handshakes, 5000u);

  // Without the ratio, the crowd is an attack and the flood under the floor is not.
  prof.syn_ack_ratio = 0;
  Rig plain(prof);
  handshakes(plain, t0, 30, 100, 9);
  handshakes(plain, t0 + 30 * kSec, 5, 3000, 9);
  EXPECT_EQ(plain.count("start"), 1u);
  handshakes(plain, t0 + 35 * kSec, 20, 100, 9);
  ASSERT_EQ(plain.count("end"), 1u);
  handshakes(plain, t0 + 55 * kSec, 5, 100, 9, 400);
  EXPECT_EQ(plain.count("start"), 1u);
  EXPECT_EQ(plain.det->stats().flash_crowds, 0u);
}

// Handshakes the caller saw complete (the data plane's connection tracking)
// count as those the detector pairs itself; the ratio needs a learned history.
TEST(DdosDetector, HandshakesToldByTheCallerCount) {
  Profile prof;
  prof.learning_s = 10;
  Rig r(prof);
  const TimeNs t0 = 100 * kSec;
  for (uint64_t i = 0; i < 1500; ++i) {  // 15 s: SYNs, and most of the handshakes told
    const TimeNs t = t0 + static_cast<TimeNs>(i) * (kSec / 100);
    r.send(syn(spoofed(i % 300), static_cast<uint16_t>(1024 + i)), t);
    if (i % 10 < 8) r.det->handshake(ip("192.0.2.10"), t + kSec / 500);
  }
  r.det->handshake(ip("192.0.2.99"), t0 + 15 * kSec);  // not protected: ignored
  EXPECT_EQ(r.det->stats().handshakes, 1200u);
  // 2,000 SYNs a second of which as many complete: a crowd.
  for (uint64_t i = 0; i < 6000; ++i) {
    const TimeNs t = t0 + 15 * kSec + static_cast<TimeNs>(i) * (kSec / 2000);
    r.send(syn(spoofed(i % 3000), static_cast<uint16_t>(1024 + i % 60000)), t);
    if (i % 10 < 8) r.det->handshake(ip("192.0.2.10"), t + kSec / 500);
  }
  EXPECT_TRUE(r.events.empty()) << r.events[0];
  EXPECT_EQ(r.det->stats().flash_crowds, 1u);
}

TEST(DdosDetector, SolicitedRepliesAreNotAmplification) {
  Rig r;
  const TimeNs t0 = 10 * kSec;
  // The server asks 300 questions a second and gets its 300 answers.
  r.stream(t0, 5, 1500, [&](uint64_t i) {
    const uint16_t port = static_cast<uint16_t>(20000 + i);
    auto q = PacketBuilder()
                 .eth(kMac, kMac)
                 .ipv4(ip("192.0.2.10"), ip("198.51.100.53"))
                 .udp(port, 53)
                 .payload("q")
                 .build();
    r.send(q, t0 + static_cast<TimeNs>(i) * (kSec / 300));
    return PacketBuilder()
        .eth(kMac, kMac)
        .ipv4(ip("198.51.100.53"), ip("192.0.2.10"))
        .udp(53, port)
        .payload(std::string(600, 'a'))
        .build();
  });
  EXPECT_TRUE(r.events.empty()) << r.events[0];
  // 300 answers a second to questions it never asked: amplification.
  r.stream(t0 + 5 * kSec, 2, 600, [](uint64_t i) {
    return PacketBuilder()
        .eth(kMac, kMac)
        .ipv4(spoofed(i % 100), ip("192.0.2.10"))
        .udp(53, static_cast<uint16_t>(30000 + i))
        .payload(std::string(1200, 'a'))
        .build();
  });
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"attack\":\"dns_amplification\""), std::string::npos);
  // While it lasts the replies are dropped; the server's own answers still pass.
  auto rogue = PacketBuilder()
                   .eth(kMac, kMac)
                   .ipv4(spoofed(3), ip("192.0.2.10"))
                   .udp(53, 40000)
                   .payload("x")
                   .build();
  EXPECT_EQ(r.send(rogue, t0 + 7 * kSec), Detector::Verdict::Drop);
  const auto q = udp("192.0.2.10", "198.51.100.53", 41000, 53, "q");
  const auto a = udp("198.51.100.53", "192.0.2.10", 53, 41000, "a");
  r.send(q, t0 + 7 * kSec);
  EXPECT_EQ(r.send(a, t0 + 7 * kSec), Detector::Verdict::Pass);
}

TEST(DdosDetector, FragmentsFollowTheirFirstFragment) {
  Rig r;
  const TimeNs t0 = 10 * kSec;
  // Fragmented DNS replies: the first fragment has the port, the rest do not.
  r.stream(t0, 2, 600, [&](uint64_t i) {
    const uint16_t id = static_cast<uint16_t>(i);
    const IpAddr src = spoofed(i % 50);
    auto first = PacketBuilder()
                     .eth(kMac, kMac)
                     .ipv4(src, ip("192.0.2.10"))
                     .ipv4Fragment(id, 0, true)
                     .udp(53, 22)
                     .payload(std::string(1400, 'r'))
                     .build();
    r.send(first, t0 + static_cast<TimeNs>(i) * (kSec / 300));
    return PacketBuilder()
        .eth(kMac, kMac)
        .ipv4(src, ip("192.0.2.10"))
        .ipv4Fragment(id, 1408, false)
        .payload(std::string(800, 'r'))
        .build();
  });
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"vectors\":[\"dns_amplification\"]"), std::string::npos)
      << r.events[0];
}

TEST(DdosDetector, AnAttackingVmIsQuarantined) {
  Profile prof;
  prof.quarantine = Quarantine::Isolate;
  Rig r(prof, "192.0.2.0/24");
  const TimeNs t0 = 10 * kSec;
  // The protected VM floods an outside address with SYNs.
  r.stream(t0, 2, 10000, [](uint64_t i) {
    return PacketBuilder()
        .eth(kMac, kMac)
        .ipv4(ip("192.0.2.66"), ip("203.0.113.9"))
        .tcp(static_cast<uint16_t>(1024 + i % 60000), 443, tf::kSyn, 1)
        .build();
  });
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"direction\":\"outbound\""), std::string::npos);
  EXPECT_NE(r.events[0].find("\"quarantine\":\"isolate\""), std::string::npos);
  EXPECT_NE(r.events[0].find("\"target\":\"192.0.2.66\""), std::string::npos);
  auto more = PacketBuilder()
                  .eth(kMac, kMac)
                  .ipv4(ip("192.0.2.66"), ip("203.0.113.9"))
                  .tcp(999, 443, tf::kSyn, 1)
                  .build();
  EXPECT_EQ(r.send(more, t0 + 2 * kSec), Detector::Verdict::Drop);
  // Its neighbour is not.
  auto other = PacketBuilder()
                   .eth(kMac, kMac)
                   .ipv4(ip("192.0.2.67"), ip("203.0.113.9"))
                   .tcp(999, 443, tf::kSyn, 1)
                   .build();
  EXPECT_EQ(r.send(other, t0 + 2 * kSec), Detector::Verdict::Pass);
  EXPECT_NE(r.events[0].find("\"top_destinations\":[{\"ip\":\"203.0.113.9\""), std::string::npos)
      << r.events[0];
}

// Outbound UDP to one port is a flood however often the address sent there
// before; answers to peers that sent to it first are not (a game server's,
// on a port no reflector uses: answers from those are amplification whoever
// asked).
TEST(DdosDetector, AnOutboundUdpFloodToOnePortIsAFlood) {
  Rig r(Profile{}, "192.0.2.0/24");
  const TimeNs t0 = 10 * kSec;
  // The server answers 5,000 queries (2,500 a second, under the inbound
  // floor) from 200 resolvers: its 2,500 answers a second are no flood.
  r.stream(t0, 2, 10000, [](uint64_t i) {
    const std::string peer = "198.51.100." + std::to_string(1 + i / 2 % 200);
    const uint16_t port = static_cast<uint16_t>(20000 + i / 2 % 10 + 10 * (i / 400));
    return i % 2 ? udp("192.0.2.53", peer.c_str(), 7777, port, "answer")
                 : udp(peer.c_str(), "192.0.2.53", port, 7777, "query");
  });
  ASSERT_EQ(r.count("start"), 0u) << r.events[0];
  // Another address sends 20,000 datagrams to one port: a flood.
  r.stream(t0 + 3 * kSec, 2, 20000, [](uint64_t i) {
    return udp("192.0.2.66", "203.0.113.9", static_cast<uint16_t>(1024 + i % 60000), 9, "x");
  });
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"attack\":\"udp_flood\""), std::string::npos) << r.events[0];
  EXPECT_NE(r.events[0].find("\"target\":\"192.0.2.66\""), std::string::npos) << r.events[0];
  EXPECT_NE(r.events[0].find("\"direction\":\"outbound\""), std::string::npos) << r.events[0];
}

TEST(DdosDetector, UnsolicitedSynAcksAreDroppedDuringTheAttack) {
  Rig r;
  const TimeNs t0 = 10 * kSec;
  r.stream(t0, 1, 2000, [](uint64_t i) {
    return PacketBuilder()
        .eth(kMac, kMac)
        .ipv4(spoofed(i), ip("192.0.2.10"))
        .tcp(80, static_cast<uint16_t>(1024 + i), tf::kSyn | tf::kAck, 1, 2)
        .build();
  });
  ASSERT_EQ(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"attack\":\"synack_reflection\""), std::string::npos);
  EXPECT_GT(r.det->stats().dropped, 1000u);
  // The server's own connection still completes.
  auto out = PacketBuilder()
                 .eth(kMac, kMac)
                 .ipv4(ip("192.0.2.10"), ip("203.0.113.5"))
                 .tcp(50000, 443, tf::kSyn, 1)
                 .build();
  auto back = PacketBuilder()
                  .eth(kMac, kMac)
                  .ipv4(ip("203.0.113.5"), ip("192.0.2.10"))
                  .tcp(443, 50000, tf::kSyn | tf::kAck, 9, 2)
                  .build();
  r.send(out, t0 + kSec);
  EXPECT_EQ(r.send(back, t0 + kSec), Detector::Verdict::Pass);
}

TEST(DdosDetector, GapsTimeTravelAndTheTargetTableAreBounded) {
  DetectorConfig cfg;
  cfg.max_targets = 4;
  cfg.protect.push_back({*Prefix::parse("192.0.2.0/24"), 0, "net"});
  Detector det(cfg);
  std::vector<std::string> events;
  det.setSink([&](const events::Event& e) { events.push_back(e.body); });
  pkt::Decoder dec;
  pkt::Packet p;
  auto send = [&](const std::vector<std::byte>& f, TimeNs ts) {
    dec.decode(pkt::LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p);
    return det.process(p, ts);
  };
  for (int i = 0; i < 10; ++i) {
    const std::string dst = "192.0.2." + std::to_string(i + 1);
    send(syn(ip("198.51.100.1"), 1000, dst.c_str()), kSec);
  }
  EXPECT_EQ(det.stats().targets, 4u);
  EXPECT_EQ(det.stats().untracked, 6u);
  // A flood, then a year of silence: the attack ends without a year of ticks.
  for (int i = 0; i < 5000; ++i)
    send(syn(spoofed(static_cast<uint64_t>(i)), 1000, "192.0.2.1"), 2 * kSec + i * 100'000);
  send(syn(ip("198.51.100.1"), 1000, "192.0.2.1"), 2 * kSec + 365LL * 86400 * kSec);
  EXPECT_EQ(det.stats().attacks, 1u);
  EXPECT_EQ(det.stats().active, 0u);
  ASSERT_GE(events.size(), 2u);  // start, updates, end
  EXPECT_NE(events.front().find("\"event\":\"start\""), std::string::npos);
  EXPECT_NE(events.back().find("\"event\":\"end\""), std::string::npos);
  // A packet from the past is counted, not trusted to move the clock.
  send(syn(ip("198.51.100.1"), 1000, "192.0.2.1"), kSec);
  EXPECT_EQ(det.stats().out_of_order, 1u);
  det.finish(3 * kSec + 365LL * 86400 * kSec);
  EXPECT_EQ(det.stats().active, 0u);
}

TEST(DdosDetector, AReloadKeepsWhatIsStillProtected) {
  Rig r(Profile{}, "192.0.2.0/24");
  const TimeNs t0 = 10 * kSec;
  r.stream(t0, 1, 6000,
           [](uint64_t i) { return syn(spoofed(i), 1000, i % 2 ? "192.0.2.10" : "192.0.2.20"); });
  ASSERT_EQ(r.det->stats().active, 2u);
  EXPECT_NE(r.det->describe(ip("192.0.2.10")).find("under attack #"), std::string::npos);
  // The new policy protects .10 only, under another profile.
  DetectorConfig next;
  Profile strict;
  strict.name = "strict";
  next.profiles = {strict};
  next.protect.push_back({*Prefix::parse("192.0.2.10/32"), 0, "one"});
  r.det->reconfigure(next);
  EXPECT_EQ(r.det->stats().active, 1u);  // .20's attack ended (cut short)
  EXPECT_EQ(r.count("end"), 1u);
  EXPECT_EQ(r.det->stats().targets, 1u);
  EXPECT_EQ(r.det->describe(ip("192.0.2.20")), "192.0.2.20 is not protected");
  EXPECT_NE(r.det->describe(ip("192.0.2.10")).find("protected by one (profile strict"),
            std::string::npos);
  // .10's attack goes on and ends in its own time.
  r.stream(t0 + kSec, 15, 150, [](uint64_t i) { return syn(spoofed(i), 1000, "192.0.2.10"); });
  EXPECT_EQ(r.count("end"), 2u);
  EXPECT_EQ(r.count("start"), 2u);
}

TEST(DdosDetector, RateLimitsPerSourceAndPerTarget) {
  Profile prof;
  prof.limits.source_pps = 10;
  prof.limits.target_pps = 100;
  Rig r(prof);
  const TimeNs t0 = 10 * kSec;
  // One source, 100 SYNs in a second: its bucket (10 pps, a second's burst) lets ~20 through.
  size_t passed = 0;
  for (int i = 0; i < 100; ++i)
    passed += r.send(syn(ip("198.51.100.7"), static_cast<uint16_t>(2000 + i)),
                     t0 + i * (kSec / 100)) == Detector::Verdict::Pass;
  EXPECT_GE(passed, 18u);
  EXPECT_LE(passed, 22u);
  // Another source is not held back by the first one's bucket.
  EXPECT_EQ(r.send(syn(ip("198.51.100.8"), 1000), t0 + kSec), Detector::Verdict::Pass);
  // 1,000 spoofed sources in a second: each within its own limit, the target's
  // bucket (100 pps) holds them to ~200.
  passed = 0;
  for (uint64_t i = 0; i < 1000; ++i)
    passed +=
        r.send(syn(spoofed(i), 1000), t0 + 2 * kSec + static_cast<TimeNs>(i) * (kSec / 1000)) ==
        Detector::Verdict::Pass;
  EXPECT_GE(passed, 180u);
  EXPECT_LE(passed, 220u);
  EXPECT_GT(r.det->stats().limited, 800u);
  // Replies the server asked for are not limited.
  const auto q = udp("192.0.2.10", "198.51.100.53", 41000, 53, "q");
  const auto a = udp("198.51.100.53", "192.0.2.10", 53, 41000, "a");
  for (int i = 0; i < 50; ++i) {
    r.send(q, t0 + 3 * kSec);
    EXPECT_EQ(r.send(a, t0 + 3 * kSec), Detector::Verdict::Pass);
  }
}

TEST(DdosDetector, Ipv6AsIpv4) {
  Rig r(Profile{}, "2001:db8:10::/64");
  const TimeNs t0 = 10 * kSec;
  // Neighbour discovery to the address is the link's, not a flood.
  const MacAddr mac{};
  const IpAddr target = ip("2001:db8:10::5");
  r.stream(t0, 1, 2000, [&](uint64_t i) {
    return PacketBuilder()
        .eth(kMac, kMac)
        .ipv6(IpAddr::v6(std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0x99, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, static_cast<uint8_t>(i >> 8),
                                                 static_cast<uint8_t>(i)}
                             .data()),
              target, 255)
        .nd(135, target, &mac)
        .build();
  });
  EXPECT_TRUE(r.events.empty());
  // A spoofed SYN flood and DNS replies nobody asked for, over IPv6.
  r.stream(t0 + kSec, 1, 3000, [&](uint64_t i) {
    std::array<uint8_t, 16> src{0x20,
                                0x01,
                                0x0d,
                                0xb8,
                                0x77,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                static_cast<uint8_t>(i >> 24),
                                static_cast<uint8_t>(i >> 16),
                                static_cast<uint8_t>(i >> 8),
                                static_cast<uint8_t>(i)};
    auto b = PacketBuilder().eth(kMac, kMac).ipv6(IpAddr::v6(src.data()), target);
    if (i % 2) return b.tcp(static_cast<uint16_t>(1024 + i), 443, tf::kSyn, 1).build();
    return b.udp(53, static_cast<uint16_t>(1024 + i)).payload(std::string(900, 'r')).build();
  });
  ASSERT_GE(r.count("start"), 1u);
  EXPECT_NE(r.events[0].find("\"target\":\"2001:db8:10::5\""), std::string::npos) << r.events[0];
  r.det->finish(t0 + 3 * kSec);
  ASSERT_EQ(r.det->attacks().size(), 1u);
  std::vector<Vector> seen;
  for (const auto& [v, n] : r.det->attacks()[0].vectors)
    seen.push_back(v);
  EXPECT_NE(std::find(seen.begin(), seen.end(), Vector::SynFlood), seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), Vector::Dns), seen.end());
}

TEST(DdosSynCookies, SipHashMatchesTheReferenceVector) {
  // The SipHash paper's test: key 00..0f, message 00..0e.
  SipKey k;
  uint8_t key[16], msg[15];
  for (int i = 0; i < 16; ++i)
    key[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 15; ++i)
    msg[i] = static_cast<uint8_t>(i);
  std::memcpy(&k.k0, key, 8);
  std::memcpy(&k.k1, key + 8, 8);
  EXPECT_EQ(sipHash24(k, msg, sizeof msg), 0xa129ca6149be45e5ULL);
}

TEST(DdosSynCookies, TheAckThatCompletesTheHandshakeIsAccepted) {
  const SynCookies c(SipKey{1, 2});
  const CookieTuple t{ip("198.51.100.7"), ip("192.0.2.10"), 40000, 443};
  const TimeNs now = 1000 * kSec;
  CookieOptions o;
  o.mss = 1460;
  o.wscale = 7;
  o.sack = true;
  o.ecn = true;
  const auto m = c.make(t, 5000, o, now, 123456);
  // With timestamps: every option comes back.
  auto got = c.check(t, 5001, m.isn + 1, m.tsval, now + kSec);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->mss, 1460);
  EXPECT_EQ(got->wscale, 7);
  EXPECT_TRUE(got->sack);
  EXPECT_TRUE(got->ecn);
  // Without: the MSS only (its class, rounded down).
  o.mss = 1400;
  const auto m2 = c.make(t, 9000, o, now, 0);
  got = c.check(t, 9001, m2.isn + 1, std::nullopt, now);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->mss, 1220);
  EXPECT_EQ(got->wscale, 0xf);
  EXPECT_FALSE(got->sack);
  // Good for the next epoch, not the one after.
  EXPECT_TRUE(c.check(t, 5001, m.isn + 1, m.tsval, now + SynCookies::kEpochNs));
  EXPECT_FALSE(c.check(t, 5001, m.isn + 1, m.tsval, now + 2 * SynCookies::kEpochNs));
}

// A burst's cookies, staged and MACed eight at a time, are make()'s to the
// bit: IPv4 and IPv6 tuples interleaved, partial groups of eight, an epoch
// that turns within the burst, every MSS class and option. A family's 65th
// waits for none (make() then), and a finish leaves nothing staged.
TEST(DdosSynCookies, StagedCookiesAreTheOnesMadeOneAtATime) {
  SynCookies c(SipKey{0x0123456789abcdefULL, 0xfedcba9876543210ULL});
  const TimeNs turn = 20 * SynCookies::kEpochNs;
  struct Want {
    CookieTuple t;
    uint32_t isn;
    CookieOptions o;
    TimeNs now;
    SynCookies::Made made;
    bool sealed = false;
  };
  std::vector<Want> want;
  std::mt19937 rng(4987);
  for (int round = 0; round < 3; ++round) {
    const size_t n = round == 0 ? 29 : round == 1 ? 8 : 1;  // groups of 8 and a remainder
    want.clear();
    for (size_t i = 0; i < n; ++i) {
      Want w;
      const bool v6 = i % 3 == 1;
      const std::string client =
          v6 ? "2001:db8:7::" + std::to_string(i + 1) : "198.51.100." + std::to_string(i + 1);
      w.t = {*IpAddr::parse(client), v6 ? ip("2001:db8:ff::10") : ip("203.0.113.10"),
             static_cast<uint16_t>(rng()), static_cast<uint16_t>(i % 2 ? 443 : 80)};
      w.isn = static_cast<uint32_t>(rng());
      w.o.mss = SynCookies::kMss[i % 4] + static_cast<uint16_t>(i % 5);
      w.o.wscale = static_cast<uint8_t>(i % 16);
      w.o.sack = i % 2;
      w.o.ecn = i % 3 == 0;
      w.now = turn + (static_cast<TimeNs>(i) - static_cast<TimeNs>(n / 2)) * kSec;
      const uint32_t now_ms = static_cast<uint32_t>(w.now / 1'000'000);
      ASSERT_TRUE(c.stage(w.t, w.isn, w.o, w.now, now_ms, static_cast<uint32_t>(i), w.made));
      EXPECT_EQ(w.made.isn & SynCookies::kMacMask, 0u);
      want.push_back(w);
    }
    EXPECT_EQ(c.staged(), n);
    const auto macs = c.finishStaged();
    EXPECT_EQ(macs.size(), n);
    EXPECT_EQ(c.staged(), 0u);
    for (const SynCookies::StagedMac& m : macs) {
      ASSERT_LT(m.tag, want.size());
      Want& w = want[m.tag];
      EXPECT_FALSE(w.sealed) << "tag " << m.tag << " twice";
      w.sealed = true;
      const auto made = c.make(w.t, w.isn, w.o, w.now, static_cast<uint32_t>(w.now / 1'000'000));
      EXPECT_EQ(w.made.isn | m.mac, made.isn) << "tag " << m.tag;
      EXPECT_EQ(w.made.tsval, made.tsval) << "tag " << m.tag;
      EXPECT_TRUE(c.check(w.t, w.isn + 1, (w.made.isn | m.mac) + 1, made.tsval, w.now + kSec));
    }
  }
  // Full: the 65th IPv4 tuple is refused; IPv6 ones still have room.
  SynCookies::Made m;
  const CookieTuple t4{ip("198.51.100.7"), ip("203.0.113.10"), 40000, 443};
  const CookieTuple t6{ip("2001:db8:7::1"), ip("2001:db8:ff::10"), 40000, 443};
  for (uint32_t i = 0; i < SynCookies::kMaxStaged; ++i)
    ASSERT_TRUE(c.stage(t4, i, {}, turn, 0, i, m));
  EXPECT_FALSE(c.stage(t4, 99, {}, turn, 0, 99, m));
  EXPECT_TRUE(c.stage(t6, 99, {}, turn, 0, 99, m));
  EXPECT_EQ(c.finishStaged().size(), SynCookies::kMaxStaged + 1);
}

TEST(DdosSynCookies, ForgedAndMisdirectedAcksAreRefused) {
  const SynCookies c(SipKey{3, 4});
  const CookieTuple t{ip("198.51.100.7"), ip("192.0.2.10"), 40000, 443};
  const TimeNs now = 77 * kSec;
  const auto m = c.make(t, 5000, {}, now, 0);
  EXPECT_FALSE(c.check(t, 5001, m.isn + 2, std::nullopt, now));  // another number
  EXPECT_FALSE(c.check(t, 6001, m.isn + 1, std::nullopt, now));  // another client ISN
  CookieTuple other = t;
  other.client_port = 40001;
  EXPECT_FALSE(c.check(other, 5001, m.isn + 1, std::nullopt, now));
  other = t;
  other.client = ip("198.51.100.8");
  EXPECT_FALSE(c.check(other, 5001, m.isn + 1, std::nullopt, now));
  // Another secret (after a restart) knows none of them.
  EXPECT_FALSE(SynCookies(SipKey{3, 5}).check(t, 5001, m.isn + 1, std::nullopt, now));
  // Blind guessing: about 1 in 2^27 per try.
  std::mt19937 rng(1);
  int accepted = 0;
  for (int i = 0; i < 200000; ++i)
    accepted += c.check(t, 5001, static_cast<uint32_t>(rng()), std::nullopt, now).has_value();
  EXPECT_EQ(accepted, 0);
}

}  // namespace
}  // namespace palisade::ddos
