// CompiledPolicy: a validated Policy turned into the tables the data plane reads.
//
// Built once per policy version on the control plane (allocation and errors are
// fine here); immutable afterwards, so workers share it read-only and pick up a
// new one between bursts (Pipeline::setPolicy). Everything the per-packet path
// needs is an index or a hash lookup: NICs by MAC and by (VNet, address), VIPs,
// endpoints by (VIP, protocol, port), and one TupleMerge classifier per layer
// table (perimeter in/out, each security group in/out per VNet it is used in).
//
// Service tags are expanded here, per VNet: VirtualNetwork is the VNet's address
// space plus its peers'; Internet is every address outside VirtualNetwork, the
// infrastructure segments and the infrastructure endpoints; HealthProbe is the
// health-probe endpoints; user tags are their prefixes. Each security group gets
// Azure's default rules (AllowVnetInBound 65000, AllowHealthProbeInBound 65001,
// DenyAllInBound 65500; AllowVnetOutBound 65000, AllowInternetOutBound 65001,
// DenyAllOutBound 65500), which user rules (100-4096) always precede.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "classify/classifier.h"
#include "core/flat_index.h"
#include "core/result.h"
#include "policy/model.h"

namespace palisade::ids {
struct PreparedRules;
}

namespace palisade::pipeline {

inline constexpr uint32_t kNoIndex = UINT32_MAX;
static_assert(kNoIndex == FlatIndex<uint32_t>::kNone, "a FlatIndex miss is kNoIndex as it is");
inline constexpr uint16_t kUplinkPort = 0;

enum class Layer : uint8_t {
  PortSecurity,
  Overlay,  // VXLAN from other hosts: tunnel endpoint, VNI, sender binding
  Ddos,     // the DDoS stage: attack detection and the scrubbing verdict
  Infrastructure,
  Isolation,
  Endpoint,
  Perimeter,
  SubnetGroup,
  NicGroup,
  Conntrack,
  Ids,  // inline inspection (Suricata-language rules) of the flows the policy marks
  Count
};
const char* toString(Layer l);

struct RuleInfo {
  std::string name;   // qualified: "perimeter/no-telnet", "contoso/web-tier/https-in"
  std::string group;  // "perimeter" or "tenant/group"
  Layer layer = Layer::Perimeter;
  policy::Access access = policy::Access::Deny;
  policy::Direction direction = policy::Direction::Inbound;
  uint32_t priority = 0;
  bool is_default = false;
  bool removed = false;                          // taken out by an update; index kept
  const policy::SecurityRule* source = nullptr;  // null for default rules
  std::vector<classify::Entry> entries;          // expanded, for `palisade rules`
};

// What the service tags expand to where a table is used.
struct TagScope {
  std::vector<Prefix> virtual_network, internet, health_probe;
};

struct GroupTable {
  std::string name;  // "tenant/group"
  uint32_t vnet = kNoIndex;
  Layer layer = Layer::SubnetGroup;
  TagScope scope;
  classify::Classifier in, out;
  std::vector<uint32_t> rules;  // RuleInfo indexes, by priority
};

struct VNetInfo {
  std::string name;  // "tenant/vnet"
  uint32_t tenant = 0;
  uint32_t vni = 0;
  uint32_t zone = 0;  // flow-key zone: index + 1 (0 is the uplink)
  std::vector<Prefix> address_space;
  std::vector<Prefix> virtual_network;  // address space plus peers'
  std::vector<uint32_t> peers;
  std::vector<IpAddr> dns;
};

struct SubnetInfo {
  std::string name;  // "tenant/vnet/subnet"
  uint32_t vnet = 0;
  std::vector<Prefix> prefixes;
  uint32_t group = kNoIndex;  // GroupTable index
};

struct HostInfo {
  std::string name;
  IpAddr underlay_ip;                                 // VXLAN tunnel endpoint
  MacAddr mac;                                        // underlayMac(underlay_ip), for replay
  policy::PortRange snat_ports = policy::kSnatPorts;  // its share of each VIP's ports
};

// The MAC a host's underlay address has in replay, which has no neighbour
// table: 02:00 and the address's last 4 bytes (live mode resolves real ones).
MacAddr underlayMac(const IpAddr& a);

struct NicInfo {
  std::string name;  // "tenant/nic"
  uint32_t tenant = 0, vnet = 0, subnet = 0, deployment = kNoIndex;
  uint32_t host = kNoIndex;  // HostInfo index; kNoIndex: local wherever the switch runs
  uint16_t port = 0;
  MacAddr mac;
  std::vector<IpAddr> ips;
  std::vector<policy::AddressPair> pairs;
  uint32_t group = kNoIndex;
  IpAddr gateway;       // first host of the subnet's IPv4 prefix
  uint8_t v4_mask = 0;  // subnet's IPv4 prefix length
};

struct DeploymentInfo {
  std::string name;          // "tenant/deployment"
  std::vector<IpAddr> vips;  // at most one per address family
  uint32_t vnet = 0;
  // The VIP of an address family, or null (outbound SNAT of that family).
  const IpAddr* vipFor(bool v4) const {
    for (const IpAddr& v : vips)
      if (v.isV4() == v4) return &v;
    return nullptr;
  }
};

struct EndpointInfo {
  std::string name;  // "tenant/endpoint"
  uint32_t deployment = 0, nic = 0;
  uint8_t proto = 6;
  uint16_t public_port = 0, private_port = 0;
  bool management = false;
  std::vector<policy::AclRule> acl;  // sorted by order
  bool has_permit = false;
};

struct InfraEndpointInfo {
  std::string name;
  IpAddr ip;
  uint8_t proto = 0;  // 0 any
  std::vector<policy::PortRange> ports;
};

struct PortInfo {
  std::string name;  // "uplink" or "tenant/nic"
  uint32_t nic = kNoIndex;
};

// The MAC the switch answers ARP with for every gateway address (Azure uses one
// well-known virtual MAC the same way).
inline const MacAddr kGatewayMac{{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc}};

// One security-rule change, applied to the live tables without recompiling.
struct RuleUpdate {
  enum class Op : uint8_t { Upsert, Remove };
  Op op = Op::Upsert;
  std::string group;          // "perimeter" or "tenant/group"
  policy::SecurityRule rule;  // Upsert: the rule, replacing one of the same name; Remove: name
};

class CompiledPolicy {
 public:
  // Keeps `p` alive: rules point back at their source for lint and trace.
  // The result converts to shared_ptr<const>; keep it mutable only to apply().
  static Result<std::shared_ptr<CompiledPolicy>> compile(std::shared_ptr<const policy::Policy> p,
                                                         uint32_t generation);

  // Adds, replaces or removes one rule in every table compiled from its group
  // (one per VNet and layer it is used in), in place: the changed rule's
  // classifier entries are erased and added, nothing else is rebuilt. All or
  // nothing: a rule that does not validate or expand changes no table. Sets
  // `generation`, so flows decided before re-evaluate on their next packet.
  // Returns the number of tables changed. Threading: call between bursts, with
  // every Pipeline that reads this policy quiescent (the replay and each worker
  // do this on their own thread).
  Result<size_t> apply(const RuleUpdate& u, uint32_t generation);

  std::shared_ptr<const policy::Policy> model;
  uint32_t generation = 0;
  // The `ids:` section: the NICs whose flows are inspected (by NIC index, 1
  // inspected), and the rules loaded where the policy was compiled (null:
  // no ids section, or not loaded: commands that do not inspect leave it),
  // with a digest of everything they came from (files and settings), so a
  // reload that changes neither keeps the workers' engines and their flows.
  std::vector<uint8_t> ids_nics;
  std::shared_ptr<const ids::PreparedRules> ids_rules;
  uint64_t ids_digest = 0;
  std::string source;
  std::vector<PortInfo> ports;  // [0] is the uplink
  std::vector<HostInfo> hosts;
  std::vector<NicInfo> nics;
  std::vector<VNetInfo> vnets;
  std::vector<SubnetInfo> subnets;
  std::vector<DeploymentInfo> deployments;
  std::vector<EndpointInfo> endpoints;
  std::vector<InfraEndpointInfo> infra_endpoints;
  std::vector<Prefix> infra_segments;
  std::vector<RuleInfo> rules;
  std::vector<GroupTable> groups;
  classify::Classifier perimeter_in, perimeter_out;
  std::vector<uint32_t> perimeter_rules;
  TagScope perimeter_scope;

  uint32_t nicByMac(const MacAddr& m) const;                    // own MAC or an address pair's
  uint32_t nicByAddress(uint32_t vnet, const IpAddr& a) const;  // own IPs and address pairs
  uint32_t deploymentByVip(const IpAddr& a) const;
  uint32_t endpointFor(const IpAddr& vip, uint8_t proto, uint16_t port) const;
  uint32_t portByName(std::string_view name) const;
  uint32_t vnetByVni(uint32_t vni) const;
  uint32_t hostByName(std::string_view name) const;
  uint32_t hostByUnderlay(const IpAddr& a) const;
  bool isEndpointPort(const IpAddr& vip, uint8_t proto, uint16_t port) const {
    return endpointFor(vip, proto, port) != kNoIndex;
  }
  // Infrastructure endpoint serving (ip, proto, port), or kNoIndex.
  uint32_t infraEndpointFor(const IpAddr& ip, uint8_t proto, uint16_t port) const;
  bool inInfraSegment(const IpAddr& a) const;
  bool inVirtualNetwork(uint32_t vnet, const IpAddr& a) const;  // own space or a peer's
  uint32_t vnetOwning(uint32_t vnet, const IpAddr& a) const;    // vnet or a peer; kNoIndex

 private:
  struct EndpointKey {
    IpAddr vip;
    uint16_t port;
    uint8_t proto;
    uint8_t pad = 0;
    friend bool operator==(const EndpointKey&, const EndpointKey&) = default;
  };
  struct EndpointHash {
    uint64_t operator()(const EndpointKey& k) const;
  };
  struct KeyHash {
    size_t operator()(const IpAddr& a) const;
    size_t operator()(const std::pair<uint32_t, IpAddr>& k) const;
  };
  FlatIndex<MacAddr> by_mac_;
  std::unordered_map<std::pair<uint32_t, IpAddr>, uint32_t, KeyHash> by_addr_;
  FlatIndex<IpAddr> by_vip_;
  // Read per VXLAN packet, so hashed rather than scanned.
  std::unordered_map<uint32_t, uint32_t> by_vni_;
  std::unordered_map<IpAddr, uint32_t, KeyHash> by_underlay_;
  // Read per SYN of a flood (the SYN proxy asks which endpoint), so flat.
  FlatIndex<EndpointKey, EndpointHash> by_endpoint_;
  std::deque<policy::SecurityRule> updated_rules_;  // sources of rules added by apply()
};

// Prefixes covering every address of `family` (v4: 32, v6: 128 bits) that is not
// in `exclude`. Used for the Internet tag; at most 128 prefixes per excluded one.
std::vector<Prefix> complement(const std::vector<Prefix>& exclude, bool v4);

uint8_t protoNumber(policy::Protocol p);  // classify::kProtoAny for Any

}  // namespace palisade::pipeline
