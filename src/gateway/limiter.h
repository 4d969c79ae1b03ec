// Shared request-rate limits: token buckets keyed by (route, client identity)
// or (route, client address), in a table of 16 mutex-guarded shards so that
// workers rarely meet on one lock. Memory is bounded: a shard at capacity
// first forgets buckets that have refilled (idle clients lose nothing), then
// the oldest ones.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "core/siphash.h"
#include "core/time.h"
#include "core/token_bucket.h"

namespace palisade::gateway {

class RateLimiter {
 public:
  explicit RateLimiter(size_t max_buckets = 1 << 20);

  // Takes one request from the bucket of `key` (any bytes naming the client
  // within the route). Returns 0 when allowed, else the seconds (at least 1)
  // until a request would be, for Retry-After.
  uint32_t take(uint32_t route, uint8_t kind, std::string_view key, double rate, double burst,
                TimeNs now);

  uint64_t evictions() const;
  size_t size() const;

 private:
  struct Bucket {
    TokenBucket tb;
    double rate = 0, burst = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, Bucket> buckets;
    uint64_t evictions = 0;
  };
  void makeRoom(Shard& s, TimeNs now);

  SipKey key_;
  size_t per_shard_;
  std::array<Shard, 16> shards_;
};

}  // namespace palisade::gateway
