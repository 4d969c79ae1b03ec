#include "policy/lint.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/strings.h"

namespace palisade::policy {
namespace {

struct KnownPort {
  uint16_t port;
  const char* service;
  bool management;
};

// Ports whose exposure is worth a warning. Management ports are the ones an
// attacker scans for first; the rest are data stores and control APIs that are
// meant for a private network.
constexpr KnownPort kKnownPorts[] = {
    {22, "SSH", true},
    {23, "Telnet", true},
    {3389, "RDP", true},
    {5985, "WinRM", true},
    {5986, "WinRM over TLS", true},
    {5900, "VNC", true},
    {135, "MS RPC", false},
    {139, "NetBIOS session", false},
    {445, "SMB", false},
    {1433, "SQL Server", false},
    {2375, "Docker API", false},
    {2379, "etcd", false},
    {3306, "MySQL", false},
    {5432, "PostgreSQL", false},
    {6379, "Redis", false},
    {6443, "Kubernetes API", false},
    {9200, "Elasticsearch", false},
    {10250, "kubelet", false},
    {11211, "memcached", false},
    {27017, "MongoDB", false},
};

const KnownPort* knownPort(uint16_t port) {
  for (const KnownPort& k : kKnownPorts)
    if (k.port == port) return &k;
  return nullptr;
}

bool coversAllPorts(const std::vector<PortRange>& ports) {
  if (ports.empty()) return true;
  return std::any_of(ports.begin(), ports.end(), [](const PortRange& r) { return r.any(); });
}

// Management ports a rule's destination ports include (tcp or any protocol).
std::vector<const KnownPort*> managementPortsIn(const SecurityRule& r) {
  std::vector<const KnownPort*> out;
  if (r.protocol != Protocol::Tcp && r.protocol != Protocol::Any) return out;
  for (const KnownPort& k : kKnownPorts) {
    if (!k.management) continue;
    const bool hit = r.destination_ports.empty() ||
                     std::any_of(r.destination_ports.begin(), r.destination_ports.end(),
                                 [&](const PortRange& p) { return p.contains(k.port); });
    if (hit) out.push_back(&k);
  }
  return out;
}

enum class Reach : uint8_t { Some, Internet, VirtualNetwork };

// Whether an address list admits the whole Internet ('*', Internet, a /0), or
// every address of the VNet (VirtualNetwork), or something narrower.
Reach reachOf(const std::vector<AddressRef>& list) {
  if (list.empty()) return Reach::Internet;
  Reach out = Reach::Some;
  for (const AddressRef& a : list) {
    if (a.kind == AddressRef::Kind::Any) return Reach::Internet;
    if (a.kind == AddressRef::Kind::Prefix && a.prefix.len == 0) return Reach::Internet;
    if (a.kind == AddressRef::Kind::Tag && a.tag == kTagInternet) return Reach::Internet;
    if (a.kind == AddressRef::Kind::Tag && a.tag == kTagVirtualNetwork) out = Reach::VirtualNetwork;
  }
  return out;
}

std::string portNames(const std::vector<const KnownPort*>& ports) {
  std::vector<std::string> s;
  for (const KnownPort* k : ports)
    s.push_back(strCat(k->service, " (", std::to_string(k->port), ")"));
  return join(s, ", ");
}

class Linter {
 public:
  Linter(const Policy& p, Diagnostics& diag, const std::set<std::string>& disabled)
      : p_(p), diag_(diag), disabled_(disabled) {
    for (const ServiceTag& t : p.service_tags)
      tags_.emplace(t.name, &t);
  }

  void run() {
    checkRules("perimeter", p_.perimeter);
    for (const Tenant& t : p_.tenants) {
      for (const SecurityGroup& g : t.security_groups)
        checkRules(strCat("group '", t.name, "/", g.name, "'"), g.rules);
      checkEndpoints(t);
      checkUnusedGroups(t);
    }
    checkUnusedTags();
    checkSnatShares();
  }

 private:
  bool on(const char* check) const { return !disabled_.contains(check); }

  void warn(const char* check, SourceLoc loc, std::string message) {
    diag_.warning(loc, strCat(message, " [", check, "]"));
  }

  void checkRules(const std::string& where, const std::vector<SecurityRule>& rules) {
    for (const SecurityRule& r : rules) {
      if (r.access != Access::Allow || r.direction != Direction::Inbound) continue;
      const Reach reach = reachOf(r.sources);
      if (reach == Reach::Internet && on("internet-management")) {
        const auto mgmt = managementPortsIn(r);
        if (!mgmt.empty()) {
          warn("internet-management", r.loc,
               strCat("rule '", r.name, "' in ", where, " lets the whole Internet reach ",
                      portNames(mgmt), "; allow only the networks that manage these hosts"));
        }
      }
      if (reach != Reach::Some && coversAllPorts(r.destination_ports) && on("broad-allow")) {
        warn("broad-allow", r.loc,
             strCat("rule '", r.name, "' in ", where, " allows every ",
                    r.protocol == Protocol::Any ? "protocol and port" : "port", " from ",
                    reach == Reach::Internet ? "the whole Internet" : "every subnet of the VNet",
                    "; allow only the ports and sources the tier serves"));
      }
    }
    if (on("shadowed")) checkShadowed(where, rules);
  }

  // --- shadowing -----------------------------------------------------------

  // Everything an earlier rule's address list matches, in a form that answers
  // "does it cover this term?" quickly.
  struct Cover {
    bool any = false;
    std::vector<Prefix> prefixes;
    std::unordered_set<std::string> tags;
  };

  Cover coverOf(const std::vector<AddressRef>& list) const {
    Cover c;
    if (list.empty()) c.any = true;
    for (const AddressRef& a : list) {
      switch (a.kind) {
        case AddressRef::Kind::Any:
          c.any = true;
          break;
        case AddressRef::Kind::Prefix:
          c.prefixes.push_back(a.prefix);
          break;
        case AddressRef::Kind::Tag: {
          c.tags.insert(a.tag);
          auto it = tags_.find(a.tag);
          if (it != tags_.end())
            c.prefixes.insert(c.prefixes.end(), it->second->prefixes.begin(),
                              it->second->prefixes.end());
          break;
        }
      }
    }
    return c;
  }

  bool prefixCovered(const Cover& c, const Prefix& p) {
    for (const Prefix& q : c.prefixes) {
      ++work_;
      if (q.contains(p)) return true;
    }
    return false;
  }

  bool addressesCovered(const Cover& c, const std::vector<AddressRef>& list) {
    if (c.any) return true;
    if (list.empty()) return false;
    for (const AddressRef& a : list) {
      switch (a.kind) {
        case AddressRef::Kind::Any:
          return false;
        case AddressRef::Kind::Prefix:
          if (!prefixCovered(c, a.prefix)) return false;
          break;
        case AddressRef::Kind::Tag: {
          if (c.tags.contains(a.tag)) break;
          if (isBuiltinTag(a.tag)) return false;
          auto it = tags_.find(a.tag);
          if (it == tags_.end()) return false;
          for (const Prefix& p : it->second->prefixes)
            if (!prefixCovered(c, p)) return false;
          break;
        }
      }
    }
    return true;
  }

  static bool portsCovered(const std::vector<PortRange>& outer,
                           const std::vector<PortRange>& inner) {
    if (coversAllPorts(outer)) return true;
    if (inner.empty()) return false;
    return std::all_of(inner.begin(), inner.end(), [&](const PortRange& r) {
      return std::any_of(outer.begin(), outer.end(),
                         [&](const PortRange& o) { return o.lo <= r.lo && r.hi <= o.hi; });
    });
  }

  void checkShadowed(const std::string& where, const std::vector<SecurityRule>& rules) {
    std::vector<const SecurityRule*> order;
    for (const SecurityRule& r : rules)
      order.push_back(&r);
    std::stable_sort(order.begin(), order.end(), [](const SecurityRule* a, const SecurityRule* b) {
      return a->priority < b->priority;
    });
    std::vector<Cover> src, dst;
    for (const SecurityRule* r : order) {
      src.push_back(coverOf(r->sources));
      dst.push_back(coverOf(r->destinations));
    }
    for (size_t i = 0; i < order.size(); ++i) {
      const SecurityRule& r = *order[i];
      for (size_t j = 0; j < i; ++j) {
        if (work_ > kWorkBudget) {
          if (!budget_noted_) {
            budget_noted_ = true;
            warn("shadowed", r.loc,
                 "shadowing checks stopped here: the policy has too many rules and prefixes "
                 "to compare them all");
          }
          return;
        }
        const SecurityRule& e = *order[j];
        if (e.direction != r.direction) continue;
        if (e.protocol != Protocol::Any && e.protocol != r.protocol) continue;
        if (!portsCovered(e.destination_ports, r.destination_ports)) continue;
        if (!portsCovered(e.source_ports, r.source_ports)) continue;
        if (!addressesCovered(src[j], r.sources)) continue;
        if (!addressesCovered(dst[j], r.destinations)) continue;
        warn("shadowed", r.loc,
             strCat("rule '", r.name, "' (priority ", std::to_string(r.priority), ") in ", where,
                    " can never match: '", e.name, "' (priority ", std::to_string(e.priority),
                    ") matches all of its traffic first and ",
                    e.access == Access::Allow ? "allows" : "denies", " it"));
        break;
      }
    }
  }

  // --- endpoints -----------------------------------------------------------

  void checkEndpoints(const Tenant& t) {
    for (const Endpoint& e : t.endpoints) {
      const KnownPort* k = knownPort(e.private_port);
      if (!k && !e.random_public_port) k = knownPort(e.public_port);
      const bool tcp = e.protocol == Protocol::Tcp;
      const bool management = e.management || (k && k->management && tcp);
      bool has_permit = false, permits_all = false;
      for (const AclRule& a : e.acl) {
        if (a.action != AclAction::Permit) continue;
        has_permit = true;
        if (a.remote.len == 0) permits_all = true;
      }
      const bool open = !has_permit || permits_all;
      if (management && open && on("internet-management")) {
        const std::string what = k && k->management
                                     ? strCat(k->service, " (port ", std::to_string(k->port), ")")
                                     : strCat("management port ", std::to_string(e.private_port));
        warn("internet-management", e.loc,
             strCat("endpoint '", e.name, "' exposes ", what, " to the whole Internet: ",
                    e.acl.empty() ? "it has no ACL" : "its ACL permits every source",
                    "; permit only the networks that manage it"));
      } else if (k && !k->management && e.acl.empty() && on("endpoint-without-acl")) {
        warn("endpoint-without-acl", e.loc,
             strCat("endpoint '", e.name, "' publishes ", k->service, " (port ",
                    std::to_string(k->port), ") with no ACL: every Internet source can reach it"));
      }
      if (on("shadowed")) checkAclShadowed(e);
    }
  }

  void checkAclShadowed(const Endpoint& e) {
    std::vector<const AclRule*> acl;
    for (const AclRule& a : e.acl)
      acl.push_back(&a);
    std::stable_sort(acl.begin(), acl.end(),
                     [](const AclRule* a, const AclRule* b) { return a->order < b->order; });
    for (size_t i = 0; i < acl.size(); ++i) {
      for (size_t j = 0; j < i && work_ <= kWorkBudget; ++j) {
        ++work_;
        if (!acl[j]->remote.contains(acl[i]->remote)) continue;
        warn("shadowed", acl[i]->loc,
             strCat("ACL entry ", std::to_string(acl[i]->order), " (", acl[i]->remote.toString(),
                    ") of endpoint '", e.name, "' can never match: entry ",
                    std::to_string(acl[j]->order), " (", acl[j]->remote.toString(),
                    ") matches first"));
        break;
      }
    }
  }

  // --- unused --------------------------------------------------------------

  void checkUnusedGroups(const Tenant& t) {
    if (!on("unused-group")) return;
    std::unordered_set<std::string> used;
    for (const VNet& v : t.vnets)
      for (const Subnet& s : v.subnets)
        if (!s.security_group.empty()) used.insert(s.security_group.name);
    for (const Nic& n : t.nics)
      if (!n.security_group.empty()) used.insert(n.security_group.name);
    for (const SecurityGroup& g : t.security_groups) {
      if (used.contains(g.name)) continue;
      warn("unused-group", g.loc,
           strCat("security group '", t.name, "/", g.name,
                  "' is not used by any subnet or NIC; its rules have no effect"));
    }
  }

  void checkUnusedTags() {
    if (!on("unused-tag")) return;
    std::unordered_set<std::string> used;
    auto note = [&](const std::vector<AddressRef>& list) {
      for (const AddressRef& a : list)
        if (a.kind == AddressRef::Kind::Tag) used.insert(a.tag);
    };
    auto noteRules = [&](const std::vector<SecurityRule>& rules) {
      for (const SecurityRule& r : rules) {
        note(r.sources);
        note(r.destinations);
      }
    };
    noteRules(p_.perimeter);
    for (const Tenant& t : p_.tenants)
      for (const SecurityGroup& g : t.security_groups)
        noteRules(g.rules);
    for (const ServiceTag& t : p_.service_tags) {
      if (used.contains(t.name)) continue;
      warn("unused-tag", t.loc, strCat("service tag '", t.name, "' is not used by any rule"));
    }
  }

  // A deployment whose NICs run on several hosts has its VIP's SNAT replies
  // routed by port to the host that translated them: the hosts' snat_ports
  // must not overlap, or a reply may reach a host that knows nothing of it.
  void checkSnatShares() {
    if (!on("snat-overlap")) return;
    std::unordered_map<std::string, const Host*> hosts;
    for (const Host& h : p_.hosts)
      hosts.emplace(h.name, &h);
    std::set<std::pair<const Host*, const Host*>> reported;
    for (const Tenant& t : p_.tenants) {
      // One pass over the NICs: the hosts of each deployment.
      std::unordered_map<std::string, std::vector<const Host*>> of_deployment;
      for (const Nic& n : t.nics) {
        auto it = hosts.find(n.host.name);
        if (n.deployment.empty() || it == hosts.end()) continue;
        of_deployment[n.deployment.name].push_back(it->second);
      }
      for (const Deployment& d : t.deployments) {
        auto found = of_deployment.find(d.name);
        if (found == of_deployment.end()) continue;
        // Sorted by first port, a share overlaps an earlier one exactly when
        // it starts before the furthest end so far: one warning per such host.
        std::vector<const Host*> on_hosts = found->second;
        std::sort(on_hosts.begin(), on_hosts.end());
        on_hosts.erase(std::unique(on_hosts.begin(), on_hosts.end()), on_hosts.end());
        std::sort(on_hosts.begin(), on_hosts.end(),
                  [](const Host* a, const Host* b) { return a->snat_ports.lo < b->snat_ports.lo; });
        const Host* furthest = nullptr;
        for (const Host* b : on_hosts) {
          if (furthest && b->snat_ports.lo <= furthest->snat_ports.hi &&
              reported.insert({furthest, b}).second) {
            warn("snat-overlap", b->loc,
                 strCat("hosts '", furthest->name, "' and '", b->name, "' both serve deployment '",
                        t.name, "/", d.name,
                        "' and share SNAT ports of its VIP; give each host its own snat_ports "
                        "so replies can be routed to the host that translated them"));
          }
          if (!furthest || b->snat_ports.hi > furthest->snat_ports.hi) furthest = b;
        }
      }
    }
  }

  // Prefix comparisons the shadowing checks may make: a hostile policy of huge
  // groups gets a note instead of minutes of checking.
  static constexpr size_t kWorkBudget = 50'000'000;

  const Policy& p_;
  Diagnostics& diag_;
  const std::set<std::string>& disabled_;
  std::unordered_map<std::string, const ServiceTag*> tags_;
  size_t work_ = 0;
  bool budget_noted_ = false;
};

}  // namespace

void lintPolicy(const Policy& policy, Diagnostics& diag, const std::set<std::string>& disabled) {
  Linter(policy, diag, disabled).run();
}

}  // namespace palisade::policy
