// Lint: warnings about a valid policy that is probably not what its author meant.
//
// Each finding is a warning at the element's line, ending in its check's name in
// brackets so it can be silenced (`palisade check --disable NAME`):
//
//   internet-management  an allow rule or an endpoint lets the whole Internet
//                        reach a management port (SSH, RDP, WinRM, VNC, Telnet)
//   endpoint-without-acl an endpoint publishes a sensitive port (databases,
//                        SMB, RPC, container and cluster APIs) with no ACL
//   shadowed             a security rule or ACL entry can never match because
//                        one earlier rule or entry matches all of its traffic
//   broad-allow          an inbound allow admits every port and protocol from
//                        the Internet or from every subnet of the VNet
//   unused-group         a security group no subnet or NIC uses
//   unused-tag           a service tag no rule uses
//
// Shadowing is decided rule against rule: a rule covered only by the union of
// several earlier ones is not reported. Built-in tags (Internet, VirtualNetwork,
// HealthProbe) are covered only by '*' or by the same tag, because what they
// expand to depends on the VNet a group is used in.
#pragma once

#include <set>
#include <string>

#include "policy/diagnostics.h"
#include "policy/model.h"

namespace palisade::policy {

inline constexpr const char* kLintChecks[] = {
    "internet-management", "endpoint-without-acl", "shadowed",    "broad-allow",
    "unused-group",        "unused-tag",           "snat-overlap"};

// Adds warnings to diag for every check not named in `disabled`.
void lintPolicy(const Policy& policy, Diagnostics& diag,
                const std::set<std::string>& disabled = {});

}  // namespace palisade::policy
