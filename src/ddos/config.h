// The detector's configuration from a policy's `ddos:` section.
#pragma once

#include "ddos/detector.h"
#include "ddos/webhook.h"
#include "policy/model.h"

namespace palisade::ddos {

// Profiles in policy order, then the built-in "default" one (for protect
// entries that name none); protect entries with their profile's index.
DetectorConfig configFromPolicy(const policy::Policy& p);

// For one of `shares` workers that each see about 1/shares of the traffic:
// every floor and limit divided by shares.
void scaleForShare(DetectorConfig& cfg, uint32_t shares);

// The policy's webhook started (null when it has none); an error for a URL it
// cannot use.
Result<std::unique_ptr<Webhook>> startWebhook(const policy::Policy& p);

}  // namespace palisade::ddos
