// palisade rules: the effective rules on a NIC, in the order the data plane
// evaluates them (like Azure's "effective security rules").
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/policy_input.h"
#include "core/strings.h"
#include "events/event.h"
#include "pipeline/compiled.h"

namespace palisade::cli {
namespace {

struct RulesArgs {
  std::string policy, nic;
  bool json = false, expand = false;
};

std::string addrTerms(const std::vector<policy::AddressRef>& refs) {
  if (refs.empty()) return "*";
  std::vector<std::string> parts;
  for (const policy::AddressRef& r : refs)
    parts.push_back(r.kind == policy::AddressRef::Kind::Any      ? std::string("*")
                    : r.kind == policy::AddressRef::Kind::Prefix ? r.prefix.toString()
                                                                 : r.tag);
  return join(parts, ",");
}

std::string portTerms(const std::vector<policy::PortRange>& ports) {
  if (ports.empty()) return "*";
  std::vector<std::string> parts;
  for (const policy::PortRange& p : ports)
    parts.push_back(p.lo == p.hi ? std::to_string(p.lo)
                                 : strCat(std::to_string(p.lo), "-", std::to_string(p.hi)));
  return join(parts, ",");
}

// The rule as written, or the built-in default rule's terms.
std::string ruleTerms(const pipeline::RuleInfo& r) {
  if (r.source) {
    const policy::SecurityRule& s = *r.source;
    return strCat(policy::toString(s.protocol), " ", addrTerms(s.sources), ":",
                  portTerms(s.source_ports), " -> ", addrTerms(s.destinations), ":",
                  portTerms(s.destination_ports));
  }
  const std::string& n = r.name;
  if (n.ends_with("AllowVnetInBound") || n.ends_with("AllowVnetOutBound"))
    return "any VirtualNetwork:* -> VirtualNetwork:*";
  if (n.ends_with("AllowHealthProbeInBound")) return "any HealthProbe:* -> *:*";
  if (n.ends_with("AllowInternetOutBound")) return "any *:* -> Internet:*";
  return "any *:* -> *:*";
}

std::string prefixes(const pipeline::RuleInfo& r) {
  std::vector<std::string> out;
  for (const classify::Entry& e : r.entries) {
    Prefix s{e.src, static_cast<uint8_t>(e.src.isV4() ? e.src_len - 96 : e.src_len)};
    Prefix d{e.dst, static_cast<uint8_t>(e.dst.isV4() ? e.dst_len - 96 : e.dst_len)};
    if (e.src_len == 0) s = Prefix{IpAddr{}, 0};
    if (e.dst_len == 0) d = Prefix{IpAddr{}, 0};
    out.push_back(strCat(s.toString(), " -> ", d.toString()));
  }
  return join(out, "; ");
}

void run(const RulesArgs& a, Context& ctx) {
  auto cp = loadCompiled(a.policy, "rules", ctx);
  if (!cp) return;
  uint32_t ni = pipeline::kNoIndex;
  for (uint32_t i = 0; i < cp->nics.size(); ++i) {
    const std::string& n = cp->nics[i].name;
    if (n == a.nic || (n.ends_with(strCat("/", a.nic)) && ni == pipeline::kNoIndex)) ni = i;
  }
  if (ni == pipeline::kNoIndex) {
    std::vector<std::string> names;
    for (const pipeline::NicInfo& n : cp->nics)
      names.push_back(n.name);
    std::fprintf(stderr, "palisade rules: no NIC '%s'; NICs: %s\n", a.nic.c_str(),
                 join(names, ", ").c_str());
    ctx.exit_code = kUsage;
    return;
  }
  const pipeline::NicInfo& nic = cp->nics[ni];
  const pipeline::SubnetInfo& subnet = cp->subnets[nic.subnet];
  nlohmann::json j;
  j["nic"] = nic.name;
  j["subnet"] = subnet.name;

  auto table = [&](const char* title, const std::vector<uint32_t>& rules, policy::Direction d,
                   nlohmann::json& out) {
    nlohmann::json arr = nlohmann::json::array();
    bool any = false;
    for (uint32_t id : rules) {
      const pipeline::RuleInfo& r = cp->rules[id];
      if (r.direction != d) continue;
      if (!any && !a.json) std::printf("  %s\n", title);
      any = true;
      if (a.json) {
        nlohmann::json rj = {{"name", r.name},
                             {"priority", r.priority},
                             {"access", policy::toString(r.access)},
                             {"default", r.is_default},
                             {"match", ruleTerms(r)},
                             {"entries", r.entries.size()}};
        if (a.expand) rj["prefixes"] = prefixes(r);
        arr.push_back(rj);
      } else {
        std::printf("    %5u  %-5s  %-52s %s%s\n", r.priority, policy::toString(r.access),
                    ruleTerms(r).c_str(), r.name.c_str(), r.is_default ? " (default)" : "");
        if (a.expand) std::printf("           %s\n", prefixes(r).c_str());
      }
    }
    if (!any && !a.json) std::printf("  %s: none\n", title);
    out.push_back({{"table", title}, {"rules", arr}});
  };
  auto groupRules = [&](uint32_t g) {
    return g == pipeline::kNoIndex ? std::vector<uint32_t>{} : cp->groups[g].rules;
  };
  auto groupTitle = [&](const char* what, uint32_t g) {
    return g == pipeline::kNoIndex ? strCat(what, " (none attached)")
                                   : strCat(what, " ", cp->groups[g].name);
  };

  if (!a.json) {
    std::vector<std::string> ips;
    for (const IpAddr& ip : nic.ips)
      ips.push_back(ip.toString());
    std::printf("effective rules on %s (%s), subnet %s\n", nic.name.c_str(),
                join(ips, ", ").c_str(), subnet.name.c_str());
    std::printf("\ninbound, in evaluation order (first match wins within a table):\n");
    std::printf("  input endpoints to this NIC:\n");
  }
  nlohmann::json eps = nlohmann::json::array();
  for (const pipeline::EndpointInfo& e : cp->endpoints) {
    if (e.nic != ni) continue;
    char pb[4];
    std::vector<std::string> acl;
    for (const policy::AclRule& r : e.acl)
      acl.push_back(strCat(std::to_string(r.order), " ", policy::toString(r.action), " ",
                           r.remote.toString()));
    const std::string acl_text =
        acl.empty() ? std::string("no ACL (open to every source)") : join(acl, "; ");
    // One entry per VIP: a dual-stack deployment's endpoint answers on both.
    for (const IpAddr& vip : cp->deployments[e.deployment].vips) {
      if (a.json) {
        eps.push_back({{"name", e.name},
                       {"vip", vip.toString()},
                       {"public_port", e.public_port},
                       {"private_port", e.private_port},
                       {"acl", acl_text}});
      } else {
        std::printf("    %s %s %s:%u -> :%u  ACL: %s\n", e.name.c_str(),
                    std::string(ipProtoName(e.proto, pb)).c_str(), vip.toString().c_str(),
                    e.public_port, e.private_port, acl_text.c_str());
      }
    }
  }
  j["endpoints"] = eps;
  nlohmann::json in = nlohmann::json::array(), outb = nlohmann::json::array();
  table("perimeter", cp->perimeter_rules, policy::Direction::Inbound, in);
  table(groupTitle("subnet group", subnet.group).c_str(), groupRules(subnet.group),
        policy::Direction::Inbound, in);
  table(groupTitle("NIC group", nic.group).c_str(), groupRules(nic.group),
        policy::Direction::Inbound, in);
  if (!a.json) std::printf("\noutbound, in evaluation order:\n");
  table(groupTitle("NIC group", nic.group).c_str(), groupRules(nic.group),
        policy::Direction::Outbound, outb);
  table(groupTitle("subnet group", subnet.group).c_str(), groupRules(subnet.group),
        policy::Direction::Outbound, outb);
  table("perimeter (traffic to the Internet)", cp->perimeter_rules, policy::Direction::Outbound,
        outb);
  j["inbound"] = in;
  j["outbound"] = outb;
  if (a.json) std::printf("%s\n", j.dump(2).c_str());
  ctx.exit_code = kOk;
}

}  // namespace

void registerRules(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("rules", "Show the effective rules on a NIC, in evaluation order");
  cmd->footer(
      "Lists the input endpoints that reach the NIC with their ACLs, then every table a\n"
      "packet meets inbound (perimeter, subnet group, NIC group) and outbound (NIC group,\n"
      "subnet group, perimeter), with the default rules each group gets.\n"
      "Exit status: 0 shown, 1 invalid policy, 2 unknown NIC, 3 unreadable policy.");
  auto a = std::make_shared<RulesArgs>();
  cmd->add_option("-p,--policy", a->policy, "Policy file (YAML)")->required();
  cmd->add_option("--nic", a->nic, "NIC name: tenant/nic, or nic when unique")->required();
  cmd->add_flag("--expand", a->expand, "Also list the prefixes each rule's tags expand to");
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->callback([a, &ctx] { run(*a, ctx); });
}

}  // namespace palisade::cli
