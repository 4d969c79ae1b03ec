#include "ddos/config.h"

#include <cmath>

#include "core/strings.h"

namespace palisade::ddos {

DetectorConfig configFromPolicy(const policy::Policy& p) {
  DetectorConfig cfg;
  cfg.profiles.clear();
  for (const policy::DdosProfile& in : p.ddos.profiles) {
    Profile pr;
    pr.name = in.name;
    pr.mode = in.mode == policy::DdosMode::AlwaysOn    ? Mode::AlwaysOn
              : in.mode == policy::DdosMode::Emergency ? Mode::Emergency
                                                       : Mode::OnDemand;
    pr.quarantine = in.quarantine == policy::DdosQuarantine::None        ? Quarantine::None
                    : in.quarantine == policy::DdosQuarantine::RateLimit ? Quarantine::RateLimit
                                                                         : Quarantine::Isolate;
    for (const policy::DdosThreshold& t : in.thresholds) {
      for (size_t c = 0; c < kClassCount; ++c) {
        if (className(static_cast<VectorClass>(c)) != t.vector_class) continue;
        if (t.pps) pr.floors[c].pps = *t.pps;
        if (t.bps) pr.floors[c].bps = *t.bps;
      }
    }
    if (in.sensitivity) pr.sensitivity = *in.sensitivity;
    if (in.multiplier) pr.multiplier = *in.multiplier;
    if (in.end_ratio) pr.end_ratio = *in.end_ratio;
    if (in.learning_s) pr.learning_s = *in.learning_s;
    if (in.end_after_s) pr.end_after_s = *in.end_after_s;
    if (in.update_s) pr.update_s = *in.update_s;
    if (in.quarantine_pps) pr.quarantine_pps = *in.quarantine_pps;
    if (in.source_pps) pr.limits.source_pps = *in.source_pps;
    if (in.source_bps) pr.limits.source_bps = *in.source_bps;
    if (in.target_pps) pr.limits.target_pps = *in.target_pps;
    if (in.target_bps) pr.limits.target_bps = *in.target_bps;
    if (in.source_connections) pr.limits.source_connections = *in.source_connections;
    if (in.source_half_open) pr.limits.source_half_open = *in.source_half_open;
    if (in.source_cps) pr.limits.source_cps = *in.source_cps;
    if (in.target_connections) pr.limits.target_connections = *in.target_connections;
    if (in.target_half_open) pr.limits.target_half_open = *in.target_half_open;
    if (in.target_cps) pr.limits.target_cps = *in.target_cps;
    if (in.nic_pps) pr.limits.nic_pps = *in.nic_pps;
    if (in.nic_bps) pr.limits.nic_bps = *in.nic_bps;
    pr.syn_proxy = in.syn_proxy == policy::DdosSynProxy::Off      ? SynProxyMode::Off
                   : in.syn_proxy == policy::DdosSynProxy::Always ? SynProxyMode::Always
                                                                  : SynProxyMode::OnAttack;
    if (in.proxy_mss) pr.proxy_mss = *in.proxy_mss;
    if (in.proxy_wscale) pr.proxy_wscale = *in.proxy_wscale;
    if (in.syn_ack_ratio) pr.syn_ack_ratio = *in.syn_ack_ratio;
    if (in.syn_ratio_min_pps) pr.syn_ratio_min_pps = *in.syn_ratio_min_pps;
    cfg.profiles.push_back(std::move(pr));
  }
  const uint16_t fallback = static_cast<uint16_t>(cfg.profiles.size());
  cfg.profiles.emplace_back();  // "default"
  for (const policy::DdosProtect& in : p.ddos.protect) {
    uint16_t profile = fallback;
    for (size_t i = 0; i < p.ddos.profiles.size(); ++i)
      if (p.ddos.profiles[i].name == in.profile.name) profile = static_cast<uint16_t>(i);
    for (const Prefix& x : in.prefixes)
      cfg.protect.push_back({x, profile, in.name});
  }
  return cfg;
}

void scaleForShare(DetectorConfig& cfg, uint32_t shares) {
  if (shares <= 1) return;
  const double share = 1.0 / shares;
  for (Profile& p : cfg.profiles) {
    for (Threshold& f : p.floors) {
      f.pps *= share;
      f.bps *= share;
    }
    p.limits.source_pps *= share;
    p.limits.source_bps *= share;
    p.limits.target_pps *= share;
    p.limits.target_bps *= share;
    // Connections spread over the workers by flow, as packets do; a count
    // limit rounds up so a share never reaches 0 (no limit).
    for (double* c : {&p.limits.source_connections, &p.limits.source_half_open,
                      &p.limits.target_connections, &p.limits.target_half_open})
      if (*c > 0) *c = std::ceil(*c * share);
    p.limits.source_cps *= share;
    p.limits.nic_pps *= share;
    p.limits.nic_bps *= share;
    p.limits.target_cps *= share;
    p.syn_ratio_min_pps *= share;
  }
}

Result<std::unique_ptr<Webhook>> startWebhook(const policy::Policy& p) {
  if (p.ddos.webhook_url.empty()) return std::unique_ptr<Webhook>();
  WebhookConfig w;
  w.url = p.ddos.webhook_url;
  if (p.ddos.webhook_timeout_ms) w.timeout_ms = *p.ddos.webhook_timeout_ms;
  if (p.ddos.webhook_retries) w.retries = *p.ddos.webhook_retries;
  // TLS files relative to the policy file, as the policy's other paths.
  const auto near = [&](const std::string& f) {
    if (f.empty() || f.front() == '/' || p.source.empty()) return f;
    const size_t slash = p.source.rfind('/');
    return slash == std::string::npos ? f : strCat(p.source.substr(0, slash + 1), f);
  };
  w.ca = near(p.ddos.webhook_ca);
  w.cert = near(p.ddos.webhook_cert);
  w.key = near(p.ddos.webhook_key);
  return Webhook::start(std::move(w));
}

}  // namespace palisade::ddos
