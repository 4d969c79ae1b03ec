#include "shipping/tls.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/net.h"
#include "core/strings.h"
#include "core/tcp.h"
#include "core/time.h"
#include "events/crypto.h"

namespace palisade::shipping {
namespace {

using events::opensslError;

Status checkKeyMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return makeError(errnoText(path));
  if (st.st_mode & 077) {
    return makeError(
        strCat(path, ": the private key is readable by group or others; chmod 600 it"));
  }
  return {};
}

// A context for TLS 1.2 or later in the modes the streams rely on, with our
// certificate chain and key when `f` names them (the key's mode checked).
Result<std::shared_ptr<SSL_CTX>> newContext(bool server, const TlsFiles& f) {
  if (!f.key.empty())
    if (Status st = checkKeyMode(f.key); !st) return st.error();
  SSL_CTX* raw = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!raw) return makeError(strCat("TLS: ", opensslError()));
  std::shared_ptr<SSL_CTX> ctx(raw, SSL_CTX_free);
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!f.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, f.cert.c_str()) != 1)
      return makeError(strCat(f.cert, ": ", opensslError()));
    if (SSL_CTX_use_PrivateKey_file(raw, f.key.c_str(), SSL_FILETYPE_PEM) != 1)
      return makeError(strCat(f.key, ": ", opensslError()));
    if (SSL_CTX_check_private_key(raw) != 1)
      return makeError(strCat(f.key, ": does not match ", f.cert, ": ", opensslError()));
  }
  return ctx;
}

}  // namespace

Result<TlsContext> TlsContext::make(const TlsFiles& f, bool server) {
  if (f.cert.empty() || f.key.empty() || f.ca.empty()) {
    return makeError(
        "TLS needs a certificate, its private key and a CA bundle (mutual authentication)");
  }
  auto ctx = newContext(server, f);
  if (!ctx) return ctx.error();
  SSL_CTX* raw = ctx->get();
  if (SSL_CTX_load_verify_locations(raw, f.ca.c_str(), nullptr) != 1)
    return makeError(strCat(f.ca, ": ", opensslError()));
  if (server) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(f.ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(raw, names);
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  }
  TlsContext out;
  out.ctx_ = std::move(*ctx);
  return out;
}

Result<TlsContext> TlsContext::webClient(const TlsFiles& f) {
  if (f.cert.empty() != f.key.empty())
    return makeError("TLS: a client certificate needs its private key, and a key its certificate");
  auto ctx = newContext(false, f);
  if (!ctx) return ctx.error();
  SSL_CTX* raw = ctx->get();
  if (f.ca.empty() ? SSL_CTX_set_default_verify_paths(raw) != 1
                   : SSL_CTX_load_verify_locations(raw, f.ca.c_str(), nullptr) != 1)
    return makeError(
        strCat(f.ca.empty() ? "the system's trust store" : f.ca, ": ", opensslError()));
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  TlsContext out;
  out.ctx_ = std::move(*ctx);
  return out;
}

namespace {

// ALPN: the gateway speaks HTTP/1.1 only; a client offering just h2 gets no
// ALPN answer and falls back (or gives up) by its own rules.
int selectHttp11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                 unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Result<TlsContext> TlsContext::webServer(const TlsFiles& f, bool require_client_cert) {
  if (f.cert.empty() || f.key.empty())
    return makeError("TLS needs a certificate and its private key");
  auto ctx = newContext(true, f);
  if (!ctx) return ctx.error();
  SSL_CTX* raw = ctx->get();
  if (!f.ca.empty()) {
    if (SSL_CTX_load_verify_locations(raw, f.ca.c_str(), nullptr) != 1)
      return makeError(strCat(f.ca, ": ", opensslError()));
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(f.ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(raw, names);
    SSL_CTX_set_verify(
        raw, SSL_VERIFY_PEER | (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  }
  SSL_CTX_set_alpn_select_cb(raw, selectHttp11, nullptr);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_SERVER);
  static constexpr unsigned char kSessionContext[] = "palisade-gateway";
  SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof kSessionContext - 1);
  TlsContext out;
  out.ctx_ = std::move(*ctx);
  return out;
}

namespace {

int remainingMs(TimeNs deadline) {
  const TimeNs now = monotonicNs();
  if (now >= deadline) return 0;
  return static_cast<int>((deadline - now) / 1000000) + 1;
}

}  // namespace

Result<TlsContext> TlsContext::client(const TlsFiles& files) {
  return make(files, false);
}

Result<TlsContext> TlsContext::server(const TlsFiles& files) {
  return make(files, true);
}

TlsStream::TlsStream(TlsStream&& o) noexcept
    : ssl_(o.ssl_), fd_(o.fd_), peer_name_(std::move(o.peer_name_)) {
  o.ssl_ = nullptr;
  o.fd_ = -1;
}

TlsStream& TlsStream::operator=(TlsStream&& o) noexcept {
  if (this != &o) {
    close();
    ssl_ = o.ssl_;
    fd_ = o.fd_;
    peer_name_ = std::move(o.peer_name_);
    o.ssl_ = nullptr;
    o.fd_ = -1;
  }
  return *this;
}

TlsStream::~TlsStream() {
  close();
}

void TlsStream::finish(int timeout_ms) {
  if (ssl_) {
    (void)SSL_shutdown(ssl_);
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
    const TimeNs deadline = monotonicNs() + static_cast<TimeNs>(timeout_ms) * 1000000ull;
    char sink[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, sink, sizeof sink, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
      if (n > 0) continue;
      const TimeNs now = monotonicNs();
      if (now >= deadline) break;
      pollfd p{fd_, POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(std::min<TimeNs>((deadline - now) / 1000000 + 1, 1000)));
    }
  }
  close();
}

void TlsStream::close() {
  if (ssl_) {
    (void)SSL_shutdown(ssl_);  // one close_notify, not waiting for the peer's
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

template <class Op>
Result<int> TlsStream::drive(Op op, int timeout_ms, const char* what) {
  const TimeNs deadline = monotonicNs() + static_cast<TimeNs>(timeout_ms) * 1000000ull;
  for (;;) {
    ERR_clear_error();
    const int r = op();
    if (r > 0) return r;
    const int e = SSL_get_error(ssl_, r);
    short events = 0;
    if (e == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (e == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else if (e == SSL_ERROR_ZERO_RETURN) {
      return makeError(strCat(what, ": the peer closed the connection"));
    } else if (e == SSL_ERROR_SYSCALL) {
      const int err = errno;
      return makeError(strCat(what, ": ", err ? std::strerror(err) : "connection closed"));
    } else {
      std::string why = opensslError();
      if (ssl_ && SSL_get_verify_result(ssl_) != X509_V_OK) {
        why = strCat("certificate verification failed: ",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl_)));
      }
      return makeError(strCat(what, ": ", why));
    }
    const int left = remainingMs(deadline);
    if (left == 0) return 0;  // timed out; the caller decides
    const int p = pollFor(fd_, events, left);
    if (p < 0) return makeError(strCat(what, ": poll: ", std::strerror(errno)));
    if (p == 0 && remainingMs(deadline) == 0) return 0;
  }
}

void TlsStream::takePeerName() {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) return;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
    peer_name_ = cn;
  } else if (auto* sans = static_cast<GENERAL_NAMES*>(
                 X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && peer_name_.empty(); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        const auto* s = g->d.dNSName;
        peer_name_.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          static_cast<size_t>(ASN1_STRING_length(s)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  X509_free(cert);
}

Result<TlsStream> TlsStream::connect(const TlsContext& ctx, const std::string& host, uint16_t port,
                                     const std::string& peer_name, int timeout_ms) {
  auto fd = connectTcp(host, port, timeout_ms);
  if (!fd) return fd.error();
  TlsStream s;
  s.fd_ = *fd;
  int one = 1;
  ::setsockopt(s.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  s.ssl_ = SSL_new(ctx.get());
  if (!s.ssl_) return makeError(strCat("TLS: ", opensslError()));
  SSL_set_fd(s.ssl_, s.fd_);
  const std::string& name = peer_name.empty() ? host : peer_name;
  if (IpAddr::parse(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s.ssl_), name.c_str());
  } else {
    SSL_set_tlsext_host_name(s.ssl_, name.c_str());
    SSL_set1_host(s.ssl_, name.c_str());
  }
  SSL* ssl = s.ssl_;
  auto r = s.drive([ssl] { return SSL_connect(ssl); }, timeout_ms, "TLS handshake");
  if (!r) return r.error();
  if (*r == 0) return makeError("TLS handshake: timed out");
  s.takePeerName();
  return s;
}

Result<TlsStream> TlsStream::accept(const TlsContext& ctx, int fd, int timeout_ms) {
  TlsStream s;
  s.fd_ = fd;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  s.ssl_ = SSL_new(ctx.get());
  if (!s.ssl_) return makeError(strCat("TLS: ", opensslError()));
  SSL_set_fd(s.ssl_, fd);
  SSL* ssl = s.ssl_;
  auto r = s.drive([ssl] { return SSL_accept(ssl); }, timeout_ms, "TLS handshake");
  if (!r) return r.error();
  if (*r == 0) return makeError("TLS handshake: timed out");
  s.takePeerName();
  return s;
}

Status TlsStream::writeAll(std::string_view data, int timeout_ms) {
  if (!ssl_) return makeError("write: not connected");
  const TimeNs deadline = monotonicNs() + static_cast<TimeNs>(timeout_ms) * 1000000ull;
  size_t off = 0;
  while (off < data.size()) {
    const int chunk = static_cast<int>(std::min<size_t>(data.size() - off, 1 << 20));
    const char* p = data.data() + off;
    SSL* ssl = ssl_;
    auto r = drive([ssl, p, chunk] { return SSL_write(ssl, p, chunk); }, remainingMs(deadline),
                   "TLS write");
    if (!r) return r.error();
    if (*r == 0) return makeError("TLS write: timed out (the peer stopped reading)");
    off += static_cast<size_t>(*r);
  }
  return {};
}

Result<size_t> TlsStream::read(char* buf, size_t n, int timeout_ms) {
  if (!ssl_) return makeError("read: not connected");
  SSL* ssl = ssl_;
  const int want = static_cast<int>(std::min<size_t>(n, 1 << 30));
  auto r = drive([ssl, buf, want] { return SSL_read(ssl, buf, want); }, timeout_ms, "TLS read");
  if (!r) return r.error();
  return static_cast<size_t>(*r);
}

Result<std::pair<std::string, uint16_t>> parseHostPort(std::string_view s, bool allow_port_zero) {
  std::string_view host, port;
  if (s.starts_with("[")) {
    const size_t close = s.find("]:");
    if (close == std::string_view::npos) return makeError(strCat("'", s, "': want [ADDR]:PORT"));
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return makeError(strCat("'", s, "': want HOST:PORT"));
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || (p == 0 && !allow_port_zero) ||
      p > 65535)
    return makeError(strCat("'", s, "': bad port"));
  return std::make_pair(std::string(host), static_cast<uint16_t>(p));
}

}  // namespace palisade::shipping
