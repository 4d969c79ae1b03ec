#include "policy/validate.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/strings.h"
#include "policy/overlaps.h"

namespace palisade::policy {
namespace {

std::string lineOf(SourceLoc loc) {
  return std::to_string(loc.line);
}

// A prefix that failed to load is left as ::/0; checks skip it.
bool loaded(const Prefix& p) {
  return !(p.len == 0 && !p.isV4() && p.addr.isUnspecified());
}

class Validator {
 public:
  Validator(Policy& p, Diagnostics& d) : p_(p), d_(d) {}
  void run();

 private:
  template <class T>
  void uniqueNames(const std::vector<T>& items, std::string_view what, std::string_view scope);
  void checkTags();
  void checkHosts();
  void checkInfrastructure();
  void checkCapture();
  void checkDdos();
  void checkIds();
  // tenant and "tenant/nic" references of a capture rule or an inspect entry.
  void checkTenantNic(const std::string& tenant, const std::string& nic, SourceLoc loc,
                      const std::string& context);
  void checkRules(const std::vector<SecurityRule>& rules, const std::string& owner);
  void checkAddressRefs(const std::vector<AddressRef>& refs, std::string_view field);
  void checkTenant(Tenant& t);
  void checkVnets(Tenant& t);
  void checkNics(Tenant& t);
  void checkEndpoints(Tenant& t);
  void checkAcrossTenants();
  void assignRandomPorts();

  const VNet* findVnet(const Tenant& t, std::string_view name) const;
  const Tenant* findTenant(std::string_view name) const;
  template <class T>
  const T* findNamed(const std::vector<T>& items, std::string_view name) const;
  template <class T>
  void unknownRef(const Ref& r, std::string_view what, const std::vector<T>& candidates,
                  std::string_view context);

  Policy& p_;
  Diagnostics& d_;
  std::vector<std::string_view> tag_names_;
  std::unordered_set<std::string_view> tag_set_;
  mutable std::unordered_map<const void*, std::unordered_map<std::string_view, const void*>>
      indexes_;
};

// Lookups by name go through an index built once per list (policies can hold
// hundreds of thousands of elements; a linear scan per reference would not scale).
template <class T>
const T* Validator::findNamed(const std::vector<T>& items, std::string_view name) const {
  if (items.size() < 16) {
    for (const T& i : items)
      if (i.name == name) return &i;
    return nullptr;
  }
  auto& index = indexes_[static_cast<const void*>(&items)];
  if (index.empty()) {
    for (const T& i : items)
      index.emplace(i.name, &i);  // first definition wins
  }
  auto it = index.find(name);
  return it == index.end() ? nullptr : static_cast<const T*>(it->second);
}

const VNet* Validator::findVnet(const Tenant& t, std::string_view name) const {
  return findNamed(t.vnets, name);
}

const Tenant* Validator::findTenant(std::string_view name) const {
  return findNamed(p_.tenants, name);
}

template <class T>
void Validator::unknownRef(const Ref& r, std::string_view what, const std::vector<T>& candidates,
                           std::string_view context) {
  std::vector<std::string_view> names;
  for (const T& c : candidates)
    if (!c.name.empty() && std::find(names.begin(), names.end(), c.name) == names.end())
      names.push_back(c.name);
  std::string msg = strCat("unknown ", what, " '", r.name, "' in ", context);
  if (std::string_view guess = closestMatch(r.name, names); !guess.empty()) {
    msg += strCat("; did you mean '", guess, "'?");
  } else if (names.empty()) {
    msg += strCat("; no ", what, " is defined");
  } else {
    msg += strCat("; defined: ", join(names, ", "));
  }
  d_.error(r.loc, std::move(msg));
}

template <class T>
void Validator::uniqueNames(const std::vector<T>& items, std::string_view what,
                            std::string_view scope) {
  std::unordered_map<std::string_view, const T*> seen;
  for (const T& i : items) {
    if (i.name.empty()) continue;
    auto [it, fresh] = seen.emplace(i.name, &i);
    if (!fresh) {
      d_.error(i.loc, strCat("duplicate ", what, " name '", i.name, "'", scope,
                             " (first defined on line ", lineOf(it->second->loc), ")"));
    }
  }
}

void Validator::run() {
  tag_names_ = {kTagVirtualNetwork, kTagInternet, kTagHealthProbe};
  for (const ServiceTag& t : p_.service_tags)
    tag_names_.push_back(t.name);
  tag_set_.insert(tag_names_.begin(), tag_names_.end());

  uniqueNames(p_.tenants, "tenant", "");
  checkHosts();
  checkTags();
  checkInfrastructure();
  checkRules(p_.perimeter, "the perimeter");
  for (Tenant& t : p_.tenants) {
    if (d_.saturated()) return;
    checkTenant(t);
  }
  if (d_.saturated()) return;
  checkAcrossTenants();
  checkCapture();
  checkDdos();
  checkIds();
  if (!d_.hasErrors()) assignRandomPorts();
}

// DDoS profiles are named once; a protect entry names a profile that exists
// and no address is protected twice by the same prefix.
void Validator::checkDdos() {
  const DdosSettings& d = p_.ddos;
  uniqueNames(d.profiles, "ddos profile", "");
  uniqueNames(d.protect, "ddos protect entry", "");
  std::unordered_map<std::string, const DdosProtect*> seen;
  for (const DdosProtect& pr : d.protect) {
    if (!pr.profile.empty() && !findNamed(d.profiles, pr.profile.name))
      unknownRef(pr.profile, "ddos profile", d.profiles,
                 strCat("ddos protect entry '", pr.name, "'"));
    for (const Prefix& x : pr.prefixes) {
      if (!loaded(x)) continue;
      auto [it, fresh] = seen.emplace(x.toString(), &pr);
      if (!fresh)
        d_.error(pr.loc, strCat("prefix ", x.toString(), " in ddos protect entry '", pr.name,
                                "' is already protected by '", it->second->name, "' (line ",
                                lineOf(it->second->loc), ")"));
    }
  }
}

// Capture rules name tenants and NICs that exist; rules and drop reasons are
// checked where the policy is compiled (they need the data plane's names).
void Validator::checkCapture() {
  uniqueNames(p_.capture.rules, "capture rule", "");
  for (const CaptureRule& r : p_.capture.rules) {
    checkTenantNic(r.tenant, r.nic, r.loc, strCat("capture rule '", r.name, "'"));
    if (r.alert && !p_.ids.enabled)
      d_.error(r.loc, strCat("capture rule '", r.name,
                             "' selects IDS alerts, but the policy has no ids section"));
  }
}

void Validator::checkIds() {
  for (const IdsSelector& sel : p_.ids.inspect)
    checkTenantNic(sel.tenant, sel.nic, sel.loc, "ids inspect entry");
}

void Validator::checkTenantNic(const std::string& tenant, const std::string& nic, SourceLoc loc,
                               const std::string& context) {
  if (!tenant.empty() && !findTenant(tenant))
    unknownRef(Ref{tenant, loc}, "tenant", p_.tenants, context);
  if (nic.empty()) return;
  const size_t slash = nic.find('/');
  const Tenant* t = slash == std::string::npos ? nullptr : findTenant(nic.substr(0, slash));
  if (!t) {
    d_.error(loc, strCat("nic '", printable(nic), "' in ", context,
                         " must be TENANT/NIC with a tenant of the policy"));
    return;
  }
  if (!findNamed(t->nics, std::string_view(nic).substr(slash + 1)))
    unknownRef(Ref{nic.substr(slash + 1), loc}, "NIC", t->nics,
               strCat(context, " (tenant ", t->name, ")"));
  if (!tenant.empty() && tenant != t->name)
    d_.error(loc, strCat(context, " selects tenant '", tenant, "' and a NIC of tenant '", t->name,
                         "': nothing can match both"));
}

void Validator::checkHosts() {
  uniqueNames(p_.hosts, "host", "");
  std::map<IpAddr, const Host*> seen;
  for (const Host& h : p_.hosts) {
    if (h.underlay_ip.isUnspecified()) continue;
    if (!seen.empty() && seen.begin()->first.isV4() != h.underlay_ip.isV4()) {
      const Host& first = *seen.begin()->second;
      d_.error(h.loc,
               strCat("host '", h.name, "' has an ", h.underlay_ip.isV4() ? "IPv4" : "IPv6",
                      " underlay address but host '", first.name, "' (line ", lineOf(first.loc),
                      ") has an ", first.underlay_ip.isV4() ? "IPv4" : "IPv6",
                      " one: VXLAN tunnels need one underlay family"));
      continue;
    }
    auto [it, fresh] = seen.emplace(h.underlay_ip, &h);
    if (!fresh) {
      d_.error(h.loc,
               strCat("host '", h.name, "' reuses underlay address ", h.underlay_ip.toString(),
                      " of host '", it->second->name, "' (line ", lineOf(it->second->loc), ")"));
    }
  }
}

void Validator::checkTags() {
  uniqueNames(p_.service_tags, "service tag", "");
  for (const ServiceTag& t : p_.service_tags) {
    if (isBuiltinTag(t.name)) {
      d_.error(t.loc, strCat("service tag '", t.name, "' is built in; choose another name"));
    }
  }
}

void Validator::checkInfrastructure() {
  uniqueNames(p_.segments, "infrastructure segment", "");
  uniqueNames(p_.infra_endpoints, "infrastructure endpoint", "");
  for (const InfraEndpoint& e : p_.infra_endpoints) {
    if (e.ports.empty()) {
      d_.error(e.loc, strCat("infrastructure endpoint '", e.name,
                             "' must list its ports; '*' would expose the whole host"));
    }
  }
}

void Validator::checkAddressRefs(const std::vector<AddressRef>& refs, std::string_view field) {
  for (const AddressRef& a : refs) {
    if (a.kind != AddressRef::Kind::Tag || tag_set_.count(a.tag)) continue;
    std::string msg = strCat("unknown service tag '", a.tag, "' in ", field);
    if (std::string_view guess = closestMatch(a.tag, tag_names_); !guess.empty()) {
      msg += strCat("; did you mean '", guess, "'?");
    } else {
      msg += strCat("; expected a prefix, '*' or one of: ", join(tag_names_, ", "));
    }
    d_.error(a.loc, std::move(msg));
  }
}

void Validator::checkRules(const std::vector<SecurityRule>& rules, const std::string& owner) {
  uniqueNames(rules, "rule", strCat(" in ", owner));
  std::map<std::pair<Direction, uint16_t>, const SecurityRule*> by_priority;
  for (const SecurityRule& r : rules) {
    if (r.priority != 0) {
      auto [it, fresh] = by_priority.emplace(std::pair{r.direction, r.priority}, &r);
      if (!fresh) {
        d_.error(r.priority_loc,
                 strCat("duplicate priority ", std::to_string(r.priority), " for ",
                        toString(r.direction), " rules in ", owner, ": rule '", r.name,
                        "' and rule '", it->second->name, "' (line ", lineOf(it->second->loc),
                        "); priorities must be unique per direction"));
      }
    }
    const bool has_ports = !r.source_ports.empty() || !r.destination_ports.empty();
    if (has_ports && r.protocol != Protocol::Tcp && r.protocol != Protocol::Udp &&
        r.protocol != Protocol::Any) {
      d_.error(r.loc, strCat("rule '", r.name, "' sets ports but its protocol is ",
                             toString(r.protocol), "; ports apply to tcp and udp only"));
    }
    checkAddressRefs(r.sources, "source");
    checkAddressRefs(r.destinations, "destination");
  }
}

void Validator::checkTenant(Tenant& t) {
  const std::string in_tenant = strCat(" in tenant '", t.name, "'");
  uniqueNames(t.vnets, "vnet", in_tenant);
  uniqueNames(t.deployments, "deployment", in_tenant);
  uniqueNames(t.nics, "nic", in_tenant);
  uniqueNames(t.endpoints, "endpoint", in_tenant);
  uniqueNames(t.security_groups, "security group", in_tenant);
  for (const SecurityGroup& g : t.security_groups) {
    checkRules(g.rules, strCat("security group '", g.name, "'"));
  }
  checkVnets(t);
  for (const Deployment& dep : t.deployments) {
    if (!dep.vnet.empty() && !findVnet(t, dep.vnet.name)) {
      unknownRef(dep.vnet, "vnet", t.vnets, strCat("deployment '", dep.name, "'"));
    }
  }
  checkNics(t);
  checkEndpoints(t);
}

void Validator::checkVnets(Tenant& t) {
  // Address spaces inside one tenant must be disjoint (within and across VNets).
  std::vector<PrefixItem> spaces;
  for (uint32_t vi = 0; vi < t.vnets.size(); ++vi) {
    const auto& space = t.vnets[vi].address_space;
    for (uint32_t pi = 0; pi < space.size(); ++pi)
      spaces.push_back({space[pi], vi, pi});
  }
  findOverlaps(std::move(spaces), [&](const PrefixItem& a, const PrefixItem& b) {
    const VNet* va = &t.vnets[a.owner];
    const VNet* vb = &t.vnets[b.owner];
    // Report at the one written later, naming the earlier one.
    const bool a_later =
        va->loc.line != vb->loc.line ? va->loc.line > vb->loc.line : a.index > b.index;
    const PrefixItem& later = a_later ? a : b;
    const PrefixItem& earlier = a_later ? b : a;
    const VNet& vl = t.vnets[later.owner];
    const VNet& ve = t.vnets[earlier.owner];
    d_.error(vl.loc,
             strCat("address space ", later.prefix.toString(), " of vnet '", vl.name, "' overlaps ",
                    earlier.prefix.toString(), " of vnet '", ve.name, "' (line ", lineOf(ve.loc),
                    ") in tenant '", t.name, "'; address spaces inside a tenant must not overlap"));
  });

  for (const VNet& v : t.vnets) {
    if (d_.saturated()) return;
    uniqueNames(v.subnets, "subnet", strCat(" in vnet '", v.name, "'"));
    std::vector<PrefixItem> subnet_prefixes;
    for (uint32_t si = 0; si < v.subnets.size(); ++si) {
      for (uint32_t pi = 0; pi < v.subnets[si].prefixes.size(); ++pi) {
        subnet_prefixes.push_back({v.subnets[si].prefixes[pi], si, pi});
      }
    }
    findOverlaps(std::move(subnet_prefixes), [&](const PrefixItem& a, const PrefixItem& b) {
      if (a.owner == b.owner) return;  // two prefixes of one family: reported below
      const PrefixItem& later = a.owner > b.owner ? a : b;
      const PrefixItem& earlier = a.owner > b.owner ? b : a;
      const Subnet& sl = v.subnets[later.owner];
      const Subnet& se = v.subnets[earlier.owner];
      d_.error(sl.loc, strCat("subnet '", sl.name, "' prefix ", later.prefix.toString(),
                              " overlaps subnet '", se.name, "' (", earlier.prefix.toString(),
                              ", line ", lineOf(se.loc), ")"));
    });
    for (const Subnet& s : v.subnets) {
      bool v4 = false, v6 = false;
      for (const Prefix& pre : s.prefixes) {
        if ((pre.isV4() && v4) || (!pre.isV4() && v6)) {
          d_.error(s.loc, strCat("subnet '", s.name, "' has two ", pre.isV4() ? "IPv4" : "IPv6",
                                 " prefixes; a subnet has at most one per family"));
        }
        (pre.isV4() ? v4 : v6) = true;
        bool inside = false;
        for (const Prefix& space : v.address_space)
          inside |= space.contains(pre);
        if (!inside && !v.address_space.empty()) {
          std::vector<std::string> sp;
          for (const Prefix& space : v.address_space)
            sp.push_back(space.toString());
          d_.error(s.loc, strCat("subnet '", s.name, "' prefix ", pre.toString(),
                                 " lies outside the address space of vnet '", v.name, "' (",
                                 join(sp, ", "), ")"));
        }
      }
      if (!s.security_group.empty() && !findNamed(t.security_groups, s.security_group.name)) {
        unknownRef(s.security_group, "security group", t.security_groups,
                   strCat("subnet '", s.name, "'"));
      }
    }

    for (const Ref& peer : v.peerings) {
      const auto slash = peer.name.find('/');
      const Tenant* pt = slash == std::string::npos ? &t : findTenant(peer.name.substr(0, slash));
      const std::string vname =
          slash == std::string::npos ? peer.name : peer.name.substr(slash + 1);
      if (!pt) {
        unknownRef(Ref{peer.name.substr(0, slash), peer.loc}, "tenant", p_.tenants,
                   strCat("peering of vnet '", v.name, "'"));
        continue;
      }
      const VNet* pv = findVnet(*pt, vname);
      if (!pv) {
        unknownRef(Ref{vname, peer.loc}, "vnet", pt->vnets,
                   strCat("peering of vnet '", v.name, "'"));
        continue;
      }
      if (pv == &v) {
        d_.error(peer.loc, strCat("vnet '", v.name, "' cannot peer with itself"));
        continue;
      }
      std::vector<PrefixItem> both;
      for (uint32_t i = 0; i < v.address_space.size(); ++i)
        both.push_back({v.address_space[i], 0, i});
      for (uint32_t i = 0; i < pv->address_space.size(); ++i) {
        both.push_back({pv->address_space[i], 1, i});
      }
      findOverlaps(std::move(both), [&](const PrefixItem& a, const PrefixItem& b) {
        if (a.owner == b.owner) return;
        const Prefix& mine = a.owner == 0 ? a.prefix : b.prefix;
        const Prefix& theirs = a.owner == 0 ? b.prefix : a.prefix;
        d_.error(peer.loc,
                 strCat("vnet '", v.name, "' cannot peer with '", peer.name, "': address spaces ",
                        mine.toString(), " and ", theirs.toString(), " overlap"));
      });
    }
  }
}

void Validator::checkNics(Tenant& t) {
  std::map<std::pair<const VNet*, IpAddr>, const Nic*> used;
  for (const Nic& n : t.nics) {
    if (d_.saturated()) return;
    if (n.name.empty()) continue;  // its name failed to load; already reported
    const std::string ctx = strCat("nic '", n.name, "'");
    if (n.mac_loc.line != 0 && (n.mac.isMulticast() || n.mac.isZero())) {
      d_.error(n.mac_loc, strCat("MAC address ", n.mac.toString(), " of ", ctx,
                                 " must be a unicast, non-zero address"));
    }
    if (!n.deployment.empty() && !findNamed(t.deployments, n.deployment.name)) {
      unknownRef(n.deployment, "deployment", t.deployments, ctx);
    }
    if (!n.host.empty() && !findNamed(p_.hosts, n.host.name)) {
      unknownRef(n.host, "host", p_.hosts, ctx);
    }
    if (!n.security_group.empty() && !findNamed(t.security_groups, n.security_group.name)) {
      unknownRef(n.security_group, "security group", t.security_groups, ctx);
    }
    if (n.subnet.empty()) continue;
    const auto slash = n.subnet.name.find('/');
    if (slash == std::string::npos) {
      d_.error(n.subnet.loc, strCat("subnet reference '", n.subnet.name, "' of ", ctx,
                                    " must name its vnet: 'vnet/subnet'"));
      continue;
    }
    const VNet* v = findVnet(t, n.subnet.name.substr(0, slash));
    if (!v) {
      unknownRef(Ref{n.subnet.name.substr(0, slash), n.subnet.loc}, "vnet", t.vnets, ctx);
      continue;
    }
    const Subnet* s = findNamed(v->subnets, n.subnet.name.substr(slash + 1));
    if (!s) {
      unknownRef(Ref{n.subnet.name.substr(slash + 1), n.subnet.loc}, "subnet", v->subnets, ctx);
      continue;
    }
    if (!n.deployment.empty()) {
      const Deployment* dep = findNamed(t.deployments, n.deployment.name);
      if (dep && !dep->vnet.empty() && dep->vnet.name != v->name) {
        d_.error(n.deployment.loc, strCat(ctx, " is in vnet '", v->name, "' but its deployment '",
                                          dep->name, "' is in vnet '", dep->vnet.name, "'"));
      }
    }
    for (size_t i = 0; i < n.ips.size(); ++i) {
      const IpAddr& ip = n.ips[i];
      const SourceLoc loc = i < n.ip_locs.size() ? n.ip_locs[i] : n.loc;
      const Prefix* home = nullptr;
      for (const Prefix& pre : s->prefixes)
        if (pre.contains(ip)) home = &pre;
      if (!home) {
        std::vector<std::string> sp;
        for (const Prefix& pre : s->prefixes)
          sp.push_back(pre.toString());
        d_.error(loc, strCat("address ", ip.toString(), " of ", ctx, " lies outside its subnet '",
                             n.subnet.name, "' (", join(sp, ", "), ")"));
        continue;
      }
      // The network address, the gateway (first host) and the IPv4 broadcast are the fabric's.
      const char* reserved = nullptr;
      IpAddr gw = home->addr;
      gw.b[15] = static_cast<uint8_t>(gw.b[15] + 1);
      if (ip == home->addr)
        reserved = "the network address";
      else if (ip == gw)
        reserved = "the gateway address";
      else if (home->isV4() && home->len < 31 &&
               (ip.v4Value() | (0xffffffffu >> home->len)) == ip.v4Value()) {
        reserved = "the broadcast address";
      }
      if (reserved) {
        d_.error(loc, strCat("address ", ip.toString(), " of ", ctx, " is ", reserved,
                             " of subnet '", n.subnet.name, "'"));
        continue;
      }
      auto [it, fresh] = used.emplace(std::pair{v, ip}, &n);
      if (!fresh) {
        d_.error(loc, strCat("address ", ip.toString(), " of ", ctx, " is already used by nic '",
                             it->second->name, "' (line ", lineOf(it->second->loc), ") in vnet '",
                             v->name, "'"));
      }
    }
    for (const AddressPair& pair : n.allowed_address_pairs) {
      if (!loaded(pair.prefix)) continue;
      bool inside = false;
      for (const Prefix& space : v->address_space)
        inside |= space.contains(pair.prefix);
      if (!inside) {
        d_.error(pair.loc, strCat("allowed address pair ", pair.prefix.toString(), " of ", ctx,
                                  " lies outside the address space of vnet '", v->name, "'"));
      }
    }
  }
}

void Validator::checkEndpoints(Tenant& t) {
  for (const Endpoint& e : t.endpoints) {
    if (d_.saturated()) return;
    if (e.name.empty()) continue;
    const std::string ctx = strCat("endpoint '", e.name, "'");
    const Deployment* dep =
        e.deployment.empty() ? nullptr : findNamed(t.deployments, e.deployment.name);
    if (!e.deployment.empty() && !dep) unknownRef(e.deployment, "deployment", t.deployments, ctx);
    const Nic* nic = e.nic.empty() ? nullptr : findNamed(t.nics, e.nic.name);
    if (!e.nic.empty() && !nic) unknownRef(e.nic, "nic", t.nics, ctx);
    if (dep && nic && nic->deployment.name != dep->name) {
      d_.error(e.nic.loc, strCat("nic '", nic->name, "' of ", ctx, " is not in deployment '",
                                 dep->name, "'; an endpoint reaches only its deployment's NICs"));
    }
    std::map<uint32_t, const AclRule*> orders;
    for (const AclRule& r : e.acl) {
      auto [it, fresh] = orders.emplace(r.order, &r);
      if (!fresh) {
        d_.error(r.loc, strCat("duplicate ACL order ", std::to_string(r.order), " in ", ctx,
                               " (first on line ", lineOf(it->second->loc), ")"));
      }
    }
  }
}

void Validator::checkAcrossTenants() {
  // Infrastructure segments against every tenant address space. Owners below
  // kVnetBase are segments; the rest index `spaces`.
  constexpr uint32_t kVnetBase = 1u << 31;
  std::vector<std::pair<const Tenant*, const VNet*>> spaces;
  std::vector<PrefixItem> items;
  for (uint32_t si = 0; si < p_.segments.size(); ++si)
    for (uint32_t pi = 0; pi < p_.segments[si].prefixes.size(); ++pi)
      items.push_back({p_.segments[si].prefixes[pi], si, pi});
  for (const Tenant& t : p_.tenants) {
    for (const VNet& v : t.vnets) {
      const auto owner = kVnetBase + static_cast<uint32_t>(spaces.size());
      spaces.push_back({&t, &v});
      for (uint32_t pi = 0; pi < v.address_space.size(); ++pi)
        items.push_back({v.address_space[pi], owner, pi});
    }
  }
  if (!p_.segments.empty()) {
    findOverlaps(std::move(items), [&](const PrefixItem& a, const PrefixItem& b) {
      if ((a.owner >= kVnetBase) == (b.owner >= kVnetBase)) return;
      const PrefixItem& seg_item = a.owner < kVnetBase ? a : b;
      const PrefixItem& space_item = a.owner < kVnetBase ? b : a;
      const InfraSegment& seg = p_.segments[seg_item.owner];
      const auto& [t, v] = spaces[space_item.owner - kVnetBase];
      d_.error(seg.loc,
               strCat("infrastructure segment '", seg.name, "' (", seg_item.prefix.toString(),
                      ") overlaps address space ", space_item.prefix.toString(), " of vnet '",
                      t->name, "/", v->name, "'; tenant traffic must never reach infrastructure"));
    });
  }

  std::map<uint32_t, std::pair<const Tenant*, const VNet*>> vnis;
  std::map<MacAddr, std::pair<const Tenant*, const Nic*>> macs;
  std::map<IpAddr, std::pair<const Tenant*, const Deployment*>> vips;
  std::map<std::tuple<IpAddr, Protocol, uint16_t>, std::pair<const Tenant*, const Endpoint*>> eps;
  for (const Tenant& t : p_.tenants) {
    for (const VNet& v : t.vnets) {
      if (v.vni == 0) continue;
      auto [it, fresh] = vnis.emplace(v.vni, std::pair{&t, &v});
      if (!fresh) {
        d_.error(v.vni_loc,
                 strCat("VNI ", std::to_string(v.vni), " of vnet '", t.name, "/", v.name,
                        "' is already used by vnet '", it->second.first->name, "/",
                        it->second.second->name, "' (line ", lineOf(it->second.second->loc),
                        "); each vnet needs its own VNI"));
      }
    }
    for (const Nic& n : t.nics) {
      if (n.mac_loc.line == 0 || n.mac.isZero()) continue;
      auto [it, fresh] = macs.emplace(n.mac, std::pair{&t, &n});
      if (!fresh) {
        d_.error(n.mac_loc,
                 strCat("MAC address ", n.mac.toString(), " of nic '", t.name, "/", n.name,
                        "' is already used by nic '", it->second.first->name, "/",
                        it->second.second->name, "' (line ", lineOf(it->second.second->loc), ")"));
      }
    }
    for (const Deployment& dep : t.deployments) {
      for (size_t i = 0; i < dep.vips.size(); ++i) {
        const IpAddr& vip = dep.vips[i];
        if (vip.isUnspecified() || vip.isMulticast()) {
          d_.error(dep.vip_locs[i], strCat("VIP ", vip.toString(), " of deployment '", t.name, "/",
                                           dep.name, "' is not a unicast address"));
          continue;
        }
        if (dep.vipOf(vip.isV4()) != &vip) {
          d_.error(dep.vip_locs[i],
                   strCat("deployment '", t.name, "/", dep.name, "' has a second ",
                          vip.isV4() ? "IPv4" : "IPv6",
                          " VIP; a deployment has at most one VIP of each address family"));
          continue;
        }
        auto [it, fresh] = vips.emplace(vip, std::pair{&t, &dep});
        if (!fresh) {
          d_.error(dep.vip_locs[i], strCat("VIP ", vip.toString(), " of deployment '", t.name, "/",
                                           dep.name, "' is already used by deployment '",
                                           it->second.first->name, "/", it->second.second->name,
                                           "' (line ", lineOf(it->second.second->loc), ")"));
        }
      }
    }
    for (const Endpoint& e : t.endpoints) {
      const Deployment* dep = findNamed(t.deployments, e.deployment.name);
      if (!dep || e.random_public_port || e.public_port == 0) continue;
      for (const IpAddr& vip : dep->vips) {
        auto [it, fresh] =
            eps.emplace(std::tuple{vip, e.protocol, e.public_port}, std::pair{&t, &e});
        if (!fresh) {
          d_.error(e.public_port_loc,
                   strCat("endpoint '", e.name, "' uses ", vip.toString(), ":",
                          std::to_string(e.public_port), "/", toString(e.protocol),
                          ", already taken by endpoint '", it->second.second->name, "' (line ",
                          lineOf(it->second.second->loc), ")"));
          break;
        }
      }
    }
  }
}

// Management endpoints may ask for a random public port (Azure's answer to SSH
// scanners). The choice is a hash of tenant/endpoint name, probed past taken
// ports, so the same policy always yields the same ports.
void Validator::assignRandomPorts() {
  std::set<std::tuple<IpAddr, Protocol, uint16_t>> taken;
  for (const Tenant& t : p_.tenants)
    for (const Endpoint& e : t.endpoints)
      if (!e.random_public_port)
        if (const Deployment* dep = findNamed(t.deployments, e.deployment.name))
          for (const IpAddr& vip : dep->vips)
            taken.insert({vip, e.protocol, e.public_port});
  for (Tenant& t : p_.tenants) {
    for (Endpoint& e : t.endpoints) {
      if (!e.random_public_port) continue;
      const Deployment* dep = findNamed(t.deployments, e.deployment.name);
      if (!dep || dep->vips.empty()) continue;
      uint32_t h = 2166136261u;  // FNV-1a
      for (char c : strCat(t.name, "/", e.name))
        h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
      constexpr uint32_t kLo = 49152, kSpan = 65535 - kLo + 1;
      for (uint32_t i = 0; i < kSpan; ++i) {
        // The same port on every VIP of the deployment.
        const auto port = static_cast<uint16_t>(kLo + (h + i) % kSpan);
        bool free = true;
        for (const IpAddr& vip : dep->vips)
          free = free && !taken.contains({vip, e.protocol, port});
        if (free) {
          for (const IpAddr& vip : dep->vips)
            taken.insert({vip, e.protocol, port});
          e.public_port = port;
          break;
        }
      }
      if (e.public_port == 0) {
        d_.error(e.public_port_loc,
                 strCat("no free port in 49152-65535 on ", dep->vips[0].toString(),
                        " for endpoint '", e.name, "'"));
        return;
      }
    }
  }
}

}  // namespace

void validatePolicy(Policy& policy, Diagnostics& diag) {
  Validator(policy, diag).run();
}

}  // namespace palisade::policy
