// The gateway's web application firewall: a WAF engine behind an interface,
// evaluating a whole request (head and body) at once. The first engine runs
// the OWASP Core Rule Set (Debian's modsecurity-crs) on libmodsecurity3 in
// anomaly-scoring mode, one compiled rule set per paranoia level in use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace palisade::gateway {

struct WafRequest {
  std::string client_ip, server_ip;
  uint16_t client_port = 0, server_port = 0;
  std::string_view method, uri, version;  // uri as sent (path and query); version "1.1"
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view body;
};

struct WafVerdict {
  bool intercept = false;      // the rules would block (anomaly score at the threshold)
  int status = 0;              // the status the rules ask for (403 usually)
  int anomaly_score = 0;       // CRS's inbound anomaly score
  std::vector<int64_t> rules;  // ids of the rules that matched and log
  std::string message;         // the first matching attack rule's message
};

class WafEngine {
 public:
  virtual ~WafEngine() = default;
  // `paranoia` selects the rule set (1-4). Thread-safe: workers call it at once.
  virtual WafVerdict inspect(const WafRequest& r, int paranoia) = 0;
  virtual std::string describe() const = 0;
};

struct WafSetup {
  std::string crs_setup = "/etc/modsecurity/crs/crs-setup.conf";
  std::string rules_dir = "/usr/share/modsecurity-crs/rules";
  std::vector<int> paranoia_levels = {1};  // rule sets to compile
  int anomaly_threshold = 5;               // inbound score that blocks
  uint64_t body_limit = 1 << 20;
};

// Compiles the CRS once per paranoia level. Errors name the file and line
// libmodsecurity could not read.
Result<std::unique_ptr<WafEngine>> makeModSecurityEngine(const WafSetup& setup);

}  // namespace palisade::gateway
