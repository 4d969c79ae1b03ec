#include "policy/describe.h"

#include <cstdio>
#include <unordered_map>

#include "core/strings.h"

namespace palisade::policy {
namespace {

std::string plural(size_t n, std::string_view one, std::string_view many) {
  return strCat(std::to_string(n), " ", n == 1 ? one : many);
}

std::string prefixList(const std::vector<Prefix>& ps) {
  std::vector<std::string> s;
  for (const Prefix& p : ps)
    s.push_back(p.toString());
  return join(s, ", ");
}

std::string portList(const std::vector<PortRange>& ps) {
  if (ps.empty()) return "*";
  std::vector<std::string> s;
  for (const PortRange& r : ps) {
    s.push_back(r.lo == r.hi ? std::to_string(r.lo)
                             : strCat(std::to_string(r.lo), "-", std::to_string(r.hi)));
  }
  return join(s, ",");
}

}  // namespace

std::string describePolicy(const Policy& p) {
  std::string out;
  size_t vnets = 0, subnets = 0, nics = 0, endpoints = 0, mgmt = 0, groups = 0, rules = 0;
  for (const Tenant& t : p.tenants) {
    vnets += t.vnets.size();
    for (const VNet& v : t.vnets)
      subnets += v.subnets.size();
    nics += t.nics.size();
    endpoints += t.endpoints.size();
    for (const Endpoint& e : t.endpoints)
      mgmt += e.management;
    groups += t.security_groups.size();
    for (const SecurityGroup& g : t.security_groups)
      rules += g.rules.size();
  }
  out += strCat("policy ", p.source, ": valid\n");
  out += strCat("  ", plural(p.tenants.size(), "tenant", "tenants"), ", ",
                plural(vnets, "vnet", "vnets"), ", ", plural(subnets, "subnet", "subnets"), ", ",
                plural(nics, "NIC", "NICs"), ", ", plural(endpoints, "endpoint", "endpoints"), " (",
                std::to_string(mgmt), " management), ",
                plural(groups, "security group", "security groups"), " (",
                plural(rules, "rule", "rules"), ")\n");
  out += strCat(
      "  ", plural(p.hosts.size(), "host", "hosts"), ", ",
      plural(p.perimeter.size(), "perimeter rule", "perimeter rules"), ", ",
      plural(p.segments.size(), "infrastructure segment", "infrastructure segments"), ", ",
      plural(p.infra_endpoints.size(), "infrastructure endpoint", "infrastructure endpoints"), ", ",
      plural(p.service_tags.size(), "service tag", "service tags"), "\n");

  const ConntrackSettings& c = p.conntrack;
  if (c.capacity || c.per_nic_limit || c.loose || c.flow_log_interval || c.fragment_timeout ||
      c.fragment_datagrams || c.fragments_held || !c.timeouts.empty()) {
    std::string line = "  conntrack:";
    if (c.capacity) line += strCat(" capacity ", std::to_string(*c.capacity), ";");
    if (c.per_nic_limit) line += strCat(" per-NIC limit ", std::to_string(*c.per_nic_limit), ";");
    if (c.loose) line += strCat(" ", *c.loose ? "loose" : "strict", " TCP tracking;");
    if (c.flow_log_interval)
      line += strCat(" flow-log interval ", std::to_string(*c.flow_log_interval), " s;");
    if (c.fragment_timeout)
      line += strCat(" fragments followed ", std::to_string(*c.fragment_timeout), " s;");
    if (c.fragment_datagrams)
      line += strCat(" ", std::to_string(*c.fragment_datagrams), " fragmented datagrams at once;");
    if (c.fragments_held)
      line += strCat(" ", std::to_string(*c.fragments_held), " early fragments held;");
    for (const auto& [name, secs] : c.timeouts)
      line += strCat(" ", name, " ", std::to_string(secs), " s;");
    line.back() = '\n';
    out += line;
  }
  if (!p.ddos.webhook_url.empty()) out += strCat("  ddos webhook: ", p.ddos.webhook_url, "\n");
  for (const DdosProtect& d : p.ddos.protect) {
    DdosSynProxy proxy = DdosSynProxy::OnAttack;
    for (const DdosProfile& pr : p.ddos.profiles)
      if (!d.profile.empty() && pr.name == d.profile.name) proxy = pr.syn_proxy;
    out += strCat("  ddos ", d.name, ": ", prefixList(d.prefixes), " with profile ",
                  d.profile.empty() ? "default" : d.profile.name, ", SYN proxy ",
                  proxy == DdosSynProxy::Always ? "always"
                  : proxy == DdosSynProxy::Off  ? "off"
                                                : "on attack",
                  "\n");
  }
  for (const InfraSegment& s : p.segments) {
    out +=
        strCat("  segment ", s.name, " (", toString(s.kind), "): ", prefixList(s.prefixes), "\n");
  }
  for (const InfraEndpoint& e : p.infra_endpoints) {
    out += strCat("  infrastructure ", e.name, " (", toString(e.service), "): ", e.ip.toString(),
                  " ", toString(e.protocol), "/", portList(e.ports), "\n");
  }
  for (const Tenant& t : p.tenants) {
    out += strCat("\n  tenant ", t.name, "\n");
    std::unordered_map<std::string_view, std::vector<std::string>> members_of;  // "vnet/subnet"
    for (const Nic& n : t.nics)
      members_of[n.subnet.name].push_back(n.name);
    for (const VNet& v : t.vnets) {
      out += strCat("    vnet ", v.name, "  vni ", std::to_string(v.vni), "  ",
                    prefixList(v.address_space));
      if (!v.peerings.empty()) {
        std::vector<std::string> peers;
        for (const Ref& r : v.peerings)
          peers.push_back(r.name);
        out += strCat("  peered with ", join(peers, ", "));
      }
      out += "\n";
      for (const Subnet& s : v.subnets) {
        const std::string key = strCat(v.name, "/", s.name);
        const auto found = members_of.find(key);
        const bool none = found == members_of.end();
        char line[160];
        std::snprintf(line, sizeof line, "      subnet %-10s %-22s group %-12s", s.name.c_str(),
                      prefixList(s.prefixes).c_str(),
                      s.security_group.empty() ? "-" : s.security_group.name.c_str());
        out += strCat(line, " NICs: ", none ? "-" : join(found->second, ", "), "\n");
      }
    }
    for (const Deployment& d : t.deployments) {
      std::vector<std::string> vips;
      for (const IpAddr& v : d.vips)
        vips.push_back(v.toString());
      out += strCat("    deployment ", d.name, "  VIP ", join(vips, ", "), "\n");
      for (const Endpoint& e : t.endpoints) {
        if (e.deployment.name != d.name) continue;
        size_t permits = 0;
        for (const AclRule& r : e.acl)
          permits += r.action == AclAction::Permit;
        std::vector<std::string> at;  // VIP:port, [IPv6]:port
        for (const IpAddr& v : d.vips)
          at.push_back(v.isV4() ? strCat(v.toString(), ":", std::to_string(e.public_port))
                                : strCat("[", v.toString(), "]:", std::to_string(e.public_port)));
        out += strCat("      endpoint ", e.name, "  ", join(at, ", "), "/", toString(e.protocol),
                      e.random_public_port ? " (random)" : "", " -> ", e.nic.name, ":",
                      std::to_string(e.private_port), e.management ? "  management" : "",
                      e.acl.empty() ? "  ACL: none (open to the Internet)"
                                    : strCat("  ACL: ", plural(e.acl.size(), "rule", "rules"), " (",
                                             std::to_string(permits), " permit)"),
                      "\n");
      }
    }
    for (const SecurityGroup& g : t.security_groups) {
      size_t in = 0;
      for (const SecurityRule& r : g.rules)
        in += r.direction == Direction::Inbound;
      out += strCat("    security group ", g.name, ": ", std::to_string(in), " inbound, ",
                    std::to_string(g.rules.size() - in), " outbound rules\n");
    }
  }
  return out;
}

}  // namespace palisade::policy
