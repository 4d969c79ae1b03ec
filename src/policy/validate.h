// Whole-policy validation: what no single field can tell.
//
// Names unique in their scope; references resolve (subnets, groups, NICs,
// deployments, hosts, service tags, peerings); address spaces of one tenant do
// not overlap; subnets lie inside their VNet and do not overlap; NIC addresses
// lie inside their subnet and are not reserved; VNIs, MACs, VIPs and endpoint
// (VIP, port, protocol) are unique; priorities are unique per group and
// direction; infrastructure segments do not overlap tenant space.
#pragma once

#include "policy/diagnostics.h"
#include "policy/model.h"

namespace palisade::policy {

// Reports every problem into diag. Assigns random management public ports.
void validatePolicy(Policy& policy, Diagnostics& diag);

}  // namespace palisade::policy
