#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "core/json_writer.h"
#include "core/net.h"
#include "core/probe.h"
#include "core/siphash.h"
#include "core/strings.h"
#include "core/time.h"

namespace palisade {
namespace {

TEST(Time, ParsesRfc3339DatesAndZones) {
  EXPECT_EQ(parseTimestamp("1970-01-01"), TimeNs{0});
  EXPECT_EQ(parseTimestamp("2026-11-22T10:04:05Z"), 1795341845ull * 1000000000ull);
  EXPECT_EQ(parseTimestamp("2026-11-22T10:04:05.001000+00:00"),
            1795341845ull * 1000000000ull + 1000000);
  EXPECT_EQ(parseTimestamp("2026-11-22 12:04:05.5+02:00"),
            1795341845ull * 1000000000ull + 500000000);
  EXPECT_EQ(parseTimestamp("2026-11-22T05:04:05-05:00"), 1795341845ull * 1000000000ull);
  EXPECT_EQ(parseTimestamp("2026-11-22T10:04:05.123456789Z"), 1795341845123456789ull);
  for (const char* bad :
       {"", "2026", "2026-11-22T10:04:05", "2026-02-30", "2026-13-01", "1969-12-31", "2026-11-22x",
        "2026-11-22T10:04:05.Z", "2026-11-22T10:04:05.1234567890Z", "2026-11-22T24:00:00Z",
        "2026-11-22T10:04:05+0200", "2026-11-22T10:04:05Zjunk", "2026-1a-22"})
    EXPECT_FALSE(parseTimestamp(bad)) << bad;
}

TEST(Time, CivilDatesRoundTripAndMonthsStep) {
  for (int64_t d : {0, 59, 365, 10957, 20414, 20879, 100000}) {
    EXPECT_EQ(daysFromCivil(civilFromDays(d)), d);
  }
  const CivilDate leap = civilFromDays(daysFromCivil({2028, 2, 29}));
  EXPECT_EQ(leap.month, 2u);
  EXPECT_EQ(leap.day, 29u);
  const TimeNs t = *parseTimestamp("2026-12-15T08:00:00Z");
  EXPECT_EQ(monthStart(t), *parseTimestamp("2026-12-01"));
  EXPECT_EQ(monthStart(t, 1), *parseTimestamp("2027-01-01"));
  EXPECT_EQ(monthStart(t, -12), *parseTimestamp("2025-12-01"));
}

TEST(IpAddr, ParsesAndFormatsBothFamilies) {
  auto v4 = IpAddr::parse("192.0.2.7");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->isV4());
  EXPECT_EQ(v4->v4Value(), 0xC0000207u);
  EXPECT_EQ(v4->toString(), "192.0.2.7");
  auto v6 = IpAddr::parse("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->isV4());
  EXPECT_EQ(v6->toString(), "2001:db8::1");
  EXPECT_FALSE(IpAddr::parse("192.0.2.256"));
  EXPECT_FALSE(IpAddr::parse(""));
  EXPECT_FALSE(IpAddr::parse("not an address"));
  EXPECT_FALSE(IpAddr::parse(std::string(100, '1')));
}

// formatIp is inet_ntop's output without its sprintf: every pattern of zero
// groups (where "::" goes, the embedded IPv4 forms) and random values.
TEST(IpAddr, FormatMatchesInetNtop) {
  std::mt19937 rng(7);
  auto check = [](const IpAddr& a) {
    char want[INET6_ADDRSTRLEN], got[48];
    ASSERT_TRUE(a.isV4() ? inet_ntop(AF_INET, a.b.data() + 12, want, sizeof want)
                         : inet_ntop(AF_INET6, a.b.data(), want, sizeof want));
    ASSERT_EQ(std::string_view(got, formatIp(a, got)), want);
  };
  for (unsigned zeros = 0; zeros < 256; ++zeros) {
    for (int round = 0; round < 20; ++round) {
      IpAddr a;
      for (int w = 0; w < 8; ++w) {
        uint16_t v = 0;
        if (!(zeros >> w & 1)) {
          const uint16_t kinds[] = {static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng() & 15),
                                    static_cast<uint16_t>(rng() & 0xff), 0xffff, 0x0100};
          v = kinds[round % 5];
          if (v == 0) v = 1;
        }
        a.b[2 * w] = static_cast<uint8_t>(v >> 8);
        a.b[2 * w + 1] = static_cast<uint8_t>(v);
      }
      check(a);
    }
  }
  for (uint32_t v : {0u, 1u, 9u, 10u, 99u, 100u, 255u, 0x0a000001u, 0xc0000207u, 0xffffffffu,
                     0x01020304u, 0x640a0a0au})
    check(IpAddr::v4(v));
  for (const char* t : {"::", "::1", "::ffff:0.0.0.0", "::0.0.0.2", "2001:db8::", "fe80::1:0:0:1",
                        "2001:db8:0:0:1:0:0:1", "::ffff:1:2", "1::", "0:0:1::"}) {
    auto a = IpAddr::parse(t);
    ASSERT_TRUE(a) << t;
    check(*a);
  }
}

TEST(IpAddr, OrdersAsTheBytesDo) {
  // The order range sets search by: byte by byte, as memcmp orders them,
  // including addresses that differ only in the last word or the last byte.
  std::mt19937 rng(11);
  std::vector<IpAddr> as;
  for (int i = 0; i < 400; ++i) {
    IpAddr a;
    for (uint8_t& x : a.b)
      x = static_cast<uint8_t>(rng() % 4 == 0 ? rng() : (i & 3) * 0x55);
    as.push_back(a);
    IpAddr b = a;
    b.b[rng() % 16] ^= static_cast<uint8_t>(1u << (rng() % 8));
    as.push_back(b);
  }
  for (const IpAddr& x : as)
    for (const IpAddr& y : as) {
      const int want = std::memcmp(x.b.data(), y.b.data(), 16);
      const auto got = x <=> y;
      ASSERT_EQ(want < 0, got < 0);
      ASSERT_EQ(want == 0, got == 0);
      ASSERT_EQ(want == 0, x == y);
    }
  EXPECT_LT(*IpAddr::parse("192.0.2.1"), *IpAddr::parse("192.0.2.2"));
  EXPECT_LT(*IpAddr::parse("255.255.255.255"), *IpAddr::parse("2001:db8::"));
}

TEST(IpAddr, MulticastAndUnspecified) {
  EXPECT_TRUE(IpAddr::parse("224.0.0.1")->isMulticast());
  EXPECT_TRUE(IpAddr::parse("ff02::1")->isMulticast());
  EXPECT_FALSE(IpAddr::parse("192.0.2.1")->isMulticast());
  EXPECT_TRUE(IpAddr::parse("0.0.0.0")->isUnspecified());
  EXPECT_TRUE(IpAddr::parse("::")->isUnspecified());
}

TEST(Prefix, ParsesWithPreciseErrors) {
  auto p = Prefix::parse("192.0.2.0/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->len, 24);
  EXPECT_EQ(p->toString(), "192.0.2.0/24");
  EXPECT_EQ(Prefix::parse("192.0.2.0/33").error().message,
            "prefix length '33' must be 0-32 for IPv4");
  EXPECT_EQ(Prefix::parse("192.0.2.1/24").error().message,
            "host bits are set in '192.0.2.1/24'; the network is 192.0.2.0/24");
  EXPECT_EQ(Prefix::parse("2001:db8::/129").error().message,
            "prefix length '129' must be 0-128 for IPv6");
  EXPECT_EQ(Prefix::parse("2001:db8::1/32").error().message,
            "host bits are set in '2001:db8::1/32'; the network is 2001:db8::/32");
  EXPECT_FALSE(Prefix::parse("192.0.2.0/"));
  EXPECT_FALSE(Prefix::parse("192.0.2.0/2x"));
  EXPECT_EQ(Prefix::parse("192.0.2.9")->len, 32);  // bare address: host prefix
  // An interface address names its network; other errors stay errors.
  EXPECT_EQ(Prefix::parseNetworkOf("198.51.100.201/29")->toString(), "198.51.100.200/29");
  EXPECT_EQ(Prefix::parseNetworkOf("2001:db8::1/32")->toString(), "2001:db8::/32");
  EXPECT_EQ(Prefix::parseNetworkOf("192.0.2.0/33").error().message,
            "prefix length '33' must be 0-32 for IPv4");
}

TEST(Prefix, ContainsAndOverlapsRespectFamilies) {
  const Prefix net = *Prefix::parse("192.0.2.0/25");
  EXPECT_TRUE(net.contains(*IpAddr::parse("192.0.2.127")));
  EXPECT_FALSE(net.contains(*IpAddr::parse("192.0.2.128")));
  EXPECT_TRUE(net.contains(*Prefix::parse("192.0.2.64/26")));
  EXPECT_FALSE(net.contains(*Prefix::parse("192.0.2.0/24")));
  EXPECT_TRUE(net.overlaps(*Prefix::parse("192.0.2.0/24")));
  EXPECT_FALSE(net.overlaps(*Prefix::parse("192.0.2.128/25")));
  // ::ffff:0:0/96 holds IPv4 in IpAddr, but an IPv6 prefix never matches IPv4.
  EXPECT_FALSE(Prefix::parse("::/0")->contains(*IpAddr::parse("192.0.2.1")));
  EXPECT_TRUE(Prefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("198.51.100.1")));
  EXPECT_FALSE(Prefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("2001:db8::1")));
}

TEST(MacAddr, ParsesBothSeparators) {
  auto m = MacAddr::parse("02:00:5E:00:00:0a");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->toString(), "02:00:5e:00:00:0a");
  EXPECT_EQ(MacAddr::parse("02-00-5e-00-00-0a"), m);
  EXPECT_FALSE(MacAddr::parse("02:00:5e:00:00"));
  EXPECT_FALSE(MacAddr::parse("02:00:5e:00:00:0g"));
  EXPECT_FALSE(MacAddr::parse("02:00-5e:00:00:0a"));
  EXPECT_TRUE(MacAddr::parse("ff:ff:ff:ff:ff:ff")->isBroadcast());
  EXPECT_TRUE(MacAddr::parse("01:00:5e:00:00:01")->isMulticast());
}

TEST(Time, Rfc3339HasMicrosecondsAndZone) {
  // 2026-11-22T10:04:05.123456789Z
  const TimeNs t = 1795341845ull * 1000000000ull + 123456789ull;
  EXPECT_EQ(formatRfc3339(t), "2026-11-22T10:04:05.123456+00:00");
  char buf[20];
  EXPECT_EQ(std::string(buf, formatTimeOfDay(t, buf)), "10:04:05.123456789");
}

TEST(JsonWriter, EscapesAndNests) {
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("s", std::string_view("a\"b\\c\n\x01"))
      .field("n", uint64_t{42})
      .field("neg", int64_t{-1})
      .field("ip", *IpAddr::parse("192.0.2.1"));
  w.key("list").beginArray().value(true).value(false).null().endArray();
  w.key("obj").beginObject().field("k", "v").endObject();
  w.endObject();
  EXPECT_EQ(
      out,
      R"({"s":"a\"b\\c\n\u0001","n":42,"neg":-1,"ip":"192.0.2.1","list":[true,false,null],"obj":{"k":"v"}})");
}

TEST(Strings, SuggestsOnlyPlausibleTypos) {
  const std::string_view fields[] = {"priority", "protocol", "direction", "access"};
  EXPECT_EQ(closestMatch("prioirty", fields), "priority");
  EXPECT_EQ(closestMatch("protcol", fields), "protocol");
  EXPECT_EQ(closestMatch("colour", fields), "");
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(editDistance("ABC", "abc"), 0u);
  EXPECT_EQ(strCat("a", std::string("b"), std::string_view("c")), "abc");
}

// A linear-probing table of n slots (a power of two and not) whose keys name
// their own home slot, crowded into a few homes, one at the last slot so that
// runs wrap: after every insert and backward-shift removal, each live key is
// found from its home before an empty slot, and the table holds exactly the
// live keys. Then a table with no empty slot at all: a removal still ends.
TEST(BackwardShift, KeepsEveryKeyReachableFromItsHome) {
  for (const size_t n : {size_t{16}, size_t{13}, size_t{64}}) {
    constexpr int kEmpty = -1;
    std::vector<int> slot(n, kEmpty);
    auto homeOf = [&](int key) { return key % 5 == 0 ? n - 1 : static_cast<size_t>(key % 7); };
    auto find = [&](int key) -> size_t {
      for (size_t i = homeOf(key), seen = 0; seen < n; i = (i + 1) % n, ++seen) {
        if (slot[i] == kEmpty) return n;
        if (slot[i] == key) return i;
      }
      return n;
    };
    std::set<int> live;
    std::mt19937 rng(static_cast<unsigned>(n));
    for (int step = 0; step < 20000; ++step) {
      const int key = static_cast<int>(rng() % 40);
      if (!live.count(key)) {
        if (live.size() + 1 >= n * 3 / 4) continue;  // keep empty slots, as the tables do
        size_t i = homeOf(key);
        while (slot[i] != kEmpty)
          i = (i + 1) % n;
        slot[i] = key;
        live.insert(key);
      } else {
        const size_t at = find(key);
        ASSERT_LT(at, n);
        const size_t hole = backwardShift(
            at, n, [&](size_t j) { return slot[j] != kEmpty; },
            [&](size_t j) { return homeOf(slot[j]); },
            [&](size_t from, size_t to) { slot[to] = slot[from]; });
        slot[hole] = kEmpty;
        live.erase(key);
      }
      size_t held = 0;
      for (int k : slot)
        held += k != kEmpty;
      ASSERT_EQ(held, live.size()) << "n " << n << " step " << step;
      for (int k : live)
        ASSERT_LT(find(k), n) << "key " << k << " lost, n " << n << " step " << step;
    }
  }
  // Full: every slot used, every key's home slot 0.
  std::vector<int> full = {0, 1, 2, 3, 4, 5, 6, 7};
  const size_t hole = backwardShift(
      2, full.size(), [](size_t) { return true; }, [](size_t) { return size_t{0}; },
      [&](size_t from, size_t to) { full[to] = full[from]; });
  EXPECT_EQ(hole, 7u);
  EXPECT_EQ(full, (std::vector<int>{0, 1, 3, 4, 5, 6, 7, 7}));
}

// contains() on words against the definition, a byte at a time: every
// length of both families, addresses inside, just outside and anywhere, and
// prefixes whose host bits are set (built directly), which hold nothing.
TEST(Prefix, ContainsMatchesTheBytewiseDefinitionAtEveryLength) {
  auto reference = [](const Prefix& p, const IpAddr& a) {
    if (a.isV4() != p.isV4()) return false;
    const int bits = p.bits128();
    for (int i = 0; i < 16; ++i) {
      const int keep = std::clamp(bits - i * 8, 0, 8);
      const uint8_t mask = static_cast<uint8_t>(0xff00 >> keep);
      if ((a.b[static_cast<size_t>(i)] & mask) != p.addr.b[static_cast<size_t>(i)]) return false;
    }
    return true;
  };
  std::mt19937_64 rng(99);
  for (int round = 0; round < 20000; ++round) {
    const bool v4 = round % 2 == 0;
    uint8_t raw[16];
    for (uint8_t& x : raw)
      x = static_cast<uint8_t>(rng());
    const IpAddr base = v4 ? IpAddr::v4(raw) : IpAddr::v6(raw);
    const int len = static_cast<int>(rng() % (v4 ? 33 : 129));
    Prefix p{base, static_cast<uint8_t>(len)};
    if (round % 5 != 0) {  // most canonical: host bits cleared
      const int bits = p.bits128();
      for (int i = 0; i < 16; ++i)
        p.addr.b[static_cast<size_t>(i)] &=
            static_cast<uint8_t>(0xff00 >> std::clamp(bits - i * 8, 0, 8));
    }
    for (int k = 0; k < 8; ++k) {
      IpAddr a = p.addr;
      if (k == 1 || k == 2) {  // flip one bit past (or at) the prefix's end
        const int bit = std::min(p.bits128() + (k == 1 ? 0 : -1), 127);
        if (bit >= 0) a.b[static_cast<size_t>(bit / 8)] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
      } else if (k > 2) {
        for (uint8_t& x : raw)
          x = static_cast<uint8_t>(rng());
        a = k % 2 ? IpAddr::v4(raw) : IpAddr::v6(raw);
      }
      ASSERT_EQ(p.contains(a), reference(p, a))
          << p.toString() << " holding " << a.toString() << " (round " << round << ")";
    }
  }
}

// Every build of the eight-lane SipHash this CPU can run gives, in every lane,
// what the scalar function gives for that lane's key and message: each
// message length from 0 to 55 bytes, lanes with different keys, and bytes of
// the tail word past the message's end (which must be ignored) set.
TEST(SipHash, EightLanesMatchTheScalarFunction) {
  std::vector<std::pair<const char*, detail::SipHash24x8Fn>> builds = {
      {"base", detail::sipHash24x8Base()},
      {"avx2", detail::sipHash24x8Avx2()},
      {"avx512", detail::sipHash24x8Avx512()},
      {"dispatched", sipHash24x8}};
  std::mt19937_64 rng(2012);
  for (const auto& [name, fn] : builds) {
    if (!fn) {
      std::printf("  (%s: not on this CPU)\n", name);
      continue;
    }
    for (size_t words = 0; words <= 6; ++words) {
      for (size_t tail_len = 0; tail_len < 8; ++tail_len) {
        uint64_t k0[kSipLanes], k1[kSipLanes], tail[kSipLanes], out[kSipLanes];
        std::vector<uint64_t> m(words * kSipLanes + 1);
        for (size_t i = 0; i < kSipLanes; ++i) {
          k0[i] = rng();
          k1[i] = rng();
          tail[i] = rng();
        }
        for (uint64_t& w : m)
          w = rng();
        fn(k0, k1, m.data(), words, tail, tail_len, out);
        for (size_t i = 0; i < kSipLanes; ++i) {
          uint8_t msg[56];
          for (size_t w = 0; w < words; ++w)
            std::memcpy(msg + 8 * w, &m[w * kSipLanes + i], 8);
          std::memcpy(msg + 8 * words, &tail[i], tail_len);
          EXPECT_EQ(out[i], sipHash24({k0[i], k1[i]}, msg, 8 * words + tail_len))
              << name << ": lane " << i << ", " << words << " words and " << tail_len << " bytes";
        }
      }
    }
  }
}

}  // namespace
}  // namespace palisade
