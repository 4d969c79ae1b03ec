// palisade: network security for multi-tenant clouds. See docs/operations.md.
#include <cstdio>
#include <exception>

#include "cli/command.h"

namespace {

constexpr palisade::cli::RegisterFn kCommands[] = {
    palisade::cli::registerCheck, palisade::cli::registerDecode, palisade::cli::registerReplay,
    palisade::cli::registerTrace, palisade::cli::registerRules,  palisade::cli::registerRun,
    palisade::cli::registerLog,   palisade::cli::registerShip,   palisade::cli::registerReport,
    palisade::cli::registerIds,   palisade::cli::registerDdos,   palisade::cli::registerGateway,
};

}  // namespace

int main(int argc, char** argv) {
  using namespace palisade::cli;
  CLI::App app{
      "Palisade: network security for multi-tenant clouds (tenant isolation, layered\n"
      "firewalls, anti-spoofing, DDoS mitigation, IDS/IPS, API gateway, forensics)."};
  app.name("palisade");
  app.set_version_flag("--version", "palisade " PALISADE_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 invalid or corrupt input, 2 usage error, 3 cannot read input,\n"
      "4 internal error. 'palisade COMMAND --help' describes each command.");
  Context ctx;
  for (RegisterFn reg : kCommands)
    reg(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "palisade: internal error: %s\n", e.what());
    return kInternal;
  }
  return ctx.exit_code;
}
