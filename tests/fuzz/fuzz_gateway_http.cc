// What a gateway client or upstream can send: request heads (fed in
// segments, the way a slow client delivers them), chunked bodies, response
// heads, JSON and XML bodies, bearer tokens and JWK Sets. Must never crash or hang, and must agree
// with itself: a head parsed incrementally is the head parsed whole; limits
// hold on everything accepted; the JSON checker agrees with nlohmann::json.
//
// Input: byte 0 picks the parser (low 3 bits) and the segment size; the rest
// is the message.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/content.h"
#include "gateway/http.h"
#include "gateway/jwt.h"

using namespace palisade::gateway;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void request(std::string_view in, size_t segment) {
  HttpLimits lim;
  lim.max_url = 256;
  lim.max_header_bytes = 2048;
  lim.max_headers = 16;
  lim.max_body = 4096;
  RequestHead whole;
  HttpError err;
  const Parse pw = parseRequestHead(in, lim, whole, err);
  if (pw == Parse::Done) {
    check(whole.head_bytes <= in.size() && whole.head_bytes <= lim.max_header_bytes + 16);
    check(!whole.path.empty() && whole.headers.size() <= lim.max_headers);
    check(whole.body != BodyKind::Length ||
          (whole.content_length > 0 && whole.content_length <= lim.max_body));
    for (const Header& h : whole.headers)
      check(inside(h.name, in) && inside(h.value, in));
    check(inside(whole.method, in) && inside(whole.target, in));
  } else if (pw == Parse::Failed) {
    check(err.status >= 400 && err.status <= 505 && !err.reason.empty());
  }
  // Incrementally, segment by segment: the same outcome once all is there.
  size_t scanned = 0;
  RequestHead inc;
  Parse pi = Parse::Incomplete;
  for (size_t n = std::min(segment, in.size()); n <= in.size(); n += segment) {
    pi = parseRequestHead(in.substr(0, n), lim, inc, err, &scanned);
    if (pi != Parse::Incomplete) break;
    if (n == in.size()) break;
    if (n + segment > in.size()) n = in.size() - segment;
  }
  if (pi == Parse::Done) check(pw == Parse::Done && inc.head_bytes == whole.head_bytes);
  if (pw == Parse::Done && pi != Parse::Done) check(pi == Parse::Failed);  // refused early: a limit
  // What follows the head, as a chunked body.
  if (pw == Parse::Done) {
    ChunkedDecoder d(lim.max_body);
    std::string body;
    std::string_view rest = in.substr(whole.head_bytes);
    while (!rest.empty() && !d.done() && !d.failed()) {
      const size_t n = std::min(segment, rest.size());
      const size_t u = d.feed(rest.substr(0, n), &body);
      check(u <= n);
      if (u < n) break;
      rest.remove_prefix(n);
    }
    check(body.size() == d.payloadBytes() && d.payloadBytes() <= lim.max_body);
  }
}

void response(std::string_view in) {
  ResponseHead h;
  HttpError err;
  for (const char* method : {"GET", "HEAD"}) {
    const Parse p = parseResponseHead(in, method, 4096, h, err);
    if (p == Parse::Done) {
      check(h.status >= 100 && h.status <= 599 && h.head_bytes <= in.size());
      if (std::string_view(method) == "HEAD") check(h.body == BodyKind::None);
    } else if (p == Parse::Failed) {
      check(err.status == 502);
    }
  }
}

bool hasUnicodeEscape(std::string_view s) {
  return s.find("\\u") != std::string_view::npos;
}

void json(std::string_view in) {
  JsonLimits lim;
  lim.max_depth = 1024;
  lim.max_keys = 1u << 30;
  lim.max_string = 1u << 30;
  lim.max_number = 1u << 30;
  lim.max_size = 1u << 30;
  const ContentVerdict v = checkJson(in, lim);
  // nlohmann checks \u surrogate pairs that an API checker leaves to the
  // application, ends its input at a NUL byte and refuses numbers past a
  // double's range; elsewhere the two agree.
  if (hasUnicodeEscape(in) || in.find('\0') != std::string_view::npos || in.size() > 4096) return;
  bool deep = false;
  int depth = 0;
  for (char c : in) {
    depth += (c == '[' || c == '{') - (c == ']' || c == '}');
    deep = deep || depth > 512;
  }
  if (deep) return;
  bool ref = true;
  try {
    (void)nlohmann::json::parse(in);
  } catch (const nlohmann::json::out_of_range&) {
    return;  // a number past double's range: grammar-valid, nlohmann's own refusal
  } catch (const nlohmann::json::exception&) {
    ref = false;
  }
  if (v.ok != ref) std::abort();
  JsonLimits tight;
  tight.max_depth = 4;
  tight.max_keys = 8;
  tight.max_string = 16;
  if (!v.ok) check(!checkJson(in, tight).ok);
}

void xml(std::string_view in) {
  XmlLimits lim;
  lim.max_depth = 8;
  lim.max_attributes = 4;
  lim.max_nodes = 64;
  const ContentVerdict v = checkXml(in, lim);
  // A declaration is never accepted: outside comments, CDATA and processing
  // instructions (whose text may say anything), no "<!" survives.
  const bool opaque = in.find("<?") != std::string_view::npos ||
                      in.find("<!--") != std::string_view::npos ||
                      in.find("<![CDATA[") != std::string_view::npos;
  if (v.ok && !opaque) check(in.find("<!") == std::string_view::npos);
  (void)bodyType("text/plain", in);
}

// A bearer token against a key set with one key of each kind, and the
// bytes as a JWK Set document.
void jwt(std::string_view in, size_t segment) {
  static const JwtKeySet keys = [] {
    auto k = JwtKeySet::parse(
        R"({"keys":[{"kty":"oct","kid":"hs","k":"a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"}]})");
    if (!k) std::abort();
    return std::move(*k);
  }();
  if (segment & 1) {
    (void)JwtKeySet::parse(in);
    return;
  }
  JwtRules rules;
  rules.audiences = {"api"};
  const JwtResult r = verifyJwt(in, keys, rules, 1'800'000'000);
  if (r.ok)
    check(!r.id.subject.empty() && r.id.exp + rules.leeway_s >= 1'800'000'000);
  else
    check(!r.reason.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t segment = (data[0] >> 3) + 1;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] & 7) {
    case 0:
    case 1:
      request(in, segment);
      break;
    case 2:
      response(in);
      break;
    case 3:
    case 4:
      json(in);
      break;
    case 5:
    case 6:
      xml(in);
      break;
    default:
      jwt(in, segment);
      break;
  }
  return 0;
}
