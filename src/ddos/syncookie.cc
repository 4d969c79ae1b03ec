#include "ddos/syncookie.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace palisade::ddos {

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

const SipKey& SynCookies::newEpochKey(uint64_t epoch) const {
  // The epoch's key: the secret's PRF of the epoch number.
  EpochKey& slot = keys_[epoch & 1];
  slot.key = SipKey{sipHash24(secret_, &epoch, sizeof epoch), secret_.k1 ^ epoch};
  slot.epoch = epoch;
  return slot.key;
}

uint32_t SynCookies::mac(const CookieTuple& t, uint32_t client_isn, uint64_t epoch,
                         uint8_t mss_class) const {
  const SipKey& k = epochKey(epoch);
  uint64_t in[6];
  const size_t words = message(t, client_isn, in);
  in[words] = mss_class;
  return static_cast<uint32_t>(sipHash24(k, in, words * 8 + 1)) & kMacMask;
}

template <size_t Words>
size_t SynCookies::finish(Lanes<Words>& l, size_t done) {
  for (size_t first = 0; first < l.count; first += kSipLanes) {
    uint64_t out[kSipLanes];
    sipHash24x8(&l.k0[first], &l.k1[first], &l.m[first * Words], Words, &l.tail[first], 1, out);
    for (size_t i = first; i < std::min(l.count, first + kSipLanes); ++i)
      macs_[done++] = {l.tag[i], static_cast<uint32_t>(out[i - first]) & kMacMask};
  }
  l.count = 0;
  return done;
}

std::span<const SynCookies::StagedMac> SynCookies::finishStaged() {
  return {macs_.data(), finish(v6_, finish(v4_, 0))};
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
