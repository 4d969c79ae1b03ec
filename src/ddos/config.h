// The detector's configuration from a policy's `ddos:` section.
#pragma once

#include "ddos/detector.h"
#include "ddos/webhook.h"
#include "policy/model.h"

namespace palisade::ddos {

// Profiles in policy order, then the built-in "default" one (for protect
// entries that name none); protect entries with their profile's index.
DetectorConfig configFromPolicy(const policy::Policy& p);

// The policy's webhook; an empty url when it has none.
WebhookConfig webhookFromPolicy(const policy::Policy& p);
// The policy's webhook started (null when it has none); an error for a URL it
// cannot use.
Result<std::unique_ptr<Webhook>> startWebhook(const policy::Policy& p);

}  // namespace palisade::ddos
