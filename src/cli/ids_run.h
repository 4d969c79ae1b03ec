// palisade ids -r (detection over a capture) and palisade ids verify (the
// suricata-verify runner); registered by cmd_ids.cc.
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"

namespace palisade::cli {

struct IdsRunArgs {
  std::string pcap, outdir = ".", classification;
  std::vector<std::string> rules, sets;
  size_t profile_rules = 0;
  bool quiet = false, progress = true;
};
int runIds(const IdsRunArgs& a);

struct IdsVerifyArgs {
  std::string dir, filter;
  bool verbose = false, quiet = false;
};
int runVerify(const IdsVerifyArgs& a);

}  // namespace palisade::cli
