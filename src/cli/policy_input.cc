#include "cli/policy_input.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "policy/loader.h"

namespace palisade::cli {

std::shared_ptr<const pipeline::CompiledPolicy> loadCompiled(const std::string& path,
                                                             const char* cmd, Context& ctx,
                                                             uint32_t generation) {
  if (access(path.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "palisade %s: %s: %s\n", cmd, path.c_str(), std::strerror(errno));
    ctx.exit_code = kCannotRead;
    return nullptr;
  }
  policy::LoadResult r = policy::loadPolicyFile(path);
  if (!r.policy) {
    std::fputs(r.diagnostics.format().c_str(), stderr);
    std::fprintf(stderr, "palisade %s: %s: the policy is invalid (see 'palisade check')\n", cmd,
                 path.c_str());
    ctx.exit_code = kFindings;
    return nullptr;
  }
  auto model = std::make_shared<const policy::Policy>(std::move(*r.policy));
  auto compiled = pipeline::CompiledPolicy::compile(model, generation);
  if (!compiled) {
    std::fprintf(stderr, "palisade %s: %s: %s\n", cmd, path.c_str(),
                 compiled.error().message.c_str());
    ctx.exit_code = kFindings;
    return nullptr;
  }
  return *compiled;
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
