// The API gateway's server: event-driven HTTP/1.1 over TLS in front of
// upstream pools.
//
// Each worker thread runs one epoll loop with its own SO_REUSEPORT listening
// sockets, client connections and upstream keep-alive pools; nothing on the
// request path takes a lock except the shared rate-limit table (sharded) and
// the revocation list (read-mostly). A request is read whole (head and body,
// within the limits) and checked before a byte of it goes upstream: route,
// IP lists, credentials, roles, rate limits, then the body's content. The
// response is streamed back with its framing kept (or de-chunked for HTTP/1.0
// clients), with back-pressure: an upstream is not read while its client's
// output holds more than 1 MiB.
//
// Every request ends in one audit event (events::EventType::Audit) and the
// route's counters, which /metrics on a health port serves in Prometheus text.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "events/writer.h"
#include "gateway/config.h"

namespace palisade::gateway {

class Worker;
struct Shared;

class Gateway {
 public:
  // `events` (may be null) gets one queue per worker; call start() before
  // the writer's start().
  Gateway(GatewayConfig config, events::EventWriter* events);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Loads certificates and keys, resolves upstreams, binds every listener
  // (once per worker) and starts the workers. Errors name the file or address.
  Status start();
  // Stops accepting, lets requests in flight finish (up to `grace_ms`), joins.
  void stop(int grace_ms = 5000);

  // Re-reads the credentials' revoked_file and JWT key set when they changed
  // (or all of them with `force`). Returns what was read or failed, empty
  // when nothing changed; `failed` is set when a file could not be used (a
  // broken key set leaves the keys in use as they were).
  std::string reloadFiles(bool force, bool* failed = nullptr);

  std::string metricsText() const;
  // The WAF engine in use ("" when no route has one).
  std::string wafDescription() const;
  const GatewayConfig& config() const;
  // Bound addresses, in listener order (port 0 in the config is resolved here).
  std::vector<std::string> boundAddresses() const;

 private:
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  events::EventWriter* events_;
  // Active health checks: one thread for every upstream host (when any
  // upstream has health_check), probes one at a time.
  void healthLoop();
  std::thread health_;
  std::mutex health_mu_;
  std::condition_variable health_cv_;
};

}  // namespace palisade::gateway
