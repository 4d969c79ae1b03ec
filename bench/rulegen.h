// Rule sets the benchmarks share, so that figures from different programs are
// about the same rules: random ClassBench-like 5-tuple rules, and the shape of
// a DASH group (rules of up to 100 source prefixes with a port range each).
#pragma once

#include <random>
#include <vector>

#include "classify/classifier.h"
#include "core/net.h"

namespace palisade::bench {

// Random IPv4 prefixes /16 to /32, outside 198.51.100.0/24 (the benchmarks'
// clients) and 0.0.0.0/8.
inline Prefix randomPrefix(std::mt19937& rng) {
  for (;;) {
    const uint8_t len = static_cast<uint8_t>(16 + rng() % 17);
    uint32_t a = static_cast<uint32_t>(rng());
    a &= len == 32 ? ~0u : ~(~0u >> len);
    if ((a >> 8) == 0xc63364u || (a >> 24) == 0) continue;
    return Prefix{IpAddr::v4(a), len};
  }
}

// One random rule: source and destination prefixes (a quarter with any
// destination), TCP or any protocol, half with a destination port or range.
inline classify::Entry randomEntry(std::mt19937& rng, uint32_t id) {
  classify::Entry e;
  const Prefix s = randomPrefix(rng), d = randomPrefix(rng);
  e.src = s.addr;
  e.src_len = s.bits128();
  e.dst = d.addr;
  e.dst_len = rng() % 4 == 0 ? 96 : d.bits128();
  e.proto = rng() % 3 == 0 ? classify::kProtoAny : 6;
  if (rng() % 2) {
    e.dport_lo = static_cast<uint16_t>(rng() % 1024);
    e.dport_hi = static_cast<uint16_t>(e.dport_lo + (rng() % 2 ? 0 : rng() % 1000));
  }
  e.priority = id;
  e.id = id;
  return e;
}

// The benchmarks' random rule set of n rules (seeded by n: the same n gives the
// same rules in every program).
inline std::vector<classify::Entry> randomRuleSet(size_t n) {
  std::mt19937 rng(static_cast<uint32_t>(n));
  std::vector<classify::Entry> out;
  for (uint32_t i = 0; i < n; ++i)
    out.push_back(randomEntry(rng, i));
  return out;
}

// `rules` DASH-style rules of `prefixes` source prefixes each, one TCP
// destination port range per rule, expanded to one entry per prefix; entries
// of one rule share its priority.
inline std::vector<classify::Entry> dashRuleSet(size_t rules, size_t prefixes) {
  std::mt19937 rng(7);
  std::vector<classify::Entry> out;
  for (uint32_t r = 0; r < rules; ++r) {
    const uint16_t lo = static_cast<uint16_t>(rng() % 1024);
    const uint16_t hi = static_cast<uint16_t>(lo + rng() % 64);
    for (size_t k = 0; k < prefixes; ++k) {
      const Prefix s = randomPrefix(rng);
      classify::Entry e;
      e.src = s.addr;
      e.src_len = s.bits128();
      e.dst = IpAddr::v4(0u);
      e.dst_len = 96;  // any IPv4 destination
      e.proto = 6;
      e.dport_lo = lo;
      e.dport_hi = hi;
      e.priority = static_cast<uint32_t>(out.size());
      e.id = static_cast<uint32_t>(out.size());
      out.push_back(e);
    }
  }
  return out;
}

// Lookup keys: each field half the time from a random rule (its source, its
// destination, a port in its range), otherwise random; TCP or UDP.
inline std::vector<classify::Key> keysFor(const std::vector<classify::Entry>& rules, size_t n,
                                          uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<classify::Key> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& e = rules[rng() % rules.size()];
    classify::Key k;
    k.src = rng() % 2 ? e.src : IpAddr::v4(static_cast<uint32_t>(rng()));
    k.dst = rng() % 2 ? e.dst : IpAddr::v4(static_cast<uint32_t>(rng()));
    k.sport = static_cast<uint16_t>(rng());
    k.dport = rng() % 2 ? static_cast<uint16_t>(e.dport_lo + rng() % (e.dport_hi - e.dport_lo + 1u))
                        : static_cast<uint16_t>(rng() % 2048);
    k.proto = rng() % 4 == 0 ? 17 : 6;
    keys.push_back(k);
  }
  return keys;
}

}  // namespace palisade::bench
