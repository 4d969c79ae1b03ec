// TokenBucket: a rate limit's state in 16 bytes; the rate and burst are the
// caller's (they live in the configuration, shared by many buckets).
#pragma once

#include <algorithm>

#include "core/time.h"

namespace palisade {

struct TokenBucket {
  double tokens = 0;
  TimeNs last = 0;  // 0: never used; the first use finds the bucket full

  // Adds what `rate` per second earned since the last call, up to `burst`.
  void refill(double rate, double burst, TimeNs now) {
    if (last == 0) {
      tokens = burst;
    } else if (now > last) {
      tokens = std::min(burst, tokens + rate * static_cast<double>(now - last) / 1e9);
    }
    last = now;
  }
  // Refills, then takes `amount` when the bucket holds it.
  bool take(double rate, double burst, TimeNs now, double amount = 1) {
    refill(rate, burst, now);
    if (tokens < amount) return false;
    tokens -= amount;
    return true;
  }
};

}  // namespace palisade
