#include <gtest/gtest.h>

#include <random>

#include "classify/classifier.h"

namespace palisade::classify {
namespace {

IpAddr v4(const char* s) {
  return IpAddr::parse(s).value();
}

Entry rule(const char* src, uint8_t slen, const char* dst, uint8_t dlen, uint32_t pri,
           uint32_t id) {
  Entry e;
  e.src = v4(src);
  e.src_len = static_cast<uint8_t>(96 + slen);
  e.dst = v4(dst);
  e.dst_len = static_cast<uint8_t>(96 + dlen);
  e.priority = pri;
  e.id = id;
  return e;
}

Key key(const char* src, const char* dst, uint16_t sport, uint16_t dport, uint8_t proto = 6) {
  return Key{v4(src), v4(dst), sport, dport, proto};
}

// The reference classifier holding `live`.
LinearClassifier linearOf(const std::vector<Entry>& live) {
  LinearClassifier lin;
  for (const Entry& e : live)
    lin.add(e);
  return lin;
}

TEST(Classifier, LowestPriorityWinsWhateverTheInsertionOrder) {
  Classifier c;
  c.add(rule("0.0.0.0", 0, "0.0.0.0", 0, 4096, 1));
  c.add(rule("198.51.100.0", 24, "192.0.2.0", 24, 100, 2));
  c.add(rule("198.51.100.7", 32, "0.0.0.0", 0, 200, 3));
  auto m = c.classify(key("198.51.100.7", "192.0.2.4", 1, 443));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 2u);
  m = c.classify(key("198.51.100.7", "203.0.113.1", 1, 443));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 3u);
  m = c.classify(key("203.0.113.9", "203.0.113.1", 1, 443));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 1u);
}

TEST(Classifier, PortRangesAndProtocol) {
  Classifier c;
  Entry e = rule("0.0.0.0", 0, "0.0.0.0", 0, 100, 7);
  e.proto = 6;
  e.dport_lo = 81;
  e.dport_hi = 442;
  c.add(e);
  EXPECT_FALSE(c.classify(key("192.0.2.1", "192.0.2.2", 1, 80)));
  EXPECT_TRUE(c.classify(key("192.0.2.1", "192.0.2.2", 1, 81)));
  EXPECT_TRUE(c.classify(key("192.0.2.1", "192.0.2.2", 1, 442)));
  EXPECT_FALSE(c.classify(key("192.0.2.1", "192.0.2.2", 1, 443)));
  EXPECT_FALSE(c.classify(key("192.0.2.1", "192.0.2.2", 1, 100, 17)));
}

TEST(Classifier, EraseRemovesEveryEntryOfTheId) {
  Classifier c;
  c.add(rule("198.51.100.0", 24, "0.0.0.0", 0, 100, 1));
  c.add(rule("203.0.113.0", 24, "0.0.0.0", 0, 100, 1));
  c.add(rule("0.0.0.0", 0, "0.0.0.0", 0, 500, 2));
  EXPECT_EQ(c.classify(key("203.0.113.5", "192.0.2.1", 1, 1))->id, 1u);
  EXPECT_EQ(c.erase(1), 2u);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.classify(key("203.0.113.5", "192.0.2.1", 1, 1))->id, 2u);
  EXPECT_EQ(c.erase(1), 0u);
}

// Differential: random rule sets with nested prefixes, ranges and wildcards must
// classify exactly like the linear reference, before and after erasing rules.
TEST(Classifier, AgreesWithLinearReferenceOnRandomSets) {
  std::mt19937 rng(42);
  for (int round = 0; round < 8; ++round) {
    Classifier tm;
    std::vector<Entry> all;
    const int n = 200 + round * 300;
    for (int i = 0; i < n; ++i) {
      Entry e;
      auto pick = [&](uint8_t& len, IpAddr& a) {
        const uint8_t l = static_cast<uint8_t>(std::uniform_int_distribution<>(0, 4)(rng) * 8);
        const uint32_t base = 0xc0000200u | (rng() & 0xffu);  // inside 192.0.2.0/24 mostly
        a = IpAddr::v4((rng() % 4 == 0) ? static_cast<uint32_t>(rng()) : base);
        len = static_cast<uint8_t>(96 + l);
      };
      pick(e.src_len, e.src);
      pick(e.dst_len, e.dst);
      e.proto = (rng() % 3 == 0) ? kProtoAny : static_cast<uint8_t>(rng() % 2 ? 6 : 17);
      if (rng() % 2) {
        e.dport_lo = static_cast<uint16_t>(rng() % 1024);
        e.dport_hi = static_cast<uint16_t>(e.dport_lo + rng() % 64);
      }
      if (rng() % 5 == 0) {
        e.sport_lo = static_cast<uint16_t>(rng() % 60000);
        e.sport_hi = static_cast<uint16_t>(e.sport_lo + rng() % 5000);
      }
      e.priority = static_cast<uint32_t>(rng() % 5000);
      e.id = static_cast<uint32_t>(i);
      tm.add(e);
      all.push_back(e);
    }
    auto check = [&](const std::vector<Entry>& live) {
      const LinearClassifier lin = linearOf(live);
      for (int q = 0; q < 3000; ++q) {
        Key k;
        k.src = IpAddr::v4(rng() % 2 ? (0xc0000200u | (rng() & 0xffu)) : rng());
        k.dst = IpAddr::v4(rng() % 2 ? (0xc0000200u | (rng() & 0xffu)) : rng());
        k.sport = static_cast<uint16_t>(rng());
        k.dport = static_cast<uint16_t>(rng() % 1100);
        k.proto = rng() % 2 ? 6 : 17;
        const auto a = tm.classify(k);
        const auto b = lin.classify(k);
        ASSERT_EQ(a.has_value(), b.has_value());
        if (a) {
          ASSERT_EQ(a->priority, b->priority);  // equal priorities may pick either id
        }
      }
    };
    check(all);
    std::vector<Entry> kept;
    for (const Entry& e : all) {
      if (e.id % 3 == 0)
        ASSERT_EQ(tm.erase(e.id), 1u);
      else
        kept.push_back(e);
    }
    EXPECT_EQ(tm.size(), kept.size());
    check(kept);
  }
}

// Rule churn (policy updates replacing rules with new prefixes) keeps memory
// bounded: emptied buckets are removed, and results stay right.
TEST(Classifier, ChurnKeepsMemoryBoundedAndResultsRight) {
  std::mt19937 rng(7);
  Classifier tm;
  std::vector<Entry> live;
  auto fresh = [&](uint32_t id) {
    Entry e;
    e.src = IpAddr::v4(static_cast<uint32_t>(rng()) & (rng() % 2 ? 0xffffff00u : 0xffffffffu));
    e.src_len = static_cast<uint8_t>(96 + ((e.src.v4Value() & 0xff) ? 32 : 24));
    e.dst = IpAddr::v4(0xc0000200u | (rng() & 0xffu));
    e.dst_len = 128;
    e.proto = 6;
    e.priority = static_cast<uint32_t>(rng() % 4000);
    e.id = id;
    return e;
  };
  uint32_t next_id = 0;
  for (int i = 0; i < 2000; ++i) {
    live.push_back(fresh(next_id++));
    tm.add(live.back());
  }
  const size_t steady = tm.memoryBytes();
  for (int i = 0; i < 100000; ++i) {
    const size_t victim = rng() % live.size();
    ASSERT_EQ(tm.erase(live[victim].id), 1u);
    live[victim] = fresh(next_id++);
    tm.add(live[victim]);
  }
  EXPECT_EQ(tm.size(), live.size());
  EXPECT_LT(tm.memoryBytes(), steady * 2) << "steady " << steady;
  const LinearClassifier lin = linearOf(live);
  for (int q = 0; q < 20000; ++q) {
    const Entry& e = live[rng() % live.size()];
    Key k{rng() % 2 ? e.src : IpAddr::v4(static_cast<uint32_t>(rng())), e.dst, 1000, 80, 6};
    const auto a = tm.classify(k);
    const auto b = lin.classify(k);
    ASSERT_EQ(a.has_value(), b.has_value());
    if (a) {
      ASSERT_EQ(a->priority, b->priority);
    }
  }
}

// One table far past a slot segment (1,024 slots): segments double, then split
// one at a time; every key must stay findable through the splits and through
// backward-shift deletions inside a segment.
TEST(Classifier, OneLargeTableStaysExactThroughSplitsAndErases) {
  Classifier c;
  const uint32_t n = 60000;
  auto host = [](uint32_t i) {
    Entry e;
    e.src = IpAddr::v4(0xc6336400u + (i << 8));  // spread over the whole word
    e.src_len = 128;
    e.dst = IpAddr::v4(0xcb007100u | (i & 0xff));
    e.dst_len = 128;
    e.proto = 6;
    e.priority = 100 + i % 3000;
    e.id = i;
    return e;
  };
  for (uint32_t i = 0; i < n; ++i)
    c.add(host(i));
  EXPECT_LE(c.tableCount(), 2u);
  auto check = [&](uint32_t i, bool present) {
    const Entry e = host(i);
    const auto m = c.classify(Key{e.src, e.dst, 1, 2, 6});
    ASSERT_EQ(m.has_value(), present) << i;
    if (present) {
      ASSERT_EQ(m->id, i);
    }
  };
  for (uint32_t i = 0; i < n; ++i)
    check(i, true);
  for (uint32_t i = 0; i < n; i += 2)
    ASSERT_EQ(c.erase(i), 1u);
  for (uint32_t i = 0; i < n; ++i)
    check(i, i % 2 == 1);
  for (uint32_t i = 0; i < n; i += 2)
    c.add(host(i));
  for (uint32_t i = 0; i < n; ++i)
    check(i, true);
  EXPECT_EQ(c.size(), n);
}

TEST(Classifier, Ipv6AndIpv4DoNotMix) {
  Classifier c;
  Entry e;
  e.src = IpAddr::parse("2001:db8::").value();
  e.src_len = 32;
  e.id = 9;
  c.add(e);
  Key k{IpAddr::parse("2001:db8::1").value(), IpAddr::parse("2001:db8::2").value(), 1, 2, 6};
  EXPECT_EQ(c.classify(k)->id, 9u);
  EXPECT_FALSE(c.classify(key("192.0.2.1", "192.0.2.2", 1, 2)));
}

// Each lookup visits only the tables of its key's family. Entries of both
// families, of one, and prefixes shorter than /96 that cover IPv4-mapped space
// (as a service tag's complement has) must still be found for the keys they
// match, IPv4, IPv6 or mixed, before and after erases empty a family.
TEST(Classifier, FamiliesOfTablesAgreeWithLinearReference) {
  std::mt19937 rng(11);
  auto randomAddr = [&] {
    IpAddr a;
    for (auto& b : a.b)
      b = static_cast<uint8_t>(rng());
    return a;
  };
  auto doc6 = [&] {
    IpAddr a = IpAddr::parse("2001:db8::").value();
    a.b[4] = static_cast<uint8_t>(rng() % 4);
    a.b[15] = static_cast<uint8_t>(rng());
    return a;
  };
  auto doc4 = [&] {
    return IpAddr::v4(0xc0000200u | (rng() % 4 == 0 ? rng() & 0xffu : rng() & 7));
  };
  auto pick = [&](IpAddr& a, uint8_t& len) {
    switch (rng() % 6) {
      case 0:  // anything
        a = IpAddr{};
        len = 0;
        break;
      case 1:  // all of IPv4
        a = IpAddr::v4(0u);
        len = 96;
        break;
      case 2:  // an IPv4 prefix
        a = rng() % 2 ? doc4() : IpAddr::v4(static_cast<uint32_t>(rng()));
        len = static_cast<uint8_t>(96 + rng() % 33);
        break;
      case 3:  // an IPv6 prefix
        a = doc6();
        len = static_cast<uint8_t>(32 + rng() % 97);
        break;
      case 4:  // shorter than /96, covering IPv4-mapped space
        a = IpAddr::v4(0u);
        len = static_cast<uint8_t>(rng() % 96);
        break;
      default:  // shorter than /96, anywhere
        a = randomAddr();
        len = static_cast<uint8_t>(rng() % 96);
        break;
    }
  };
  Classifier tm;
  std::vector<Entry> all;
  for (uint32_t i = 0; i < 600; ++i) {
    Entry e;
    pick(e.src, e.src_len);
    pick(e.dst, e.dst_len);
    e.proto = rng() % 3 == 0 ? kProtoAny : 6;
    if (rng() % 2) e.dport_lo = e.dport_hi = static_cast<uint16_t>(rng() % 8);
    e.priority = static_cast<uint32_t>(rng() % 4096);
    e.id = i;
    tm.add(e);
    all.push_back(e);
  }
  auto check = [&](const std::vector<Entry>& live) {
    const LinearClassifier lin = linearOf(live);
    size_t hits[3] = {};
    for (int q = 0; q < 6000; ++q) {
      const int family = q % 3;  // IPv4, IPv6, mixed
      auto addr = [&](bool v4) {
        if (v4) return rng() % 2 ? doc4() : IpAddr::v4(static_cast<uint32_t>(rng()));
        return rng() % 2 ? doc6() : randomAddr();
      };
      const Key k{addr(family == 0 || family == 2), addr(family == 0), static_cast<uint16_t>(rng()),
                  static_cast<uint16_t>(rng() % 8), 6};
      const auto a = tm.classify(k);
      const auto b = lin.classify(k);
      ASSERT_EQ(a.has_value(), b.has_value()) << "family " << family;
      if (a) {
        ASSERT_EQ(a->priority, b->priority) << "family " << family;
        ++hits[family];
      }
    }
    for (size_t f = 0; f < 3; ++f)
      EXPECT_GT(hits[f], 100u) << "family " << f << " barely exercised";
  };
  check(all);
  // Erase every IPv6-only entry and a third of the rest: tables lose a family.
  std::vector<Entry> kept;
  for (const Entry& e : all) {
    const bool v6_only = e.src_len >= 96 ? !e.src.isV4() : (e.dst_len >= 96 && !e.dst.isV4());
    if (v6_only || e.id % 3 == 0)
      ASSERT_EQ(tm.erase(e.id), 1u);
    else
      kept.push_back(e);
  }
  check(kept);
  // And back: entries added again reach the lookups of their families.
  for (Entry e : all) {
    e.id += 1000;
    tm.add(e);
    kept.push_back(e);
  }
  check(kept);
}

}  // namespace
}  // namespace palisade::classify
