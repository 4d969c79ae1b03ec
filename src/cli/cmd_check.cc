// palisade check POLICY: validate a policy, then summarise what it defines.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/command.h"
#include "policy/describe.h"
#include "policy/loader.h"

namespace palisade::cli {

void registerCheck(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("check", "Validate a policy file and summarise what it defines");
  cmd->footer(
      "Every problem is reported at once as FILE:LINE:COLUMN: error: MESSAGE.\n"
      "Exit status: 0 valid, 1 invalid, 3 unreadable.");
  auto path = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("POLICY", *path, "Policy file (YAML)")->required();
  cmd->add_flag("-q,--quiet", *quiet, "Print only problems, not the summary");
  cmd->callback([path, quiet, &ctx] {
    if (access(path->c_str(), R_OK) != 0) {
      std::fprintf(stderr, "palisade check: %s: %s\n", path->c_str(), std::strerror(errno));
      ctx.exit_code = kCannotRead;
      return;
    }
    const policy::LoadResult r = policy::loadPolicyFile(*path);
    std::fputs(r.diagnostics.format().c_str(), stderr);
    if (!r.policy) {
      const size_t n = r.diagnostics.errorCount();
      std::fprintf(stderr, "%s: %zu error%s; the policy was not accepted\n", path->c_str(), n,
                   n == 1 ? "" : "s");
      ctx.exit_code = kFindings;
      return;
    }
    if (!*quiet) std::fputs(policy::describePolicy(*r.policy).c_str(), stdout);
    ctx.exit_code = kOk;
  });
}

}  // namespace palisade::cli
