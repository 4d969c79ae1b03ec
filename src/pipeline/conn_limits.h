// Connection limits of the DDoS profiles (docs/policy.md, `limits`): for each
// input endpoint of a protected address, per client (source address) and for
// the endpoint as a whole, how many connections may be open at once, how many
// of them may still be half-open (a TCP handshake not finished), and how many
// may start per second.
//
// Counters live in two open-addressing tables (clients, endpoints) of fixed
// size keyed by a hash of their key; a flow that was counted keeps the slots
// it was charged to (`Charge`) and gives them back when it ends or, for
// half-open, when its handshake completes. A slot is reused only once
// nothing holds it and its rate bucket is full again, so a client that opens
// and closes connections quickly cannot shed its rate by a gap. When a
// client's probe finds no slot (the table is held by 65,536 clients with
// open connections), the client is admitted uncounted for its own limits and
// counted as such (`untracked`); the endpoint's limits still apply.
//
// Not thread-safe: one per Pipeline (worker).
#pragma once

#include <cstdint>
#include <vector>

#include "core/net.h"
#include "core/time.h"
#include "core/token_bucket.h"
#include "ddos/detector.h"

namespace palisade::pipeline {

class ConnLimiter {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  // The slots a flow was charged to.
  struct Charge {
    uint32_t client = kNone, endpoint = kNone;
  };
  enum class Verdict : uint8_t { Admit, Concurrent, HalfOpen, Rate };

  // `seed`: of the slots' hash (the pipeline's flow seed: random unless fixed).
  explicit ConnLimiter(uint64_t seed = 0) : seed_(seed) {}

  // A new connection from `client` to the endpoint (vip, proto, port): admitted
  // and charged (*charge), or refused by the first limit it is over.
  // `half_open`: it starts half-open (a TCP SYN).
  Verdict admit(const ddos::Limits& l, const IpAddr& client, const IpAddr& vip, uint8_t proto,
                uint16_t port, bool half_open, TimeNs now, Charge* charge);
  // The connection's handshake completed (or it closed before): no longer half-open.
  void opened(const Charge& c);
  // The connection ended; `half_open`: before opened() was called for it.
  void release(const Charge& c, bool half_open);

  uint64_t untracked() const { return untracked_; }

 private:
  struct Slot {
    uint64_t tag = 0;  // 0: never used
    uint32_t open = 0, half_open = 0;
    TokenBucket rate;
  };
  static constexpr uint32_t kClientSlots = 1u << 16, kEndpointSlots = 1u << 10, kProbe = 8;
  // The slot for `tag` (found, or a free one taken), or kNone.
  uint32_t slotFor(std::vector<Slot>& table, uint64_t tag, double cps, TimeNs now);

  std::vector<Slot> clients_, endpoints_;
  uint64_t seed_;
  uint64_t untracked_ = 0;
};

}  // namespace palisade::pipeline
