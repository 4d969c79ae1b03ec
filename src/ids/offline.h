// Running the engine over a capture file: what `palisade ids -r` and the
// suricata-verify runner share.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "ids/engine.h"
#include "ids/ruleset.h"

namespace palisade::ids {

// EVE event types written besides alerts and tagged packets (bits).
enum EveTypes : uint32_t {
  kEveHttp = 1u << 0,
  kEveDns = 1u << 1,
  kEveTls = 1u << 2,
  kEveFlow = 1u << 3,
  kEveAll = kEveHttp | kEveDns | kEveTls | kEveFlow,
};
// "alert,http,dns,tls,flow" (alert is always written) to bits; an error names
// an unknown type.
Result<uint32_t> parseEveTypes(std::string_view list);

struct OfflineInput {
  std::string pcap;
  std::vector<std::string> rule_files;
  std::string classification;     // empty: none (classtypes accepted, priority 3)
  std::vector<std::string> sets;  // KEY=VALUE, as --set
  size_t profile_rules = 0;       // keep the N most evaluated rules
  // As an inline IPS would run them (Suricata's --simulate-ips): drop and
  // reject rules drop the packet and the rest of its flow, stream data is
  // inspected as it arrives; alerts say "blocked".
  bool simulate_ips = false;
  uint32_t eve_types = 0;  // EveTypes: app-layer and flow events to write
  // Called every ~1 s of wall time with bytes read and the file size.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct OfflineResult {
  RuleSet rules;
  EngineStats stats;
  uint64_t packets = 0, bytes = 0;
  double load_ms = 0;                        // reading and parsing the rules
  double build_ms = 0;                       // the engine: rule kinds, prefilter databases
  double run_ms = 0;                         // the packets
  std::string eve;                           // alert lines, when collected
  std::vector<Engine::RuleProfile> profile;  // with OfflineInput::profile_rules
  // The capture ended early on this error (packets before it were inspected).
  std::string read_error;
};

// The rules and settings of an input, loaded (what a live run needs too).
struct PreparedRules {
  RuleSet rules;
  EngineConfig cfg;
  ClassificationTable classes;
  bool has_classes = false;
  double load_ms = 0;
  // Of everything the rules came from: the files' bytes (RuleSet::digest),
  // the settings and the classifications. Equal digests, equal engines.
  uint64_t digest = 0;
};
// An error for a bad setting, an unreadable classification or rules file.
Status prepareRules(const OfflineInput& in, PreparedRules& out);

// Loads the rules, applies the settings and runs the capture through a fresh
// engine. Alerts and tagged packets go to `out` as EVE JSON lines (one call
// per event). An error
// for unreadable rules or capture, or a bad setting.
Result<OfflineResult> runOffline(const OfflineInput& in,
                                 const std::function<void(std::string_view line)>& out);

}  // namespace palisade::ids
