#include "gateway/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "core/json_writer.h"
#include "core/strings.h"
#include "core/tcp.h"
#include "core/time.h"
#include "events/crypto.h"
#include "gateway/jwt.h"
#include "gateway/limiter.h"
#include "gateway/waf.h"
#include "shipping/tls.h"

namespace palisade::gateway {
namespace {

constexpr size_t kReadChunk = 16384;
constexpr size_t kOutHigh = 1 << 20;       // stop reading the upstream above this
constexpr size_t kOutLow = 256 << 10;      // and resume below this
constexpr size_t kPipelineCap = 64 << 10;  // bytes read ahead while a request is upstream
constexpr TimeNs kPoolIdleNs = 60'000'000'000ull;
constexpr TimeNs kSweepNs = 50'000'000ull;
constexpr TimeNs kMs = 1'000'000ull;

// Why the gateway answered a request itself (metrics label `reason`).
enum class Deny : uint8_t {
  Malformed,
  TooLarge,
  NotFound,
  Method,
  IpDenied,
  Unauthenticated,
  Forbidden,
  Revoked,
  RateLimited,
  Content,
  Timeout,
  Waf,
  kCount
};
constexpr const char* kDenyNames[] = {"malformed",    "too_large",       "not_found", "method",
                                      "ip_denied",    "unauthenticated", "forbidden", "revoked",
                                      "rate_limited", "content",         "timeout",   "waf"};
static_assert(std::size(kDenyNames) == static_cast<size_t>(Deny::kCount));
constexpr size_t kDenyCount = static_cast<size_t>(Deny::kCount);

constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                               0.25,  0.5,    1,     2.5,  5,     10};
constexpr size_t kBucketCount = std::size(kBuckets) + 1;

using Counter = std::atomic<uint64_t>;
// One writer (the worker) per counter: plain load+store, no locked add.
inline void bump(Counter& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct RouteCounters {
  std::array<Counter, 600> status{};
  std::array<Counter, kBucketCount> latency{};  // per bucket, not cumulative
  Counter latency_sum_ns{0}, bytes_in{0}, bytes_out{0};
  std::array<Counter, kDenyCount> denied{};
  std::array<Counter, 2> waf{};  // requests the WAF passed, and matched (blocked or detected)
};

enum class UpFail : uint8_t { Connect, Reset, Timeout, BadResponse, Status5xx, kCount };
constexpr const char* kUpFailNames[] = {"connect", "reset", "timeout", "bad_response", "5xx"};

struct HostCounters {
  Counter requests{0}, opened{0}, retried{0};
  std::array<Counter, static_cast<size_t>(UpFail::kCount)> failed{};
};

struct WorkerCounters {
  std::unique_ptr<RouteCounters[]> routes;  // routes, then one for "no route"
  std::unique_ptr<HostCounters[]> hosts;    // every upstream's hosts, in order
  Counter accepted{0}, refused{0}, tls_failed{0}, open{0}, idle_closed{0}, aborted{0};
  std::unique_ptr<Counter[]> budget_exhausted;  // per upstream
  std::unique_ptr<Counter[]> panic;             // per upstream: every host out, sent anyway
};

bool idempotent(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
    if (method == m) return true;
  return false;
}

// One upstream host's state as every worker sees it: the active health
// check's verdict and passive outlier ejection.
struct HostState {
  std::atomic<bool> healthy{true};
  std::atomic<uint32_t> failures{0};       // consecutive
  std::atomic<uint64_t> ejected_until{0};  // monotonic ns
  std::atomic<uint64_t> ejections{0};
  uint32_t checks_ok = 0, checks_bad = 0;  // health thread only
};

struct Resolved {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

}  // namespace

struct Shared {
  GatewayConfig cfg;
  std::vector<std::optional<shipping::TlsContext>> tls;  // per listener
  std::vector<std::vector<Resolved>> hosts;              // per upstream, per host
  std::vector<size_t> host_base;                         // upstream -> first host counter
  size_t host_total = 0;
  std::vector<uint16_t> ports;              // bound port per listener
  std::unique_ptr<HostState[]> host_state;  // per host, indexed like host_base
  HostState& host(size_t ui, size_t hi) { return host_state[host_base[ui] + hi]; }
  bool available(size_t ui, size_t hi, TimeNs now) {
    HostState& h = host(ui, hi);
    return h.healthy.load(std::memory_order_relaxed) &&
           h.ejected_until.load(std::memory_order_relaxed) <= now;
  }
  // A request's outcome on a host, for passive outlier ejection.
  void hostResult(size_t ui, size_t hi, bool ok, TimeNs now) {
    HostState& h = host(ui, hi);
    if (ok) {
      if (h.failures.load(std::memory_order_relaxed) != 0)
        h.failures.store(0, std::memory_order_relaxed);
      return;
    }
    const OutlierPolicy& p = cfg.upstreams[ui].outlier;
    const uint32_t f = h.failures.fetch_add(1, std::memory_order_relaxed) + 1;
    if (p.failures == 0 || f < p.failures || h.ejected_until.load(std::memory_order_relaxed) > now)
      return;
    const size_t n = cfg.upstreams[ui].hosts.size();
    size_t out = 0;
    for (size_t k = 0; k < n; ++k)
      out += host(ui, k).ejected_until.load(std::memory_order_relaxed) > now;
    if (static_cast<double>(out + 1) > p.max_ejected * static_cast<double>(n)) return;
    h.ejected_until.store(now + p.ejection, std::memory_order_relaxed);
    h.ejections.fetch_add(1, std::memory_order_relaxed);
    h.failures.store(0, std::memory_order_relaxed);
  }
  std::map<std::array<uint8_t, 32>, size_t> key_index;
  std::map<std::string, size_t, std::less<>> cert_index;
  RateLimiter limiter;
  std::unique_ptr<WafEngine> waf;  // when a route has one
  std::atomic<bool> stopping{false};
  std::atomic<int> grace_ms{5000};  // how long stop() lets requests in flight finish
  std::atomic<uint32_t> open_conns{0};
  uint64_t id_seed = 0;

  mutable std::mutex rev_mu;
  std::set<std::string, std::less<>> revoked;
  struct timespec rev_mtime {};
  bool rev_loaded = false;

  bool isRevoked(std::string_view id, std::string_view jti) const {
    std::lock_guard lock(rev_mu);
    if (revoked.find(id) != revoked.end()) return true;
    if (jti.empty() || jti.size() > 256) return false;  // verifyJwt keeps at most 256 bytes
    char key[4 + 256];  // "jti:<id>" without an allocation per request
    std::memcpy(key, "jti:", 4);
    std::memcpy(key + 4, jti.data(), jti.size());
    return revoked.find(std::string_view(key, 4 + jti.size())) != revoked.end();
  }

  // The JWT key set, replaced whole when its file changes; workers drop
  // their token caches when the generation moves.
  mutable std::mutex jwks_mu;
  std::shared_ptr<const JwtKeySet> jwks;
  struct timespec jwks_mtime {};
  std::atomic<uint64_t> jwks_gen{0};
  std::shared_ptr<const JwtKeySet> keySet() const {
    std::lock_guard lock(jwks_mu);
    return jwks;
  }
};

namespace {

struct Handle {
  enum class Kind : uint8_t { Listener, Client, Upstream };
  Kind kind;
  bool dead = false;
  uint32_t events = 0;  // registered with epoll
  explicit Handle(Kind k) : kind(k) {}
};

struct ListenSock : Handle {
  ListenSock() : Handle(Kind::Listener) {}
  int fd = -1;
  size_t listener = 0;
};

struct UpConn;

struct ClientConn : Handle {
  ClientConn() : Handle(Kind::Client) {}
  enum class St : uint8_t { Handshake, Head, Body, Busy, Closing, Lingering };
  int fd = -1;
  SSL* ssl = nullptr;
  size_t listener = 0;
  bool health = false;
  St st = St::Handshake;
  IpAddr peer, local;
  uint16_t peer_port = 0, local_port = 0;
  std::string peer_text;
  std::string cert_subject;  // verified client certificate's CN
  bool ssl_wants_write = false, read_eof = false, shut = false;
  uint32_t linger_left = 0;  // bytes still read and dropped while lingering
  std::string in;
  size_t scanned = 0;
  std::string out;
  size_t out_off = 0;
  TimeNs deadline = 0;
  size_t slot = 0;  // index in Worker::clients_

  // The request in progress.
  bool head_started = false;
  RequestHead head;
  std::string head_buf;
  std::string body;
  ChunkedDecoder chunked;
  uint64_t body_limit = 0;
  int route = -1;
  std::string identity;
  std::vector<std::string> token_roles;  // a JWT's roles, for the request
  WafVerdict waf;                        // this request's WAF verdict (when its route has one)
  bool waf_ran = false;
  const char* auth_kind = "none";
  char request_id[17] = {};
  TimeNs start_mono = 0, start_wall = 0, took = 0;
  uint64_t bytes_in = 0, bytes_out_start = 0, bytes_out = 0;
  std::string up_req;
  UpConn* up = nullptr;
  size_t up_host = 0;  // host index within the upstream
  uint32_t attempts = 0;
  bool retried_stale = false;
  TimeNs retry_at = 0;  // waiting to be resent (Worker::retry_wait_)
  bool decode_chunked = false;
  bool close_after = false;
};

struct UpConn : Handle {
  UpConn() : Handle(Kind::Upstream) {}
  enum class St : uint8_t { Connecting, Sending, Reading, Idle };
  int fd = -1;
  size_t upstream = 0, host = 0;
  St st = St::Connecting;
  std::string in;
  size_t out_off = 0;
  ResponseHead resp;
  bool head_done = false, got_bytes = false, reused = false, paused = false;
  uint64_t remaining = 0;
  ChunkedDecoder chunked;
  ClientConn* client = nullptr;
  TimeNs deadline = 0;
  size_t slot = 0;  // index in Worker::ups_
};

Result<Resolved> resolve(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host == "any" || host.empty() ? nullptr : host.c_str(),
                             service.c_str(), &hints, &res);
  if (rc != 0) return makeError(strCat(host, ": ", gai_strerror(rc)));
  Resolved r;
  std::memcpy(&r.addr, res->ai_addr, res->ai_addrlen);
  r.len = res->ai_addrlen;
  freeaddrinfo(res);
  return r;
}

void sockAddr(const sockaddr_storage& ss, IpAddr& ip, uint16_t& port) {
  if (ss.ss_family == AF_INET) {
    const auto& s4 = reinterpret_cast<const sockaddr_in&>(ss);
    ip = IpAddr::v4(reinterpret_cast<const uint8_t*>(&s4.sin_addr));
    port = ntohs(s4.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(ss);
    ip = IpAddr::v6(s6.sin6_addr.s6_addr);
    port = ntohs(s6.sin6_port);
  }
}

std::string_view hostOnly(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

// A path routed by prefix must mean the same to the upstream: dot segments,
// empty segments and encoded separators would let "/public/../admin" match
// the "/public" route and reach "/admin" after the upstream normalises it.
bool ambiguousPath(std::string_view p) {
  if (p == "*") return false;
  if (p.find("//") != std::string_view::npos || p.find('\\') != std::string_view::npos) return true;
  for (std::string_view enc : {"%2e", "%2f", "%5c", "%00"})
    if (containsIgnoreCase(p, enc)) return true;
  size_t i = 0;
  while (i < p.size()) {
    const size_t next = p.find('/', i + 1);
    const std::string_view seg =
        p.substr(i + 1, next == std::string_view::npos ? next : next - i - 1);
    if (seg == "." || seg == "..") return true;
    if (next == std::string_view::npos) break;
    i = next;
  }
  return false;
}

bool prefixMatches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

}  // namespace

class Worker {
 public:
  Worker(Shared& sh, size_t index, events::EventQueue* q) : sh_(sh), index_(index), events_(q) {
    counters_.routes = std::make_unique<RouteCounters[]>(sh.cfg.routes.size() + 1);
    counters_.hosts = std::make_unique<HostCounters[]>(std::max<size_t>(1, sh.host_total));
    pools_.resize(sh.cfg.upstreams.size());
    rr_.resize(sh.cfg.upstreams.size());
    budgets_.resize(sh.cfg.upstreams.size());
    counters_.budget_exhausted = std::make_unique<Counter[]>(sh.cfg.upstreams.size() + 1);
    counters_.panic = std::make_unique<Counter[]>(sh.cfg.upstreams.size() + 1);
    rng_ ^= monotonicNs() + index * 0x632be59bd9b4e019ull;
    for (size_t u = 0; u < pools_.size(); ++u)
      pools_[u].resize(sh.cfg.upstreams[u].hosts.size());
  }
  ~Worker() {
    for (ListenSock* l : listeners_) {
      if (l->fd >= 0) ::close(l->fd);
      delete l;
    }
    for (ClientConn* c : clients_)
      freeClient(c);
    for (UpConn* u : ups_)
      freeUp(u);
    reap();
    if (ep_ >= 0) ::close(ep_);
  }

  Status bind();
  void run();
  const WorkerCounters& counters() const { return counters_; }

 private:
  // epoll
  void watch(Handle* h, int fd, uint32_t ev);
  void unwatch(int fd) { epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }

  void accept(ListenSock* l);
  void onClient(ClientConn* c, uint32_t ev);
  void handshake(ClientConn* c);
  void readClient(ClientConn* c);
  void flushClient(ClientConn* c);
  void linger(ClientConn* c);
  void drainLingering(ClientConn* c);
  void updateClient(ClientConn* c);
  void process(ClientConn* c);
  bool beginRequest(ClientConn* c);
  void serveHealth(ClientConn* c);
  bool checkRoute(ClientConn* c);
  bool authenticate(ClientConn* c, const Route& r);
  bool checkBody(ClientConn* c);
  bool runWaf(ClientConn* c);
  void deny(ClientConn* c, int status, Deny why, std::string_view reason, bool close,
            std::string_view extra_headers = {});
  // The gateway's own answer: status, a JSON body {"error", "status", "request_id"}.
  void answer(ClientConn* c, int status, std::string_view reason,
              std::string_view extra_headers = {});
  void finishRequest(ClientConn* c, int status, const char* outcome, std::string_view reason,
                     const std::string* upstream_host);
  void resetRequest(ClientConn* c);
  void closeClient(ClientConn* c);
  void freeClient(ClientConn* c);

  void dispatch(ClientConn* c);
  void startUpstream(ClientConn* c);
  void onUpstream(UpConn* u, uint32_t ev);
  void sendUpstream(UpConn* u);
  void readUpstream(UpConn* u);
  void relay(UpConn* u);
  void responseHead(ClientConn* c, UpConn* u);
  void finishExchange(UpConn* u);
  void upstreamFailed(UpConn* u, UpFail kind, std::string_view reason);
  void closeUp(UpConn* u);
  void freeUp(UpConn* u);
  void updateUp(UpConn* u);
  HostCounters& hostCounters(const UpConn* u) {
    return counters_.hosts[sh_.host_base[u->upstream] + u->host];
  }

  void sweep();
  void reap();
  void audit(ClientConn* c, int status, const char* outcome, std::string_view reason,
             const std::string* upstream_host);

  Shared& sh_;
  size_t index_;
  events::EventQueue* events_;
  int ep_ = -1;
  TimeNs now_ = 0;
  std::vector<ListenSock*> listeners_;
  std::vector<ClientConn*> clients_;
  std::vector<UpConn*> ups_;
  std::vector<Handle*> graveyard_;
  std::vector<std::vector<std::vector<UpConn*>>> pools_;  // upstream, host -> idle
  std::vector<uint32_t> rr_;
  struct Budget {
    TimeNs start = 0;
    uint32_t requests = 0, retries = 0;
  };
  std::vector<Budget> budgets_;  // per upstream, 10 s windows
  std::vector<ClientConn*> retry_wait_;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  size_t pickHost(size_t ui, size_t avoid);
  bool scheduleRetry(ClientConn* c, size_t ui, size_t failed_host, bool connect_failure);
  void runRetries();
  uint64_t next_id_ = 0;
  events::Sha256 sha_;
  // Verified tokens until they expire: a token seen again skips its signature.
  struct CachedToken {
    JwtIdentity id;
  };
  // Looked up by the header's string_view: no copy of the token per request.
  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view t) const { return std::hash<std::string_view>{}(t); }
  };
  std::unordered_map<std::string, CachedToken, TokenHash, std::equal_to<>> token_cache_;
  uint64_t token_gen_ = 0;
  const JwtIdentity* verifyToken(std::string_view token, std::string_view& why);

 public:
  std::function<std::string()> metricsProvider_;

 private:
  WorkerCounters counters_;
  std::string scratch_;
};

// ---------------------------------------------------------------- setup

Status Worker::bind() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return makeError(errnoText("epoll_create1"));
  for (size_t i = 0; i < sh_.cfg.listeners.size(); ++i) {
    const Listener& l = sh_.cfg.listeners[i];
    auto addr = resolve(l.host, sh_.ports[i], true);
    if (!addr) return makeError(strCat("listener ", l.address, ": ", addr.error().message));
    const int fd = socket(addr->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return makeError(errnoText("socket"));
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) != 0 ||
        ::listen(fd, 1024) != 0) {
      const std::string why = errnoText(strCat("listener ", l.address));
      ::close(fd);
      return makeError(why);
    }
    if (sh_.ports[i] == 0) {  // the first worker learns the port the others bind
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      IpAddr ip;
      sockAddr(ss, ip, sh_.ports[i]);
    }
    auto* ls = new ListenSock;
    ls->fd = fd;
    ls->listener = i;
    listeners_.push_back(ls);
    watch(ls, fd, EPOLLIN);
  }
  return {};
}

void Worker::watch(Handle* h, int fd, uint32_t ev) {
  if (h->events == ev) return;
  if (ev == 0) {
    // Nothing to wait for: out of the set, since a level-triggered hang-up
    // or half-close would otherwise be reported again on every wait.
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    h->events = 0;
    return;
  }
  epoll_event e{};
  e.events = ev;
  e.data.ptr = h;
  if (epoll_ctl(ep_, h->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e) != 0 &&
      errno == ENOENT)
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
  h->events = ev;
}

void Worker::run() {
  std::array<epoll_event, 256> evs;
  TimeNs last_sweep = monotonicNs();
  TimeNs drain_until = 0;
  for (;;) {
    if (sh_.stopping.load(std::memory_order_relaxed) && drain_until == 0) {
      for (ListenSock* l : listeners_) {
        unwatch(l->fd);
        ::close(l->fd);
        l->fd = -1;
      }
      drain_until = monotonicNs() + static_cast<TimeNs>(sh_.grace_ms.load()) * kMs;
      // Idle keep-alive clients are closed now; busy ones finish first.
      for (ClientConn* c : std::vector<ClientConn*>(clients_))
        if (c->st == ClientConn::St::Head && c->in.empty()) closeClient(c);
      reap();
    }
    if (drain_until != 0) {
      bool busy = false;
      for (ClientConn* c : clients_)
        busy = busy || !c->dead;
      if (!busy || monotonicNs() >= drain_until) break;
    }
    int wait_ms = 50;
    if (!retry_wait_.empty()) {
      TimeNs first = UINT64_MAX;
      for (const ClientConn* c : retry_wait_)
        first = std::min(first, c->retry_at);
      const TimeNs t = monotonicNs();
      wait_ms = first <= t ? 0 : static_cast<int>(std::min<TimeNs>(50, (first - t) / kMs + 1));
    }
    const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), wait_ms);
    now_ = monotonicNs();
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handle*>(evs[i].data.ptr);
      if (h->dead) continue;
      switch (h->kind) {
        case Handle::Kind::Listener:
          accept(static_cast<ListenSock*>(h));
          break;
        case Handle::Kind::Client:
          onClient(static_cast<ClientConn*>(h), evs[i].events);
          break;
        case Handle::Kind::Upstream:
          onUpstream(static_cast<UpConn*>(h), evs[i].events);
          break;
      }
    }
    if (!retry_wait_.empty()) runRetries();
    if (now_ - last_sweep >= kSweepNs) {
      sweep();
      last_sweep = now_;
    }
    reap();
  }
}

// ---------------------------------------------------------------- clients

void Worker::accept(ListenSock* l) {
  const Listener& cfg = sh_.cfg.listeners[l->listener];
  for (int k = 0; k < 64; ++k) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        accept4(l->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that died in the queue
    if (sh_.open_conns.load(std::memory_order_relaxed) >= sh_.cfg.max_connections) {
      ::close(fd);
      bump(counters_.refused);
      continue;
    }
    sh_.open_conns.fetch_add(1, std::memory_order_relaxed);
    bump(counters_.accepted);
    bump(counters_.open);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new ClientConn;
    c->fd = fd;
    c->listener = l->listener;
    c->health = cfg.health;
    sockAddr(ss, c->peer, c->peer_port);
    c->peer_text = c->peer.toString();
    sockaddr_storage ls{};
    socklen_t llen = sizeof ls;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ls), &llen);
    sockAddr(ls, c->local, c->local_port);
    c->deadline = now_ + sh_.cfg.timeouts.header;
    c->slot = clients_.size();
    clients_.push_back(c);
    if (cfg.health) {
      c->st = ClientConn::St::Head;
    } else {
      c->ssl = SSL_new(sh_.tls[l->listener]->get());
      SSL_set_fd(c->ssl, fd);
      SSL_set_accept_state(c->ssl);
    }
    watch(c, fd, EPOLLIN);
  }
}

void Worker::onClient(ClientConn* c, uint32_t ev) {
  if (c->st == ClientConn::St::Lingering) {
    drainLingering(c);
    return;
  }
  if (ev & (EPOLLERR | EPOLLHUP)) {
    // Reset, or closed both ways: nothing can reach the client any more.
    if (c->head_started || c->st == ClientConn::St::Busy) bump(counters_.aborted);
    closeClient(c);
    return;
  }
  if (c->st == ClientConn::St::Handshake) {
    handshake(c);
    if (c->dead || c->st == ClientConn::St::Handshake) return;
  }
  if ((ev & EPOLLOUT) || c->ssl_wants_write) flushClient(c);
  if (c->dead) return;
  if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) readClient(c);
  if (c->dead) return;
  process(c);
  if (c->dead) return;
  flushClient(c);
  if (!c->dead) updateClient(c);
}

// The answer is out and the connection ends: our side is shut (close_notify,
// FIN) but what the client still sends is read and dropped for a while,
// bounded in time and bytes. Closing with unread bytes would make the kernel
// send a reset, and a client still uploading a refused body would lose the
// answer (RFC 9112 9.6).
void Worker::linger(ClientConn* c) {
  if (c->read_eof) {
    closeClient(c);
    return;
  }
  if (c->ssl != nullptr) {
    ERR_clear_error();
    SSL_shutdown(c->ssl);
  }
  c->shut = true;
  ::shutdown(c->fd, SHUT_WR);
  c->st = ClientConn::St::Lingering;
  c->deadline = now_ + 2'000'000'000ull;
  c->linger_left = 1u << 20;
  c->in.clear();
  watch(c, c->fd, EPOLLIN);
  drainLingering(c);
}

void Worker::drainLingering(ClientConn* c) {
  char buf[kReadChunk];
  for (;;) {
    ssize_t r;
    if (c->ssl != nullptr) {
      ERR_clear_error();
      const int n = SSL_read(c->ssl, buf, sizeof buf);
      if (n <= 0 && SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ) return;
      r = n;
    } else {
      r = recv(c->fd, buf, sizeof buf, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    }
    if (r <= 0 || static_cast<size_t>(r) >= c->linger_left) {
      closeClient(c);
      return;
    }
    c->linger_left -= static_cast<uint32_t>(r);
  }
}

void Worker::handshake(ClientConn* c) {
  ERR_clear_error();
  const int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->st = ClientConn::St::Head;
    if (X509* cert = SSL_get0_peer_certificate(c->ssl);
        cert != nullptr && SSL_get_verify_result(c->ssl) == X509_V_OK) {
      char cn[256];
      if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
        c->cert_subject = cn;
    }
    return;
  }
  const int err = SSL_get_error(c->ssl, r);
  if (err == SSL_ERROR_WANT_READ) {
    watch(c, c->fd, EPOLLIN);
  } else if (err == SSL_ERROR_WANT_WRITE) {
    watch(c, c->fd, EPOLLIN | EPOLLOUT);
  } else {
    bump(counters_.tls_failed);
    closeClient(c);
  }
}

void Worker::readClient(ClientConn* c) {
  size_t cap;
  switch (c->st) {
    case ClientConn::St::Head:
      cap = sh_.cfg.limits.max_header_bytes + kReadChunk;
      break;
    case ClientConn::St::Body:
      cap = c->head.body == BodyKind::Length ? c->head.content_length + kReadChunk : 4 * kReadChunk;
      break;
    case ClientConn::St::Busy:
      cap = kPipelineCap;
      break;
    default:
      return;
  }
  char buf[kReadChunk];
  while (c->in.size() < cap && !c->read_eof) {
    const size_t want = std::min(sizeof buf, cap - c->in.size());
    if (c->ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_read(c->ssl, buf, static_cast<int>(want));
      if (r > 0) {
        c->in.append(buf, static_cast<size_t>(r));
        continue;
      }
      const int err = SSL_get_error(c->ssl, r);
      if (err == SSL_ERROR_WANT_READ) break;
      if (err == SSL_ERROR_WANT_WRITE) {
        c->ssl_wants_write = true;
        break;
      }
      c->read_eof = true;  // close_notify, a reset, or a TLS error
    } else {
      const ssize_t r = recv(c->fd, buf, want, 0);
      if (r > 0) {
        c->in.append(buf, static_cast<size_t>(r));
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
      c->read_eof = true;
    }
  }
  if (c->read_eof) {
    // A client that ends its side after a request still gets the answer;
    // one that leaves mid-request (or between requests) is simply closed.
    if (c->st == ClientConn::St::Busy) {
      c->close_after = true;
    } else if (c->st == ClientConn::St::Head && c->in.empty() && !c->head_started) {
      closeClient(c);  // between requests: the usual end of a keep-alive connection
    }
    // Otherwise what is buffered may still be a whole request (a client that
    // half-closed after sending it): process() answers it or, when it is
    // incomplete, counts the abort and closes.
  }
}

void Worker::flushClient(ClientConn* c) {
  c->ssl_wants_write = false;
  while (c->out_off < c->out.size()) {
    const size_t n = c->out.size() - c->out_off;
    ssize_t w;
    if (c->ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_write(c->ssl, c->out.data() + c->out_off,
                              static_cast<int>(std::min<size_t>(n, 1 << 20)));
      if (r <= 0) {
        const int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
          c->ssl_wants_write = true;
          break;
        }
        closeClient(c);
        return;
      }
      w = r;
    } else {
      w = send(c->fd, c->out.data() + c->out_off, n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          c->ssl_wants_write = true;
          break;
        }
        closeClient(c);
        return;
      }
    }
    c->out_off += static_cast<size_t>(w);
    c->bytes_out += static_cast<size_t>(w);
  }
  if (c->out_off == c->out.size()) {
    c->out.clear();
    c->out_off = 0;
    if (c->st == ClientConn::St::Closing) {
      linger(c);
      return;
    }
  } else if (c->out_off > (1 << 20)) {
    c->out.erase(0, c->out_off);
    c->out_off = 0;
  }
  // Back-pressure released: the upstream may be read again.
  if (c->up != nullptr && c->up->paused && c->out.size() - c->out_off < kOutLow) {
    c->up->paused = false;
    updateUp(c->up);
  }
}

void Worker::updateClient(ClientConn* c) {
  uint32_t ev = 0;
  const bool reading = c->st == ClientConn::St::Head || c->st == ClientConn::St::Body ||
                       (c->st == ClientConn::St::Busy && c->in.size() < kPipelineCap);
  if (reading && !c->read_eof) ev |= EPOLLIN;
  if (c->ssl_wants_write || c->out_off < c->out.size()) ev |= EPOLLOUT;
  watch(c, c->fd, ev);
}

void Worker::process(ClientConn* c) {
  for (;;) {
    if (c->dead) return;
    if (c->st == ClientConn::St::Head) {
      if (c->in.empty()) {
        if (c->read_eof) {
          // The client is done sending: write out what is owed, then close.
          if (c->out_off < c->out.size())
            c->st = ClientConn::St::Closing;
          else
            closeClient(c);
        }
        return;
      }
      if (!c->head_started) {
        c->head_started = true;
        c->start_mono = now_;
        c->start_wall = wallClockNs();
        c->deadline = now_ + sh_.cfg.timeouts.header;
        snprintf(c->request_id, sizeof c->request_id, "%016" PRIx64,
                 sh_.id_seed + ((static_cast<uint64_t>(index_) << 56) | next_id_++));
      }
      HttpError err;
      const Parse p = parseRequestHead(c->in, sh_.cfg.limits, c->head, err, &c->scanned);
      if (p == Parse::Incomplete) {
        if (c->read_eof) {
          bump(counters_.aborted);
          closeClient(c);
        }
        return;
      }
      if (p == Parse::Failed) {
        c->bytes_in = c->in.size();
        deny(c, err.status,
             err.status == 413 || err.status == 414 || err.status == 431 ? Deny::TooLarge
                                                                         : Deny::Malformed,
             err.reason, true);
        return;
      }
      if (!beginRequest(c)) continue;  // answered already (health, or denied)
    }
    if (c->st == ClientConn::St::Body) {
      if (c->head.body == BodyKind::Length) {
        if (c->in.size() < c->head.content_length) {
          if (c->read_eof) {
            bump(counters_.aborted);
            closeClient(c);
          }
          return;
        }
        c->body.assign(c->in, 0, c->head.content_length);
        c->in.erase(0, c->head.content_length);
        c->bytes_in += c->head.content_length;
      } else {
        const size_t used = c->chunked.feed(c->in, &c->body);
        c->bytes_in += used;
        c->in.erase(0, used);
        if (c->chunked.failed()) {
          if (c->chunked.tooLarge())
            deny(c, 413, Deny::TooLarge, "request body too large", true);
          else
            deny(c, 400, Deny::Malformed, "malformed chunked body", true);
          return;
        }
        if (!c->chunked.done()) {
          if (c->read_eof) {
            bump(counters_.aborted);
            closeClient(c);
          }
          return;
        }
      }
      if (!checkBody(c) || !runWaf(c)) continue;
      dispatch(c);
    }
    return;  // Busy or Closing
  }
}

// Returns true when the request goes on (to its body or upstream), false
// when it was answered here.
bool Worker::beginRequest(ClientConn* c) {
  // The head moves out of the read buffer; its views move with it.
  c->head_buf.assign(c->in, 0, c->head.head_bytes);
  const char* old_base = c->in.data();
  const char* new_base = c->head_buf.data();
  auto rebase = [&](std::string_view& v) {
    if (!v.empty()) v = std::string_view(new_base + (v.data() - old_base), v.size());
  };
  rebase(c->head.method);
  rebase(c->head.target);
  rebase(c->head.path);
  rebase(c->head.query);
  rebase(c->head.host);
  for (Header& h : c->head.headers) {
    rebase(h.name);
    rebase(h.value);
  }
  c->in.erase(0, c->head.head_bytes);
  c->scanned = 0;
  c->bytes_in = c->head.head_bytes;
  c->bytes_out_start = c->bytes_out;
  if (!c->head.keep_alive) c->close_after = true;

  if (c->health) {
    serveHealth(c);
    return false;
  }
  if (!checkRoute(c)) return false;
  if (c->head.body == BodyKind::None) {
    if (runWaf(c)) dispatch(c);
    return false;
  }
  c->st = ClientConn::St::Body;
  c->deadline = now_ + sh_.cfg.timeouts.body;
  c->chunked.reset(c->body_limit);
  if (c->head.expect_continue) c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
  return true;
}

void Worker::serveHealth(ClientConn* c) {
  std::string body;
  int status = 200;
  const char* type = "application/json";
  if (c->head.body != BodyKind::None) c->close_after = true;  // its body is not read
  if (c->head.method != "GET" && c->head.method != "HEAD") {
    status = 405;
    body = "{\"error\":\"method not allowed\"}\n";
  } else if (c->head.path == "/healthz") {
    const bool stopping = sh_.stopping.load(std::memory_order_relaxed);
    status = stopping ? 503 : 200;
    body = stopping ? "{\"status\":\"stopping\"}\n" : "{\"status\":\"ok\"}\n";
  } else if (c->head.path == "/metrics") {
    body = metricsProvider_ ? metricsProvider_() : std::string();
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else {
    status = 404;
    body = "{\"error\":\"not found: the health port serves /healthz and /metrics\"}\n";
  }
  c->out.append(strCat(
      "HTTP/1.1 ", std::to_string(status), " ", statusText(status), "\r\nContent-Type: ", type,
      "\r\nContent-Length: ", std::to_string(body.size()), "\r\nCache-Control: no-store\r\n",
      c->close_after ? "Connection: close\r\n" : "", "\r\n"));
  if (c->head.method != "HEAD") c->out.append(body);
  resetRequest(c);
}

bool Worker::checkRoute(ClientConn* c) {
  const RequestHead& h = c->head;
  const bool body_pending = h.body != BodyKind::None;
  if (ambiguousPath(h.path)) {
    deny(c, 400, Deny::Malformed, "ambiguous path (dot or empty segments, encoded separators)",
         body_pending);
    return false;
  }
  const std::string_view host = hostOnly(h.host);
  int best = -1;
  size_t best_len = 0;
  bool wrong_method = false;
  std::string allow;
  for (size_t i = 0; i < sh_.cfg.routes.size(); ++i) {
    const Route& r = sh_.cfg.routes[i];
    if (!r.host.empty() && !equalsIgnoreCase(r.host, host)) continue;
    if (!prefixMatches(r.path, h.path)) continue;
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), h.method) == r.methods.end()) {
      wrong_method = true;
      for (const std::string& m : r.methods)
        if (allow.find(m) == std::string::npos) allow += allow.empty() ? m : strCat(", ", m);
      continue;
    }
    const bool better = best < 0 || r.path.size() > best_len ||
                        (r.path.size() == best_len && !r.host.empty() &&
                         sh_.cfg.routes[static_cast<size_t>(best)].host.empty());
    if (better) {
      best = static_cast<int>(i);
      best_len = r.path.size();
    }
  }
  if (best < 0) {
    if (wrong_method)
      deny(c, 405, Deny::Method, "method not allowed on this route", body_pending,
           strCat("Allow: ", allow, "\r\n"));
    else
      deny(c, 404, Deny::NotFound, "no route for this host and path", body_pending);
    return false;
  }
  c->route = best;
  const Route& r = sh_.cfg.routes[static_cast<size_t>(best)];
  for (const Prefix& p : r.deny) {
    if (p.contains(c->peer)) {
      deny(c, 403, Deny::IpDenied, "client address is denied", body_pending);
      return false;
    }
  }
  if (!r.allow.empty() && std::none_of(r.allow.begin(), r.allow.end(),
                                       [&](const Prefix& p) { return p.contains(c->peer); })) {
    deny(c, 403, Deny::IpDenied, "client address is not allowed", body_pending);
    return false;
  }
  // Per address first: it also bounds how fast one address can guess keys.
  if (r.per_ip.rate > 0) {
    if (uint32_t wait =
            sh_.limiter.take(static_cast<uint32_t>(best), 0,
                             std::string_view(reinterpret_cast<const char*>(c->peer.b.data()), 16),
                             r.per_ip.rate, r.per_ip.burst, now_)) {
      deny(c, 429, Deny::RateLimited, "rate limit for this address", body_pending,
           strCat("Retry-After: ", std::to_string(wait), "\r\n"));
      return false;
    }
  }
  if (!r.auth.empty() && !authenticate(c, r)) return false;
  if (r.per_client.rate > 0) {
    const std::string_view who =
        c->identity.empty() ? std::string_view(c->peer_text) : std::string_view(c->identity);
    if (uint32_t wait = sh_.limiter.take(static_cast<uint32_t>(best), 1, who, r.per_client.rate,
                                         r.per_client.burst, now_)) {
      deny(c, 429, Deny::RateLimited, "rate limit for this client", body_pending,
           strCat("Retry-After: ", std::to_string(wait), "\r\n"));
      return false;
    }
  }
  c->body_limit = r.max_body > 0 ? r.max_body : sh_.cfg.limits.max_body;
  if (h.body == BodyKind::Length && h.content_length > c->body_limit) {
    deny(c, 413, Deny::TooLarge, "request body too large", true);
    return false;
  }
  return true;
}

bool Worker::authenticate(ClientConn* c, const Route& r) {
  const bool body_pending = c->head.body != BodyKind::None;
  const Credentials& cr = sh_.cfg.credentials;
  static const std::vector<std::string> kNoRoles;
  const std::vector<std::string>* roles = &kNoRoles;
  for (AuthMethod m : r.auth) {
    if (m == AuthMethod::ApiKey) {
      const std::string_view key = c->head.header(cr.api_key_header);
      if (key.empty()) continue;
      const events::Digest d = sha_(key);
      auto it = sh_.key_index.find(d);
      if (it == sh_.key_index.end()) {
        deny(c, 401, Deny::Unauthenticated, "invalid API key", body_pending,
             strCat("WWW-Authenticate: ApiKey header=\"", cr.api_key_header, "\"\r\n"));
        return false;
      }
      c->identity = cr.api_keys[it->second].id;
      roles = &cr.api_keys[it->second].roles;
      c->auth_kind = "api_key";
      break;
    }
    if (m == AuthMethod::Jwt) {
      const std::string_view authz = c->head.header("authorization");
      if (authz.size() < 7 || !equalsIgnoreCase(authz.substr(0, 7), "bearer ")) continue;
      std::string_view why;
      const JwtIdentity* id = verifyToken(trim(authz.substr(7)), why);
      if (id == nullptr) {
        deny(c, 401, Deny::Unauthenticated, why, body_pending,
             "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
        return false;
      }
      c->identity = id->subject;
      c->token_roles = id->roles;
      roles = &c->token_roles;
      c->auth_kind = "jwt";
      if (sh_.isRevoked(c->identity, id->jti)) {
        deny(c, 401, Deny::Revoked, "credential revoked", body_pending);
        return false;
      }
      break;
    }
    if (m == AuthMethod::Mtls && !c->cert_subject.empty()) {
      c->identity = c->cert_subject;
      if (auto it = sh_.cert_index.find(c->cert_subject); it != sh_.cert_index.end())
        roles = &cr.certificates[it->second].roles;
      c->auth_kind = "mtls";
      break;
    }
  }
  if (c->identity.empty()) {
    std::string challenge;
    for (AuthMethod m : r.auth) {
      if (m == AuthMethod::ApiKey)
        challenge += strCat("WWW-Authenticate: ApiKey header=\"", cr.api_key_header, "\"\r\n");
      if (m == AuthMethod::Jwt) challenge += "WWW-Authenticate: Bearer\r\n";
    }
    deny(c, 401, Deny::Unauthenticated, "credentials required", body_pending, challenge);
    return false;
  }
  if (sh_.isRevoked(c->identity, {})) {
    deny(c, 401, Deny::Revoked, "credential revoked", body_pending);
    return false;
  }
  if (!r.roles.empty()) {
    const bool has = std::any_of(roles->begin(), roles->end(), [&](const std::string& role) {
      return std::find(r.roles.begin(), r.roles.end(), role) != r.roles.end();
    });
    if (!has) {
      deny(c, 403, Deny::Forbidden, "identity lacks a role this route requires", body_pending);
      return false;
    }
  }
  return true;
}

const JwtIdentity* Worker::verifyToken(std::string_view token, std::string_view& why) {
  const uint64_t gen = sh_.jwks_gen.load(std::memory_order_acquire);
  if (gen != token_gen_) {
    token_cache_.clear();  // keys changed: what they verified is verified again
    token_gen_ = gen;
  }
  const int64_t now_s = static_cast<int64_t>(wallClockNs() / 1'000'000'000ull);
  const JwtRules& rules = sh_.cfg.credentials.jwt;
  if (auto it = token_cache_.find(token); it != token_cache_.end()) {
    if (now_s <= it->second.id.exp + rules.leeway_s) return &it->second.id;
    token_cache_.erase(it);
    why = "token expired";
    return nullptr;
  }
  const std::shared_ptr<const JwtKeySet> keys = sh_.keySet();
  if (!keys) {
    why = "no token keys loaded";
    return nullptr;
  }
  JwtResult r = verifyJwt(token, *keys, rules, now_s);
  if (!r.ok) {
    why = r.reason;
    return nullptr;
  }
  if (token_cache_.size() >= 4096) token_cache_.clear();  // bounded; refilled as tokens return
  return &token_cache_.emplace(std::string(token), CachedToken{std::move(r.id)}).first->second.id;
}

// The route's WAF on the whole request; false when it blocked (answered).
bool Worker::runWaf(ClientConn* c) {
  const Route& r = sh_.cfg.routes[static_cast<size_t>(c->route)];
  if (r.waf.mode == WafMode::Off || !sh_.waf) return true;
  WafRequest q;
  q.client_ip = c->peer_text;
  q.client_port = c->peer_port;
  q.server_ip = c->local.toString();
  q.server_port = c->local_port;
  q.method = c->head.method;
  q.uri = c->head.target;
  q.version = c->head.minor == 0 ? "1.0" : "1.1";
  for (const Header& h : c->head.headers)
    q.headers.emplace_back(h.name, h.value);
  q.body = c->body;
  c->waf = sh_.waf->inspect(q, r.waf.paranoia);
  c->waf_ran = true;
  bump(counters_.routes[static_cast<size_t>(c->route)].waf[c->waf.intercept ? 1 : 0]);
  if (!c->waf.intercept || r.waf.mode != WafMode::Blocking) return true;
  deny(c, 403, Deny::Waf, "blocked by the WAF", false);
  return false;
}

bool Worker::checkBody(ClientConn* c) {
  const Route& r = sh_.cfg.routes[static_cast<size_t>(c->route)];
  const BodyType t = bodyType(c->head.header("content-type"), c->body);
  ContentVerdict v;
  if (t == BodyType::Json && r.json)
    v = checkJson(c->body, *r.json);
  else if (t == BodyType::Xml && r.xml)
    v = checkXml(c->body, *r.xml);
  if (v.ok) return true;
  deny(c, v.status, v.status == 413 ? Deny::TooLarge : Deny::Content, v.reason, false);
  return false;
}

void Worker::deny(ClientConn* c, int status, Deny why, std::string_view reason, bool close,
                  std::string_view extra_headers) {
  const size_t ri = c->route < 0 ? sh_.cfg.routes.size() : static_cast<size_t>(c->route);
  bump(counters_.routes[ri].denied[static_cast<size_t>(why)]);
  if (close) c->close_after = true;
  answer(c, status, reason, extra_headers);
  finishRequest(c, status, "denied", reason, nullptr);
}

void Worker::answer(ClientConn* c, int status, std::string_view reason,
                    std::string_view extra_headers) {
  scratch_.clear();
  JsonWriter w(scratch_);
  w.beginObject().field("error", reason).field("status", status);
  w.field("request_id", std::string_view(c->request_id)).endObject();
  scratch_ += '\n';
  const size_t before = c->out.size();
  c->out.append(strCat(
      "HTTP/1.1 ", std::to_string(status), " ", statusText(status),
      "\r\nContent-Type: application/json\r\nContent-Length: ", std::to_string(scratch_.size()),
      "\r\nX-Request-Id: ", std::string_view(c->request_id), "\r\n", extra_headers,
      c->close_after ? "Connection: close\r\n" : "", "\r\n"));
  if (c->head.method != "HEAD") c->out.append(scratch_);
  c->bytes_out += c->out.size() - before;
}

void Worker::finishRequest(ClientConn* c, int status, const char* outcome, std::string_view reason,
                           const std::string* upstream_host) {
  const size_t ri = c->route < 0 ? sh_.cfg.routes.size() : static_cast<size_t>(c->route);
  RouteCounters& rc = counters_.routes[ri];
  bump(rc.status[static_cast<size_t>(std::clamp(status, 0, 599))]);
  // The clock now, not the loop's: the WAF or a large write may have taken time.
  const TimeNs end = monotonicNs();
  c->took = c->start_mono != 0 && end > c->start_mono ? end - c->start_mono : 0;
  const TimeNs took = c->took;
  const double secs = static_cast<double>(took) / 1e9;
  size_t b = 0;
  while (b < std::size(kBuckets) && secs > kBuckets[b])
    ++b;
  bump(rc.latency[b]);
  bump(rc.latency_sum_ns, took);
  bump(rc.bytes_in, c->bytes_in);
  bump(rc.bytes_out, c->bytes_out - c->bytes_out_start);
  audit(c, status, outcome, reason, upstream_host);
  resetRequest(c);
}

void Worker::audit(ClientConn* c, int status, const char* outcome, std::string_view reason,
                   const std::string* upstream_host) {
  if (events_ == nullptr) return;
  events::Event* e = events_->acquire();
  if (e == nullptr) return;  // the queue counts it as dropped
  e->ts_ns = c->start_wall;
  e->type = events::EventType::Audit;
  e->has_tuple = true;
  e->src_ip = c->peer;
  e->src_port = c->peer_port;
  e->dest_ip = c->local;
  e->dest_port = c->local_port;
  e->proto = 6;
  JsonWriter w(e->body);
  w.key("gateway").beginObject();
  w.field("request_id", std::string_view(c->request_id));
  w.field("route", c->route < 0
                       ? std::string_view("-")
                       : std::string_view(sh_.cfg.routes[static_cast<size_t>(c->route)].name));
  if (!c->head.method.empty()) {
    // The parser let through only token, host and visible-ASCII bytes here;
    // the writer escapes for JSON. No copies per request.
    w.field("method", c->head.method).field("host", c->head.host);
    w.field("path", c->head.path.substr(0, 1024));
  }
  w.field("status", status).field("outcome", outcome);
  if (!reason.empty()) w.field("reason", reason);
  w.field("auth", c->auth_kind);
  if (!c->identity.empty()) w.field("identity", c->identity);
  if (c->ssl != nullptr) w.field("tls", SSL_get_version(c->ssl));
  if (!c->cert_subject.empty()) w.field("client_cert", c->cert_subject);
  w.field("bytes_in", c->bytes_in).field("bytes_out", c->bytes_out - c->bytes_out_start);
  w.field("duration_us", c->took / 1000);
  if (c->waf_ran && c->route >= 0) {
    const RouteWaf& rw = sh_.cfg.routes[static_cast<size_t>(c->route)].waf;
    w.key("waf").beginObject();
    w.field("mode", rw.mode == WafMode::Blocking ? "blocking" : "detection");
    w.field("paranoia", rw.paranoia).field("anomaly_score", c->waf.anomaly_score);
    w.field("action", !c->waf.intercept              ? "pass"
                      : rw.mode == WafMode::Blocking ? "blocked"
                                                     : "detected");
    w.key("rules").beginArray();
    for (int64_t id : c->waf.rules)
      w.value(id);
    w.endArray();
    if (!c->waf.message.empty()) w.field("message", c->waf.message);
    w.endObject();
  }
  if (upstream_host != nullptr) w.field("upstream", *upstream_host);
  if (c->attempts > 0 || c->retried_stale)
    w.field("retries", c->attempts + (c->retried_stale ? 1u : 0u));
  w.endObject();
  events_->commit();
}

void Worker::resetRequest(ClientConn* c) {
  c->head_started = false;
  c->head = RequestHead{};
  c->route = -1;
  c->identity.clear();
  c->token_roles.clear();
  c->waf_ran = false;
  c->auth_kind = "none";
  c->body.clear();
  if (c->body.capacity() > (256 << 10)) c->body.shrink_to_fit();
  c->up_req.clear();
  if (c->up_req.capacity() > (256 << 10)) c->up_req.shrink_to_fit();
  c->attempts = 0;
  c->retried_stale = false;
  c->decode_chunked = false;
  c->bytes_in = 0;
  c->bytes_out_start = c->bytes_out;
  if (c->close_after) {
    c->st = ClientConn::St::Closing;
    c->deadline = now_ + sh_.cfg.timeouts.body;  // to write the answer out
  } else {
    c->st = ClientConn::St::Head;
    c->deadline = now_ + sh_.cfg.timeouts.idle;
  }
}

void Worker::closeClient(ClientConn* c) {
  if (c->dead) return;
  if (c->retry_at != 0) {
    retry_wait_.erase(std::remove(retry_wait_.begin(), retry_wait_.end(), c), retry_wait_.end());
    c->retry_at = 0;
  }
  if (c->up != nullptr) {
    UpConn* u = c->up;
    u->client = nullptr;
    c->up = nullptr;
    closeUp(u);  // a half-read response: the connection cannot be reused
  }
  if (c->ssl != nullptr && !c->read_eof && !c->shut) {
    ERR_clear_error();
    SSL_shutdown(c->ssl);  // close_notify, best effort
  }
  c->dead = true;
  ::close(c->fd);
  c->fd = -1;
  sh_.open_conns.fetch_sub(1, std::memory_order_relaxed);
  counters_.open.store(counters_.open.load(std::memory_order_relaxed) - 1,
                       std::memory_order_relaxed);
  // Swap-remove from the live list.
  clients_[c->slot] = clients_.back();
  clients_[c->slot]->slot = c->slot;
  clients_.pop_back();
  graveyard_.push_back(c);
}

void Worker::freeClient(ClientConn* c) {
  if (!c->dead) {
    if (c->fd >= 0) ::close(c->fd);
    sh_.open_conns.fetch_sub(1, std::memory_order_relaxed);
  }
  if (c->ssl != nullptr) SSL_free(c->ssl);
  delete c;
}

// ---------------------------------------------------------------- upstreams

void Worker::dispatch(ClientConn* c) {
  const Route& r = sh_.cfg.routes[static_cast<size_t>(c->route)];
  const RequestHead& h = c->head;
  const std::string_view connection = h.header("connection");
  const Credentials& cr = sh_.cfg.credentials;
  std::string& q = c->up_req;
  q.clear();
  q.reserve(h.head_bytes + c->body.size() + 256);
  q.append(h.method).append(" ").append(h.target.front() == '/' || h.target == "*" ? h.target
                                                                                   : h.path);
  if (h.target.front() != '/' && h.target != "*" && !h.query.empty()) q.append("?").append(h.query);
  q.append(" HTTP/1.1\r\n");
  std::string_view xff;
  for (const Header& hd : h.headers) {
    if (isHopByHop(hd.name, connection)) continue;
    if (equalsIgnoreCase(hd.name, "content-length") || equalsIgnoreCase(hd.name, "expect") ||
        equalsIgnoreCase(hd.name, "x-request-id") ||
        equalsIgnoreCase(hd.name, "x-forwarded-proto") ||
        equalsIgnoreCase(hd.name, "x-authenticated-identity") ||
        equalsIgnoreCase(hd.name, "x-authenticated-by") ||
        equalsIgnoreCase(hd.name, cr.api_key_header))
      continue;
    if (equalsIgnoreCase(hd.name, "x-forwarded-for")) {
      xff = hd.value;
      continue;
    }
    if (equalsIgnoreCase(hd.name, "host")) {
      q.append("Host: ").append(h.host).append("\r\n");
      continue;
    }
    q.append(hd.name).append(": ").append(hd.value).append("\r\n");
  }
  if (h.header("host").empty()) {
    // HTTP/1.0 without Host: the absolute-form authority, else the name the
    // client asked for in TLS (SNI), else the address it connected to.
    const char* sni =
        c->ssl != nullptr ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : nullptr;
    q.append("Host: ");
    if (!h.host.empty())
      q.append(h.host);
    else if (sni != nullptr)
      q.append(sni);
    else
      q.append(c->local.isV4() ? c->local.toString() : strCat("[", c->local.toString(), "]"));
    q.append("\r\n");
  }
  q.append("X-Forwarded-For: ");
  if (!xff.empty()) q.append(xff).append(", ");
  q.append(c->peer_text).append("\r\nX-Forwarded-Proto: ").append(c->ssl ? "https" : "http");
  q.append("\r\nX-Request-Id: ").append(c->request_id).append("\r\n");
  if (!c->identity.empty()) {
    q.append("X-Authenticated-Identity: ").append(c->identity).append("\r\n");
    q.append("X-Authenticated-By: ").append(c->auth_kind).append("\r\n");
  }
  if (!c->body.empty() || h.body != BodyKind::None || h.method == "POST" || h.method == "PUT" ||
      h.method == "PATCH")
    q.append("Content-Length: ").append(std::to_string(c->body.size())).append("\r\n");
  q.append("\r\n").append(c->body);
  c->st = ClientConn::St::Busy;
  c->deadline = 0;
  c->attempts = 0;
  Budget& b = budgets_[r.upstream];
  if (now_ - b.start > 10'000'000'000ull) b = Budget{now_, 0, 0};
  ++b.requests;
  c->up_host = pickHost(r.upstream, SIZE_MAX);
  startUpstream(c);
}

void Worker::startUpstream(ClientConn* c) {
  const size_t ui = sh_.cfg.routes[static_cast<size_t>(c->route)].upstream;
  const size_t hi = c->up_host;
  UpConn* u = nullptr;
  auto& pool = pools_[ui][hi];
  if (!pool.empty() && !c->retried_stale) {
    u = pool.back();
    pool.pop_back();
    u->reused = true;
    u->st = UpConn::St::Sending;
  } else {
    const Resolved& addr = sh_.hosts[ui][hi];
    const int fd = socket(addr.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    u = new UpConn;
    u->fd = fd;
    u->upstream = ui;
    u->host = hi;
    u->slot = ups_.size();
    ups_.push_back(u);
    if (fd < 0) {
      u->client = c;
      c->up = u;
      upstreamFailed(u, UpFail::Connect, "cannot create a socket");
      return;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bump(hostCounters(u).opened);
    const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr.addr), addr.len);
    u->st = rc == 0 ? UpConn::St::Sending : UpConn::St::Connecting;
    if (rc != 0 && errno != EINPROGRESS) {
      u->client = c;
      c->up = u;
      upstreamFailed(u, UpFail::Connect, "upstream connect failed");
      return;
    }
  }
  u->client = c;
  c->up = u;
  u->in.clear();
  u->out_off = 0;
  u->head_done = u->got_bytes = u->paused = false;
  u->deadline = now_ + (u->st == UpConn::St::Connecting ? sh_.cfg.timeouts.connect
                                                        : sh_.cfg.timeouts.response);
  bump(hostCounters(u).requests);
  if (u->st == UpConn::St::Sending) sendUpstream(u);
  if (!u->dead) updateUp(u);
}

void Worker::updateUp(UpConn* u) {
  if (u->dead) return;
  uint32_t ev = 0;
  switch (u->st) {
    case UpConn::St::Connecting:
      ev = EPOLLOUT;
      break;
    case UpConn::St::Sending:
      ev = EPOLLOUT | EPOLLIN;
      break;
    case UpConn::St::Reading:
      ev = u->paused ? 0u : static_cast<uint32_t>(EPOLLIN);  // paused: out of the set until drained
      break;
    case UpConn::St::Idle:
      ev = EPOLLIN;
      break;
  }
  watch(u, u->fd, ev);
}

void Worker::onUpstream(UpConn* u, uint32_t ev) {
  if (u->st == UpConn::St::Idle) {
    // A pooled connection spoke or closed: it cannot carry a request now.
    closeUp(u);
    return;
  }
  if (u->st == UpConn::St::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      upstreamFailed(u, UpFail::Connect, "upstream connect failed");
      return;
    }
    if (!(ev & EPOLLOUT)) return;
    u->st = UpConn::St::Sending;
    u->deadline = now_ + sh_.cfg.timeouts.response;
  }
  if (u->st == UpConn::St::Sending && (ev & EPOLLOUT)) sendUpstream(u);
  if (u->dead) return;
  if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) readUpstream(u);
  if (!u->dead) updateUp(u);
}

void Worker::sendUpstream(UpConn* u) {
  ClientConn* c = u->client;
  while (u->out_off < c->up_req.size()) {
    const ssize_t w =
        send(u->fd, c->up_req.data() + u->out_off, c->up_req.size() - u->out_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      upstreamFailed(u, UpFail::Reset, "upstream closed the connection");
      return;
    }
    u->out_off += static_cast<size_t>(w);
  }
  u->st = UpConn::St::Reading;
  u->deadline = now_ + sh_.cfg.timeouts.response;
}

void Worker::readUpstream(UpConn* u) {
  char buf[kReadChunk];
  bool eof = false;
  while (!u->paused) {
    const ssize_t r = recv(u->fd, buf, sizeof buf, 0);
    if (r > 0) {
      u->got_bytes = true;
      u->in.append(buf, static_cast<size_t>(r));
      u->deadline = now_ + sh_.cfg.timeouts.response;
      relay(u);
      if (u->dead || u->st == UpConn::St::Idle) return;
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
    eof = true;
    break;
  }
  if (!eof) return;
  if (u->head_done && u->resp.body == BodyKind::UntilClose) {
    finishExchange(u);
    return;
  }
  upstreamFailed(u, UpFail::Reset,
                 u->got_bytes ? "upstream closed mid-response" : "upstream closed the connection");
}

void Worker::relay(UpConn* u) {
  ClientConn* c = u->client;
  if (c == nullptr) {
    closeUp(u);
    return;
  }
  while (!u->head_done) {
    HttpError err;
    const Parse p = parseResponseHead(u->in, c->head.method, 65536, u->resp, err);
    if (p == Parse::Incomplete) return;
    if (p == Parse::Failed) {
      upstreamFailed(u, UpFail::BadResponse, err.reason);
      return;
    }
    if (u->resp.status == 101) {
      upstreamFailed(u, UpFail::BadResponse, "upstream switched protocols");
      return;
    }
    if (u->resp.status < 200) {  // 103 Early Hints and the like: not forwarded
      u->in.erase(0, u->resp.head_bytes);
      continue;
    }
    const int st = u->resp.status;
    if (st == 502 || st == 503 || st == 504) {
      bump(hostCounters(u).failed[static_cast<size_t>(UpFail::Status5xx)]);
      sh_.hostResult(u->upstream, u->host, false, now_);
      const size_t ui = u->upstream, hi = u->host;
      if (idempotent(c->head.method) && scheduleRetry(c, ui, hi, false)) {
        u->client = nullptr;
        c->up = nullptr;
        closeUp(u);  // its body is not wanted; the connection is not reused
        return;
      }
    } else if (st < 500) {
      sh_.hostResult(u->upstream, u->host, true, now_);
    }
    responseHead(c, u);
    u->in.erase(0, u->resp.head_bytes);
    u->head_done = true;
    u->remaining = u->resp.content_length;
    u->chunked.reset(UINT64_MAX);
    if (u->resp.body == BodyKind::None) {
      finishExchange(u);
      return;
    }
  }
  const size_t before = c->out.size();
  switch (u->resp.body) {
    case BodyKind::Length: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(u->remaining, u->in.size()));
      c->out.append(u->in, 0, n);
      u->in.erase(0, n);
      u->remaining -= n;
      break;
    }
    case BodyKind::Chunked: {
      const size_t used = u->chunked.feed(u->in, c->decode_chunked ? &c->out : nullptr);
      if (!c->decode_chunked) c->out.append(u->in, 0, used);
      u->in.erase(0, used);
      break;
    }
    case BodyKind::UntilClose:
      c->out.append(u->in);
      u->in.clear();
      break;
    case BodyKind::None:
      break;
  }
  c->bytes_out += c->out.size() - before;
  const bool done = (u->resp.body == BodyKind::Length && u->remaining == 0) ||
                    (u->resp.body == BodyKind::Chunked && u->chunked.done());
  if (u->resp.body == BodyKind::Chunked && u->chunked.failed()) {
    upstreamFailed(u, UpFail::BadResponse, "malformed chunked response");
    return;
  }
  flushClient(c);
  if (c->dead) return;
  if (done) {
    finishExchange(u);
    return;
  }
  if (c->out.size() - c->out_off > kOutHigh) u->paused = true;
  updateClient(c);
}

void Worker::responseHead(ClientConn* c, UpConn* u) {
  const ResponseHead& r = u->resp;
  const std::string_view connection = r.header("connection");
  if (r.body == BodyKind::Chunked && c->head.minor == 0) {
    c->decode_chunked = true;  // HTTP/1.0 has no chunks: decode, end by closing
    c->close_after = true;
  }
  if (r.body == BodyKind::UntilClose) c->close_after = true;
  if (sh_.stopping.load(std::memory_order_relaxed)) c->close_after = true;
  std::string& o = c->out;
  const size_t before = o.size();
  o.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ");
  o.append(r.reason.empty() ? statusText(r.status) : r.reason).append("\r\n");
  for (const Header& h : r.headers) {
    if (isHopByHop(h.name, connection) || equalsIgnoreCase(h.name, "x-request-id")) continue;
    o.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (r.body == BodyKind::Chunked && !c->decode_chunked) o.append("Transfer-Encoding: chunked\r\n");
  o.append("X-Request-Id: ").append(c->request_id).append("\r\n");
  if (c->close_after)
    o.append("Connection: close\r\n");
  else if (c->head.minor == 0)
    o.append("Connection: keep-alive\r\n");
  o.append("\r\n");
  c->bytes_out += o.size() - before;
}

void Worker::finishExchange(UpConn* u) {
  ClientConn* c = u->client;
  const int status = u->resp.status;
  const std::string& host = sh_.cfg.upstreams[u->upstream].hosts[u->host].text;
  u->client = nullptr;
  c->up = nullptr;
  // Back to the pool only when it ended cleanly with nothing extra behind.
  // (An upstream may answer before it has read the whole request, a 413
  // say: then the rest of the request is still due and the connection is
  // not reusable.)
  const bool reusable = u->resp.keep_alive && u->in.empty() && !u->paused &&
                        u->resp.body != BodyKind::UntilClose && u->st == UpConn::St::Reading;
  auto& pool = pools_[u->upstream][u->host];
  if (reusable && pool.size() < sh_.cfg.upstreams[u->upstream].pool &&
      !sh_.stopping.load(std::memory_order_relaxed)) {
    u->st = UpConn::St::Idle;
    u->deadline = now_ + kPoolIdleNs;
    pool.push_back(u);
    updateUp(u);
  } else {
    closeUp(u);
  }
  finishRequest(c, status, "forwarded", {}, &host);
  process(c);
  if (c->dead) return;
  flushClient(c);
  if (!c->dead) updateClient(c);
}

void Worker::upstreamFailed(UpConn* u, UpFail kind, std::string_view reason) {
  bump(hostCounters(u).failed[static_cast<size_t>(kind)]);
  ClientConn* c = u->client;
  const bool stale = u->reused && !u->got_bytes && kind == UpFail::Reset;
  const bool head_done = u->head_done;
  const int resp_status = u->resp.status;
  const size_t ui = u->upstream, hi = u->host;
  const std::string host = sh_.cfg.upstreams[ui].hosts[hi].text;
  // A pooled connection that had gone stale says nothing about the host.
  if (!stale) sh_.hostResult(ui, hi, false, now_);
  u->client = nullptr;
  if (c != nullptr) c->up = nullptr;
  closeUp(u);
  if (c == nullptr || c->dead) return;
  if (head_done) {
    // Part of the answer is already on its way: the client must see it cut.
    bump(counters_.aborted);
    c->took = monotonicNs() - c->start_mono;
    audit(c, resp_status, "error", reason, &host);
    c->close_after = true;
    closeClient(c);
    return;
  }
  // A pooled connection the upstream had closed: resend once on a new one.
  if (stale && !c->retried_stale) {
    c->retried_stale = true;
    startUpstream(c);
    return;
  }
  // Nothing reached the upstream (or the request may be sent twice): retry.
  if ((kind == UpFail::Connect || idempotent(c->head.method)) &&
      scheduleRetry(c, ui, hi, kind == UpFail::Connect))
    return;
  const int status = kind == UpFail::Timeout ? 504 : 502;
  answer(c, status, reason);
  finishRequest(c, status, "error", reason, &host);
  process(c);
  if (c->dead) return;
  flushClient(c);
  if (!c->dead) updateClient(c);
}

void Worker::closeUp(UpConn* u) {
  if (u->dead) return;
  if (u->st == UpConn::St::Idle) {
    auto& pool = pools_[u->upstream][u->host];
    pool.erase(std::remove(pool.begin(), pool.end(), u), pool.end());
  }
  if (u->client != nullptr) {
    u->client->up = nullptr;
    u->client = nullptr;
  }
  u->dead = true;
  if (u->fd >= 0) ::close(u->fd);
  u->fd = -1;
  ups_[u->slot] = ups_.back();
  ups_[u->slot]->slot = u->slot;
  ups_.pop_back();
  graveyard_.push_back(u);
}

void Worker::freeUp(UpConn* u) {
  if (!u->dead && u->fd >= 0) ::close(u->fd);
  delete u;
}

size_t Worker::pickHost(size_t ui, size_t avoid) {
  const size_t n = sh_.cfg.upstreams[ui].hosts.size();
  const size_t start = rr_[ui]++;
  for (size_t k = 0; k < n; ++k) {
    const size_t h = (start + k) % n;
    if (h != avoid && sh_.available(ui, h, now_)) return h;
  }
  // Every host is out (or only the one to avoid is left): send anyway rather
  // than fail everything (panic routing), to another host when there is one.
  bump(counters_.panic[ui]);
  return n > 1 && avoid < n ? (avoid + 1 + start % (n - 1)) % n : start % n;
}

bool Worker::scheduleRetry(ClientConn* c, size_t ui, size_t failed_host, bool connect_failure) {
  const Upstream& up = sh_.cfg.upstreams[ui];
  // A failed connect may move on to each other host once, retries or not:
  // nothing was sent.
  const uint32_t limit =
      connect_failure
          ? std::max<uint32_t>(up.retries.attempts, static_cast<uint32_t>(up.hosts.size() - 1))
          : up.retries.attempts;
  if (c->attempts >= limit) return false;
  Budget& b = budgets_[ui];
  if (now_ - b.start > 10'000'000'000ull) b = Budget{now_, 1, 0};
  const double allowed = std::max<double>(up.retries.min_retries, up.retries.budget * b.requests);
  if (static_cast<double>(b.retries) + 1 > allowed) {
    bump(counters_.budget_exhausted[ui]);
    return false;
  }
  ++b.retries;
  ++c->attempts;
  c->retried_stale = false;
  bump(counters_.hosts[sh_.host_base[ui] + failed_host].retried);
  c->up_host = pickHost(ui, failed_host);
  // Straight to another host after a refused connect; otherwise back off
  // (exponential, between half and all of the step, at most the response
  // timeout) so a struggling upstream is not hammered in step.
  TimeNs wait = 0;
  if (!connect_failure || c->up_host == failed_host) {
    const TimeNs cap = std::min<TimeNs>(
        up.retries.backoff << std::min<uint32_t>(c->attempts - 1, 10), sh_.cfg.timeouts.response);
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    wait = cap / 2 + rng_ % (cap / 2 + 1);
  }
  if (wait == 0) {
    startUpstream(c);
    return true;
  }
  c->retry_at = now_ + wait;
  retry_wait_.push_back(c);
  return true;
}

void Worker::runRetries() {
  for (size_t i = 0; i < retry_wait_.size();) {
    ClientConn* c = retry_wait_[i];
    if (c->retry_at > now_) {
      ++i;
      continue;
    }
    retry_wait_[i] = retry_wait_.back();
    retry_wait_.pop_back();
    c->retry_at = 0;
    if (!c->dead) startUpstream(c);
  }
}

// ---------------------------------------------------------------- time

void Worker::sweep() {
  for (ClientConn* c : std::vector<ClientConn*>(clients_)) {
    if (c->dead || c->deadline == 0 || now_ < c->deadline) continue;
    switch (c->st) {
      case ClientConn::St::Head:
        if (!c->head_started) {
          bump(counters_.idle_closed);
          closeClient(c);
        } else {
          c->bytes_in = c->in.size();
          deny(c, 408, Deny::Timeout, "request head not received in time", true);
          flushClient(c);
          if (!c->dead) updateClient(c);
        }
        break;
      case ClientConn::St::Body:
        deny(c, 408, Deny::Timeout, "request body not received in time", true);
        flushClient(c);
        if (!c->dead) updateClient(c);
        break;
      case ClientConn::St::Handshake:
      case ClientConn::St::Lingering:
      case ClientConn::St::Closing:  // a client not reading its answer
        if (c->st == ClientConn::St::Handshake) bump(counters_.tls_failed);
        closeClient(c);
        break;
      case ClientConn::St::Busy:
        break;
    }
  }
  for (UpConn* u : std::vector<UpConn*>(ups_)) {
    if (u->dead || now_ < u->deadline) continue;
    if (u->st == UpConn::St::Idle) {
      closeUp(u);
    } else if (u->paused) {
      u->deadline = now_ + sh_.cfg.timeouts.response;  // the client is slow, not the upstream
    } else {
      upstreamFailed(u, u->st == UpConn::St::Connecting ? UpFail::Connect : UpFail::Timeout,
                     u->st == UpConn::St::Connecting ? "upstream connect timed out"
                                                     : "upstream response timed out");
    }
  }
}

void Worker::reap() {
  for (Handle* h : graveyard_) {
    if (h->kind == Handle::Kind::Client) {
      auto* c = static_cast<ClientConn*>(h);
      if (c->ssl != nullptr) SSL_free(c->ssl);
      c->ssl = nullptr;
      delete c;
    } else if (h->kind == Handle::Kind::Upstream) {
      delete static_cast<UpConn*>(h);
    }
  }
  graveyard_.clear();
}

// ---------------------------------------------------------------- Gateway

Gateway::Gateway(GatewayConfig config, events::EventWriter* events)
    : shared_(std::make_unique<Shared>()), events_(events) {
  shared_->cfg = std::move(config);
}

Gateway::~Gateway() {
  stop(0);
}

const GatewayConfig& Gateway::config() const {
  return shared_->cfg;
}

Status Gateway::start() {
  Shared& sh = *shared_;
  const GatewayConfig& cfg = sh.cfg;
  for (const Listener& l : cfg.listeners) {
    if (l.health) {
      sh.tls.emplace_back();
      continue;
    }
    auto ctx = shipping::TlsContext::webServer({l.cert, l.key, l.client_ca},
                                               l.client_cert == ClientCert::Required);
    if (!ctx) return makeError(strCat("listener ", l.address, ": ", ctx.error().message));
    sh.tls.emplace_back(std::move(*ctx));
  }
  for (const Upstream& u : cfg.upstreams) {
    sh.host_base.push_back(sh.host_total);
    sh.host_total += u.hosts.size();
    std::vector<Resolved> addrs;
    for (const UpstreamHost& h : u.hosts) {
      auto r = resolve(h.host, h.port, false);
      if (!r) return makeError(strCat("upstream ", u.name, ": ", r.error().message));
      addrs.push_back(*r);
    }
    sh.hosts.push_back(std::move(addrs));
  }
  sh.host_state = std::make_unique<HostState[]>(std::max<size_t>(1, sh.host_total));
  // The WAF: one compiled CRS per paranoia level the routes use.
  WafSetup ws;
  ws.crs_setup = cfg.waf.crs_setup;
  ws.rules_dir = cfg.waf.rules_dir;
  ws.anomaly_threshold = cfg.waf.threshold;
  ws.paranoia_levels.clear();
  ws.body_limit = cfg.limits.max_body;
  for (const Route& r : cfg.routes) {
    ws.body_limit = std::max(ws.body_limit, r.max_body);
    if (r.waf.mode != WafMode::Off &&
        std::find(ws.paranoia_levels.begin(), ws.paranoia_levels.end(), r.waf.paranoia) ==
            ws.paranoia_levels.end())
      ws.paranoia_levels.push_back(r.waf.paranoia);
  }
  if (!ws.paranoia_levels.empty()) {
    auto engine = makeModSecurityEngine(ws);
    if (!engine) return makeError(strCat("waf: ", engine.error().message));
    sh.waf = std::move(*engine);
  }
  for (size_t i = 0; i < cfg.credentials.api_keys.size(); ++i)
    sh.key_index[cfg.credentials.api_keys[i].sha256] = i;
  for (size_t i = 0; i < cfg.credentials.certificates.size(); ++i)
    sh.cert_index[cfg.credentials.certificates[i].subject] = i;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&sh.id_seed), sizeof sh.id_seed) != 1)
    sh.id_seed = wallClockNs();
  sh.id_seed &= 0x00ffffffffffffffull;
  {
    std::lock_guard lock(sh.rev_mu);
    sh.revoked.insert(cfg.credentials.revoked.begin(), cfg.credentials.revoked.end());
  }
  bool failed = false;
  const std::string msg = reloadFiles(true, &failed);
  if (failed) return makeError(msg);
  for (const Listener& l : cfg.listeners)
    sh.ports.push_back(l.port);
  for (uint32_t i = 0; i < cfg.workers; ++i) {
    events::EventQueue* q = events_ != nullptr ? &events_->addQueue(4096, 768) : nullptr;
    auto w = std::make_unique<Worker>(sh, i, q);
    w->metricsProvider_ = [this] { return metricsText(); };
    if (Status st = w->bind(); !st) {
      workers_.clear();
      return st;
    }
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_)
    threads_.emplace_back([wp = w.get()] { wp->run(); });
  bool checks = false;
  for (const Upstream& u : cfg.upstreams)
    checks = checks || !u.health.path.empty();
  if (checks) health_ = std::thread([this] { healthLoop(); });
  return {};
}

namespace {

// One health check: GET path, a 2xx or 3xx status within the timeout.
// Returns "" when healthy, else why not.
std::string probe(const UpstreamHost& h, const HealthCheck& hc) {
  const int timeout_ms = static_cast<int>(hc.timeout / kMs);
  const TimeNs deadline = monotonicNs() + hc.timeout;
  auto fd = connectTcp(h.host, h.port, timeout_ms);
  if (!fd) return fd.error().message;
  const std::string req =
      strCat("GET ", hc.path, " HTTP/1.1\r\nHost: ", h.text,
             "\r\nUser-Agent: palisade-gateway-health\r\nConnection: close\r\n\r\n");
  std::string why;
  size_t sent = 0;
  std::string got;
  while (why.empty()) {
    const TimeNs now = monotonicNs();
    if (now >= deadline) {
      why = "timed out";
      break;
    }
    const int left = static_cast<int>((deadline - now) / kMs) + 1;
    if (sent < req.size()) {
      if (pollFor(*fd, POLLOUT, left) <= 0) continue;
      const ssize_t w = send(*fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) why = errnoText("send");
      if (w > 0) sent += static_cast<size_t>(w);
      continue;
    }
    if (pollFor(*fd, POLLIN, left) <= 0) continue;
    char buf[512];
    const ssize_t r = recv(*fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EAGAIN) continue;
    if (r <= 0) {
      why = "closed before a status line";
      break;
    }
    got.append(buf, static_cast<size_t>(r));
    if (got.find("\r\n") == std::string::npos && got.size() < 512) continue;
    if (got.size() < 12 || got.compare(0, 7, "HTTP/1.") != 0) {
      why = "not an HTTP response";
    } else if (got[9] != '2' && got[9] != '3') {
      why = strCat("status ", got.substr(9, 3));
    }
    break;
  }
  ::close(*fd);
  return why;
}

}  // namespace

void Gateway::healthLoop() {
  Shared& sh = *shared_;
  const GatewayConfig& cfg = sh.cfg;
  std::vector<TimeNs> next(sh.host_total, 0);
  std::unique_lock lock(health_mu_);
  while (!sh.stopping.load()) {
    for (size_t ui = 0; ui < cfg.upstreams.size(); ++ui) {
      const Upstream& u = cfg.upstreams[ui];
      if (u.health.path.empty()) continue;
      for (size_t hi = 0; hi < u.hosts.size() && !sh.stopping.load(); ++hi) {
        const size_t k = sh.host_base[ui] + hi;
        if (monotonicNs() < next[k]) continue;
        next[k] = monotonicNs() + u.health.interval;
        lock.unlock();
        const std::string why = probe(u.hosts[hi], u.health);
        lock.lock();
        HostState& h = sh.host(ui, hi);
        const bool was = h.healthy.load();
        if (why.empty()) {
          h.checks_bad = 0;
          if (++h.checks_ok >= u.health.healthy && !was) {
            h.healthy.store(true);
            std::printf("palisade gateway: upstream %s host %s is healthy again\n", u.name.c_str(),
                        u.hosts[hi].text.c_str());
            std::fflush(stdout);
          }
        } else {
          h.checks_ok = 0;
          if (++h.checks_bad >= u.health.unhealthy && was) {
            h.healthy.store(false);
            std::printf("palisade gateway: upstream %s host %s is unhealthy: %s\n", u.name.c_str(),
                        u.hosts[hi].text.c_str(), why.c_str());
            std::fflush(stdout);
          }
        }
      }
    }
    health_cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void Gateway::stop(int grace_ms) {
  shared_->grace_ms.store(std::max(0, grace_ms));
  shared_->stopping.store(true);
  health_cv_.notify_all();
  if (health_.joinable()) health_.join();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::string Gateway::wafDescription() const {
  return shared_->waf ? shared_->waf->describe() : std::string();
}

std::vector<std::string> Gateway::boundAddresses() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < shared_->cfg.listeners.size(); ++i) {
    const Listener& l = shared_->cfg.listeners[i];
    const bool v6 = l.host.find(':') != std::string::npos;
    out.push_back(strCat(v6 ? "[" : "", l.host, v6 ? "]:" : ":",
                         std::to_string(i < shared_->ports.size() ? shared_->ports[i] : l.port)));
  }
  return out;
}

namespace {

bool sameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

}  // namespace

std::string Gateway::reloadFiles(bool force, bool* failed) {
  Shared& sh = *shared_;
  std::string msg;
  auto note = [&](std::string m, bool bad) {
    msg += msg.empty() ? m : strCat("; ", m);
    if (bad && failed != nullptr) *failed = true;
  };
  if (const std::string& path = sh.cfg.credentials.revoked_file; !path.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      note(errnoText(strCat("revoked_file ", path)), true);
    } else if (force || !sh.rev_loaded || !sameTime(st.st_mtim, sh.rev_mtime)) {
      std::ifstream in(path);
      if (!in) {
        note(errnoText(strCat("revoked_file ", path)), true);
      } else {
        std::set<std::string, std::less<>> ids(sh.cfg.credentials.revoked.begin(),
                                               sh.cfg.credentials.revoked.end());
        std::string line;
        size_t n = 0;
        while (std::getline(in, line) && n < 1'000'000) {
          const std::string_view id = trim(line);
          if (id.empty() || id.front() == '#') continue;
          ids.emplace(id);
          ++n;
        }
        std::lock_guard lock(sh.rev_mu);
        sh.revoked = std::move(ids);
        sh.rev_mtime = st.st_mtim;
        sh.rev_loaded = true;
        note(strCat("revoked_file ", path, ": ", std::to_string(n), " revoked"), false);
      }
    }
  }
  if (const std::string& path = sh.cfg.credentials.jwt_keys; !path.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      note(errnoText(strCat("jwt keys ", path)), true);
    } else if (force || !sh.keySet() || !sameTime(st.st_mtim, sh.jwks_mtime)) {
      auto set = JwtKeySet::load(path);
      if (!set) {
        // A broken key file leaves the keys in use as they were.
        note(strCat("jwt keys: ", set.error().message,
                    sh.keySet() ? " (keeping the previous keys)" : ""),
             true);
        std::lock_guard lock(sh.jwks_mu);
        sh.jwks_mtime = st.st_mtim;
      } else {
        const size_t n = set->keys().size();
        {
          std::lock_guard lock(sh.jwks_mu);
          sh.jwks = std::make_shared<const JwtKeySet>(std::move(*set));
          sh.jwks_mtime = st.st_mtim;
        }
        sh.jwks_gen.fetch_add(1, std::memory_order_release);
        note(strCat("jwt keys ", path, ": ", std::to_string(n), " key(s)"), false);
      }
    }
  }
  return msg;
}

std::string Gateway::metricsText() const {
  const Shared& sh = *shared_;
  const GatewayConfig& cfg = sh.cfg;
  std::string o;
  o.reserve(16384);
  auto sum = [&](auto get) {
    uint64_t n = 0;
    for (const auto& w : workers_)
      n += get(w->counters()).load(std::memory_order_relaxed);
    return n;
  };
  const size_t nroutes = cfg.routes.size() + 1;
  auto routeName = [&](size_t i) -> std::string_view {
    return i < cfg.routes.size() ? std::string_view(cfg.routes[i].name) : std::string_view("-");
  };
  o += "# HELP palisade_gateway_requests_total Requests answered, by route and status code.\n"
       "# TYPE palisade_gateway_requests_total counter\n";
  for (size_t r = 0; r < nroutes; ++r) {
    for (size_t s = 0; s < 600; ++s) {
      const uint64_t n =
          sum([&](const WorkerCounters& w) -> const Counter& { return w.routes[r].status[s]; });
      if (n == 0) continue;
      o += strCat("palisade_gateway_requests_total{route=\"", routeName(r), "\",code=\"",
                  std::to_string(s), "\"} ", std::to_string(n), "\n");
    }
  }
  o += "# HELP palisade_gateway_request_duration_seconds Time from a request's first byte to its "
       "answer's last byte handed to TLS.\n"
       "# TYPE palisade_gateway_request_duration_seconds histogram\n";
  for (size_t r = 0; r < nroutes; ++r) {
    uint64_t cum = 0;
    for (size_t b = 0; b < kBucketCount; ++b) {
      cum += sum([&](const WorkerCounters& w) -> const Counter& { return w.routes[r].latency[b]; });
      char le[32];
      if (b < std::size(kBuckets))
        snprintf(le, sizeof le, "%g", kBuckets[b]);
      else
        snprintf(le, sizeof le, "+Inf");
      o += strCat("palisade_gateway_request_duration_seconds_bucket{route=\"", routeName(r),
                  "\",le=\"", le, "\"} ", std::to_string(cum), "\n");
    }
    const uint64_t ns =
        sum([&](const WorkerCounters& w) -> const Counter& { return w.routes[r].latency_sum_ns; });
    char buf[64];
    snprintf(buf, sizeof buf, "%.9f", static_cast<double>(ns) / 1e9);
    o += strCat("palisade_gateway_request_duration_seconds_sum{route=\"", routeName(r), "\"} ", buf,
                "\n", "palisade_gateway_request_duration_seconds_count{route=\"", routeName(r),
                "\"} ", std::to_string(cum), "\n");
  }
  o += "# HELP palisade_gateway_route_availability Share of a route's answers that were not 5xx "
       "since start (1 with no requests).\n"
       "# TYPE palisade_gateway_route_availability gauge\n";
  for (size_t r = 0; r < cfg.routes.size(); ++r) {
    uint64_t total = 0, errors = 0;
    for (size_t s = 0; s < 600; ++s) {
      const uint64_t n =
          sum([&](const WorkerCounters& w) -> const Counter& { return w.routes[r].status[s]; });
      total += n;
      if (s >= 500) errors += n;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.6f",
             total == 0 ? 1.0 : 1.0 - static_cast<double>(errors) / static_cast<double>(total));
    o += strCat("palisade_gateway_route_availability{route=\"", routeName(r), "\"} ", buf, "\n");
  }
  o += "# HELP palisade_gateway_denied_total Requests the gateway answered itself, by reason.\n"
       "# TYPE palisade_gateway_denied_total counter\n";
  for (size_t r = 0; r < nroutes; ++r)
    for (size_t d = 0; d < kDenyCount; ++d) {
      const uint64_t n =
          sum([&](const WorkerCounters& w) -> const Counter& { return w.routes[r].denied[d]; });
      if (n == 0) continue;
      o += strCat("palisade_gateway_denied_total{route=\"", routeName(r), "\",reason=\"",
                  kDenyNames[d], "\"} ", std::to_string(n), "\n");
    }
  o += "# HELP palisade_gateway_waf_requests_total Requests the WAF inspected, by route and result "
       "(match: blocked, or logged in detection mode).\n"
       "# TYPE palisade_gateway_waf_requests_total counter\n";
  for (size_t r = 0; r < cfg.routes.size(); ++r) {
    if (cfg.routes[r].waf.mode == WafMode::Off) continue;
    for (size_t k = 0; k < 2; ++k)
      o += strCat("palisade_gateway_waf_requests_total{route=\"", routeName(r), "\",result=\"",
                  k ? "match" : "pass", "\"} ",
                  std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                    return w.routes[r].waf[k];
                  })),
                  "\n");
  }
  o += "# HELP palisade_gateway_bytes_total Request and response bytes (HTTP, before TLS), by "
       "route.\n"
       "# TYPE palisade_gateway_bytes_total counter\n";
  for (size_t r = 0; r < nroutes; ++r) {
    o += strCat("palisade_gateway_bytes_total{route=\"", routeName(r), "\",direction=\"in\"} ",
                std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                  return w.routes[r].bytes_in;
                })),
                "\n");
    o += strCat("palisade_gateway_bytes_total{route=\"", routeName(r), "\",direction=\"out\"} ",
                std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                  return w.routes[r].bytes_out;
                })),
                "\n");
  }
  o += "# HELP palisade_gateway_upstream_requests_total Requests sent to each upstream host.\n"
       "# TYPE palisade_gateway_upstream_requests_total counter\n";
  std::string errors, opened;
  for (size_t u = 0; u < cfg.upstreams.size(); ++u) {
    for (size_t h = 0; h < cfg.upstreams[u].hosts.size(); ++h) {
      const size_t hi = sh.host_base[u] + h;
      const std::string labels = strCat("upstream=\"", cfg.upstreams[u].name, "\",host=\"",
                                        cfg.upstreams[u].hosts[h].text, "\"");
      o += strCat("palisade_gateway_upstream_requests_total{", labels, "} ",
                  std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                    return w.hosts[hi].requests;
                  })),
                  "\n");
      opened += strCat("palisade_gateway_upstream_connections_total{", labels, "} ",
                       std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                         return w.hosts[hi].opened;
                       })),
                       "\n");
      for (size_t k = 0; k < static_cast<size_t>(UpFail::kCount); ++k)
        errors +=
            strCat("palisade_gateway_upstream_errors_total{", labels, ",kind=\"", kUpFailNames[k],
                   "\"} ", std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                     return w.hosts[hi].failed[k];
                   })),
                   "\n");
    }
  }
  o += "# HELP palisade_gateway_upstream_connections_total Upstream connections opened (the rest "
       "reused a pooled one).\n"
       "# TYPE palisade_gateway_upstream_connections_total counter\n" +
       opened;
  o += "# HELP palisade_gateway_upstream_errors_total Upstream failures, by kind.\n"
       "# TYPE palisade_gateway_upstream_errors_total counter\n" +
       errors;
  std::string retried, healthy, ejections, budget, panic;
  const TimeNs now = monotonicNs();
  for (size_t u = 0; u < cfg.upstreams.size(); ++u) {
    const std::string up = strCat("upstream=\"", cfg.upstreams[u].name, "\"");
    budget += strCat("palisade_gateway_retry_budget_exhausted_total{", up, "} ",
                     std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                       return w.budget_exhausted[u];
                     })),
                     "\n");
    panic += strCat(
        "palisade_gateway_upstream_panic_total{", up, "} ",
        std::to_string(sum([&](const WorkerCounters& w) -> const Counter& { return w.panic[u]; })),
        "\n");
    for (size_t h = 0; h < cfg.upstreams[u].hosts.size(); ++h) {
      const size_t hi = sh.host_base[u] + h;
      const std::string labels = strCat(up, ",host=\"", cfg.upstreams[u].hosts[h].text, "\"");
      retried += strCat("palisade_gateway_upstream_retries_total{", labels, "} ",
                        std::to_string(sum([&](const WorkerCounters& w) -> const Counter& {
                          return w.hosts[hi].retried;
                        })),
                        "\n");
      const HostState& st = sh.host_state[hi];
      const bool up_now = st.healthy.load() && st.ejected_until.load() <= now;
      healthy += strCat("palisade_gateway_upstream_host_available{", labels, "} ",
                        up_now ? "1" : "0", "\n");
      ejections += strCat("palisade_gateway_upstream_ejections_total{", labels, "} ",
                          std::to_string(st.ejections.load()), "\n");
    }
  }
  o += "# HELP palisade_gateway_upstream_retries_total Requests sent again after this host failed "
       "them.\n"
       "# TYPE palisade_gateway_upstream_retries_total counter\n" +
       retried;
  o += "# HELP palisade_gateway_upstream_host_available 1 when the host passes its health checks "
       "and is not ejected.\n"
       "# TYPE palisade_gateway_upstream_host_available gauge\n" +
       healthy;
  o += "# HELP palisade_gateway_upstream_ejections_total Times the host was ejected for "
       "consecutive failures.\n"
       "# TYPE palisade_gateway_upstream_ejections_total counter\n" +
       ejections;
  o += "# HELP palisade_gateway_retry_budget_exhausted_total Retries not made: the upstream's "
       "retry budget was spent.\n"
       "# TYPE palisade_gateway_retry_budget_exhausted_total counter\n" +
       budget;
  o += "# HELP palisade_gateway_upstream_panic_total Requests sent to a host that was out because "
       "every host was.\n"
       "# TYPE palisade_gateway_upstream_panic_total counter\n" +
       panic;
  auto scalar = [&](const char* name, const char* type, const char* help, uint64_t v) {
    o += strCat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                std::to_string(v), "\n");
  };
  scalar("palisade_gateway_connections_open", "gauge", "Client connections open.",
         sh.open_conns.load(std::memory_order_relaxed));
  scalar("palisade_gateway_connections_accepted_total", "counter", "Client connections accepted.",
         sum([](const WorkerCounters& w) -> const Counter& { return w.accepted; }));
  scalar("palisade_gateway_connections_refused_total", "counter",
         "Client connections closed at once: max_connections reached.",
         sum([](const WorkerCounters& w) -> const Counter& { return w.refused; }));
  scalar("palisade_gateway_tls_handshake_failures_total", "counter",
         "TLS handshakes that failed or timed out.",
         sum([](const WorkerCounters& w) -> const Counter& { return w.tls_failed; }));
  scalar("palisade_gateway_idle_closed_total", "counter",
         "Connections closed for sending nothing within the timeouts.",
         sum([](const WorkerCounters& w) -> const Counter& { return w.idle_closed; }));
  scalar("palisade_gateway_aborted_total", "counter",
         "Exchanges cut short by a client or upstream leaving mid-message.",
         sum([](const WorkerCounters& w) -> const Counter& { return w.aborted; }));
  scalar("palisade_gateway_rate_limit_buckets", "gauge", "Rate-limit buckets held.",
         sh.limiter.size());
  scalar("palisade_gateway_rate_limit_evictions_total", "counter",
         "Rate-limit buckets forgotten to stay within memory.", sh.limiter.evictions());
  return o;
}

}  // namespace palisade::gateway
