#include "cli/policy_input.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/strings.h"
#include "pipeline/inspection.h"
#include "policy/loader.h"

namespace palisade::cli {

void TcpTracking::addFlags(CLI::App* cmd) {
  auto* l = cmd->add_flag("--loose", loose,
                          "Pick up TCP flows mid-stream and accept out-of-window segments "
                          "(default: the policy's conntrack.tcp_tracking, else strict)");
  cmd->add_flag("--strict", strict, "Strict TCP tracking even when the policy says loose")
      ->excludes(l);
}

Result<std::shared_ptr<const pipeline::CompiledPolicy>> compilePolicyFile(const std::string& path,
                                                                          uint32_t generation,
                                                                          std::string* diagnostics,
                                                                          bool* unreadable) {
  if (unreadable) *unreadable = false;
  if (access(path.c_str(), R_OK) != 0) {
    if (unreadable) *unreadable = true;
    return Error{strCat(path, ": ", std::strerror(errno))};
  }
  policy::LoadResult r = policy::loadPolicyFile(path);
  if (!r.policy) {
    if (diagnostics) *diagnostics = r.diagnostics.format();
    return Error{strCat(path, ": the policy is invalid (see 'palisade check')")};
  }
  auto model = std::make_shared<const policy::Policy>(std::move(*r.policy));
  auto compiled = pipeline::CompiledPolicy::compile(model, generation);
  if (!compiled) return Error{strCat(path, ": ", compiled.error().message)};
  if (Status st = pipeline::loadIdsRules(**compiled, path); !st)
    return Error{strCat(path, ": ", st.error().message)};
  return std::shared_ptr<const pipeline::CompiledPolicy>(*compiled);
}

std::shared_ptr<const pipeline::CompiledPolicy> loadCompiled(const std::string& path,
                                                             const char* cmd, Context& ctx,
                                                             uint32_t generation) {
  std::string diagnostics;
  bool unreadable = false;
  auto r = compilePolicyFile(path, generation, &diagnostics, &unreadable);
  if (r) return *r;
  std::fputs(diagnostics.c_str(), stderr);
  std::fprintf(stderr, "palisade %s: %s\n", cmd, r.error().message.c_str());
  ctx.exit_code = unreadable ? kCannotRead : kFindings;
  return nullptr;
}

bool checkHost(const pipeline::CompiledPolicy& cp, const std::string& host, const char* cmd,
               Context& ctx) {
  if (host.empty() || cp.hostByName(host) != pipeline::kNoIndex) return true;
  std::string known;
  for (const pipeline::HostInfo& h : cp.hosts)
    known += (known.empty() ? "" : ", ") + h.name;
  std::fprintf(stderr, "palisade %s: --host '%s' is not a host of the policy (%s)\n", cmd,
               host.c_str(), known.empty() ? "it declares none" : ("hosts: " + known).c_str());
  ctx.exit_code = kUsage;
  return false;
}

uint16_t IngressPorts::portOf(const io::PacketReader& reader, const io::RawPacket& raw,
                              pipeline::Pipeline& pl) {
  const auto& ifaces = reader.interfaces();
  while (by_iface_.size() < ifaces.size())
    by_iface_.push_back(pl.policy().portByName(ifaces[by_iface_.size()].name));
  const uint32_t p =
      raw.interface_id < by_iface_.size() ? by_iface_[raw.interface_id] : pipeline::kNoIndex;
  return p != pipeline::kNoIndex ? static_cast<uint16_t>(p) : pl.portForFrame(raw.link, raw.data);
}

}  // namespace palisade::cli
