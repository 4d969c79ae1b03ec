// The gateway's configuration (`palisade gateway --config G.yaml`): listeners,
// upstream pools, credentials, and routes with their checks. docs/gateway.md
// documents every field. Loading reports every problem with file:line:column
// and never stops at the first.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/net.h"
#include "core/result.h"
#include "core/time.h"
#include "gateway/content.h"
#include "gateway/http.h"
#include "gateway/jwt.h"
#include "policy/diagnostics.h"

namespace palisade::gateway {

enum class ClientCert : uint8_t { None, Optional, Required };

struct Listener {
  std::string address;  // as written: "127.0.0.1:8443"
  std::string host;
  uint16_t port = 0;
  bool health = false;  // plaintext, serves only /healthz and /metrics
  // TLS (every listener but a health port): our certificate chain and key;
  // client_ca (with client_cert optional or required) asks for client certificates.
  std::string cert, key, client_ca;
  ClientCert client_cert = ClientCert::None;
};

struct UpstreamHost {
  std::string host;
  uint16_t port = 0;
  std::string text;  // "host:port", for events and metrics
};

// Retries of idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) after a
// 502, 503 or 504, a reset or a timeout before the response head, and of any
// request whose connection could not be made (nothing was sent).
struct RetryPolicy {
  uint32_t attempts = 1;           // tries after the first (0: none)
  TimeNs backoff = 25'000'000ull;  // first wait; doubled each time, with jitter
  double budget = 0.2;             // retries at most this share of requests (10 s window)
  uint32_t min_retries = 3;        // allowed per window whatever the share
};

// Active health checks: GET path on each host every interval.
struct HealthCheck {
  std::string path;  // empty: none
  TimeNs interval = 5'000'000'000ull;
  TimeNs timeout = 1'000'000'000ull;
  uint32_t healthy = 2, unhealthy = 2;  // consecutive results to change state
};

// Passive outlier ejection: a host failing this many times in a row is left
// out for `ejection`, while no more than max_ejected of the hosts are out.
struct OutlierPolicy {
  uint32_t failures = 5;  // 0: off
  TimeNs ejection = 30'000'000'000ull;
  double max_ejected = 0.5;
};

struct Upstream {
  std::string name;
  std::vector<UpstreamHost> hosts;
  uint32_t pool = 32;  // idle keep-alive connections kept per host
  RetryPolicy retries;
  HealthCheck health;
  OutlierPolicy outlier;
};

struct ApiKey {
  std::string id;
  std::array<uint8_t, 32> sha256{};  // of the key as the client sends it
  std::vector<std::string> roles;
};

struct CertIdentity {
  std::string subject;  // the verified client certificate's subject CN
  std::vector<std::string> roles;
};

struct Credentials {
  std::string api_key_header = "x-api-key";
  std::vector<ApiKey> api_keys;
  std::vector<CertIdentity> certificates;
  std::vector<std::string>
      revoked;               // identities (or "jti:<id>") refused even with valid credentials
  std::string revoked_file;  // one per line; re-read when it changes
  // JWT bearer tokens: a JWK Set file (re-read when it changes) and the claims' rules.
  std::string jwt_keys;
  JwtRules jwt;
};

enum class AuthMethod : uint8_t { ApiKey, Mtls, Jwt };

struct RateLimit {
  double rate = 0;  // per second; 0: none
  double burst = 0;
};

enum class WafMode : uint8_t { Off, Detection, Blocking };

struct RouteWaf {
  WafMode mode = WafMode::Off;
  int paranoia = 1;  // CRS paranoia level, 1-4
};

// The WAF engine's settings (`waf:` at the top level).
struct WafSettings {
  std::string crs_setup = "/etc/modsecurity/crs/crs-setup.conf";
  std::string rules_dir = "/usr/share/modsecurity-crs/rules";
  int threshold = 5;  // CRS inbound anomaly score that blocks
};

struct Route {
  std::string name;
  std::string host;                  // empty: any host
  std::string path = "/";            // prefix, matched on whole segments
  std::vector<std::string> methods;  // empty: any
  size_t upstream = 0;
  std::vector<AuthMethod> auth;    // any one suffices; empty: anonymous
  std::vector<std::string> roles;  // the identity needs one of them; empty: any identity
  std::vector<Prefix> allow, deny;
  RateLimit per_client, per_ip;
  uint64_t max_body = 0;           // 0: the gateway's limit
  std::optional<JsonLimits> json;  // on (with defaults) unless "json: off"
  std::optional<XmlLimits> xml;    // on (with defaults) unless "xml: off"
  RouteWaf waf;
  policy::SourceLoc loc;
};

struct Timeouts {
  TimeNs header = 10'000'000'000ull;    // connection (or idle end) to a complete head
  TimeNs body = 30'000'000'000ull;      // head to a complete body
  TimeNs idle = 60'000'000'000ull;      // keep-alive between requests
  TimeNs connect = 2'000'000'000ull;    // upstream connect
  TimeNs response = 30'000'000'000ull;  // upstream: request sent to response head
};

struct GatewayConfig {
  std::vector<Listener> listeners;
  std::vector<Upstream> upstreams;
  Credentials credentials;
  std::vector<Route> routes;
  Timeouts timeouts;
  HttpLimits limits;
  WafSettings waf;
  uint32_t max_connections = 10000;
  uint32_t workers = 1;
  std::string base_dir;  // the config file's directory: relative paths resolve against it
};

struct GatewayLoad {
  std::optional<GatewayConfig> config;  // set when there were no errors
  policy::Diagnostics diagnostics;
};

GatewayLoad loadGatewayConfig(const std::string& path);
GatewayLoad parseGatewayConfig(std::string_view yaml, const std::string& file_name,
                               const std::string& base_dir);

// "100/s", "6000/m", "50000/h" -> per second; error otherwise.
Result<double> parseRate(std::string_view s);

}  // namespace palisade::gateway
