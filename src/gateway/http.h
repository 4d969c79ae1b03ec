// HTTP/1.1 message parsing for the API gateway (RFC 9110, RFC 9112), strict
// where leniency lets a request mean one thing to the gateway and another to
// the upstream (request smuggling): CRLF line ends only, no whitespace before
// a header's colon, no obs-fold, one Content-Length, Transfer-Encoding only
// "chunked" and never together with Content-Length.
//
// Parsers work on bytes received so far: Incomplete means "read more"; every
// limit is checked on the bytes already present, so a client cannot make the
// gateway buffer more than the limits allow before it is refused. Headers are
// views into the caller's buffer, valid while it is unchanged. Nothing here
// throws or allocates beyond the header vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::gateway {

struct HttpLimits {
  size_t max_url = 8192;            // request-target bytes (414 beyond)
  size_t max_header_bytes = 32768;  // request line plus header lines (431 beyond)
  size_t max_headers = 100;         // header lines (431 beyond)
  uint64_t max_body = 1 << 20;      // decoded body bytes (413 beyond)
};

// Why a message was refused: the status to answer with and a short reason
// (static text) for the audit event.
struct HttpError {
  int status = 400;
  std::string_view reason;
};

struct Header {
  std::string_view name, value;
};

enum class BodyKind : uint8_t { None, Length, Chunked, UntilClose };
enum class Parse : uint8_t { Incomplete, Done, Failed };

struct RequestHead {
  std::string_view method, target;  // target as sent
  std::string_view path, query;     // of the target (query without '?')
  std::string_view host;            // Host header, or an absolute-form target's authority
  int minor = 1;                    // HTTP/1.<minor>
  std::vector<Header> headers;
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  size_t head_bytes = 0;  // through the blank line

  // The first header of that name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

// Parses the request head at the start of buf. On Failed, the fields set
// are only those already checked (method a token, host and path visible
// ASCII), so a log line may carry them unescaped. `scanned` (in/out) remembers how
// far a previous Incomplete call looked for the blank line, so a client
// sending its head a byte at a time costs linear, not quadratic, work.
Parse parseRequestHead(std::string_view buf, const HttpLimits& limits, RequestHead& out,
                       HttpError& err, size_t* scanned = nullptr);

struct ResponseHead {
  int status = 0;
  int minor = 1;
  std::string_view reason;
  std::vector<Header> headers;
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;
  bool keep_alive = true;
  size_t head_bytes = 0;

  std::string_view header(std::string_view name) const;
};

// Parses an upstream's response head; `method` is the request's (a response
// to HEAD has no body whatever its headers say).
Parse parseResponseHead(std::string_view buf, std::string_view method, size_t max_head_bytes,
                        ResponseHead& out, HttpError& err);

// Hop-by-hop headers (RFC 9110 7.6.1) that a proxy must not forward, plus any
// named in the message's own Connection header.
bool isHopByHop(std::string_view name, std::string_view connection_header);

// Decodes (or only follows) a chunked body (RFC 9112 7.1). Chunk extensions
// and trailers are read and dropped, each bounded.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(uint64_t max_body = UINT64_MAX) : max_body_(max_body) {}
  // Consumes bytes of data; appends the payload to *out when out is not null.
  // Returns how many bytes were consumed: all of them unless the body ended
  // (done()) or was malformed (failed()) inside data.
  size_t feed(std::string_view data, std::string* out);
  bool done() const { return state_ == State::Done; }
  bool failed() const { return state_ == State::Failed; }
  bool tooLarge() const { return too_large_; }
  uint64_t payloadBytes() const { return total_; }
  void reset(uint64_t max_body) { *this = ChunkedDecoder(max_body); }

 private:
  enum class State : uint8_t {
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    Done,
    Failed
  };
  State state_ = State::Size;
  uint64_t max_body_;
  uint64_t chunk_ = 0, total_ = 0;
  uint32_t digits_ = 0, line_ = 0, trailer_bytes_ = 0;
  bool too_large_ = false;
};

// "200" -> "OK": the reason phrase the gateway writes for its own answers.
std::string_view statusText(int status);

}  // namespace palisade::gateway
