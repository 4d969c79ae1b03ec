// Webhook: attack events POSTed as JSON to an operator's HTTP endpoint
// (a chat bridge, an incident tool), in order, with retries.
//
// One sender thread takes events from a bounded queue (1024; when full the
// oldest waiting event is dropped and counted) and POSTs each as
// `application/json` to the URL. A connection that cannot be made, a
// timeout, or a status other than 2xx is retried after 0.5 s, 1 s, 2 s ...
// up to `retries` times; then the event is counted as failed and the next
// one goes. `close()` waits for the queue to drain, at most `drain` long.
// Only http:// URLs (https:// is refused with that reason).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/result.h"
#include "events/writer.h"
#include "shipping/tls.h"

namespace palisade::ddos {

struct WebhookConfig {
  std::string url;             // http:// or https://
  uint32_t timeout_ms = 5000;  // connect, TLS handshake, send and answer, per attempt
  uint32_t retries = 5;
  // https: the CA bundle the server's certificate must chain to (empty: the
  // system's trust store), and a client certificate and key (both or neither).
  std::string ca, cert, key;
};

struct WebhookStats {
  uint64_t sent = 0, failed = 0, dropped = 0, retried = 0;
  std::string last_error;  // why the last failed attempt failed
};

class Webhook {
 public:
  // An error for a URL that is not http(s)://HOST[:PORT][/PATH], or TLS
  // files that do not load.
  static Result<std::unique_ptr<Webhook>> start(WebhookConfig cfg);
  ~Webhook();

  // Queues one event (a JSON object, with or without a trailing newline).
  void post(std::string_view json);
  // Sends what is queued (at most `drain_ms` more) and stops the thread.
  void close(uint32_t drain_ms = 10000);
  WebhookStats stats() const;
  // "webhook URL: N events sent, N failed, N dropped, N retries[; last error: WHY]"
  std::string summary() const;
  const std::string& url() const { return cfg_.url; }

 private:
  explicit Webhook(WebhookConfig cfg) : cfg_(std::move(cfg)) {}
  void run();
  // One attempt: true on a 2xx answer.
  bool attempt(const std::string& body, std::string& why);
  bool attemptTls(const std::string& request, TimeNs deadline, std::string& why);
  // Whether the first bytes of an answer are an HTTP 2xx status line.
  static bool statusOk(const char* buf, size_t got, std::string& why);

  WebhookConfig cfg_;
  std::optional<shipping::TlsContext> tls_;  // https
  std::string host_, path_;
  uint16_t port_ = 80;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  uint64_t deadline_ns_ = 0;  // when stopping: give up on what is left after this
  WebhookStats stats_;
  std::thread thread_;
};

// An event sink for the writer thread of `replay` and `run`: every `ddos`
// event line goes to the webhook too.
class WebhookSink final : public events::EventSink {
 public:
  explicit WebhookSink(Webhook& hook) : hook_(hook) {}
  Status write(std::string_view lines) override;
  Status flush() override { return {}; }

 private:
  Webhook& hook_;
};

}  // namespace palisade::ddos
