#include "pipeline/conn_limits.h"

#include <tuple>

#include "core/hash.h"

namespace palisade::pipeline {

uint32_t ConnLimiter::slotFor(std::vector<Slot>& table, uint64_t tag, double cps, TimeNs now) {
  const uint32_t mask = static_cast<uint32_t>(table.size() - 1);
  uint32_t free = kNone;
  for (uint32_t i = 0; i < kProbe; ++i) {
    const uint32_t at = (static_cast<uint32_t>(tag) + i) & mask;
    Slot& s = table[at];
    if (s.tag == tag) return at;
    if (free != kNone) continue;
    // Free: never used, or nothing held and its rate bucket full again (a
    // second since it was last drawn on).
    if (s.tag == 0 ||
        (s.open == 0 && s.half_open == 0 && (cps <= 0 || now - s.rate.last >= 1'000'000'000)))
      free = at;
  }
  if (free != kNone) table[free] = Slot{tag, 0, 0, {}};
  return free;
}

ConnLimiter::Verdict ConnLimiter::admit(const ddos::Limits& l, const IpAddr& client,
                                        const IpAddr& vip, uint8_t proto, uint16_t port,
                                        bool half_open, TimeNs now, Charge* charge) {
  *charge = {};
  if (clients_.empty()) {
    clients_.resize(kClientSlots);
    endpoints_.resize(kEndpointSlots);
  }
  // Keys hashed under the limiter's seed, so spoofed clients cannot aim at
  // one probe window.
  uint32_t ci = kNone, ei = kNone;
  if (l.source_connections > 0 || l.source_half_open > 0 || l.source_cps > 0) {
    struct {
      IpAddr client, vip;
      uint16_t port;
      uint8_t proto, pad = 0;
    } cl{client, vip, port, proto};
    ci = slotFor(clients_, hashBytes(&cl, sizeof cl, seed_) | 1, l.source_cps, now);
    if (ci == kNone) ++untracked_;
  }
  if (l.target_connections > 0 || l.target_half_open > 0 || l.target_cps > 0) {
    struct {
      IpAddr vip;
      uint16_t port;
      uint8_t proto, pad = 0;
    } ep{vip, port, proto};
    ei = slotFor(endpoints_, hashBytes(&ep, sizeof ep, seed_ ^ 0xe0d) | 1, l.target_cps, now);
  }
  // The counts first, then the rates (a refused connection spends no token).
  const auto check = [&](uint32_t i, std::vector<Slot>& t, double conns, double ho) {
    if (i == kNone) return Verdict::Admit;
    const Slot& s = t[i];
    if (conns > 0 && s.open + 1 > conns) return Verdict::Concurrent;
    if (half_open && ho > 0 && s.half_open + 1 > ho) return Verdict::HalfOpen;
    return Verdict::Admit;
  };
  if (Verdict v = check(ci, clients_, l.source_connections, l.source_half_open);
      v != Verdict::Admit)
    return v;
  if (Verdict v = check(ei, endpoints_, l.target_connections, l.target_half_open);
      v != Verdict::Admit)
    return v;
  const auto tokens = [&](uint32_t i, std::vector<Slot>& t, double cps) {
    if (i == kNone || cps <= 0) return true;
    t[i].rate.refill(cps, cps, now);
    return t[i].rate.tokens >= 1;
  };
  if (!tokens(ci, clients_, l.source_cps) || !tokens(ei, endpoints_, l.target_cps))
    return Verdict::Rate;
  for (auto [i, t, cps] :
       {std::tuple{ci, &clients_, l.source_cps}, std::tuple{ei, &endpoints_, l.target_cps}}) {
    if (i == kNone) continue;
    Slot& s = (*t)[i];
    if (cps > 0) s.rate.tokens -= 1;
    ++s.open;
    if (half_open) ++s.half_open;
  }
  charge->client = ci;
  charge->endpoint = ei;
  return Verdict::Admit;
}

void ConnLimiter::opened(const Charge& c) {
  if (c.client != kNone && clients_[c.client].half_open > 0) --clients_[c.client].half_open;
  if (c.endpoint != kNone && endpoints_[c.endpoint].half_open > 0)
    --endpoints_[c.endpoint].half_open;
}

void ConnLimiter::release(const Charge& c, bool half_open) {
  if (half_open) opened(c);
  if (c.client != kNone && clients_[c.client].open > 0) --clients_[c.client].open;
  if (c.endpoint != kNone && endpoints_[c.endpoint].open > 0) --endpoints_[c.endpoint].open;
}

}  // namespace palisade::pipeline
