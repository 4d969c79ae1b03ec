#include "ddos/syncookie.h"

#include <sys/random.h>

#include <cstdlib>
#include <cstring>

namespace palisade::ddos {

namespace {
constexpr uint32_t kMacBits = 27;
constexpr uint32_t kMacMask = (1u << kMacBits) - 1;
}  // namespace

SynCookies::SynCookies() {
  uint8_t buf[16];
  size_t got = 0;
  while (got < sizeof buf) {
    const ssize_t n = getrandom(buf + got, sizeof buf - got, 0);
    if (n <= 0) std::abort();  // the kernel always has randomness once booted
    got += static_cast<size_t>(n);
  }
  std::memcpy(&secret_.k0, buf, 8);
  std::memcpy(&secret_.k1, buf + 8, 8);
}

uint8_t SynCookies::mssClass(uint16_t mss) {
  uint8_t c = 0;
  for (uint8_t i = 0; i < 4; ++i)
    if (kMss[i] <= mss) c = i;
  return c;
}

const SipKey& SynCookies::epochKey(uint64_t epoch) const {
  EpochKey& slot = keys_[epoch & 1];
  if (slot.epoch != epoch) {
    // The epoch's key: the secret's PRF of the epoch number.
    slot.key = SipKey{sipHash24(secret_, &epoch, sizeof epoch), secret_.k1 ^ epoch};
    slot.epoch = epoch;
  }
  return slot.key;
}

uint32_t SynCookies::mac(const CookieTuple& t, uint32_t client_isn, uint64_t epoch,
                         uint8_t mss_class) const {
  const SipKey& k = epochKey(epoch);
  // The tuple as short as it is: an IPv4 one in 17 bytes (two SipHash
  // blocks and the last, 10 rounds), an IPv6 one in 41. The lengths differ,
  // and SipHash hashes the length, so the two never collide by construction.
  // Built in whole 64-bit words: SipHash reads words, and a word read back
  // from smaller stores waits for them (no store forwarding).
  auto word = [](const uint8_t* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  };
  auto half = [](const uint8_t* p) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return uint64_t{w};
  };
  uint64_t in[6];
  size_t words = 0;
  if (t.client.isV4() && t.server.isV4()) {
    in[words++] = half(t.client.b.data() + 12) | half(t.server.b.data() + 12) << 32;
  } else {
    in[words++] = word(t.client.b.data());
    in[words++] = word(t.client.b.data() + 8);
    in[words++] = word(t.server.b.data());
    in[words++] = word(t.server.b.data() + 8);
  }
  in[words++] =
      uint64_t{t.client_port} | uint64_t{t.server_port} << 16 | uint64_t{client_isn} << 32;
  in[words] = mss_class;
  return static_cast<uint32_t>(sipHash24(k, in, words * 8 + 1)) & kMacMask;
}

SynCookies::Made SynCookies::make(const CookieTuple& t, uint32_t client_isn, const CookieOptions& o,
                                  TimeNs now, uint32_t now_ms) const {
  const uint64_t epoch = static_cast<uint64_t>(now / kEpochNs);
  const uint8_t mc = mssClass(o.mss);
  Made m;
  m.isn = (static_cast<uint32_t>(epoch & 7) << 29) | (static_cast<uint32_t>(mc) << kMacBits) |
          mac(t, client_isn, epoch, mc);
  const uint32_t opts =
      (o.wscale > 14 ? 0xfu : o.wscale) | (o.sack ? 0x10u : 0) | (o.ecn ? 0x20u : 0);
  m.tsval = (now_ms & ~0x3fu) | opts;
  return m;
}

std::optional<CookieOptions> SynCookies::check(const CookieTuple& t, uint32_t ack_seq,
                                               uint32_t ack_ack, std::optional<uint32_t> tsecr,
                                               TimeNs now) const {
  const uint32_t cookie = ack_ack - 1;
  const uint32_t client_isn = ack_seq - 1;
  const uint64_t cur = static_cast<uint64_t>(now / kEpochNs);
  const uint64_t tag = cookie >> 29;
  uint64_t epoch;
  if (tag == (cur & 7))
    epoch = cur;
  else if (cur > 0 && tag == ((cur - 1) & 7))
    epoch = cur - 1;
  else
    return std::nullopt;  // too old, or from the future
  const uint8_t mc = static_cast<uint8_t>((cookie >> kMacBits) & 3);
  if (mac(t, client_isn, epoch, mc) != (cookie & kMacMask)) return std::nullopt;
  CookieOptions o;
  o.mss = kMss[mc];
  if (tsecr) {
    const uint32_t w = *tsecr & 0xf;
    o.wscale = w > 14 ? 0xf : static_cast<uint8_t>(w);
    o.sack = (*tsecr & 0x10) != 0;
    o.ecn = (*tsecr & 0x20) != 0;
  }
  return o;
}

}  // namespace palisade::ddos
