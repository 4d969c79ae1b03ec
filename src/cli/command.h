// How a subcommand plugs into `palisade`: one file defines a register function,
// one line in main.cc's table lists it. The function adds its CLI11 subcommand
// and sets a callback that stores the exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

namespace palisade::cli {

// Exit codes every subcommand uses (docs/operations.md lists them).
enum Exit : int {
  kOk = 0,          // done; the input was good
  kFindings = 1,    // done; the input is invalid or corrupt (errors were printed)
  kUsage = 2,       // bad command line
  kCannotRead = 3,  // an input could not be opened or read
  kInternal = 4,    // a bug: please report it
};

struct Context {
  int exit_code = kOk;
};

using RegisterFn = void (*)(CLI::App& app, Context& ctx);

// DIR/eve.json opened with `mode` ("w" or "a"), DIR made first; on failure
// prints "palisade CMD: why" and returns null. `path` gets the file's path.
FILE* openEve(const std::string& dir, const char* mode, const char* cmd, std::string& path);

void registerCheck(CLI::App& app, Context& ctx);
void registerDecode(CLI::App& app, Context& ctx);
void registerReplay(CLI::App& app, Context& ctx);
void registerTrace(CLI::App& app, Context& ctx);
void registerRules(CLI::App& app, Context& ctx);
void registerRun(CLI::App& app, Context& ctx);   // run, stats, reload
void registerLog(CLI::App& app, Context& ctx);   // log keygen, log verify
void registerShip(CLI::App& app, Context& ctx);  // log ship, collector (after registerLog)
void registerReport(CLI::App& app, Context& ctx);
void registerIds(CLI::App& app, Context& ctx);  // ids check-rules
void registerDdos(CLI::App& app, Context& ctx);
void registerGateway(CLI::App& app, Context& ctx);

}  // namespace palisade::cli
