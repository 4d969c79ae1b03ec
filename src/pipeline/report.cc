#include "pipeline/report.h"

#include <cstdio>

namespace palisade::pipeline {

nlohmann::json statsJson(const Stats& s, uint64_t live_flows) {
  nlohmann::json layers = nlohmann::json::object(), reasons = nlohmann::json::object();
  for (size_t l = 0; l < static_cast<size_t>(Layer::Count); ++l)
    layers[toString(static_cast<Layer>(l))] = {{"passed", s.layer_pass[l]},
                                               {"dropped", s.layer_drop[l]}};
  for (size_t r = 1; r < s.drops.size(); ++r)
    if (s.drops[r]) reasons[toString(static_cast<Reason>(r))] = s.drops[r];
  return {
      {"packets", s.packets},
      {"bytes", s.bytes},
      {"forwarded", s.forwarded},
      {"dropped", s.dropped},
      {"answered", s.answered},
      {"flows",
       {{"created", s.flows_created},
        {"hits", s.flow_hits},
        {"misses", s.flow_misses},
        {"expired", s.flows_expired},
        {"reevaluated", s.reevaluated},
        {"live", live_flows}}},
      {"fragments", {{"forwarded", s.fragments_forwarded}, {"held", s.fragments_held}}},
      {"answers", {{"arp", s.arp_answered}, {"dhcp", s.dhcp_answered}, {"nd", s.nd_answered}}},
      {"vxlan", {{"decapsulated", s.vxlan_decapsulated}, {"encapsulated", s.vxlan_encapsulated}}},
      {"syn_proxy",
       {{"cookies_sent", s.syn_cookies_sent},
        {"cookies_valid", s.syn_cookies_valid},
        {"cookies_invalid", s.syn_cookies_invalid},
        {"connections", s.syn_proxied}}},
      {"ddos",
       {{"attacks", s.ddos_attacks},
        {"active", s.ddos_active},
        {"targets", s.ddos_targets},
        {"handshakes", s.ddos_handshakes},
        {"flash_crowds", s.ddos_flash_crowds},
        {"quarantines", s.quarantines},
        {"quarantined_nics", s.quarantined},
        {"conn_limit_untracked", s.conn_limit_untracked}}},
      {"ids",
       {{"inspected", s.ids_inspected},
        {"bypassed", s.ids_bypassed},
        {"alerts", s.ids_alerts},
        {"flows_dropped", s.ids_flows_dropped},
        {"rejects", s.ids_rejects}}},
      {"layers", layers},
      {"drop_reasons", reasons}};
}

std::string layerTables(const Stats& s) {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "\n  %-22s %10s %10s\n", "layer", "passed", "dropped");
  out += line;
  for (size_t l = 0; l < static_cast<size_t>(Layer::Count); ++l) {
    std::snprintf(line, sizeof line, "  %-22s %10llu %10llu\n", toString(static_cast<Layer>(l)),
                  static_cast<unsigned long long>(s.layer_pass[l]),
                  static_cast<unsigned long long>(s.layer_drop[l]));
    out += line;
  }
  if (s.dropped == 0) return out;
  std::snprintf(line, sizeof line, "\n  %-22s %10s  %s\n", "drop reason", "packets", "layer");
  out += line;
  for (size_t r = 1; r < s.drops.size(); ++r) {
    if (!s.drops[r]) continue;
    const auto reason = static_cast<Reason>(r);
    std::snprintf(line, sizeof line, "  %-22s %10llu  %s\n", toString(reason),
                  static_cast<unsigned long long>(s.drops[r]), toString(layerOf(reason)));
    out += line;
  }
  return out;
}

}  // namespace palisade::pipeline
