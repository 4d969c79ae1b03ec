// Human-readable summary of a validated policy (palisade check).
#pragma once

#include <string>

#include "policy/model.h"

namespace palisade::policy {

std::string describePolicy(const Policy& p);

}  // namespace palisade::policy
