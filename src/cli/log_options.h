// --log-dir and friends: the tamper-evident log (events/chain_log.h) for the
// commands that emit events (run, replay), and the size and duration syntax
// their limits use.
#pragma once

#include <memory>
#include <string>

#include "cli/command.h"
#include "core/strings.h"
#include "events/chain_log.h"

namespace palisade::cli {

struct LogArgs {
  std::string dir, key, checkpoints;
  std::string rotate_size = "64M", rotate_age, keep_size, keep_age;
  uint32_t keep_files = 0;
  uint64_t checkpoint_records = 10000;
  std::string checkpoint_interval = "10s";
  std::string heartbeat = "30s";

  void addFlags(CLI::App* cmd);
  bool enabled() const { return !dir.empty(); }
  // Opens the log (its key read, the key checked to be apart from it); the
  // error is one line for "palisade CMD: ...".
  Result<std::unique_ptr<events::ChainLog>> open(const std::string& host) const;
  // open() for a command's start: on failure prints "palisade CMD: why", sets
  // ctx.exit_code (3) and returns null.
  std::unique_ptr<events::ChainLog> openFor(const std::string& host, const char* cmd,
                                            Context& ctx) const;
};

}  // namespace palisade::cli
