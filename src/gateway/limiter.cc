#include "gateway/limiter.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace palisade::gateway {

RateLimiter::RateLimiter(size_t max_buckets) : per_shard_(std::max<size_t>(1, max_buckets / 16)) {
  // A random key: clients cannot choose identities that land in one shard.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&key_), sizeof key_) != 1) {
    key_.k0 = monotonicNs();
    key_.k1 = wallClockNs();
  }
}

uint32_t RateLimiter::take(uint32_t route, uint8_t kind, std::string_view key, double rate,
                           double burst, TimeNs now) {
  // (route, kind) select the hash key, so equal names on two routes are apart.
  SipKey k = key_;
  k.k0 ^= route;
  k.k1 ^= static_cast<uint64_t>(kind) << 56;
  const uint64_t h = sipHash24(k, key.data(), key.size());
  Shard& s = shards_[h & 15];
  std::lock_guard lock(s.mu);
  auto it = s.buckets.find(h);
  if (it == s.buckets.end()) {
    if (s.buckets.size() >= per_shard_) makeRoom(s, now);
    it = s.buckets.emplace(h, Bucket{{}, rate, burst}).first;
  }
  Bucket& b = it->second;
  b.rate = rate;
  b.burst = burst;
  if (b.tb.take(rate, burst, now)) return 0;
  const double wait = (1 - b.tb.tokens) / rate;
  return static_cast<uint32_t>(std::clamp(std::ceil(wait), 1.0, 86400.0));
}

void RateLimiter::makeRoom(Shard& s, TimeNs now) {
  // Buckets that have refilled to their burst remember nothing worth keeping.
  for (auto it = s.buckets.begin(); it != s.buckets.end();) {
    Bucket& b = it->second;
    b.tb.refill(b.rate, b.burst, now);
    if (b.tb.tokens >= b.burst) {
      it = s.buckets.erase(it);
      ++s.evictions;
    } else {
      ++it;
    }
  }
  // Still full: every bucket is in use; forget the least recently used eighth.
  if (s.buckets.size() >= per_shard_) {
    std::vector<std::pair<TimeNs, uint64_t>> ages;
    ages.reserve(s.buckets.size());
    for (const auto& [k, b] : s.buckets)
      ages.emplace_back(b.tb.last, k);
    const size_t drop = std::max<size_t>(1, ages.size() / 8);
    std::nth_element(ages.begin(), ages.begin() + static_cast<ptrdiff_t>(drop - 1), ages.end());
    for (size_t i = 0; i < drop; ++i)
      s.buckets.erase(ages[i].second);
    s.evictions += drop;
  }
}

uint64_t RateLimiter::evictions() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.evictions;
  }
  return n;
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace palisade::gateway
