#include "policy/model.h"

namespace palisade::policy {

const char* toString(Protocol p) {
  switch (p) {
    case Protocol::Any:
      return "any";
    case Protocol::Tcp:
      return "tcp";
    case Protocol::Udp:
      return "udp";
    case Protocol::Icmp:
      return "icmp";
    case Protocol::Icmpv6:
      return "icmpv6";
    case Protocol::Esp:
      return "esp";
    case Protocol::Ah:
      return "ah";
  }
  return "?";
}

const char* toString(Direction d) {
  return d == Direction::Inbound ? "inbound" : "outbound";
}
const char* toString(Access a) {
  return a == Access::Allow ? "allow" : "deny";
}
const char* toString(AclAction a) {
  return a == AclAction::Permit ? "permit" : "deny";
}

const char* toString(SegmentKind k) {
  switch (k) {
    case SegmentKind::Management:
      return "management";
    case SegmentKind::Storage:
      return "storage";
    case SegmentKind::Migration:
      return "migration";
    case SegmentKind::Fabric:
      return "fabric";
  }
  return "?";
}

const char* toString(InfraService s) {
  switch (s) {
    case InfraService::Dns:
      return "dns";
    case InfraService::Metadata:
      return "metadata";
    case InfraService::Ntp:
      return "ntp";
    case InfraService::HealthProbe:
      return "health_probe";
    case InfraService::Other:
      return "other";
  }
  return "?";
}

}  // namespace palisade::policy
