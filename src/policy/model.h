// The policy model: what one declarative policy file describes.
//
// This is the validated, source-located form the loader produces; later stages
// compile it into immutable data-plane tables. Every element keeps where it was
// written (SourceLoc) so that any later finding (lint, compile, trace) can point
// back at the line. References between elements are by name (Ref) and resolved
// by validation; a Policy that validated has no dangling reference.
//
// Extending: a new top-level section (DDoS profiles, IDS, capture, logging) adds
// a struct here, a member on Policy, and one entry in the loader's section table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/net.h"
#include "policy/diagnostics.h"

namespace palisade::policy {

enum class Protocol : uint8_t { Any, Tcp, Udp, Icmp, Icmpv6, Esp, Ah };
enum class Direction : uint8_t { Inbound, Outbound };
enum class Access : uint8_t { Allow, Deny };
enum class AclAction : uint8_t { Permit, Deny };
enum class SegmentKind : uint8_t { Management, Storage, Migration, Fabric };
enum class InfraService : uint8_t { Dns, Metadata, Ntp, HealthProbe, Other };

const char* toString(Protocol p);
const char* toString(Direction d);
const char* toString(Access a);
const char* toString(AclAction a);
const char* toString(SegmentKind k);
const char* toString(InfraService s);

struct Ref {
  std::string name;
  SourceLoc loc;
  bool empty() const { return name.empty(); }
};

struct PortRange {
  uint16_t lo = 0, hi = 65535;
  bool any() const { return lo == 0 && hi == 65535; }
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
};

// Service tags every policy knows without defining them.
inline constexpr const char* kTagVirtualNetwork = "VirtualNetwork";
inline constexpr const char* kTagInternet = "Internet";
inline constexpr const char* kTagHealthProbe = "HealthProbe";
inline bool isBuiltinTag(std::string_view name) {
  return name == kTagVirtualNetwork || name == kTagInternet || name == kTagHealthProbe;
}

// An address term in a rule: '*', a prefix, or a service tag.
struct AddressRef {
  enum class Kind : uint8_t { Any, Prefix, Tag } kind = Kind::Any;
  Prefix prefix;
  std::string tag;
  SourceLoc loc;
};

struct SecurityRule {
  std::string name;
  std::string description;
  uint16_t priority = 0;  // 100-4096, lowest first
  Direction direction = Direction::Inbound;
  Access access = Access::Deny;
  Protocol protocol = Protocol::Any;
  std::vector<AddressRef> sources;       // empty: '*'
  std::vector<PortRange> source_ports;   // empty: '*'
  std::vector<AddressRef> destinations;  // empty: '*'
  std::vector<PortRange> destination_ports;
  SourceLoc loc;
  SourceLoc priority_loc;
};

struct SecurityGroup {
  std::string name;
  std::vector<SecurityRule> rules;
  SourceLoc loc;
};

struct Subnet {
  std::string name;
  std::vector<Prefix> prefixes;  // one per family at most
  Ref security_group;
  SourceLoc loc;
};

struct VNet {
  std::string name;
  uint32_t vni = 0;  // VXLAN network identifier between hosts
  std::vector<Prefix> address_space;
  std::vector<Subnet> subnets;
  std::vector<Ref> peerings;  // "vnet" in this tenant or "tenant/vnet"
  std::vector<IpAddr> dns_servers;
  SourceLoc loc;
  SourceLoc vni_loc;
};

// A deployment (cloud service): the VMs behind its public VIPs, at most one
// IPv4 and one IPv6 address (dual stack).
struct Deployment {
  std::string name;
  std::vector<IpAddr> vips;
  std::vector<SourceLoc> vip_locs;
  Ref vnet;
  SourceLoc loc;
  // The VIP of an address family, or null.
  const IpAddr* vipOf(bool v4) const {
    for (const IpAddr& v : vips)
      if (v.isV4() == v4) return &v;
    return nullptr;
  }
};

struct AddressPair {
  Prefix prefix;
  std::optional<MacAddr> mac;
  SourceLoc loc;
};

struct Nic {
  std::string name;
  MacAddr mac;
  std::vector<IpAddr> ips;
  Ref subnet;  // "vnet/subnet"
  Ref deployment;
  Ref host;
  Ref security_group;
  std::vector<AddressPair> allowed_address_pairs;
  SourceLoc loc;
  SourceLoc mac_loc;
  std::vector<SourceLoc> ip_locs;
};

struct AclRule {
  uint32_t order = 0;
  AclAction action = AclAction::Deny;
  Prefix remote;
  std::string description;
  SourceLoc loc;
};

// Input endpoint: public VIP:port/proto -> NIC:port, guarded by an ordered ACL.
struct Endpoint {
  std::string name;
  Ref deployment;
  Protocol protocol = Protocol::Tcp;  // tcp or udp
  uint16_t public_port = 0;
  bool random_public_port = false;  // assigned at validation, stable for the name
  Ref nic;
  uint16_t private_port = 0;
  bool management = false;  // SSH, RDP, WinRM and the like
  std::vector<AclRule> acl;
  SourceLoc loc;
  SourceLoc public_port_loc;
};

struct Tenant {
  std::string name;
  std::vector<VNet> vnets;
  std::vector<Deployment> deployments;
  std::vector<Nic> nics;
  std::vector<Endpoint> endpoints;
  std::vector<SecurityGroup> security_groups;
  SourceLoc loc;
};

struct ServiceTag {
  std::string name;
  std::vector<Prefix> prefixes;
  SourceLoc loc;
};

// The ports outbound SNAT may use on a VIP by default: above the well-known ones.
inline constexpr PortRange kSnatPorts{1024, 65535};
inline constexpr uint32_t kMinSnatPorts = 256;  // a host's share is at least this

struct Host {
  std::string name;
  IpAddr underlay_ip;  // VXLAN tunnel endpoint
  // This host's share of every VIP's SNAT ports. Hosts that serve one
  // deployment take disjoint shares so that the upstream (router, load
  // balancer) can send a reply to the host that made the translation.
  PortRange snat_ports = kSnatPorts;
  SourceLoc loc;
};

struct InfraSegment {
  std::string name;
  SegmentKind kind = SegmentKind::Management;
  std::vector<Prefix> prefixes;
  SourceLoc loc;
};

// Infrastructure services tenants may reach (fabric DNS, metadata, NTP, probes).
struct InfraEndpoint {
  std::string name;
  InfraService service = InfraService::Other;
  IpAddr ip;
  Protocol protocol = Protocol::Udp;
  std::vector<PortRange> ports;
  SourceLoc loc;
};

// `conntrack:` settings of the switch; what is not written keeps the data
// plane's defaults (docs/policy.md lists them).
struct ConntrackSettings {
  // Timeout names, in the order of the `timeouts` map's documentation.
  static constexpr std::string_view kTimeoutNames[] = {
      "tcp_syn_sent", "tcp_syn_recv",  "tcp_established", "tcp_fin_wait", "tcp_close_wait",
      "tcp_last_ack", "tcp_time_wait", "tcp_close",       "udp",          "udp_stream",
      "icmp",         "other"};
  std::optional<uint32_t> capacity;           // connections tracked at most
  std::optional<uint32_t> per_nic_limit;      // connections one NIC may hold; 0 = none
  std::optional<bool> loose;                  // tcp_tracking: loose (mid-stream pickup)
  std::optional<uint32_t> flow_log_interval;  // seconds between 'continue' records; 0 = none
  // Later IP fragments follow their datagram's first for this many seconds,
  // for at most this many datagrams at once (0: later fragments are dropped).
  std::optional<uint32_t> fragment_timeout, fragment_datagrams, fragments_held;
  std::vector<std::pair<std::string, uint32_t>> timeouts;  // name -> seconds
  SourceLoc loc;
};

// `capture:`: which traffic is mirrored into rotating pcapng files. A rule's
// selectors all have to match (an empty one matches anything); each rule has
// its own set of files. docs/policy.md lists the fields.
enum class CaptureDecision : uint8_t { Any, Allow, Deny };
struct CaptureRule {
  std::string name;
  std::string tenant;  // a tenant's name
  std::string nic;     // "tenant/nic"
  std::string
      rule;  // a qualified rule ("contoso/web-tier/https-in") or a group ("contoso/web-tier")
  std::string reason;  // a drop reason (palisade replay lists them)
  std::string attack;  // "any" or a DDoS vector: packets of it to an address under attack
  std::optional<uint32_t>
      alert;  // IDS alerts: 0 any rule, else a sid; the flow's packets from it on
  CaptureDecision decision = CaptureDecision::Any;
  SourceLoc loc;
};
struct CaptureSettings {
  std::optional<uint64_t> file_size;     // bytes before a file is rotated
  std::optional<uint64_t> file_seconds;  // seconds a file covers at most
  std::optional<uint32_t> max_files;     // files kept per rule (the oldest deleted)
  std::optional<uint32_t> snaplen;       // bytes kept of each packet
  std::vector<CaptureRule> rules;
  SourceLoc loc;
};

// `ddos:`: detection profiles and the addresses they protect. Values not
// written keep the detector's defaults (docs/policy.md lists them); the DDoS
// layer turns this into its own configuration (src/ddos/config.h).
struct DdosThreshold {
  std::string vector_class;  // syn, synack, ack_rst, udp, amplification, icmp, fragment, other
  std::optional<double> pps, bps;
  SourceLoc loc;
};
enum class DdosMode : uint8_t { OnDemand, AlwaysOn, Emergency };
enum class DdosQuarantine : uint8_t { None, RateLimit, Isolate };
enum class DdosSynProxy : uint8_t { Off, OnAttack, Always };
struct DdosProfile {
  std::string name;
  DdosMode mode = DdosMode::OnDemand;
  std::vector<DdosThreshold> thresholds;
  std::optional<double> sensitivity, multiplier, end_ratio;
  std::optional<uint32_t> learning_s, end_after_s, update_s;
  DdosQuarantine quarantine = DdosQuarantine::Isolate;
  std::optional<double> quarantine_pps;
  // limits: source_pps, source_bps, target_pps, target_bps (0: none)
  std::optional<double> source_pps, source_bps, target_pps, target_bps;
  // limits on connections to each input endpoint of the profile's addresses:
  // per client (source address) and per endpoint, concurrent, half-open and
  // new per second (0: none)
  std::optional<double> source_connections, source_half_open, source_cps;
  std::optional<double> target_connections, target_half_open, target_cps;
  // per NIC behind the profile's endpoints, every packet from the uplink
  std::optional<double> nic_pps, nic_bps;
  // syn_proxy: a mode (off, on-attack, always) or {mode, mss, wscale}
  DdosSynProxy syn_proxy = DdosSynProxy::OnAttack;
  std::optional<uint16_t> proxy_mss;
  std::optional<uint8_t> proxy_wscale;
  // the SYN-to-ACK ratio's drop that makes SYNs a flood (0: unused), and the
  // SYN rate from which it counts
  std::optional<double> syn_ack_ratio, syn_ratio_min_pps;
  SourceLoc loc;
};
struct DdosProtect {
  std::string name;
  std::vector<Prefix> prefixes;
  Ref profile;  // empty: the built-in default profile
  SourceLoc loc;
};
struct DdosSettings {
  std::vector<DdosProfile> profiles;
  std::vector<DdosProtect> protect;
  std::string webhook_url;  // attack events POSTed here (http:// or https://)
  // https: CA bundle (empty: the system's), client certificate and key files
  std::string webhook_ca, webhook_cert, webhook_key;
  std::optional<uint32_t> webhook_timeout_ms, webhook_retries;
  SourceLoc loc;
};

// `ids:`: Suricata-language rules inline in the data plane. The rules files
// are read where the policy is compiled (cli/policy_input.h), relative to the
// policy file's directory.
enum class IdsMode : uint8_t { Ips, Ids };
enum class IdsOverload : uint8_t { FailOpen, FailClosed };
struct IdsSelector {  // flows of a tenant's NICs, or of one NIC
  std::string tenant;
  std::string nic;  // "tenant/nic"
  SourceLoc loc;
};
struct IdsSettings {
  bool enabled = false;  // the section is present
  IdsMode mode = IdsMode::Ips;
  std::vector<std::string> rules;  // files, as written
  std::string classification;      // classification.config, as written; empty: none
  std::vector<std::pair<std::string, std::string>> settings;  // Suricata KEY, VALUE
  std::vector<IdsSelector> inspect;                           // empty: every flow
  IdsOverload overload = IdsOverload::FailOpen;
  std::optional<uint64_t> capacity;   // bits/s one worker inspects; more is overload
  std::optional<uint32_t> max_flows;  // flows one worker tracks
  SourceLoc loc;
};

struct Policy {
  std::string source;  // file it was loaded from
  uint32_t version = 0;
  ConntrackSettings conntrack;
  CaptureSettings capture;
  DdosSettings ddos;
  IdsSettings ids;
  std::vector<Host> hosts;
  std::vector<ServiceTag> service_tags;
  std::vector<InfraSegment> segments;
  std::vector<InfraEndpoint> infra_endpoints;
  std::vector<SecurityRule> perimeter;
  std::vector<Tenant> tenants;
};

}  // namespace palisade::policy
