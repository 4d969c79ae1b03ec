// palisade check POLICY: validate a policy, lint it, then summarise what it defines.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/strings.h"
#include "ids/offline.h"
#include "pipeline/inspection.h"
#include "policy/describe.h"
#include "policy/lint.h"
#include "policy/loader.h"

namespace palisade::cli {

void registerCheck(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("check", "Validate a policy file and summarise what it defines");
  cmd->footer(
      "Every problem is reported at once as FILE:LINE:COLUMN: error: MESSAGE.\n"
      "A valid policy is then linted; each warning ends in its check's name:\n"
      "  internet-management   management ports (SSH, RDP, WinRM, VNC, Telnet) open to the "
      "Internet\n"
      "  endpoint-without-acl  endpoints publishing sensitive ports with no ACL\n"
      "  shadowed              rules and ACL entries that can never match\n"
      "  broad-allow           inbound allows of every port from the Internet or the whole "
      "VNet\n"
      "  unused-group          security groups no subnet or NIC uses\n"
      "  unused-tag            service tags no rule uses\n"
      "Exit status: 0 valid (warnings allowed unless --strict), 1 invalid or warnings under "
      "--strict, 3 unreadable.");
  auto path = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("POLICY", *path, "Policy file (YAML)")->required();
  auto strict = std::make_shared<bool>(false);
  auto disabled = std::make_shared<std::vector<std::string>>();
  cmd->add_flag("-q,--quiet", *quiet, "Print only problems, not the summary");
  cmd->add_flag("--strict", *strict, "Treat lint warnings as failures (exit 1)");
  cmd->add_option("--disable", *disabled, "Skip a lint check (repeatable; see the list below)")
      ->check([](const std::string& name) -> std::string {
        for (const char* c : policy::kLintChecks)
          if (name == c) return {};
        return strCat("unknown lint check '", name, "'");
      });
  cmd->callback([path, quiet, strict, disabled, &ctx] {
    if (access(path->c_str(), R_OK) != 0) {
      std::fprintf(stderr, "palisade check: %s: %s\n", path->c_str(), std::strerror(errno));
      ctx.exit_code = kCannotRead;
      return;
    }
    policy::LoadResult r = policy::loadPolicyFile(*path);
    if (r.policy) {
      policy::lintPolicy(*r.policy, r.diagnostics,
                         std::set<std::string>(disabled->begin(), disabled->end()));
    }
    std::fputs(r.diagnostics.format().c_str(), stderr);
    if (!r.policy) {
      const size_t n = r.diagnostics.errorCount();
      std::fprintf(stderr, "%s: %zu error%s; the policy was not accepted\n", path->c_str(), n,
                   n == 1 ? "" : "s");
      ctx.exit_code = kFindings;
      return;
    }
    const size_t warnings = r.diagnostics.warningCount();
    if (warnings > 0) {
      std::fprintf(stderr, "%s: %zu lint warning%s\n", path->c_str(), warnings,
                   warnings == 1 ? "" : "s");
    }
    // The ids section's rules load as the switch would load them.
    std::string ids_line;
    if (r.policy->ids.enabled) {
      const policy::IdsSettings& ids = r.policy->ids;
      auto cp =
          pipeline::CompiledPolicy::compile(std::make_shared<const policy::Policy>(*r.policy), 1);
      Status st = cp ? pipeline::loadIdsRules(**cp, *path) : Status(cp.error());
      if (!st) {
        std::fprintf(stderr, "%s: %s\n", path->c_str(), st.error().message.c_str());
        ctx.exit_code = kFindings;
        return;
      }
      const ids::RuleSet& rs = (*cp)->ids_rules->rules;
      ids_line = strCat("ids: ", ids.mode == policy::IdsMode::Ips ? "IPS" : "IDS (alerts only)",
                        ", ", std::to_string(rs.rules.size()), " rules from ",
                        std::to_string(ids.rules.size()), " file(s)");
      if (!rs.rejected.empty())
        ids_line += strCat(", ", std::to_string(rs.rejected.size()),
                           " refused ('palisade ids check-rules' says why)");
      ids_line += strCat(
          "; inspects ",
          ids.inspect.empty() ? std::string("every NIC's flows")
                              : strCat(std::to_string(ids.inspect.size()), " selection(s) of NICs"),
          "; overload: ",
          ids.overload == policy::IdsOverload::FailOpen ? "fail-open" : "fail-closed", "\n");
    }
    if (!*quiet) {
      std::fputs(policy::describePolicy(*r.policy).c_str(), stdout);
      std::fputs(ids_line.c_str(), stdout);
    }
    ctx.exit_code = *strict && warnings > 0 ? kFindings : kOk;
  });
}

}  // namespace palisade::cli
