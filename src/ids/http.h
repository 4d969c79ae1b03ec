// HTTP/1.x parsing for inspection: requests and responses on a reassembled
// connection become transactions whose parts are the rule buffers (http.uri,
// http.header, http.request_body, ...).
//
// Fed in order, in pieces of any size, one direction at a time. Pipelined
// requests pair with responses in order; a response with no request (a
// connection picked up mid-stream) gets a transaction of its own. Bodies are
// de-chunked and, with Content-Encoding gzip or deflate, decompressed; what is
// kept of a body, a line, or the header block is bounded (HttpLimits), and
// past a bound the parser counts the event and goes on (a line or header block
// too long ends parsing of that direction). Nothing the peer sends can make
// it hold more than those bounds.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace palisade::ids {

struct HttpLimits {
  size_t line = 16 << 10;     // request or status line, one header line
  size_t headers = 64 << 10;  // the whole header block
  size_t header_count = 256;
  // Body bytes kept for inspection (after decoding, so a compressed body is
  // inflated no further): Suricata's request- and response-body-limit default.
  size_t body = 100 << 10;
  size_t inflate_ratio = 100;  // decompressed bytes per compressed byte, at most
  size_t transactions = 256;   // kept (inspected ones are released first)
};

struct HttpHeader {
  std::string name, value;
};

struct HttpMessage {
  std::string start_line;  // request line or status line, without CRLF
  std::vector<HttpHeader> headers;
  std::string raw_headers;  // the header block as received (lines with their CRLFs)
  std::string body;         // de-chunked, decompressed, at most HttpLimits::body
  uint64_t body_seen = 0;   // body bytes on the wire
  bool body_truncated = false;
  bool headers_done = false, done = false;

  // The first header of that name (case-insensitive), or null.
  const std::string* header(std::string_view name) const;
};

struct HttpTx {
  uint64_t id = 0;  // 0, 1, 2 ... in the connection
  HttpMessage request, response;
  bool has_request = false, has_response = false;
  std::string method, uri, protocol;  // request line parts
  std::string response_protocol, status, reason;
  // Suricata's normalised forms.
  std::string uri_normalized;  // percent-decoded path, dot segments removed
  std::string host;            // lower case, no port, no trailing dot
  // Detection progress: which directions were inspected complete.
  bool inspected_request = false, inspected_response = false;
  bool logged = false;  // its EVE http event was written
};

struct HttpCounters {
  uint64_t requests = 0, responses = 0;
  uint64_t malformed = 0;       // unparseable start line or header line
  uint64_t too_long = 0;        // a line or header block over its limit
  uint64_t body_truncated = 0;  // bodies longer than the kept limit
  uint64_t inflate_errors = 0;
};

class HttpParser {
 public:
  explicit HttpParser(HttpLimits limits = {});
  ~HttpParser();
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Feeds bytes of one direction (to_server: requests).
  void feed(bool to_server, std::string_view data, HttpCounters& c);
  // The connection ended: messages delimited by close are complete.
  void finish(HttpCounters& c);
  // A hole in the stream: the direction stops until a new message line.
  void gap(bool to_server);

  std::deque<HttpTx>& transactions() { return txs_; }
  // Drops transactions both of whose directions were inspected complete.
  void release();
  // Whether the direction stopped parsing (garbage or over a limit).
  bool failed(bool to_server) const;

 private:
  struct Side;
  Side& side(bool to_server);
  const Side& side(bool to_server) const;
  // Parses `in` (the side's buffered bytes, or a piece fed while nothing was
  // buffered) and returns how many bytes it consumed.
  size_t parse(bool to_server, std::string_view in, HttpCounters& c);
  bool startLine(bool to_server, std::string_view line, HttpCounters& c);
  void headersDone(bool to_server, HttpCounters& c);
  void bodyBytes(bool to_server, std::string_view d, HttpCounters& c);
  void messageDone(bool to_server, HttpCounters& c);
  HttpTx& txFor(bool to_server);

  HttpLimits limits_;
  std::deque<HttpTx> txs_;
  uint64_t next_id_ = 0;
  std::unique_ptr<Side> req_, resp_;
};

// Suricata's http.uri normalisation: %XX decoded in the path (not in the query),
// "//" collapsed, "." and ".." segments removed; an absolute URI loses its
// scheme and authority.
std::string normalizeUri(std::string_view raw);

}  // namespace palisade::ids
