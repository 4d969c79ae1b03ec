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
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      t.erase(it->first);
      EXPECT_FALSE(t.find(it->second).found());
      live.erase(it);
    }
  }
  EXPECT_EQ(t.size(), live.size());
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
