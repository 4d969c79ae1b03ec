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

TEST(FlowTable, BytesPerConnectionStayUnder128) {
  Config cfg;
  cfg.capacity = 100000;
  FlowTable t(cfg);
  EXPECT_LE(t.memoryBytes() / cfg.capacity, 128u);
}

}  // namespace
}  // namespace palisade::flow
