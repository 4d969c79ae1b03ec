#include "pipeline/inspection.h"

#include "core/hash.h"
#include "core/strings.h"
#include "ids/offline.h"

namespace palisade::pipeline {

Status loadIdsRules(CompiledPolicy& cp, const std::string& policy_path) {
  const policy::IdsSettings& ids = cp.model->ids;
  if (!ids.enabled) return {};
  const size_t slash = policy_path.rfind('/');
  const std::string base =
      slash == std::string::npos ? std::string() : policy_path.substr(0, slash + 1);
  const auto resolve = [&](const std::string& f) { return f.starts_with('/') ? f : base + f; };
  ids::OfflineInput in;
  for (const std::string& f : ids.rules)
    in.rule_files.push_back(resolve(f));
  if (!ids.classification.empty()) in.classification = resolve(ids.classification);
  // HOME_NET: the address spaces of the tenants' VNets (what the IDS sees
  // inside the switch), unless the settings say otherwise.
  std::string home;
  for (const VNetInfo& v : cp.vnets)
    for (const Prefix& p : v.address_space) {
      if (!home.empty()) home += ',';
      home += p.toString();
    }
  if (!home.empty()) in.sets.push_back(strCat("vars.address-groups.HOME_NET=[", home, "]"));
  for (const auto& [key, value] : ids.settings)
    in.sets.push_back(strCat(key, "=", value));
  auto prep = std::make_shared<ids::PreparedRules>();
  if (Status st = ids::prepareRules(in, *prep); !st)
    return makeError(strCat("ids: ", st.error().message));
  if (prep->rules.rules.empty())
    return makeError(strCat("ids: no rule loaded from ", join(in.rule_files, ", "),
                            prep->rules.rejected.empty()
                                ? std::string(" (no rules in it)")
                                : strCat(" (", std::to_string(prep->rules.rejected.size()),
                                         " refused; 'palisade ids check-rules' says why)")));
  prep->cfg.ips = ids.mode == policy::IdsMode::Ips;
  prep->cfg.inline_mode = true;  // a packet is inspected before it is forwarded
  if (ids.max_flows) prep->cfg.max_flows = *ids.max_flows;
  // Everything the engine is built from (the rules' digest covers the bytes
  // read and the settings): equal digests tell a reload to keep the engines
  // and their flows.
  cp.ids_digest = mix64(prep->digest ^ mix64(prep->cfg.max_flows * 2 + (prep->cfg.ips ? 1 : 0)));
  cp.ids_rules = std::move(prep);
  return {};
}

}  // namespace palisade::pipeline
