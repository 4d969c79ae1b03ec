#include "ddos/webhook.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"
#include "core/tcp.h"
#include "core/time.h"

namespace palisade::ddos {

namespace {
constexpr size_t kQueueMax = 1024;

// Waits for fd to be ready for `events` until `deadline` (monotonic ns).
bool waitFor(int fd, short events, TimeNs deadline) {
  const TimeNs now = monotonicNs();
  return now < deadline &&
         pollFor(fd, events, static_cast<int>((deadline - now) / 1'000'000) + 1) == 1;
}
}  // namespace

Result<std::unique_ptr<Webhook>> Webhook::start(WebhookConfig cfg) {
  std::string_view u = cfg.url;
  const bool https = u.starts_with("https://");
  if (!https && !u.starts_with("http://"))
    return makeError(strCat("webhook ", cfg.url, ": expected http(s)://HOST[:PORT][/PATH]"));
  u.remove_prefix(https ? 8 : 7);
  const size_t slash = u.find('/');
  std::string_view hostport = u.substr(0, slash);
  std::string path = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
  std::string host(hostport), port = https ? "443" : "80";
  if (!hostport.empty() && hostport.front() == '[') {  // [v6]:port
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos)
      return makeError(strCat("webhook ", cfg.url, ": unclosed '[' in the host"));
    host = std::string(hostport.substr(1, close - 1));
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      port = std::string(hostport.substr(close + 2));
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = std::string(hostport.substr(0, colon));
    port = std::string(hostport.substr(colon + 1));
  }
  bool port_ok = !port.empty() && port.size() <= 5;
  for (char c : port)
    port_ok &= c >= '0' && c <= '9';
  if (host.empty() || !port_ok || std::stoul(port) == 0 || std::stoul(port) > 65535)
    return makeError(strCat("webhook ", cfg.url, ": expected http(s)://HOST[:PORT][/PATH]"));
  for (char c : path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return makeError(strCat("webhook ", printable(cfg.url), ": the path has spaces or controls"));
  std::optional<shipping::TlsContext> tls;
  if (https) {
    auto ctx = shipping::TlsContext::webClient({cfg.cert, cfg.key, cfg.ca});
    if (!ctx) return makeError(strCat("webhook ", cfg.url, ": ", ctx.error().message));
    tls = std::move(*ctx);
  }
  std::unique_ptr<Webhook> w(new Webhook(std::move(cfg)));
  w->tls_ = std::move(tls);
  w->host_ = std::move(host);
  w->port_ = static_cast<uint16_t>(std::stoul(port));
  w->path_ = std::move(path);
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

Webhook::~Webhook() {
  close(0);
}

void Webhook::post(std::string_view json) {
  while (!json.empty() && (json.back() == '\n' || json.back() == '\r'))
    json.remove_suffix(1);
  std::lock_guard lock(mu_);
  if (stopping_) return;
  if (queue_.size() >= kQueueMax) {
    queue_.pop_front();
    ++stats_.dropped;
  }
  queue_.emplace_back(json);
  cv_.notify_one();
}

void Webhook::close(uint32_t drain_ms) {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    deadline_ns_ = static_cast<uint64_t>(monotonicNs()) + uint64_t{drain_ms} * 1'000'000;
    cv_.notify_one();
  }
  thread_.join();
}

WebhookStats Webhook::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::string Webhook::summary() const {
  const WebhookStats s = stats();
  return strCat("webhook ", cfg_.url, ": ", std::to_string(s.sent), " events sent, ",
                std::to_string(s.failed), " failed, ", std::to_string(s.dropped), " dropped, ",
                std::to_string(s.retried), " retries",
                s.last_error.empty() ? std::string() : strCat("; last error: ", s.last_error));
}

bool Webhook::attempt(const std::string& body, std::string& why) {
  const TimeNs deadline = monotonicNs() + TimeNs{cfg_.timeout_ms} * 1'000'000;
  const std::string req =
      strCat("POST ", path_, " HTTP/1.1\r\nHost: ", host_, ":", std::to_string(port_),
             "\r\nContent-Type: application/json\r\nUser-Agent: palisade\r\nContent-Length: ",
             std::to_string(body.size()), "\r\nConnection: close\r\n\r\n", body);
  if (tls_) return attemptTls(req, deadline, why);
  auto conn = connectTcp(host_, port_, static_cast<int>(cfg_.timeout_ms));
  if (!conn) {
    why = conn.error().message;
    return false;
  }
  const int fd = *conn;
  size_t off = 0;
  while (off < req.size()) {
    if (!waitFor(fd, POLLOUT, deadline)) {
      why = "send: timed out";
      ::close(fd);
      return false;
    }
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      why = strCat("send: ", std::strerror(errno));
      ::close(fd);
      return false;
    }
    if (n > 0) off += static_cast<size_t>(n);
  }
  // The status line is all that matters: "HTTP/1.x NNN".
  char buf[256];
  size_t got = 0;
  while (got < 12) {
    if (!waitFor(fd, POLLIN, deadline)) {
      why = "no answer in time";
      ::close(fd);
      return false;
    }
    const ssize_t n = ::recv(fd, buf + got, sizeof buf - got, 0);
    if (n == 0) break;
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    if (n > 0) got += static_cast<size_t>(n);
  }
  ::close(fd);
  return statusOk(buf, got, why);
}

bool Webhook::statusOk(const char* buf, size_t got, std::string& why) {
  if (got < 12 || std::memcmp(buf, "HTTP/1.", 7) != 0) {
    why = "not an HTTP answer";
    return false;
  }
  if (buf[9] != '2') {
    why = strCat("status ", std::string(buf + 9, 3));
    return false;
  }
  return true;
}

bool Webhook::attemptTls(const std::string& req, TimeNs deadline, std::string& why) {
  auto left = [&] {
    const TimeNs now = monotonicNs();
    return now >= deadline ? 0 : static_cast<int>((deadline - now) / 1'000'000) + 1;
  };
  auto conn = shipping::TlsStream::connect(*tls_, host_, port_, host_, left());
  if (!conn) {
    why = conn.error().message;
    return false;
  }
  shipping::TlsStream& s = *conn;
  if (Status st = s.writeAll(req, left()); !st) {
    why = st.error().message;
    return false;
  }
  char buf[256];
  size_t got = 0;
  while (got < 12) {
    const int ms = left();
    if (ms == 0) break;
    auto n = s.read(buf + got, sizeof buf - got, ms);
    if (!n || *n == 0) break;
    got += *n;
  }
  s.finish(std::min(left(), 200));
  if (got < 12 && left() == 0) {
    why = "no answer in time";
    return false;
  }
  return statusOk(buf, got, why);
}

void Webhook::run() {
  for (;;) {
    std::string body;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      if (stopping_ && static_cast<uint64_t>(monotonicNs()) >= deadline_ns_) {
        stats_.failed += queue_.size();
        queue_.clear();
        return;
      }
      body = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string why;
    bool ok = false;
    uint32_t backoff_ms = 500;
    for (uint32_t i = 0; i <= cfg_.retries; ++i) {
      if (attempt(body, why)) {
        ok = true;
        break;
      }
      {
        std::lock_guard lock(mu_);
        stats_.last_error = why;
      }
      if (i == cfg_.retries) break;
      {
        std::unique_lock lock(mu_);
        ++stats_.retried;
        if (stopping_ && static_cast<uint64_t>(monotonicNs()) >= deadline_ns_) break;
        // Wait out the backoff (a close() ends it early only past its deadline).
        cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] {
          return stopping_ && static_cast<uint64_t>(monotonicNs()) >= deadline_ns_;
        });
      }
      backoff_ms = std::min<uint32_t>(backoff_ms * 2, 30000);
    }
    std::lock_guard lock(mu_);
    (ok ? stats_.sent : stats_.failed) += 1;
  }
}

Status WebhookSink::write(std::string_view lines) {
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    const std::string_view line = lines.substr(0, nl);
    if (line.find("\"event_type\":\"ddos\"") != std::string_view::npos) hook_.post(line);
    if (nl == std::string_view::npos) break;
    lines.remove_prefix(nl + 1);
  }
  return {};
}

}  // namespace palisade::ddos
