// Loading and compiling the policy a command runs with, with the messages and
// exit codes every command shares (docs/operations.md).
#pragma once

#include <memory>
#include <string>

#include "cli/command.h"
#include "io/capture.h"
#include "pipeline/compiled.h"
#include "pipeline/pipeline.h"

namespace palisade::cli {

// Loads, validates and compiles `path`. The error's message is one line
// ("PATH: why"); `unreadable` tells a file that could not be read from an
// invalid policy, whose problems are then in `diagnostics` (file:line:col lines).
Result<std::shared_ptr<const pipeline::CompiledPolicy>> compilePolicyFile(
    const std::string& path, uint32_t generation, std::string* diagnostics = nullptr,
    bool* unreadable = nullptr);

// compilePolicyFile for a command's start. On failure prints the problems as
// "palisade CMD: ..." and sets ctx.exit_code (3 unreadable, 1 invalid); returns null.
std::shared_ptr<const pipeline::CompiledPolicy> loadCompiled(const std::string& path,
                                                             const char* cmd, Context& ctx,
                                                             uint32_t generation = 1);

// Checks that `host` (from --host) names a host of the policy; when it does not,
// prints the hosts there are, sets ctx.exit_code to kUsage and returns false.
bool checkHost(const pipeline::CompiledPolicy& cp, const std::string& host, const char* cmd,
               Context& ctx);

// --loose / --strict, shared by the commands that run the pipeline: they
// override the policy's conntrack.tcp_tracking.
struct TcpTracking {
  bool loose = false, strict = false;
  void addFlags(CLI::App* cmd);
  void apply(pipeline::Config& cfg) const {
    if (loose) cfg.conntrack.loose = true;
    if (strict) cfg.conntrack.loose = false;
  }
};

// The ingress port of each replayed packet: its pcapng interface's name
// ("uplink", "tenant/nic") when that names a port, else by source MAC. pcapng
// interfaces are learnt as the reader meets them, so names resolve lazily.
class IngressPorts {
 public:
  uint16_t portOf(const io::PacketReader& reader, const io::RawPacket& raw, pipeline::Pipeline& pl);

 private:
  std::vector<uint32_t> by_iface_;
};

}  // namespace palisade::cli
