#include "gateway/http.h"

#include <algorithm>
#include <array>

#include "core/strings.h"

namespace palisade::gateway {
namespace {

// RFC 9110 5.6.2 tchar.
constexpr std::array<bool, 256> makeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kToken = makeTokenTable();

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kToken[static_cast<unsigned char>(c)]) return false;
  return true;
}

// Field value bytes: VCHAR, obs-text, SP and HTAB (no other controls, no NUL).
bool isFieldValue(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 ? c != '\t' : c == 0x7f) return false;
  }
  return true;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

Parse fail(HttpError& err, int status, std::string_view reason) {
  err = {status, reason};
  return Parse::Failed;
}

// Finds the blank line ending a head. Every LF must follow a CR: a bare LF is
// how one parser's line end becomes another's header byte.
// Returns the head's length through the blank line, 0 when not there yet, or
// SIZE_MAX on a bare LF.
size_t findHeadEnd(std::string_view buf, size_t from) {
  for (size_t i = from; i < buf.size(); ++i) {
    if (buf[i] != '\n') continue;
    if (i == 0 || buf[i - 1] != '\r') return SIZE_MAX;
    if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') return i + 1;
  }
  return 0;
}

// Header lines between the start line's CRLF and the blank line.
Parse parseHeaderLines(std::string_view block, size_t max_headers, std::vector<Header>& out,
                       HttpError& err) {
  out.clear();
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol == std::string_view::npos ? block.size() : eol + 2);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t')
      return fail(err, 400, "obsolete header line folding");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(err, 400, "header line without a colon");
    const std::string_view name = line.substr(0, colon);
    if (!isToken(name)) return fail(err, 400, "malformed header name");
    const std::string_view value = trimOws(line.substr(colon + 1));
    if (!isFieldValue(value)) return fail(err, 400, "control character in a header value");
    if (out.size() >= max_headers) return fail(err, 431, "too many header lines");
    out.push_back({name, value});
  }
  return Parse::Done;
}

std::string_view findHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers)
    if (equalsIgnoreCase(h.name, name)) return h.value;
  return {};
}

bool hasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (equalsIgnoreCase(trimOws(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// "HTTP/1.1" -> 1; -2 for another HTTP major version, -1 when malformed.
int parseVersion(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -1;
  if (v[5] != '1') return -2;
  return v[7] - '0';
}

bool parseDecimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

bool validHost(std::string_view h) {
  if (h.size() > 255) return false;
  for (char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Content-Length and Transfer-Encoding, shared by requests and responses.
// Returns false (err set) on conflicting framing.
struct Framing {
  bool has_length = false, has_te = false, chunked_last = false, chunked_elsewhere = false;
  uint64_t length = 0;
};

bool readFraming(const std::vector<Header>& headers, Framing& f, HttpError& err) {
  for (const Header& h : headers) {
    if (equalsIgnoreCase(h.name, "content-length")) {
      uint64_t v = 0;
      if (!parseDecimal(h.value, v)) {
        err = {400, "malformed Content-Length"};
        return false;
      }
      if (f.has_length && v != f.length) {
        err = {400, "conflicting Content-Length headers"};
        return false;
      }
      f.has_length = true;
      f.length = v;
    } else if (equalsIgnoreCase(h.name, "transfer-encoding")) {
      // Codings accumulate across headers; chunked must be the last one.
      std::string_view list = h.value;
      while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view coding = trimOws(list.substr(0, comma));
        if (!coding.empty()) {
          if (f.chunked_last) f.chunked_elsewhere = true;
          f.chunked_last = equalsIgnoreCase(coding, "chunked");
          f.has_te = true;
        }
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
  }
  return true;
}

}  // namespace

std::string_view RequestHead::header(std::string_view name) const {
  return findHeader(headers, name);
}
std::string_view ResponseHead::header(std::string_view name) const {
  return findHeader(headers, name);
}

Parse parseRequestHead(std::string_view buf, const HttpLimits& limits, RequestHead& out,
                       HttpError& err, size_t* scanned) {
  // Empty lines before a request line are ignored (RFC 9112 2.2), a few of them.
  size_t lead = 0;
  while (lead + 1 < buf.size() && lead < 8 && buf[lead] == '\r' && buf[lead + 1] == '\n')
    lead += 2;
  const std::string_view msg = buf.substr(lead);
  const size_t from = scanned != nullptr && *scanned > lead + 3 ? *scanned - lead - 3 : 0;
  const size_t end = findHeadEnd(msg, from);
  if (end == SIZE_MAX) return fail(err, 400, "bare LF line ending");
  const size_t first_eol = msg.find("\r\n");
  if (end == 0) {
    if (scanned != nullptr) *scanned = buf.size();
    // Refuse as soon as a limit is passed, not when the head finally ends.
    if (first_eol == std::string_view::npos && msg.size() > limits.max_url + 64)
      return fail(err, 414, "request target too long");
    if (msg.size() > limits.max_header_bytes) return fail(err, 431, "request head too large");
    return Parse::Incomplete;
  }
  if (end > limits.max_header_bytes) return fail(err, 431, "request head too large");

  out = RequestHead{};
  out.head_bytes = lead + end;
  // Request line: method SP target SP version.
  const std::string_view line = msg.substr(0, first_eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(err, 400, "malformed request line");
  // Fields are set only once valid: a refused head leaves nothing in `out`
  // that a log line could not carry as it is.
  const std::string_view method = line.substr(0, sp1);
  const std::string_view raw_target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!isToken(method) || method.size() > 32) return fail(err, 400, "malformed method");
  out.method = method;
  if (raw_target.empty()) return fail(err, 400, "empty request target");
  if (raw_target.size() > limits.max_url) return fail(err, 414, "request target too long");
  for (char ch : raw_target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return fail(err, 400, "invalid byte in the request target");
  }
  out.target = raw_target;
  const int minor = parseVersion(version);
  if (minor == -2) return fail(err, 505, "HTTP version not supported");
  if (minor < 0) return fail(err, 400, "malformed HTTP version");
  out.minor = minor;

  const std::string_view block = msg.substr(first_eol + 2, end - first_eol - 2);
  if (Parse p = parseHeaderLines(block, limits.max_headers, out.headers, err); p != Parse::Done)
    return p;

  // Target forms (RFC 9112 3.2).
  std::string_view target = out.target;
  std::string_view authority;
  if (out.method == "CONNECT") return fail(err, 405, "CONNECT is not proxied");
  if (target == "*") {
    if (out.method != "OPTIONS") return fail(err, 400, "'*' target is only for OPTIONS");
  } else if (target.front() != '/') {
    const size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos ||
        !(equalsIgnoreCase(target.substr(0, scheme_end), "http") ||
          equalsIgnoreCase(target.substr(0, scheme_end), "https")))
      return fail(err, 400, "request target is not origin or absolute form");
    target.remove_prefix(scheme_end + 3);
    const size_t slash = target.find_first_of("/?");
    authority = target.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    if (authority.empty() || !validHost(authority))
      return fail(err, 400, "malformed authority in the request target");
  }
  if (target.find('#') != std::string_view::npos)
    return fail(err, 400, "fragment in the request target");
  const size_t q = target.find('?');
  out.path = target.substr(0, q);
  out.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (out.path.empty()) out.path = "/";

  // Host: exactly one in HTTP/1.1, never two.
  int hosts = 0;
  for (const Header& h : out.headers) {
    if (!equalsIgnoreCase(h.name, "host")) continue;
    if (++hosts > 1) return fail(err, 400, "more than one Host header");
    if (!validHost(h.value)) return fail(err, 400, "malformed Host header");
    out.host = h.value;
  }
  if (hosts == 0 && out.minor >= 1) return fail(err, 400, "HTTP/1.1 request without Host");
  if (!authority.empty()) out.host = authority;

  Framing f;
  if (!readFraming(out.headers, f, err)) return Parse::Failed;
  if (f.has_te) {
    if (out.minor == 0) return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (f.has_length) return fail(err, 400, "both Content-Length and Transfer-Encoding");
    if (f.chunked_elsewhere || !f.chunked_last) {
      if (f.chunked_elsewhere || hasToken(findHeader(out.headers, "transfer-encoding"), "chunked"))
        return fail(err, 400, "chunked is not the last transfer coding");
      return fail(err, 501, "transfer coding not supported");
    }
    for (const Header& h : out.headers)
      if (equalsIgnoreCase(h.name, "transfer-encoding") && !equalsIgnoreCase(h.value, "chunked"))
        return fail(err, 501, "transfer coding not supported");
    out.body = BodyKind::Chunked;
  } else if (f.has_length && f.length > 0) {
    if (f.length > limits.max_body) return fail(err, 413, "request body too large");
    out.body = BodyKind::Length;
    out.content_length = f.length;
  }

  const std::string_view connection = findHeader(out.headers, "connection");
  out.keep_alive =
      out.minor >= 1 ? !hasToken(connection, "close") : hasToken(connection, "keep-alive");
  if (const std::string_view expect = out.header("expect"); !expect.empty()) {
    if (!equalsIgnoreCase(expect, "100-continue")) return fail(err, 417, "unsupported Expect");
    out.expect_continue = out.minor >= 1;
  }
  return Parse::Done;
}

Parse parseResponseHead(std::string_view buf, std::string_view method, size_t max_head_bytes,
                        ResponseHead& out, HttpError& err) {
  const size_t end = findHeadEnd(buf, 0);
  if (end == SIZE_MAX) return fail(err, 502, "upstream sent a bare LF line ending");
  if (end == 0) {
    if (buf.size() > max_head_bytes) return fail(err, 502, "upstream response head too large");
    return Parse::Incomplete;
  }
  if (end > max_head_bytes) return fail(err, 502, "upstream response head too large");
  out = ResponseHead{};
  out.head_bytes = end;
  const size_t first_eol = buf.find("\r\n");
  const std::string_view line = buf.substr(0, first_eol);
  // HTTP/1.x SP 3DIGIT SP reason
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
    return fail(err, 502, "malformed upstream status line");
  const int minor = parseVersion(line.substr(0, 8));
  if (minor < 0) return fail(err, 502, "malformed upstream status line");
  out.minor = minor;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail(err, 502, "malformed upstream status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return fail(err, 502, "upstream status out of range");
  out.status = status;
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view();
  if (!isFieldValue(out.reason)) return fail(err, 502, "malformed upstream reason phrase");

  const std::string_view block = buf.substr(first_eol + 2, end - first_eol - 2);
  if (Parse p = parseHeaderLines(block, 256, out.headers, err); p != Parse::Done) {
    err.status = 502;
    return p;
  }
  Framing f;
  if (!readFraming(out.headers, f, err)) {
    err.status = 502;
    return Parse::Failed;
  }
  const std::string_view connection = findHeader(out.headers, "connection");
  out.keep_alive =
      out.minor >= 1 ? !hasToken(connection, "close") : hasToken(connection, "keep-alive");
  if (method == "HEAD" || status < 200 || status == 204 || status == 304) {
    out.body = BodyKind::None;
  } else if (f.has_te) {
    if (f.has_length) return fail(err, 502, "upstream sent Content-Length and Transfer-Encoding");
    out.body = f.chunked_last && !f.chunked_elsewhere ? BodyKind::Chunked : BodyKind::UntilClose;
  } else if (f.has_length) {
    out.body = f.length > 0 ? BodyKind::Length : BodyKind::None;
    out.content_length = f.length;
  } else {
    out.body = BodyKind::UntilClose;
  }
  if (out.body == BodyKind::UntilClose) out.keep_alive = false;
  return Parse::Done;
}

bool isHopByHop(std::string_view name, std::string_view connection_header) {
  static constexpr std::string_view kHop[] = {
      "connection", "keep-alive",          "proxy-connection", "proxy-authenticate",
      "te",         "proxy-authorization", "trailer",          "transfer-encoding",
      "upgrade"};
  for (std::string_view h : kHop)
    if (equalsIgnoreCase(name, h)) return true;
  return !connection_header.empty() && hasToken(connection_header, name);
}

size_t ChunkedDecoder::feed(std::string_view data, std::string* out) {
  size_t i = 0;
  while (i < data.size() && state_ != State::Done && state_ != State::Failed) {
    const char c = data[i];
    switch (state_) {
      case State::Size: {
        const int d = hexValue(c);
        if (d >= 0) {
          if (++digits_ > 15) {
            state_ = State::Failed;
            break;
          }
          chunk_ = chunk_ * 16 + static_cast<uint64_t>(d);
        } else if (digits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
          state_ = State::Ext;
          line_ = 0;
        } else if (digits_ > 0 && c == '\r') {
          state_ = State::SizeLf;
        } else {
          state_ = State::Failed;
        }
        ++i;
        break;
      }
      case State::Ext:
        if (c == '\r')
          state_ = State::SizeLf;
        else if (c == '\n' || ++line_ > 4096)
          state_ = State::Failed;
        ++i;
        break;
      case State::SizeLf:
        if (c != '\n') {
          state_ = State::Failed;
        } else if (chunk_ == 0) {
          state_ = State::Trailer;
          line_ = 0;
        } else if (chunk_ > max_body_ - total_) {
          too_large_ = true;
          state_ = State::Failed;
        } else {
          state_ = State::Data;
        }
        ++i;
        break;
      case State::Data: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_, data.size() - i));
        if (out != nullptr) out->append(data.substr(i, n));
        i += n;
        chunk_ -= n;
        total_ += n;
        if (chunk_ == 0) state_ = State::DataCr;
        break;
      }
      case State::DataCr:
        state_ = c == '\r' ? State::DataLf : State::Failed;
        ++i;
        break;
      case State::DataLf:
        if (c == '\n') {
          state_ = State::Size;
          digits_ = 0;
          chunk_ = 0;
        } else {
          state_ = State::Failed;
        }
        ++i;
        break;
      case State::Trailer:
        if (c == '\r') {
          state_ = State::TrailerLf;
        } else if (c == '\n' || ++trailer_bytes_ > 8192) {
          state_ = State::Failed;
        } else {
          ++line_;
        }
        ++i;
        break;
      case State::TrailerLf:
        if (c != '\n') {
          state_ = State::Failed;
        } else {
          state_ = line_ == 0 ? State::Done : State::Trailer;
          line_ = 0;
        }
        ++i;
        break;
      case State::Done:
      case State::Failed:
        break;
    }
  }
  return i;
}

std::string_view statusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace palisade::gateway
