// The OWASP CRS regression tests (FTW YAML files, as in CRS 3.3's
// tests/regression/tests) run against a WafEngine: each stage's request is
// built (method, uri, version, headers, data, or a raw/encoded request),
// given to the gateway's own HTTP parser (a request it refuses gets its
// status, as a client of the gateway would see) and to the WAF; the stage
// passes when every expectation holds: `log_contains` / `no_log_contains`
// (a regex over one log line per matched rule, `[id "N"] [msg "..."]`) and
// `status` (403 when the WAF blocks, else 200, or the parser's status).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "gateway/waf.h"

namespace palisade::gateway {

struct CrsTestResult {
  size_t passed = 0, failed = 0, skipped = 0, files = 0;
  std::vector<std::string> failures;  // "FILE test_title: why"
};

// Runs every *.yaml under `dir` (recursively, in name order) at `paranoia`.
// `progress` (may be empty) is called after each file with (done, total).
CrsTestResult runCrsTests(const std::string& dir, WafEngine& waf, int paranoia,
                          const std::function<void(size_t, size_t)>& progress);

}  // namespace palisade::gateway
