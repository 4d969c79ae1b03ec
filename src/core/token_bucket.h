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

// A packets bucket and a bits bucket, each holding one second of its rate: a
// pps and bps limit together. A rate of 0 is no limit.
struct PacketRate {
  TokenBucket packets, bits;
  // Takes one packet of `len` bytes from both buckets, or from neither.
  bool take(double pps, double bps, uint64_t len, TimeNs now) {
    if (pps > 0) packets.refill(pps, pps, now);
    if (bps > 0) bits.refill(bps, bps, now);
    const double need = static_cast<double>(len) * 8;
    if ((pps > 0 && packets.tokens < 1) || (bps > 0 && bits.tokens < need)) return false;
    if (pps > 0) packets.tokens -= 1;
    if (bps > 0) bits.tokens -= need;
    return true;
  }
};

}  // namespace palisade
