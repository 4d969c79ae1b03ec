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

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

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
  static constexpr uint32_t kMacBits = 27;
  static constexpr uint32_t kMacMask = (1u << kMacBits) - 1;

  // A 128-bit secret (16 random bytes from the kernel when none is given).
  SynCookies();
  explicit SynCookies(const SipKey& secret) : secret_(secret) {}

  struct Made {
    uint32_t isn;    // the SYN-ACK's sequence number
    uint32_t tsval;  // the SYN-ACK's TSval, when the client sent timestamps
  };
  // `now_ms` is the proxy's timestamp clock; the options' low 6 bits replace its own.
  Made make(const CookieTuple& t, uint32_t client_isn, const CookieOptions& o, TimeNs now,
            uint32_t now_ms) const {
    const uint64_t epoch = static_cast<uint64_t>(now / kEpochNs);
    const uint8_t mc = mssClass(o.mss);
    return answer(epoch, mc, mac(t, client_isn, epoch, mc), o, now_ms);
  }

  // Cookies made a burst at a time (a SYN flood's): stage() answers as make()
  // would, but with the MAC's bits zero, and keeps the work; finishStaged()
  // computes every staged MAC, eight per pass of SipHash in vector lanes
  // (sipHash24x8), and gives each with the tag it was staged under, to be ORed
  // into that answer's sequence number. One at a time, the MAC's SipHash
  // rounds were an eighth of a proxied SYN's cost. At most kMaxStaged of each
  // family wait; past that, stage() returns false and the caller uses make().
  static constexpr size_t kMaxStaged = 64;
  bool stage(const CookieTuple& t, uint32_t client_isn, const CookieOptions& o, TimeNs now,
             uint32_t now_ms, uint32_t tag, Made& out) {
    const uint64_t epoch = static_cast<uint64_t>(now / kEpochNs);
    const uint8_t mc = mssClass(o.mss);
    const SipKey& key = epochKey(epoch);
    uint64_t w[5];
    const bool staged =
        message(t, client_isn, w) == 2 ? v4_.put(key, w, mc, tag) : v6_.put(key, w, mc, tag);
    if (staged) out = answer(epoch, mc, 0, o, now_ms);
    return staged;
  }
  struct StagedMac {
    uint32_t tag, mac;
  };
  // Every staged cookie's MAC, in no particular order; nothing stays staged.
  // Valid until the next stage().
  std::span<const StagedMac> finishStaged();
  size_t staged() const { return v4_.count + v6_.count; }

  // Checks the client's ACK (seq = client_isn + 1, ack = cookie + 1); with the
  // TSecr it echoed when timestamps were on. The options on success.
  std::optional<CookieOptions> check(const CookieTuple& t, uint32_t ack_seq, uint32_t ack_ack,
                                     std::optional<uint32_t> tsecr, TimeNs now) const;

  // The largest MSS class not above the client's MSS (the first when none is).
  static uint8_t mssClass(uint16_t mss) {
    return mss >= kMss[3] ? 3 : mss >= kMss[2] ? 2 : mss >= kMss[1] ? 1 : 0;
  }

 private:
  // The MAC's input: the tuple and the client's ISN as 2 (IPv4) or 5 (IPv6)
  // 64-bit words, which the MSS class follows as a last byte. The tuple as
  // short as it is: IPv4 in 17 bytes (two SipHash blocks and the last, 10
  // rounds), IPv6 in 41. The lengths differ, and SipHash hashes the length,
  // so the two never collide by construction. Built in whole words: SipHash
  // reads words, and a word read back from smaller stores waits for them.
  static size_t message(const CookieTuple& t, uint32_t client_isn, uint64_t* in) {
    const uint64_t ports_isn =
        uint64_t{t.client_port} | uint64_t{t.server_port} << 16 | uint64_t{client_isn} << 32;
    if (t.client.isV4() && t.server.isV4()) {
      uint32_t client, server;  // as they are in memory (network order)
      std::memcpy(&client, t.client.b.data() + 12, 4);
      std::memcpy(&server, t.server.b.data() + 12, 4);
      in[0] = uint64_t{client} | uint64_t{server} << 32;
      in[1] = ports_isn;
      return 2;
    }
    std::memcpy(in, t.client.b.data(), 16);
    std::memcpy(in + 2, t.server.b.data(), 16);
    in[4] = ports_isn;
    return 5;
  }
  uint32_t mac(const CookieTuple& t, uint32_t client_isn, uint64_t epoch, uint8_t mss_class) const;
  static Made answer(uint64_t epoch, uint8_t mss_class, uint32_t mac, const CookieOptions& o,
                     uint32_t now_ms) {
    const uint32_t opts =
        (o.wscale > 14 ? 0xfu : o.wscale) | (o.sack ? 0x10u : 0) | (o.ecn ? 0x20u : 0);
    return {(static_cast<uint32_t>(epoch & 7) << 29) | (uint32_t{mss_class} << kMacBits) | mac,
            (now_ms & ~0x3fu) | opts};
  }
  // The key of an epoch (a PRF of the secret), kept for the last two epochs
  // asked for: a flood's cookies cost one SipHash each, not two.
  const SipKey& epochKey(uint64_t epoch) const {
    const EpochKey& slot = keys_[epoch & 1];
    return slot.epoch == epoch ? slot.key : newEpochKey(epoch);
  }
  const SipKey& newEpochKey(uint64_t epoch) const;
  SipKey secret_;
  struct EpochKey {
    uint64_t epoch = UINT64_MAX;
    SipKey key;
  };
  mutable EpochKey keys_[2];
  // Staged messages of one family (Words 2 or 5), laid out as sipHash24x8
  // reads them: in groups of eight lanes, each group's words by word, then
  // lane. Lanes past `count` in the last group hold old messages (or zeros),
  // hashed and ignored.
  template <size_t Words>
  struct Lanes {
    std::array<uint64_t, kMaxStaged> k0{}, k1{}, tail{};
    std::array<uint64_t, kMaxStaged * Words> m{};
    std::array<uint32_t, kMaxStaged> tag{};
    size_t count = 0;
    bool put(const SipKey& key, const uint64_t* words, uint8_t mss_class, uint32_t t) {
      if (count == kMaxStaged) return false;
      const size_t i = count++;
      const size_t base = (i / kSipLanes) * Words * kSipLanes + i % kSipLanes;
      k0[i] = key.k0;
      k1[i] = key.k1;
      tail[i] = mss_class;
      tag[i] = t;
      for (size_t w = 0; w < Words; ++w)
        m[base + w * kSipLanes] = words[w];
      return true;
    }
  };
  Lanes<2> v4_;
  Lanes<5> v6_;
  std::array<StagedMac, 2 * kMaxStaged> macs_;
  template <size_t Words>
  size_t finish(Lanes<Words>& l, size_t done);
};

}  // namespace palisade::ddos
