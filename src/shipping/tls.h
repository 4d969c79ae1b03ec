// TLS for log shipping (OpenSSL 3): mutual certificate authentication, TLS 1.2
// or later, non-blocking sockets driven by poll() with deadlines, so a stalled
// or hostile peer costs a timeout, never a hung thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace palisade::shipping {

// PEM files: our certificate (chain) and private key, and the CA bundle our
// peer's certificate must chain to. The key is refused when group or others
// can read it.
struct TlsFiles {
  std::string cert, key, ca;
};

class TlsContext {
 public:
  // A client presents `cert` and checks the server against `ca`.
  static Result<TlsContext> client(const TlsFiles& files);
  // A server presents `cert` and requires a client certificate that chains to `ca`.
  static Result<TlsContext> server(const TlsFiles& files);
  // An HTTPS client (webhooks): the server's certificate must chain to `ca`,
  // or to the system's trust store when `ca` is empty; `cert` and `key`, both
  // or neither, are presented when the server asks for a client certificate.
  static Result<TlsContext> webClient(const TlsFiles& files);
  // An HTTPS server (the API gateway): presents `cert`; with `ca`, asks
  // clients for a certificate chaining to it, which they must present when
  // `require_client_cert`. Offers ALPN "http/1.1" and resumes sessions.
  static Result<TlsContext> webServer(const TlsFiles& files, bool require_client_cert);
  SSL_CTX* get() const { return ctx_.get(); }

 private:
  static Result<TlsContext> make(const TlsFiles& files, bool server);
  std::shared_ptr<SSL_CTX> ctx_;
};

class TlsStream {
 public:
  TlsStream() = default;
  TlsStream(TlsStream&& o) noexcept;
  TlsStream& operator=(TlsStream&& o) noexcept;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  ~TlsStream();

  // Connects to host:port and checks the server's certificate names
  // `peer_name` (a DNS name or an IP address).
  static Result<TlsStream> connect(const TlsContext& ctx, const std::string& host, uint16_t port,
                                   const std::string& peer_name, int timeout_ms);
  // Runs the server handshake on an accepted socket (owned from here on).
  static Result<TlsStream> accept(const TlsContext& ctx, int fd, int timeout_ms);

  Status writeAll(std::string_view data, int timeout_ms);
  // Waits up to timeout_ms for data: the bytes read, 0 when none came, an
  // error when the peer closed or the connection failed.
  Result<size_t> read(char* buf, size_t n, int timeout_ms);
  // The peer certificate's subject CN (or its first DNS name).
  const std::string& peerName() const { return peer_name_; }
  // Sends close_notify (best effort) and closes the socket.
  // Ends the session gracefully: close_notify, our direction shut, then what
  // the peer still sends is read and dropped until it closes (or timeout_ms).
  // A plain close() with unread bytes (a TLS 1.3 session ticket) makes the
  // kernel reset the connection, and the peer loses what it had not read yet.
  void finish(int timeout_ms);
  void close();
  bool open() const { return ssl_ != nullptr; }

 private:
  // Drives one SSL call until it completes, fails or the deadline passes.
  template <class Op>
  Result<int> drive(Op op, int timeout_ms, const char* what);
  void takePeerName();

  SSL* ssl_ = nullptr;
  int fd_ = -1;
  std::string peer_name_;
};

// "host:port" or "[v6]:port" (port 0, "any", only when allowed: for listening).
Result<std::pair<std::string, uint16_t>> parseHostPort(std::string_view s,
                                                       bool allow_port_zero = false);

}  // namespace palisade::shipping
