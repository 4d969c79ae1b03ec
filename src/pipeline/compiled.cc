#include "pipeline/compiled.h"

#include <algorithm>
#include <cstring>

#include "core/hash.h"
#include "core/strings.h"

namespace palisade::pipeline {

const char* toString(Layer l) {
  switch (l) {
    case Layer::PortSecurity:
      return "port_security";
    case Layer::Overlay:
      return "overlay";
    case Layer::Ddos:
      return "ddos";
    case Layer::Infrastructure:
      return "infrastructure";
    case Layer::Isolation:
      return "isolation";
    case Layer::Endpoint:
      return "endpoint";
    case Layer::Perimeter:
      return "perimeter";
    case Layer::SubnetGroup:
      return "subnet_group";
    case Layer::NicGroup:
      return "nic_group";
    case Layer::Conntrack:
      return "conntrack";
    case Layer::Ids:
      return "ids";
    case Layer::Count:
      break;
  }
  return "?";
}

uint8_t protoNumber(policy::Protocol p) {
  switch (p) {
    case policy::Protocol::Any:
      return classify::kProtoAny;
    case policy::Protocol::Tcp:
      return 6;
    case policy::Protocol::Udp:
      return 17;
    case policy::Protocol::Icmp:
      return 1;
    case policy::Protocol::Icmpv6:
      return 58;
    case policy::Protocol::Esp:
      return 50;
    case policy::Protocol::Ah:
      return 51;
  }
  return classify::kProtoAny;
}

namespace {

Prefix childOf(const Prefix& p, bool one) {
  Prefix c = p;
  c.len = static_cast<uint8_t>(p.len + 1);
  if (one) {
    const unsigned bit = p.bits128();  // index of the new bit over 128
    c.addr.b[bit / 8] |= static_cast<uint8_t>(0x80u >> (bit % 8));
  }
  return c;
}

void complementInto(const Prefix& node, const std::vector<Prefix>& ex, std::vector<Prefix>& out) {
  bool partial = false;
  for (const Prefix& e : ex) {
    if (e.isV4() != node.isV4()) continue;
    if (e.contains(node)) return;
    if (node.contains(e)) partial = true;
  }
  if (!partial) {
    out.push_back(node);
    return;
  }
  complementInto(childOf(node, false), ex, out);
  complementInto(childOf(node, true), ex, out);
}

const Prefix kAnyV4{IpAddr::v4(0u), 0};
const Prefix kAnyV6{IpAddr{}, 0};

}  // namespace

namespace {

// True when n's first len bits equal those of ::ffff:0:0 (the IPv4-mapped block).
bool onMappedPath(const Prefix& n) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  for (unsigned i = 0; i < n.len && i < 96; ++i) {
    const bool want = (kMapped[i / 8] >> (7 - i % 8)) & 1;
    const bool have = (n.addr.b[i / 8] >> (7 - i % 8)) & 1;
    if (want != have) return false;
  }
  return true;
}

// The IPv6 walk never emits the IPv4-mapped /96: that space is the IPv4 family's.
void complementV6(const Prefix& node, const std::vector<Prefix>& ex, std::vector<Prefix>& out) {
  const bool mapped_path = onMappedPath(node);
  if (mapped_path && node.len >= 96) return;
  bool partial = mapped_path;
  for (const Prefix& e : ex) {
    if (e.isV4()) continue;
    if (e.contains(node)) return;
    if (node.contains(e)) partial = true;
  }
  if (!partial) {
    out.push_back(node);
    return;
  }
  complementV6(childOf(node, false), ex, out);
  complementV6(childOf(node, true), ex, out);
}

}  // namespace

std::vector<Prefix> complement(const std::vector<Prefix>& exclude, bool v4) {
  std::vector<Prefix> out;
  if (v4)
    complementInto(kAnyV4, exclude, out);
  else
    complementV6(kAnyV6, exclude, out);
  return out;
}

uint64_t CompiledPolicy::EndpointHash::operator()(const EndpointKey& k) const {
  uint64_t hi, lo;
  std::memcpy(&hi, k.vip.b.data(), 8);
  std::memcpy(&lo, k.vip.b.data() + 8, 8);
  return mix64(hi * 0x9e3779b97f4a7c15ull ^ lo ^ (uint64_t{k.port} << 8 | k.proto));
}
size_t CompiledPolicy::KeyHash::operator()(const IpAddr& a) const {
  return hashKey(a);
}
size_t CompiledPolicy::KeyHash::operator()(const std::pair<uint32_t, IpAddr>& k) const {
  return hashKey(k.second, k.first);
}

uint32_t CompiledPolicy::nicByMac(const MacAddr& m) const {
  return by_mac_.find(m);
}

uint32_t CompiledPolicy::nicByAddress(uint32_t vnet, const IpAddr& a) const {
  auto it = by_addr_.find({vnet, a});
  if (it != by_addr_.end()) return it->second;
  // Address pairs wider than one host (rare): check the VNet's NICs.
  for (uint32_t i = 0; i < nics.size(); ++i) {
    if (nics[i].vnet != vnet) continue;
    for (const policy::AddressPair& p : nics[i].pairs)
      if (p.prefix.contains(a)) return i;
  }
  return kNoIndex;
}

uint32_t CompiledPolicy::deploymentByVip(const IpAddr& a) const {
  return by_vip_.find(a);
}

uint32_t CompiledPolicy::endpointFor(const IpAddr& vip, uint8_t proto, uint16_t port) const {
  return by_endpoint_.find(EndpointKey{vip, port, proto});
}

uint32_t CompiledPolicy::portByName(std::string_view name) const {
  for (uint32_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == name) return i;
  return kNoIndex;
}

uint32_t CompiledPolicy::vnetByVni(uint32_t vni) const {
  auto it = by_vni_.find(vni);
  return it == by_vni_.end() ? kNoIndex : it->second;
}

uint32_t CompiledPolicy::hostByName(std::string_view name) const {
  for (uint32_t i = 0; i < hosts.size(); ++i)
    if (hosts[i].name == name) return i;
  return kNoIndex;
}

uint32_t CompiledPolicy::hostByUnderlay(const IpAddr& a) const {
  auto it = by_underlay_.find(a);
  return it == by_underlay_.end() ? kNoIndex : it->second;
}

MacAddr underlayMac(const IpAddr& a) {
  return MacAddr{{0x02, 0x00, a.b[12], a.b[13], a.b[14], a.b[15]}};
}

uint32_t CompiledPolicy::infraEndpointFor(const IpAddr& ip, uint8_t proto, uint16_t port) const {
  for (uint32_t i = 0; i < infra_endpoints.size(); ++i) {
    const InfraEndpointInfo& e = infra_endpoints[i];
    if (e.ip != ip || (e.proto != 0 && e.proto != proto)) continue;
    if (e.ports.empty()) return i;
    for (const policy::PortRange& r : e.ports)
      if (r.contains(port)) return i;
  }
  return kNoIndex;
}

bool CompiledPolicy::inInfraSegment(const IpAddr& a) const {
  for (const Prefix& p : infra_segments)
    if (p.contains(a)) return true;
  return false;
}

bool CompiledPolicy::inVirtualNetwork(uint32_t vnet, const IpAddr& a) const {
  for (const Prefix& p : vnets[vnet].virtual_network)
    if (p.contains(a)) return true;
  return false;
}

uint32_t CompiledPolicy::vnetOwning(uint32_t vnet, const IpAddr& a) const {
  for (const Prefix& p : vnets[vnet].address_space)
    if (p.contains(a)) return vnet;
  for (uint32_t peer : vnets[vnet].peers)
    for (const Prefix& p : vnets[peer].address_space)
      if (p.contains(a)) return peer;
  return kNoIndex;
}

namespace {

std::string where(const policy::SourceLoc& l) {
  return strCat("line ", std::to_string(l.line), ":", std::to_string(l.column));
}

Result<std::vector<Prefix>> expand(const policy::AddressRef& r, const TagScope& s,
                                   const policy::Policy& p) {
  switch (r.kind) {
    case policy::AddressRef::Kind::Any:
      return std::vector<Prefix>{kAnyV6};
    case policy::AddressRef::Kind::Prefix:
      return std::vector<Prefix>{r.prefix};
    case policy::AddressRef::Kind::Tag:
      if (r.tag == policy::kTagVirtualNetwork) return s.virtual_network;
      if (r.tag == policy::kTagInternet) return s.internet;
      if (r.tag == policy::kTagHealthProbe) return s.health_probe;
      for (const policy::ServiceTag& t : p.service_tags)
        if (t.name == r.tag) return t.prefixes;
      return makeError(strCat(where(r.loc), ": unknown service tag '", r.tag, "'"));
  }
  return std::vector<Prefix>{};
}

constexpr size_t kMaxEntriesPerRule = 1u << 20;

// Expands one rule into classifier entries (cross product of its terms).
Status expandRule(const policy::SecurityRule& r, const TagScope& s, const policy::Policy& p,
                  uint32_t id, uint32_t priority, std::vector<classify::Entry>& out) {
  std::vector<Prefix> srcs, dsts;
  auto collect = [&](const std::vector<policy::AddressRef>& refs,
                     std::vector<Prefix>& into) -> Status {
    if (refs.empty()) {
      into.push_back(kAnyV6);
      return {};
    }
    for (const policy::AddressRef& a : refs) {
      auto e = expand(a, s, p);
      if (!e) return e.error();
      into.insert(into.end(), e->begin(), e->end());
    }
    return {};
  };
  if (auto st = collect(r.sources, srcs); !st) return st;
  if (auto st = collect(r.destinations, dsts); !st) return st;
  std::vector<policy::PortRange> sports = r.source_ports, dports = r.destination_ports;
  if (sports.empty()) sports.push_back({});
  if (dports.empty()) dports.push_back({});
  const size_t n = srcs.size() * dsts.size() * sports.size() * dports.size();
  if (n > kMaxEntriesPerRule)
    return makeError(strCat(where(r.loc), ": rule '", r.name, "' expands to ", std::to_string(n),
                            " classifier entries (limit ", std::to_string(kMaxEntriesPerRule),
                            "); split it or use fewer prefixes"));
  const uint8_t proto = protoNumber(r.protocol);
  for (const Prefix& sp : srcs)
    for (const Prefix& dp : dsts)
      for (const policy::PortRange& spr : sports)
        for (const policy::PortRange& dpr : dports) {
          classify::Entry e;
          e.src = sp.addr;
          e.src_len = sp.bits128();
          e.dst = dp.addr;
          e.dst_len = dp.bits128();
          e.proto = proto;
          e.sport_lo = spr.lo;
          e.sport_hi = spr.hi;
          e.dport_lo = dpr.lo;
          e.dport_hi = dpr.hi;
          e.priority = priority;
          e.id = id;
          out.push_back(e);
        }
  return {};
}

// Orders a table's rule indexes as they are evaluated: by direction, then
// priority (lowest first).
auto evaluationOrder(const std::vector<RuleInfo>& rules) {
  return [&rules](uint32_t a, uint32_t b) {
    const RuleInfo& x = rules[a];
    const RuleInfo& y = rules[b];
    return x.direction != y.direction ? x.direction < y.direction : x.priority < y.priority;
  };
}

policy::SecurityRule defaultRule(const char* name, uint16_t priority, policy::Direction d,
                                 policy::Access a, const char* src_tag, const char* dst_tag) {
  policy::SecurityRule r;
  r.name = name;
  r.priority = priority;
  r.direction = d;
  r.access = a;
  auto tag = [](const char* t) {
    policy::AddressRef ref;
    if (t) {
      ref.kind = policy::AddressRef::Kind::Tag;
      ref.tag = t;
    }
    return ref;
  };
  if (src_tag) r.sources.push_back(tag(src_tag));
  if (dst_tag) r.destinations.push_back(tag(dst_tag));
  return r;
}

const std::vector<policy::SecurityRule>& defaultRules() {
  using policy::Access;
  using policy::Direction;
  static const std::vector<policy::SecurityRule> rules = {
      defaultRule("AllowVnetInBound", 65000, Direction::Inbound, Access::Allow,
                  policy::kTagVirtualNetwork, policy::kTagVirtualNetwork),
      defaultRule("AllowHealthProbeInBound", 65001, Direction::Inbound, Access::Allow,
                  policy::kTagHealthProbe, nullptr),
      defaultRule("DenyAllInBound", 65500, Direction::Inbound, Access::Deny, nullptr, nullptr),
      defaultRule("AllowVnetOutBound", 65000, Direction::Outbound, Access::Allow,
                  policy::kTagVirtualNetwork, policy::kTagVirtualNetwork),
      defaultRule("AllowInternetOutBound", 65001, Direction::Outbound, Access::Allow, nullptr,
                  policy::kTagInternet),
      defaultRule("DenyAllOutBound", 65500, Direction::Outbound, Access::Deny, nullptr, nullptr),
  };
  return rules;
}

IpAddr firstHost(const Prefix& p) {
  IpAddr a = p.addr;
  a.b[15] = static_cast<uint8_t>(a.b[15] + 1);
  return a;
}

}  // namespace

Result<std::shared_ptr<CompiledPolicy>> CompiledPolicy::compile(
    std::shared_ptr<const policy::Policy> model, uint32_t generation) {
  const policy::Policy& p = *model;
  auto cp = std::make_shared<CompiledPolicy>();
  cp->model = std::move(model);
  cp->generation = generation;
  cp->source = p.source;
  cp->ports.push_back({"uplink", kNoIndex});
  for (const policy::Host& h : p.hosts) {
    cp->by_underlay_[h.underlay_ip] = static_cast<uint32_t>(cp->hosts.size());
    cp->hosts.push_back({h.name, h.underlay_ip, underlayMac(h.underlay_ip), h.snat_ports});
  }

  std::vector<Prefix> infra_hosts, health;
  for (const policy::InfraSegment& s : p.segments)
    cp->infra_segments.insert(cp->infra_segments.end(), s.prefixes.begin(), s.prefixes.end());
  for (const policy::InfraEndpoint& e : p.infra_endpoints) {
    cp->infra_endpoints.push_back(
        {e.name, e.ip,
         static_cast<uint8_t>(e.protocol == policy::Protocol::Any ? 0 : protoNumber(e.protocol)),
         e.ports});
    infra_hosts.push_back(Prefix::host(e.ip));
    if (e.service == policy::InfraService::HealthProbe) health.push_back(Prefix::host(e.ip));
  }

  // VNets, subnets, deployments first (NICs and groups refer to them).
  struct TenantIdx {
    std::unordered_map<std::string, uint32_t> vnet, subnet, deployment, nic;
  };
  std::vector<TenantIdx> tidx(p.tenants.size());
  for (uint32_t t = 0; t < p.tenants.size(); ++t) {
    const policy::Tenant& tn = p.tenants[t];
    for (const policy::VNet& v : tn.vnets) {
      VNetInfo vi;
      vi.name = strCat(tn.name, "/", v.name);
      vi.tenant = t;
      vi.vni = v.vni;
      vi.zone = static_cast<uint32_t>(cp->vnets.size() + 1);
      cp->by_vni_[v.vni] = static_cast<uint32_t>(cp->vnets.size());
      vi.address_space = v.address_space;
      vi.dns = v.dns_servers;
      tidx[t].vnet[v.name] = static_cast<uint32_t>(cp->vnets.size());
      cp->vnets.push_back(std::move(vi));
    }
  }
  auto findVnet = [&](uint32_t t, const std::string& ref) -> uint32_t {
    const auto slash = ref.find('/');
    if (slash == std::string::npos) {
      auto it = tidx[t].vnet.find(ref);
      return it == tidx[t].vnet.end() ? kNoIndex : it->second;
    }
    for (uint32_t i = 0; i < cp->vnets.size(); ++i)
      if (cp->vnets[i].name == ref) return i;
    return kNoIndex;
  };
  for (uint32_t t = 0; t < p.tenants.size(); ++t)
    for (const policy::VNet& v : p.tenants[t].vnets) {
      const uint32_t vi = tidx[t].vnet[v.name];
      for (const policy::Ref& peer : v.peerings) {
        const uint32_t pi = findVnet(t, peer.name);
        if (pi == kNoIndex)
          return makeError(strCat(where(peer.loc), ": unknown peering '", peer.name, "'"));
        // Peering is symmetric once declared on either side.
        auto add = [&](uint32_t a, uint32_t b) {
          auto& peers = cp->vnets[a].peers;
          if (std::find(peers.begin(), peers.end(), b) == peers.end()) peers.push_back(b);
        };
        add(vi, pi);
        add(pi, vi);
      }
    }
  for (VNetInfo& v : cp->vnets) {
    v.virtual_network = v.address_space;
    for (uint32_t peer : v.peers)
      v.virtual_network.insert(v.virtual_network.end(), cp->vnets[peer].address_space.begin(),
                               cp->vnets[peer].address_space.end());
  }

  for (uint32_t t = 0; t < p.tenants.size(); ++t) {
    const policy::Tenant& tn = p.tenants[t];
    for (const policy::VNet& v : tn.vnets)
      for (const policy::Subnet& s : v.subnets) {
        tidx[t].subnet[strCat(v.name, "/", s.name)] = static_cast<uint32_t>(cp->subnets.size());
        cp->subnets.push_back({strCat(tn.name, "/", v.name, "/", s.name), tidx[t].vnet[v.name],
                               s.prefixes, kNoIndex});
      }
    for (const policy::Deployment& d : tn.deployments) {
      const uint32_t vi = findVnet(t, d.vnet.name);
      if (vi == kNoIndex)
        return makeError(strCat(where(d.loc), ": deployment '", d.name, "' has no VNet"));
      tidx[t].deployment[d.name] = static_cast<uint32_t>(cp->deployments.size());
      for (const IpAddr& vip : d.vips)
        cp->by_vip_.insert(vip, static_cast<uint32_t>(cp->deployments.size()));
      cp->deployments.push_back({strCat(tn.name, "/", d.name), d.vips, vi});
    }
  }

  // Perimeter tables: provider-wide; Internet is everything outside the
  // infrastructure and the public VIPs.
  std::vector<Prefix> cloud = cp->infra_segments;
  cloud.insert(cloud.end(), infra_hosts.begin(), infra_hosts.end());
  for (const DeploymentInfo& d : cp->deployments)
    for (const IpAddr& vip : d.vips)
      cloud.push_back(Prefix::host(vip));
  TagScope& perimeter_scope = cp->perimeter_scope;
  for (const VNetInfo& v : cp->vnets)
    perimeter_scope.virtual_network.insert(perimeter_scope.virtual_network.end(),
                                           v.address_space.begin(), v.address_space.end());
  perimeter_scope.internet = complement(cloud, true);
  {
    auto v6 = complement(cloud, false);
    perimeter_scope.internet.insert(perimeter_scope.internet.end(), v6.begin(), v6.end());
  }
  perimeter_scope.health_probe = health;

  auto addRule = [&](const policy::SecurityRule& r, const TagScope& scope, Layer layer,
                     const std::string& group, bool is_default, classify::Classifier& in,
                     classify::Classifier& out) -> Result<uint32_t> {
    const uint32_t id = static_cast<uint32_t>(cp->rules.size());
    RuleInfo ri;
    ri.name = strCat(group, "/", r.name);
    ri.group = group;
    ri.layer = layer;
    ri.access = r.access;
    ri.direction = r.direction;
    ri.priority = r.priority;
    ri.is_default = is_default;
    ri.source = is_default ? nullptr : &r;
    if (auto st = expandRule(r, scope, p, id, r.priority, ri.entries); !st) return st.error();
    classify::Classifier& c = r.direction == policy::Direction::Inbound ? in : out;
    for (const classify::Entry& e : ri.entries)
      c.add(e);
    cp->rules.push_back(std::move(ri));
    return id;
  };

  for (const policy::SecurityRule& r : p.perimeter) {
    auto id = addRule(r, perimeter_scope, Layer::Perimeter, "perimeter", false, cp->perimeter_in,
                      cp->perimeter_out);
    if (!id) return id.error();
    cp->perimeter_rules.push_back(*id);
  }
  std::sort(cp->perimeter_rules.begin(), cp->perimeter_rules.end(), evaluationOrder(cp->rules));

  // Security groups, compiled per VNet they are used in (tags depend on it).
  std::unordered_map<std::string, uint32_t> group_tables;  // "tenant/group@vnet"
  auto groupFor = [&](uint32_t t, const std::string& gname, uint32_t vnet,
                      Layer layer) -> Result<uint32_t> {
    const policy::Tenant& tn = p.tenants[t];
    const std::string key = strCat(tn.name, "/", gname, "@", std::to_string(vnet), "/",
                                   std::to_string(static_cast<int>(layer)));
    if (auto it = group_tables.find(key); it != group_tables.end()) return it->second;
    const policy::SecurityGroup* g = nullptr;
    for (const policy::SecurityGroup& sg : tn.security_groups)
      if (sg.name == gname) g = &sg;
    if (!g)
      return makeError(strCat("tenant '", tn.name, "': unknown security group '", gname, "'"));
    TagScope scope;
    scope.virtual_network = cp->vnets[vnet].virtual_network;
    // VIPs are public addresses: a tenant reaching another deployment's VIP goes
    // through the Internet path, so VIPs stay in Internet for groups.
    std::vector<Prefix> not_internet = scope.virtual_network;
    not_internet.insert(not_internet.end(), cp->infra_segments.begin(), cp->infra_segments.end());
    not_internet.insert(not_internet.end(), infra_hosts.begin(), infra_hosts.end());
    scope.internet = complement(not_internet, true);
    auto v6 = complement(not_internet, false);
    scope.internet.insert(scope.internet.end(), v6.begin(), v6.end());
    scope.health_probe = health;
    const uint32_t gi = static_cast<uint32_t>(cp->groups.size());
    cp->groups.emplace_back();
    cp->groups[gi].name = strCat(tn.name, "/", gname);
    cp->groups[gi].vnet = vnet;
    cp->groups[gi].layer = layer;
    const std::string gname_full = cp->groups[gi].name;
    for (const policy::SecurityRule& r : g->rules) {
      auto id = addRule(r, scope, layer, gname_full, false, cp->groups[gi].in, cp->groups[gi].out);
      if (!id) return id.error();
      cp->groups[gi].rules.push_back(*id);
    }
    for (const policy::SecurityRule& r : defaultRules()) {
      auto id = addRule(r, scope, layer, gname_full, true, cp->groups[gi].in, cp->groups[gi].out);
      if (!id) return id.error();
      cp->groups[gi].rules.push_back(*id);
    }
    std::sort(cp->groups[gi].rules.begin(), cp->groups[gi].rules.end(), evaluationOrder(cp->rules));
    cp->groups[gi].scope = std::move(scope);
    group_tables[key] = gi;
    return gi;
  };

  for (uint32_t t = 0; t < p.tenants.size(); ++t) {
    const policy::Tenant& tn = p.tenants[t];
    for (const policy::VNet& v : tn.vnets)
      for (const policy::Subnet& s : v.subnets) {
        if (s.security_group.empty()) continue;
        const uint32_t si = tidx[t].subnet[strCat(v.name, "/", s.name)];
        auto g = groupFor(t, s.security_group.name, cp->subnets[si].vnet, Layer::SubnetGroup);
        if (!g) return g.error();
        cp->subnets[si].group = *g;
      }
    for (const policy::Nic& n : tn.nics) {
      NicInfo ni;
      ni.name = strCat(tn.name, "/", n.name);
      ni.tenant = t;
      auto sit = tidx[t].subnet.find(n.subnet.name);
      if (sit == tidx[t].subnet.end())
        return makeError(strCat(where(n.loc), ": NIC '", n.name, "' has no subnet"));
      ni.subnet = sit->second;
      ni.vnet = cp->subnets[ni.subnet].vnet;
      if (!n.deployment.empty()) {
        auto dit = tidx[t].deployment.find(n.deployment.name);
        if (dit != tidx[t].deployment.end()) ni.deployment = dit->second;
      }
      if (!n.host.empty()) ni.host = cp->hostByName(n.host.name);
      ni.mac = n.mac;
      ni.ips = n.ips;
      ni.pairs = n.allowed_address_pairs;
      for (const Prefix& sp : cp->subnets[ni.subnet].prefixes)
        if (sp.isV4()) {
          ni.gateway = firstHost(sp);
          ni.v4_mask = sp.len;
        }
      if (!n.security_group.empty()) {
        auto g = groupFor(t, n.security_group.name, ni.vnet, Layer::NicGroup);
        if (!g) return g.error();
        ni.group = *g;
      }
      const uint32_t idx = static_cast<uint32_t>(cp->nics.size());
      ni.port = static_cast<uint16_t>(cp->ports.size());
      cp->ports.push_back({ni.name, idx});
      cp->by_mac_.insert(ni.mac, idx);
      for (const policy::AddressPair& ap : ni.pairs)
        if (ap.mac)
          cp->by_mac_.insertIfAbsent(*ap.mac, idx);  // a pair's MAC identifies the NIC too
      for (const IpAddr& a : ni.ips)
        cp->by_addr_[{ni.vnet, a}] = idx;
      for (const policy::AddressPair& ap : ni.pairs)
        if (ap.prefix.len == (ap.prefix.isV4() ? 32 : 128))
          cp->by_addr_[{ni.vnet, ap.prefix.addr}] = idx;
      tidx[t].nic[n.name] = idx;
      cp->nics.push_back(std::move(ni));
    }
    for (const policy::Endpoint& e : tn.endpoints) {
      EndpointInfo ei;
      ei.name = strCat(tn.name, "/", e.name);
      auto dit = tidx[t].deployment.find(e.deployment.name);
      auto nit = tidx[t].nic.find(e.nic.name);
      if (dit == tidx[t].deployment.end() || nit == tidx[t].nic.end())
        return makeError(strCat(where(e.loc), ": endpoint '", e.name,
                                "' refers to an unknown deployment or NIC"));
      ei.deployment = dit->second;
      ei.nic = nit->second;
      ei.proto = protoNumber(e.protocol);
      ei.public_port = e.public_port;
      ei.private_port = e.private_port;
      ei.management = e.management;
      ei.acl = e.acl;
      std::stable_sort(ei.acl.begin(), ei.acl.end(),
                       [](const auto& a, const auto& b) { return a.order < b.order; });
      for (const policy::AclRule& r : ei.acl)
        ei.has_permit |= r.action == policy::AclAction::Permit;
      // An endpoint of a dual-stack deployment answers on both VIPs.
      for (const IpAddr& vip : cp->deployments[ei.deployment].vips)
        cp->by_endpoint_.insert(EndpointKey{vip, ei.public_port, ei.proto},
                                static_cast<uint32_t>(cp->endpoints.size()));
      cp->endpoints.push_back(std::move(ei));
    }
  }
  // Inline inspection: every NIC, or those the inspect entries select.
  const policy::IdsSettings& ids = cp->model->ids;
  cp->ids_nics.assign(cp->nics.size(), ids.enabled && ids.inspect.empty() ? 1 : 0);
  for (const policy::IdsSelector& sel : ids.inspect)
    for (size_t i = 0; i < cp->nics.size(); ++i) {
      const NicInfo& ni = cp->nics[i];
      if (sel.nic == ni.name ||
          (!sel.tenant.empty() && cp->model->tenants[ni.tenant].name == sel.tenant))
        cp->ids_nics[i] = 1;
    }
  return cp;
}

Result<size_t> CompiledPolicy::apply(const RuleUpdate& u, uint32_t new_generation) {
  const policy::SecurityRule& r = u.rule;
  const bool perimeter = u.group == "perimeter";
  // The tables compiled from this group, with the classifiers and rule lists.
  struct Target {
    classify::Classifier *in, *out;
    std::vector<uint32_t>* rules;
    const TagScope* scope;
    Layer layer;
  };
  std::vector<Target> targets;
  if (perimeter) {
    targets.push_back(
        {&perimeter_in, &perimeter_out, &perimeter_rules, &perimeter_scope, Layer::Perimeter});
  } else {
    for (GroupTable& g : groups)
      if (g.name == u.group) targets.push_back({&g.in, &g.out, &g.rules, &g.scope, g.layer});
    if (targets.empty()) {
      return makeError(strCat("security group '", u.group,
                              "' is not compiled: no such group, or no subnet or NIC uses it "
                              "(a policy change that uses it needs a full reload)"));
    }
  }
  if (r.name.empty()) return makeError("rule update: the rule has no name");
  const std::string qualified = strCat(u.group, "/", r.name);
  // The live rule of that name in each target, if any.
  auto liveIndex = [&](const Target& t) -> uint32_t {
    for (uint32_t id : *t.rules)
      if (!rules[id].is_default && !rules[id].removed && rules[id].name == qualified) return id;
    return kNoIndex;
  };
  // Takes the target's live rule of that name out; false when there is none.
  auto retire = [&](Target& t) {
    const uint32_t old = liveIndex(t);
    if (old == kNoIndex) return false;
    (rules[old].direction == policy::Direction::Inbound ? t.in : t.out)->erase(old);
    rules[old].removed = true;
    std::erase(*t.rules, old);
    return true;
  };
  if (u.op == RuleUpdate::Op::Remove) {
    size_t changed = 0;
    for (Target& t : targets)
      changed += retire(t);
    if (changed == 0) return makeError(strCat("rule update: no rule '", qualified, "' to remove"));
    generation = new_generation;
    return changed;
  }
  if (r.priority < 100 || r.priority > 4096)
    return makeError(strCat("rule update: rule '", qualified, "' has priority ",
                            std::to_string(r.priority), "; priorities are 100-4096"));
  for (const Target& t : targets) {
    for (uint32_t id : *t.rules) {
      const RuleInfo& o = rules[id];
      if (!o.is_default && !o.removed && o.direction == r.direction && o.priority == r.priority &&
          o.name != qualified) {
        return makeError(strCat("rule update: priority ", std::to_string(r.priority), " ",
                                policy::toString(r.direction), " is already rule '", o.name, "'"));
      }
    }
  }
  // Expand for every target first: nothing changes unless all succeed.
  updated_rules_.push_back(r);
  const policy::SecurityRule& stored = updated_rules_.back();
  std::vector<RuleInfo> fresh(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    RuleInfo& ri = fresh[i];
    ri.name = qualified;
    ri.group = u.group;
    ri.layer = targets[i].layer;
    ri.access = r.access;
    ri.direction = r.direction;
    ri.priority = r.priority;
    ri.source = &stored;
    const uint32_t id = static_cast<uint32_t>(rules.size() + i);
    if (auto st = expandRule(stored, *targets[i].scope, *model, id, r.priority, ri.entries); !st) {
      updated_rules_.pop_back();
      return st.error();
    }
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    Target& t = targets[i];
    retire(t);
    const uint32_t id = static_cast<uint32_t>(rules.size());
    classify::Classifier& c = *(r.direction == policy::Direction::Inbound ? t.in : t.out);
    for (const classify::Entry& e : fresh[i].entries)
      c.add(e);
    rules.push_back(std::move(fresh[i]));
    // Keep the table's rule list in evaluation order (direction, priority).
    t.rules->insert(std::lower_bound(t.rules->begin(), t.rules->end(), id, evaluationOrder(rules)),
                    id);
  }
  generation = new_generation;
  return targets.size();
}

}  // namespace palisade::pipeline
