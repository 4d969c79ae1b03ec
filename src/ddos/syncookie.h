// SYN cookies: the sequence number a SYN proxy answers a SYN with, such that
// the client's ACK proves a completed handshake with no state kept in between.
//
// A cookie is 32 bits: a 3-bit epoch (64 s each), a 2-bit MSS class and a
// 27-bit SipHash-2-4 MAC of the connection's addresses, ports, the client's
// initial sequence number, the epoch and the MSS class, under a key derived
// from the secret for that epoch. Keys rotate with the epoch; a cookie is good
// for the epoch it was made in and the one after (64 to 128 s), so a guess
// costs an attacker 1 in 2^27 per ACK and a stolen cookie expires.
//
// The SYN-ACK can carry only the MSS in the sequence number. When the client
// offers TCP timestamps, the proxy's TSval carries the rest in its low 6 bits
// (as Linux does): window scale (4 bits, 15 = none), SACK permitted and ECN.
// The client echoes the TSval in every ACK's TSecr, so the ACK that completes
// the handshake brings them back; without timestamps they are lost and the
// connection runs without window scaling and SACK (RFC 4987, section 3.6).
#pragma once

#include <cstdint>
#include <optional>

#include "core/net.h"
#include "core/siphash.h"
#include "core/time.h"

namespace palisade::ddos {

struct CookieTuple {
  IpAddr client, server;
  uint16_t client_port = 0, server_port = 0;
};

struct CookieOptions {
  uint16_t mss = 536;    // what the client may send (a class: 536, 1220, 1440 or 1460)
  uint8_t wscale = 0xf;  // the client's window scale; 0xf: none
  bool sack = false;     // SACK permitted
  bool ecn = false;      // ECN negotiated (ECE and CWR on the SYN)
};

class SynCookies {
 public:
  static constexpr TimeNs kEpochNs = 64'000'000'000;
  static constexpr uint16_t kMss[4] = {536, 1220, 1440, 1460};

  // A secret of 32 random bytes (from the kernel when none is given).
  SynCookies();
  explicit SynCookies(const SipKey& secret) : secret_(secret) {}

  struct Made {
    uint32_t isn;    // the SYN-ACK's sequence number
    uint32_t tsval;  // the SYN-ACK's TSval, when the client sent timestamps
  };
  // `now_ms` is the proxy's timestamp clock; the options' low 6 bits replace its own.
  Made make(const CookieTuple& t, uint32_t client_isn, const CookieOptions& o, TimeNs now,
            uint32_t now_ms) const;

  // Checks the client's ACK (seq = client_isn + 1, ack = cookie + 1); with the
  // TSecr it echoed when timestamps were on. The options on success.
  std::optional<CookieOptions> check(const CookieTuple& t, uint32_t ack_seq, uint32_t ack_ack,
                                     std::optional<uint32_t> tsecr, TimeNs now) const;

  // The largest MSS class not above the client's MSS.
  static uint8_t mssClass(uint16_t mss);

 private:
  uint32_t mac(const CookieTuple& t, uint32_t client_isn, uint64_t epoch, uint8_t mss_class) const;
  // The key of an epoch (a PRF of the secret), kept for the last two epochs
  // asked for: a flood's cookies cost one SipHash each, not two.
  const SipKey& epochKey(uint64_t epoch) const;
  SipKey secret_;
  struct EpochKey {
    uint64_t epoch = UINT64_MAX;
    SipKey key;
  };
  mutable EpochKey keys_[2];
};

}  // namespace palisade::ddos
