#include "ids/http.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/strings.h"
#include "ids/inflate.h"

namespace palisade::ids {

namespace {

// A request line's method: an HTTP token (RFC 9110) of letters, digits and
// the few punctuation characters real methods use.
bool isMethod(std::string_view m) {
  if (m.empty() || m.size() > 32) return false;
  for (char c : m)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  return true;
}

std::string normalizeHost(std::string_view h) {
  h = trim(h);
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    h = close == std::string_view::npos ? h : h.substr(0, close + 1);
  } else if (const size_t colon = h.rfind(':'); colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  while (!h.empty() && h.back() == '.')
    h.remove_suffix(1);
  std::string out(h);
  for (char& c : out)
    c = asciiLower(c);
  return out;
}

}  // namespace

std::string normalizeUri(std::string_view raw) {
  std::string_view s = raw;
  // Absolute form: drop scheme and authority.
  if (const size_t sep = s.find("://");
      sep != std::string_view::npos && sep < 16 && s.find('/') > sep) {
    const size_t slash = s.find('/', sep + 3);
    s = slash == std::string_view::npos ? std::string_view("/") : s.substr(slash);
  }
  std::string_view query;
  bool has_query = false;
  if (const size_t q = s.find('?'); q != std::string_view::npos) {
    query = s.substr(q + 1);
    has_query = true;
    s = s.substr(0, q);
  }
  // Percent-decode the path.
  std::string path;
  path.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      path += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      path += s[i];
    }
  }
  // Collapse "//" and remove dot segments (RFC 3986 5.2.4).
  std::vector<std::string_view> segs;
  const bool absolute = !path.empty() && path[0] == '/';
  const bool trailing_slash = !path.empty() && path.back() == '/';
  size_t start = 0;
  bool last_was_dot = false;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view seg(path.data() + start, end - start);
    last_was_dot = false;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
      last_was_dot = true;
    } else if (seg == ".") {
      last_was_dot = true;
    } else if (!seg.empty()) {
      segs.push_back(seg);
    }
    start = end + 1;
  }
  std::string out;
  out.reserve(path.size() + query.size() + 2);
  if (absolute) out += '/';
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i) out += '/';
    out += segs[i];
  }
  if ((trailing_slash || last_was_dot) && !segs.empty()) out += '/';
  if (has_query) {
    out += '?';
    out += query;
  }
  return out;
}

const std::string* HttpMessage::header(std::string_view name) const {
  for (const HttpHeader& h : headers)
    if (equalsIgnoreCase(h.name, name)) return &h.value;
  return nullptr;
}

struct HttpParser::Side {
  enum class State : uint8_t {
    Line,        // waiting for a start line
    Headers,     // header lines until the empty one
    Body,        // `remaining` bytes of Content-Length
    ChunkSize,   // a chunk-size line
    ChunkData,   // `remaining` bytes of chunk
    ChunkCrlf,   // the CRLF after a chunk
    Trailers,    // trailer lines after the last chunk
    UntilClose,  // a response body delimited by the connection's end
    Tunnel,      // after CONNECT or 101: not HTTP any more
  } state = State::Line;
  std::string buf;  // bytes not yet consumed (an incomplete line)
  uint64_t remaining = 0;
  uint64_t tx_id = 0;  // the transaction of the message in progress
  bool failed = false;
  bool inflate_failed = false;
  std::optional<Inflater> inflater;  // while a gzip or deflate body is read
  uint64_t wire_body = 0;

  void endInflate() { inflater.reset(); }
};

HttpParser::HttpParser(HttpLimits limits)
    : limits_(limits), req_(std::make_unique<Side>()), resp_(std::make_unique<Side>()) {}
HttpParser::~HttpParser() = default;

HttpParser::Side& HttpParser::side(bool to_server) {
  return to_server ? *req_ : *resp_;
}
const HttpParser::Side& HttpParser::side(bool to_server) const {
  return to_server ? *req_ : *resp_;
}

HttpTx& HttpParser::txFor(bool to_server) {
  const uint64_t id = side(to_server).tx_id;
  for (HttpTx& t : txs_)
    if (t.id == id) return t;
  // Released already (cannot happen for a message in progress); keep a slot.
  txs_.push_back({});
  txs_.back().id = id;
  return txs_.back();
}

bool HttpParser::failed(bool to_server) const {
  return side(to_server).failed;
}

void HttpParser::gap(bool to_server) {
  Side& s = side(to_server);
  s.buf.clear();
  s.endInflate();
  if (s.state != Side::State::Tunnel) s.state = Side::State::Line;
}

void HttpParser::release() {
  while (!txs_.empty()) {
    const HttpTx& t = txs_.front();
    const bool req_done = !t.has_request || t.inspected_request;
    const bool resp_done = t.inspected_response;
    if (!(req_done && resp_done) && txs_.size() <= limits_.transactions) break;
    if (t.id == req_->tx_id && req_->state != Side::State::Line &&
        req_->state != Side::State::Tunnel && txs_.size() <= limits_.transactions)
      break;
    txs_.pop_front();
  }
}

void HttpParser::feed(bool to_server, std::string_view data, HttpCounters& c) {
  Side& s = side(to_server);
  if (s.failed || s.state == Side::State::Tunnel) return;
  if (s.buf.empty()) {
    // Parsed where it lies; only an incomplete line at its end is kept (a
    // body passed through the side's buffer cost a copy of every byte).
    const size_t used = parse(to_server, data, c);
    if (!s.failed) s.buf.assign(data.substr(used));
  } else {
    s.buf.append(data);
    const size_t used = parse(to_server, s.buf, c);
    s.buf.erase(0, used);
  }
  if (s.failed) s.buf.clear();
}

bool HttpParser::startLine(bool to_server, std::string_view line, HttpCounters& c) {
  Side& s = side(to_server);
  if (to_server) {
    const size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || !isMethod(line.substr(0, sp1))) return false;
    std::string_view rest = line.substr(sp1 + 1);
    while (!rest.empty() && rest.front() == ' ')
      rest.remove_prefix(1);
    const size_t sp2 = rest.rfind(' ');
    std::string_view uri = rest, proto;
    if (sp2 != std::string_view::npos && rest.substr(sp2 + 1).starts_with("HTTP/")) {
      uri = rest.substr(0, sp2);
      proto = rest.substr(sp2 + 1);
      while (!uri.empty() && uri.back() == ' ')
        uri.remove_suffix(1);
    }
    txs_.push_back({});
    HttpTx& t = txs_.back();
    t.id = next_id_++;
    t.has_request = true;
    t.method = line.substr(0, sp1);
    t.uri = uri;
    t.protocol = proto;
    t.uri_normalized = normalizeUri(uri);
    t.request.start_line = line;
    s.tx_id = t.id;
    ++c.requests;
    if (proto.empty()) {  // HTTP/0.9: no headers, no body
      t.request.headers_done = t.request.done = true;
      return true;
    }
    return true;
  }
  if (!line.starts_with("HTTP/")) return false;
  const size_t sp1 = line.find(' ');
  std::string_view status, reason, proto = line;
  if (sp1 != std::string_view::npos) {
    proto = line.substr(0, sp1);
    std::string_view rest = line.substr(sp1 + 1);
    const size_t sp2 = rest.find(' ');
    status = rest.substr(0, sp2);
    if (sp2 != std::string_view::npos) reason = rest.substr(sp2 + 1);
  }
  // Pair with the oldest request that has no response yet.
  HttpTx* t = nullptr;
  for (HttpTx& x : txs_)
    if (!x.has_response) {
      t = &x;
      break;
    }
  if (!t) {
    txs_.push_back({});
    t = &txs_.back();
    t->id = next_id_++;
  }
  t->has_response = true;
  t->response_protocol = proto;
  t->status = status;
  t->reason = reason;
  t->response.start_line = line;
  s.tx_id = t->id;
  ++c.responses;
  return true;
}

void HttpParser::headersDone(bool to_server, HttpCounters& c) {
  Side& s = side(to_server);
  HttpTx& t = txFor(to_server);
  HttpMessage& m = to_server ? t.request : t.response;
  m.headers_done = true;
  if (to_server) {
    if (const std::string* h = m.header("Host")) t.host = normalizeHost(*h);
    if (const size_t sep = t.uri.find("://"); sep != std::string::npos && sep < 16) {
      const size_t start = sep + 3;
      const size_t end = t.uri.find('/', start);
      t.host = normalizeHost(std::string_view(t.uri).substr(start, end - start));
    }
  }
  s.endInflate();
  s.inflate_failed = false;
  s.wire_body = 0;
  if (const std::string* enc = m.header("Content-Encoding");
      enc && (containsIgnoreCase(*enc, "gzip") || containsIgnoreCase(*enc, "deflate"))) {
    s.inflater.emplace(!containsIgnoreCase(*enc, "gzip"));
  }

  const std::string* te = m.header("Transfer-Encoding");
  const std::string* cl = m.header("Content-Length");
  bool no_body = false;
  if (!to_server) {
    const int code = std::atoi(t.status.c_str());
    if ((code >= 100 && code < 200) || code == 204 || code == 304 ||
        equalsIgnoreCase(t.method, "HEAD"))
      no_body = true;
    if (code == 101 || (equalsIgnoreCase(t.method, "CONNECT") && code >= 200 && code < 300)) {
      messageDone(to_server, c);
      s.state = Side::State::Tunnel;
      req_->state = Side::State::Tunnel;
      return;
    }
  }
  if (no_body) {
    messageDone(to_server, c);
    return;
  }
  if (te && containsIgnoreCase(*te, "chunked")) {
    s.state = Side::State::ChunkSize;
    return;
  }
  if (cl) {
    uint64_t n = 0;
    bool ok = !trim(*cl).empty();
    for (char ch : trim(*cl)) {
      if (ch < '0' || ch > '9' || n > (1ull << 50)) {
        ok = false;
        break;
      }
      n = n * 10 + static_cast<uint64_t>(ch - '0');
    }
    if (ok) {
      if (n == 0) {
        messageDone(to_server, c);
      } else {
        s.remaining = n;
        s.state = Side::State::Body;
      }
      return;
    }
    ++c.malformed;
  }
  if (to_server) {
    messageDone(to_server, c);
  } else {
    s.state = Side::State::UntilClose;
  }
}

void HttpParser::bodyBytes(bool to_server, std::string_view d, HttpCounters& c) {
  Side& s = side(to_server);
  HttpTx& t = txFor(to_server);
  HttpMessage& m = to_server ? t.request : t.response;
  m.body_seen += d.size();
  s.wire_body += d.size();
  if (m.body.capacity() < 64 && !d.empty()) {
    // The body's first bytes: room for all of it when its length is known
    // (Content-Length, not compressed), else for what 32 times this piece
    // might inflate or continue to, growing by doubling; never past the
    // limit, and at most 256 KiB before the bytes arrive (a raised limit and
    // a hostile Content-Length must not allocate up front). Grown from
    // nothing, appends copied each body about twice over.
    constexpr uint64_t kFirstRoom = 256 << 10;
    const uint64_t want = !s.inflater && s.state == Side::State::Body
                              ? s.remaining
                              : std::max<uint64_t>(16 << 10, uint64_t{32} * d.size());
    m.body.reserve(static_cast<size_t>(std::min({uint64_t{limits_.body}, want, kFirstRoom})));
  }
  auto keep = [&](std::string_view bytes) {
    const size_t room = limits_.body > m.body.size() ? limits_.body - m.body.size() : 0;
    if (bytes.size() > room) {
      if (!m.body_truncated) ++c.body_truncated;
      m.body_truncated = true;
    }
    const size_t n = std::min(bytes.size(), room);
    if (m.body.size() + n > m.body.capacity())
      m.body.reserve(std::min(limits_.body, std::max(m.body.size() + n, 2 * m.body.capacity())));
    m.body.append(bytes.substr(0, n));
  };
  if (!s.inflater || s.inflate_failed) {
    keep(d);
    return;
  }
  if (m.body_truncated) return;  // inflated no further than what is kept
  const Inflater::Result r = s.inflater->feed(d, [&](std::string_view out) {
    keep(out);
    if (m.body.size() > s.wire_body * limits_.inflate_ratio + 4096 && !m.body_truncated) {
      m.body_truncated = true;
      ++c.body_truncated;
    }
    return !m.body_truncated;
  });
  if (r == Inflater::Result::Error) {
    // Not compressed after all (a mislabelled body): keep the bytes as sent,
    // with those of earlier pieces the inflater held to tell its wrapper.
    ++c.inflate_errors;
    s.inflate_failed = true;
    const uint64_t earlier = s.wire_body - d.size();
    if (m.body.empty() && earlier <= s.inflater->head().size()) {
      keep(s.inflater->head().substr(0, earlier));
      keep(d);
    }
  }
}

void HttpParser::messageDone(bool to_server, HttpCounters&) {
  Side& s = side(to_server);
  HttpTx& t = txFor(to_server);
  (to_server ? t.request : t.response).done = true;
  s.endInflate();
  s.state = Side::State::Line;
}

size_t HttpParser::parse(bool to_server, std::string_view in, HttpCounters& c) {
  Side& s = side(to_server);
  size_t pos = 0;
  auto takeLine = [&](std::string_view& line) -> bool {
    const size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) {
      if (in.size() - pos > limits_.line) {
        ++c.too_long;
        s.failed = true;
      }
      return false;
    }
    if (nl - pos > limits_.line) {
      ++c.too_long;
      s.failed = true;
      return false;
    }
    line = in.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  };

  while (!s.failed && pos < in.size()) {
    std::string_view line;
    switch (s.state) {
      case Side::State::Line: {
        if (!takeLine(line)) goto out;
        if (line.empty()) continue;  // CRLFs between messages
        if (!startLine(to_server, line, c)) {
          ++c.malformed;
          s.failed = true;
          goto out;
        }
        const HttpTx& t = txFor(to_server);
        if (!(to_server ? t.request.done : t.response.done)) s.state = Side::State::Headers;
        break;
      }
      case Side::State::Headers:
      case Side::State::Trailers: {
        if (!takeLine(line)) goto out;
        HttpTx& t = txFor(to_server);
        HttpMessage& m = to_server ? t.request : t.response;
        if (line.empty()) {
          if (s.state == Side::State::Trailers)
            messageDone(to_server, c);
          else
            headersDone(to_server, c);
          break;
        }
        if (m.raw_headers.size() + line.size() + 2 > limits_.headers ||
            m.headers.size() >= limits_.header_count) {
          ++c.too_long;
          s.failed = true;
          goto out;
        }
        if (s.state == Side::State::Trailers) break;
        m.raw_headers.append(line);
        m.raw_headers.append("\r\n");
        if ((line[0] == ' ' || line[0] == '\t') && !m.headers.empty()) {
          m.headers.back().value += ' ';
          m.headers.back().value += trim(line);
          break;
        }
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
          ++c.malformed;
          break;
        }
        m.headers.push_back(
            {std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
        break;
      }
      case Side::State::Body:
      case Side::State::ChunkData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(s.remaining, in.size() - pos));
        bodyBytes(to_server, in.substr(pos, n), c);
        pos += n;
        s.remaining -= n;
        if (s.remaining == 0) {
          if (s.state == Side::State::Body)
            messageDone(to_server, c);
          else
            s.state = Side::State::ChunkCrlf;
        }
        break;
      }
      case Side::State::ChunkCrlf:
        if (!takeLine(line)) goto out;
        s.state = Side::State::ChunkSize;
        break;
      case Side::State::ChunkSize: {
        if (!takeLine(line)) goto out;
        const std::string_view hex = trim(line.substr(0, line.find(';')));
        uint64_t n = 0;
        bool ok = !hex.empty() && hex.size() <= 15;
        for (char ch : hex) {
          const int v = hexValue(ch);
          if (v < 0) {
            ok = false;
            break;
          }
          n = n * 16 + static_cast<uint64_t>(v);
        }
        if (!ok) {
          ++c.malformed;
          s.failed = true;
          goto out;
        }
        if (n == 0) {
          s.state = Side::State::Trailers;
        } else {
          s.remaining = n;
          s.state = Side::State::ChunkData;
        }
        break;
      }
      case Side::State::UntilClose: {
        bodyBytes(to_server, in.substr(pos), c);
        pos = in.size();
        break;
      }
      case Side::State::Tunnel:
        pos = in.size();
        break;
    }
  }
out:
  return pos;
}

void HttpParser::finish(HttpCounters& c) {
  for (bool dir : {true, false}) {
    Side& s = side(dir);
    if (s.failed) continue;
    // The connection closed inside the headers: what arrived is the header
    // block (a server that closes after "Server: x" without the empty line).
    if (s.state == Side::State::Headers) {
      if (!s.buf.empty()) feed(dir, "\r\n", c);
      if (s.state == Side::State::Headers) feed(dir, "\r\n", c);
    }
    if (s.state != Side::State::Line && s.state != Side::State::Tunnel &&
        !(txFor(dir).*(dir ? &HttpTx::request : &HttpTx::response)).done)
      messageDone(dir, c);
  }
}

}  // namespace palisade::ids
