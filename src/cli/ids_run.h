// palisade ids -r (detection over a capture) and palisade ids verify (the
// suricata-verify runner); registered by cmd_ids.cc.
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"

namespace palisade::cli {

struct IdsRunArgs {
  std::string pcap, iface, outdir = ".", classification;
  double duration_s = 0;  // live: stop after this long (0: at SIGINT/SIGTERM)
  std::vector<std::string> rules, sets;
  size_t profile_rules = 0;
  bool quiet = false, progress = true;
  bool simulate_ips = false;  // -r: drop rules drop, as inline (Suricata's --simulate-ips)
  std::string eve_types = "alert,http,dns,tls,flow";  // --eve-types
  uint32_t eve_type_bits = 0;  // eve_types parsed (ids::EveTypes bits), by the command line
};
int runIds(const IdsRunArgs& a);
// Passive mode: the frames of an interface (a mirror or SPAN port) through the
// engine until SIGINT/SIGTERM or the duration; alerts appended to eve.json and
// flushed as they come.
int runIdsLive(const IdsRunArgs& a);

struct IdsVerifyArgs {
  std::string dir, filter;
  bool verbose = false, quiet = false;
};
int runVerify(const IdsVerifyArgs& a);

}  // namespace palisade::cli
