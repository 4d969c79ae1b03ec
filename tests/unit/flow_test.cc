#include <gtest/gtest.h>

#include <map>
#include <random>

#include "flow/flow_table.h"

namespace palisade::flow {
namespace {

FlowKey randomKey(std::mt19937& rng) {
  FlowKey k;
  k.src = IpAddr::v4(0xc6336400u | (rng() & 0xff));
  k.dst = IpAddr::v4(0xcb007100u | (rng() & 0xff));
  k.zone = rng() % 3;
  k.sport = static_cast<uint16_t>(rng());
  k.dport = static_cast<uint16_t>(rng() % 4);
  k.proto = 6;
  return k;
}

// Erases one live flow at random; it must be gone at once.
void eraseOne(FlowTable& t, std::map<uint32_t, FlowKey>& live, std::mt19937& rng) {
  auto it = live.begin();
  std::advance(it, rng() % live.size());
  t.erase(it->first);
  EXPECT_FALSE(t.find(it->second).found());
  live.erase(it);
}

// Churn through insertions and erasures (backward-shift deletion) and check that
// every live flow is found under both keys and nothing erased is.
TEST(FlowTable, IndexStaysConsistentUnderChurn) {
  Config cfg;
  cfg.capacity = 2000;
  FlowTable t(cfg);
  std::mt19937 rng(7);
  std::map<uint32_t, FlowKey> live;
  for (int round = 0; round < 20000; ++round) {
    if (live.size() < 1900 && rng() % 3 != 0) {
      FlowKey k = randomKey(rng);
      if (t.find(k).found()) continue;
      NatSpec nat;
      if (rng() % 2) {
        nat.kind = NatKind::Source;
        nat.addr = IpAddr::v4(0xcb00710au);
        nat.port = static_cast<uint16_t>(1024 + rng() % 60000);
        if (t.find(FlowKey{k.dst, nat.addr, kUplinkZone, k.dport, nat.port, 6, {}}).found())
          continue;
      }
      InsertError err;
      const uint32_t idx = t.insert(k, nat, kNoNic, 0, &err);
      ASSERT_NE(idx, kNone);
      live[idx] = k;
    } else if (!live.empty()) {
      eraseOne(t, live, rng);
    }
  }
  EXPECT_EQ(t.size(), live.size());
  EXPECT_TRUE(t.indexSummaryExact());
  for (const auto& [idx, k] : live) {
    const Hit h = t.find(k);
    ASSERT_TRUE(h.found());
    EXPECT_EQ(h.idx, idx);
    EXPECT_EQ(h.dir, Dir::Orig);
    const Hit r = t.find(t.replyKey(t.at(idx)));
    ASSERT_TRUE(r.found());
    EXPECT_EQ(r.idx, idx);
    EXPECT_EQ(r.dir, Dir::Reply);
  }
}

// At low load the index's line summary flips often: a line's bit must be set
// while the line holds an entry (or lookups miss live flows) and clear once it
// holds none (or the summary saves nothing). Checked after every step of a
// churn whose table is never more than a few percent full, including wrapped
// probe chains at the index's end, and once everything is erased.
TEST(FlowTable, IndexLineSummaryTracksEveryLine) {
  Config cfg;
  cfg.capacity = 3000;  // 7,501 slots: the last line is partial
  FlowTable t(cfg);
  std::mt19937 rng(11);
  std::map<uint32_t, FlowKey> live;
  for (int round = 0; round < 6000; ++round) {
    if (live.size() < 150 && rng() % 2 == 0) {
      FlowKey k = randomKey(rng);
      if (t.find(k).found()) continue;
      InsertError err;
      const uint32_t idx = t.insert(k, NatSpec{}, kNoNic, 0, &err);
      ASSERT_NE(idx, kNone);
      live[idx] = k;
    } else if (!live.empty()) {
      eraseOne(t, live, rng);
    }
    ASSERT_TRUE(t.indexSummaryExact()) << "after round " << round;
    if (round % 500 == 0)
      for (const auto& [idx, k] : live) {
        ASSERT_TRUE(t.find(k).found());
        ASSERT_TRUE(t.find(t.replyKey(t.at(idx))).found());
      }
  }
  for (const auto& [idx, k] : live)
    t.erase(idx);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.indexSummaryExact());
}

// find() compares a key with a flow's field by field (keyMatches) instead of
// building origKey()/replyKey(): the two must agree for every protocol and
// NAT kind, and a key that differs in any one field must miss.
TEST(FlowTable, FindAgreesWithTheBuiltKeysInEveryField) {
  Config cfg;
  cfg.capacity = 64;
  cfg.seed = 3;
  FlowTable t(cfg);
  const IpAddr v4a = IpAddr::v4(0xc6336407u), v4b = IpAddr::v4(0xcb00710au);
  const IpAddr v6a = *IpAddr::parse("2001:db8::7"), v6b = *IpAddr::parse("2001:db8:1::a");
  uint16_t port = 1000;
  for (const uint8_t proto : {uint8_t{6}, uint8_t{17}, uint8_t{1}, uint8_t{58}}) {
    for (const NatKind kind : {NatKind::None, NatKind::Source, NatKind::Destination}) {
      const bool v6 = proto == 58;
      FlowKey k;
      k.src = v6 ? v6a : v4a;
      k.dst = v6 ? v6b : v4b;
      k.zone = 2;
      k.sport = ++port;
      k.dport = proto == 1 || proto == 58 ? k.sport : 443;  // ICMP: the echo id in both
      k.proto = proto;
      NatSpec nat;
      nat.kind = kind;
      nat.addr = v6 ? *IpAddr::parse("2001:db8:2::1") : IpAddr::v4(0xc0000204u);
      nat.port = static_cast<uint16_t>(port + 20000);
      nat.zone = 5;
      InsertError err;
      const uint32_t idx = t.insert(k, nat, kNoNic, 0, &err);
      ASSERT_NE(idx, kNone);
      const Flow& f = t.at(idx);
      for (const Dir d : {Dir::Orig, Dir::Reply}) {
        const FlowKey built = d == Dir::Orig ? t.origKey(f) : t.replyKey(f);
        const Hit h = t.find(built);
        ASSERT_TRUE(h.found()) << int{proto} << " nat " << static_cast<int>(kind);
        EXPECT_EQ(h.idx, idx);
        EXPECT_EQ(h.dir, d);
        EXPECT_TRUE(t.keyMatches(f, d, built));
        const auto miss = [&](FlowKey other) {
          EXPECT_FALSE(t.keyMatches(f, d, other)) << int{proto} << " " << static_cast<int>(kind);
          EXPECT_FALSE(t.find(other).found());
        };
        FlowKey o = built;
        o.src.b[15] ^= 1;
        miss(o);
        o = built;
        o.dst.b[3] ^= 1;
        miss(o);
        o = built;
        ++o.zone;
        miss(o);
        o = built;
        o.sport ^= 0x100;
        miss(o);
        o = built;
        o.dport ^= 0x100;
        miss(o);
        o = built;
        o.proto = 132;
        miss(o);
      }
    }
  }
}

// A budget of the whole capacity is one pass over the slots ever used: every
// idle flow goes, whatever slot the incremental sweep had reached.
TEST(FlowTable, WholePassSweepExpiresEveryIdleFlow) {
  Config cfg;
  cfg.capacity = 100000;
  FlowTable t(cfg);
  std::mt19937 rng(11);
  std::vector<uint32_t> kept;
  for (int i = 0; i < 300; ++i) {
    FlowKey k = randomKey(rng);
    if (t.find(k).found()) continue;
    InsertError err;
    const uint32_t idx = t.insert(k, {}, kNoNic, 0, &err);
    ASSERT_NE(idx, kNone);
    if (i % 3 == 0) kept.push_back(idx);
  }
  const size_t before = t.size();
  uint32_t seen = 0;
  // The incremental sweep moves past the used slots (nothing is idle yet)...
  EXPECT_EQ(t.sweep(0, 1000, [&](uint32_t) { ++seen; }), 0u);
  // ... a third of the flows stay busy, the rest go idle for 10 minutes...
  for (uint32_t idx : kept)
    t.at(idx).last_ms = 600000;
  // ... and a whole pass still finds every idle one.
  const uint32_t expired = t.sweep(601000, cfg.capacity, [&](uint32_t) { ++seen; });
  EXPECT_EQ(expired, before - kept.size());
  EXPECT_EQ(seen, before - kept.size());
  EXPECT_EQ(t.size(), kept.size());
  for (uint32_t idx : kept)
    EXPECT_TRUE(t.find(t.origKey(t.at(idx))).found());
}

TEST(FlowTable, BytesPerConnectionStayUnder128) {
  Config cfg;
  cfg.capacity = 100000;
  FlowTable t(cfg);
  EXPECT_LE(t.memoryBytes() / cfg.capacity, 128u);
}

}  // namespace
}  // namespace palisade::flow
