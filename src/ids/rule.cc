#include "ids/rule.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "core/strings.h"

namespace palisade::ids {
namespace {

constexpr size_t kMaxRuleText = 64 * 1024;
constexpr size_t kMaxOptions = 512;
constexpr size_t kMaxContent = 16 * 1024;
constexpr size_t kMaxByteVars = 64;

struct BufferInfo {
  std::string_view name, legacy;
};
constexpr BufferInfo kBuffers[] = {
#define PALISADE_X(id, name, legacy) {name, legacy},
    PALISADE_IDS_BUFFERS(PALISADE_X)
#undef PALISADE_X
};

// Legacy names that are sticky buffers: the underscore aliases of Suricata's
// newer buffers. Only the Snort-era names (http_uri, http_header, ...) modify
// the content before them.
bool legacySticky(std::string_view name) {
  return name == "file_data" || name == "dns_query" || name == "tls_sni" ||
         name == "http_content_type";
}

std::optional<Buffer> bufferByName(std::string_view name) {
  for (size_t i = 0; i < kBufferCount; ++i)
    if (kBuffers[i].name == name) return static_cast<Buffer>(i);
  return std::nullopt;
}
std::optional<Buffer> bufferByLegacy(std::string_view name) {
  if (name.empty()) return std::nullopt;
  for (size_t i = 0; i < kBufferCount; ++i)
    if (kBuffers[i].legacy == name) return static_cast<Buffer>(i);
  return std::nullopt;
}

// Buffers Suricata has that this engine does not fill: refused by name, not as
// unknown keywords.
constexpr std::string_view kUninspected[] = {
    "tls.certs",
    "tls.cert_subject",
    "tls.cert_issuer",
    "tls.cert_serial",
    "tls.cert_fingerprint",
    "tls.version",
    "tls.subject",
    "tls.issuerdn",
    "ja3.hash",
    "ja3.string",
    "ja3s.hash",
    "ja3s.string",
    "ja3_hash",
    "ssh.proto",
    "ssh_proto",
    "ssh.software",
    "smb.named_pipe",
    "smb.share",
    "krb5.cname",
    "krb5.sname",
    "sip.method",
    "sip.uri",
    "http2.header",
    "http.request_header",
    "http.response_header",
    "file.name",
    "filename",
    "fileext",
    "filemagic",
    "file.magic",
    "tls_cert_issuer",
    "tls_cert_subject",
    "base64_data",
    "dnp3_data",
    "dns.opcode",
    "dns.answer.name",
    "dns.queries.rrname",
    "quic.sni",
    "quic.ua",
    "email.subject",
};

// The option list "name: value; name; ..." split on unescaped ';' (a backslash
// escapes the next character, as in Suricata; quotes do not protect ';').
Result<std::vector<std::pair<std::string_view, std::string_view>>> splitOptions(
    std::string_view body) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\\') {
      ++i;
      continue;
    }
    if (body[i] != ';') continue;
    std::string_view opt = trim(body.substr(start, i - start));
    start = i + 1;
    if (opt.empty()) continue;
    if (out.size() >= kMaxOptions) return makeError("more than 512 options");
    const size_t colon = opt.find(':');
    if (colon == std::string_view::npos)
      out.emplace_back(opt, std::string_view());
    else
      out.emplace_back(trim(opt.substr(0, colon)), trim(opt.substr(colon + 1)));
  }
  if (!trim(body.substr(start)).empty())
    return makeError(
        strCat("the last option '", printable(trim(body.substr(start))), "' is not ended by ';'"));
  return out;
}

// A quoted value without its quotes; unquoted values are returned as they are.
std::string_view unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}
// msg and friends: \" \; \\ and \: become the character.
std::string unescape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

template <class T>
Result<T> number(std::string_view text, std::string_view what) {
  text = trim(text);
  T v{};
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return makeError(strCat(what, ": '", printable(text), "' is not a number in range"));
  return v;
}

std::vector<std::string_view> splitComma(std::string_view v) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= v.size(); ++i) {
    if (i < v.size() && v[i] != ',') continue;
    out.push_back(trim(v.substr(start, i - start)));
    start = i + 1;
  }
  return out;
}

Result<NumberTest> numberTest(std::string_view v, std::string_view what, bool dash_range) {
  v = trim(v);
  NumberTest t;
  auto one = [&](std::string_view x) { return number<uint64_t>(x, what); };
  if (const size_t between = v.find("<>"); between != std::string_view::npos) {
    auto a = one(v.substr(0, between)), b = one(v.substr(between + 2));
    if (!a) return a.error();
    if (!b) return b.error();
    if (*a >= *b) return makeError(strCat(what, ": '", v, "': the range is empty"));
    t.op = NumberTest::Op::Between;
    t.a = *a;
    t.b = *b;
    return t;
  }
  if (dash_range && !v.empty() && v.find('-', 1) != std::string_view::npos) {
    const size_t dash = v.find('-', 1);
    auto a = one(v.substr(0, dash)), b = one(v.substr(dash + 1));
    if (!a) return a.error();
    if (!b) return b.error();
    if (*a > *b) return makeError(strCat(what, ": '", v, "': the range is backwards"));
    t.op = NumberTest::Op::Range;
    t.a = *a;
    t.b = *b;
    return t;
  }
  struct Prefix {
    std::string_view text;
    NumberTest::Op op;
  };
  for (const Prefix p : {Prefix{"<=", NumberTest::Op::Le}, Prefix{">=", NumberTest::Op::Ge},
                         Prefix{"<", NumberTest::Op::Lt}, Prefix{">", NumberTest::Op::Gt},
                         Prefix{"!", NumberTest::Op::Ne}, Prefix{"=", NumberTest::Op::Eq}}) {
    if (v.starts_with(p.text)) {
      auto a = one(v.substr(p.text.size()));
      if (!a) return a.error();
      t.op = p.op;
      t.a = *a;
      return t;
    }
  }
  auto a = one(v);
  if (!a) return a.error();
  t.a = *a;
  return t;
}

Result<Track> track(std::string_view v, std::string_view what) {
  if (v == "by_src") return Track::BySrc;
  if (v == "by_dst") return Track::ByDst;
  if (v == "by_rule") return Track::ByRule;
  if (v == "by_both") return Track::ByBoth;
  if (v == "by_flow") return Track::ByFlow;
  return makeError(
      strCat(what, ": track '", printable(v), "' (by_src, by_dst, by_rule, by_both, by_flow)"));
}

// "type limit, track by_src, count 1, seconds 60" -> key/value pairs.
Result<std::vector<std::pair<std::string_view, std::string_view>>> keyValues(
    std::string_view v, std::string_view what) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for (std::string_view part : splitComma(v)) {
    const size_t sp = part.find_first_of(" \t");
    if (sp == std::string_view::npos)
      return makeError(strCat(what, ": '", printable(part), "' needs a value"));
    out.emplace_back(part.substr(0, sp), trim(part.substr(sp + 1)));
  }
  return out;
}

// The option words byte_test, byte_jump and byte_extract share (the ones a
// keyword's struct has): true when `o` was one of them.
template <class T>
Result<bool> byteOption(std::string_view o, T& t) {
  if (o == "relative")
    t.relative = true;
  else if (o == "big")
    t.big_endian = true;
  else if (o == "little")
    t.big_endian = false;
  else if (o == "string")
    t.string = true;
  else if (o == "hex")
    t.base = 16;
  else if (o == "dec")
    t.base = 10;
  else if (o == "oct")
    t.base = 8;
  else if (o == "dce")
    return makeError("'dce' (DCERPC) is not inspected");
  else if (o.starts_with("bitmask")) {
    if constexpr (requires { t.bitmask; }) {
      auto v = number<uint64_t>(o.substr(7), "bitmask");
      if (!v) return v.error();
      t.bitmask = *v;
    } else {
      return false;
    }
  } else if (o.starts_with("multiplier")) {
    if constexpr (requires { t.multiplier; }) {
      auto v = number<uint32_t>(o.substr(10), "multiplier");
      if (!v) return v.error();
      t.multiplier = *v;
    } else {
      return false;
    }
  } else {
    return false;
  }
  return true;
}

// 1-8 bytes as binary, 1-23 as a string (0, the rest of the buffer, where allowed).
template <class T>
Status checkByteCount(const T& t, bool zero_string_allowed) {
  const unsigned low = t.string && zero_string_allowed ? 0 : 1;
  const unsigned n = t.bytes;
  if (n < low || n > (t.string ? 23u : 8u))
    return makeError(strCat("bytes must be 1-8 (", low == 0 ? "0" : "1", "-23 with string), not ",
                            std::to_string(n)));
  return {};
}

class Parser {
 public:
  Parser(const Vars& vars, const ClassificationTable* classes) : vars_(vars), classes_(classes) {}

  Result<Rule> parse(std::string_view text) {
    if (text.size() > kMaxRuleText) return makeError("rule longer than 64 KiB");
    text = trim(text);
    const size_t open = text.find('(');
    if (open == std::string_view::npos || text.back() != ')')
      return makeError("expected 'action proto src sport -> dst dport (options;)'");
    if (Status st = header(text.substr(0, open)); !st) return st.error();
    auto opts = splitOptions(text.substr(open + 1, text.size() - open - 2));
    if (!opts) return opts.error();
    for (const auto& [name, value] : *opts) {
      if (Status st = option(name, value); !st)
        return makeError(strCat(name, ": ", st.error().message));
    }
    if (Status st = finish(); !st) return st.error();
    return std::move(r_);
  }

 private:
  Status header(std::string_view h) {
    std::vector<std::string_view> f;
    // Fields are separated by blanks outside brackets ("[1.2.3.4, 5.6.7.8]").
    int level = 0;
    size_t start = std::string_view::npos;
    for (size_t i = 0; i <= h.size(); ++i) {
      const char c = i < h.size() ? h[i] : ' ';
      if (c == '[') ++level;
      if (c == ']') --level;
      const bool blank = (c == ' ' || c == '\t') && level <= 0;
      if (!blank && start == std::string_view::npos) start = i;
      if (blank && start != std::string_view::npos) {
        f.push_back(h.substr(start, i - start));
        start = std::string_view::npos;
      }
    }
    if (f.size() != 7)
      return makeError(strCat("the header has ", std::to_string(f.size()),
                              " fields; expected action proto src sport -> dst dport"));
    if (f[0] == "alert")
      r_.action = Action::Alert;
    else if (f[0] == "drop")
      r_.action = Action::Drop;
    else if (f[0] == "reject" || f[0] == "rejectsrc" || f[0] == "rejectdst" || f[0] == "rejectboth")
      r_.action = Action::Reject;
    else if (f[0] == "pass")
      r_.action = Action::Pass;
    else
      return makeError(strCat("action '", printable(f[0]), "' (alert, drop, reject, pass)"));
    const std::string_view p = f[1];
    if (p == "ip" || p == "pkthdr")
      r_.proto = Proto::Ip;
    else if (p == "tcp")
      r_.proto = Proto::Tcp;
    else if (p == "tcp-pkt")
      r_.proto = Proto::TcpPkt;
    else if (p == "tcp-stream")
      r_.proto = Proto::TcpStream;
    else if (p == "udp")
      r_.proto = Proto::Udp;
    else if (p == "icmp" || p == "icmpv4" || p == "icmpv6")
      r_.proto = Proto::Icmp;
    else if (p == "http" || p == "http1")
      r_.proto = Proto::Http;
    else if (p == "dns")
      r_.proto = Proto::Dns;
    else if (p == "tls")
      r_.proto = Proto::Tls;
    else
      return makeError(strCat("protocol '", printable(p),
                              "' is not inspected (ip, tcp, udp, icmp, http, dns, tls)"));
    auto src = parseAddressSet(f[2], vars_);
    if (!src) return makeError(strCat("source address: ", src.error().message));
    auto sport = parsePortSet(f[3], vars_);
    if (!sport) return makeError(strCat("source port: ", sport.error().message));
    if (f[4] == "<>")
      r_.bidirectional = true;
    else if (f[4] != "->")
      return makeError(strCat("direction '", printable(f[4]), "' (-> or <>)"));
    auto dst = parseAddressSet(f[5], vars_);
    if (!dst) return makeError(strCat("destination address: ", dst.error().message));
    auto dport = parsePortSet(f[6], vars_);
    if (!dport) return makeError(strCat("destination port: ", dport.error().message));
    r_.src = std::move(*src);
    r_.dst = std::move(*dst);
    r_.sport = std::move(*sport);
    r_.dport = std::move(*dport);
    return {};
  }

  // The content the modifiers refer to: the newest one.
  Result<Content*> lastContent(std::string_view what) {
    if (last_content_ < 0) return makeError(strCat("'", what, "' with no content before it"));
    return &r_.matches[static_cast<size_t>(last_content_)].content;
  }

  Result<Operand> operand(std::string_view v, std::string_view what) {
    v = trim(v);
    if (!v.empty() && (std::isalpha(static_cast<unsigned char>(v[0])) || v[0] == '_')) {
      for (size_t i = 0; i < r_.byte_vars.size(); ++i)
        if (r_.byte_vars[i] == v) return Operand{0, static_cast<int8_t>(i)};
      return makeError(
          strCat(what, ": '", printable(v), "' is no byte_extract variable of this rule"));
    }
    auto n = number<int64_t>(v, what);
    if (!n) return n.error();
    return Operand{*n, -1};
  }

  Match& add(Match::Kind k) {
    Match m;
    m.kind = k;
    m.buffer = sticky_;
    m.dotprefix = dotprefix_;
    r_.matches.push_back(std::move(m));
    return r_.matches.back();
  }

  Status content(std::string_view value, Buffer buffer) {
    Match& m = add(Match::Kind::Content);
    m.buffer = buffer;
    std::string_view v = trim(value);
    if (!v.empty() && v.front() == '!') {
      m.content.negated = true;
      v = trim(v.substr(1));
    }
    if (v.size() < 2 || v.front() != '"' || v.back() != '"')
      return makeError("the pattern must be in double quotes");
    auto bytes = parseContentBytes(v.substr(1, v.size() - 2));
    if (!bytes) return bytes.error();
    if (bytes->empty()) return makeError("empty pattern");
    if (bytes->size() > kMaxContent) return makeError("pattern longer than 16 KiB");
    m.content.bytes = std::move(*bytes);
    last_content_ = static_cast<int>(r_.matches.size() - 1);
    return {};
  }

  Status pcre(std::string_view value) {
    std::string_view v = trim(value);
    Match& m = add(Match::Kind::Pcre);
    Pcre& p = m.pcre;
    if (!v.empty() && v.front() == '!') {
      p.negated = true;
      v = trim(v.substr(1));
    }
    v = unquote(v);
    if (v.size() < 2 || v.front() != '/') return makeError("expected \"/pattern/flags\"");
    const size_t close = v.rfind('/');
    if (close == 0) return makeError("expected \"/pattern/flags\"");
    p.pattern = std::string(v.substr(1, close - 1));
    p.flags = std::string(v.substr(close + 1));
    uint32_t opts = 0;
    std::optional<Buffer> buf;
    for (char c : p.flags) {
      std::optional<Buffer> b;
      switch (c) {
        case 'i':
          opts |= PCRE2_CASELESS;
          break;
        case 's':
          opts |= PCRE2_DOTALL;
          break;
        case 'm':
          opts |= PCRE2_MULTILINE;
          break;
        case 'x':
          opts |= PCRE2_EXTENDED;
          break;
        case 'A':
          opts |= PCRE2_ANCHORED;
          break;
        case 'E':
          opts |= PCRE2_DOLLAR_ENDONLY;
          break;
        case 'G':
          opts |= PCRE2_UNGREEDY;
          break;
        case 'R':
          p.relative = true;
          break;
        case 'B':
        case 'O':
          break;  // rawbytes; match-limit override (limits stay)
        case 'U':
          b = Buffer::HttpUri;
          break;
        case 'I':
          b = Buffer::HttpUriRaw;
          break;
        case 'P':
          b = Buffer::HttpRequestBody;
          break;
        case 'Q':
          b = Buffer::FileData;
          break;
        case 'H':
          b = Buffer::HttpHeader;
          break;
        case 'D':
          b = Buffer::HttpHeaderRaw;
          break;
        case 'M':
          b = Buffer::HttpMethod;
          break;
        case 'C':
          b = Buffer::HttpCookie;
          break;
        case 'S':
          b = Buffer::HttpStatCode;
          break;
        case 'Y':
          b = Buffer::HttpStatMsg;
          break;
        case 'V':
          b = Buffer::HttpUserAgent;
          break;
        case 'W':
          b = Buffer::HttpHost;
          break;
        case 'Z':
          b = Buffer::HttpHostRaw;
          break;
        default:
          return makeError(
              strCat("flag '", printable(std::string_view(&c, 1)), "' is not supported"));
      }
      if (b) {
        if (buf && *buf != *b) return makeError("two buffer flags");
        buf = b;
      }
    }
    if (buf) {
      // The response body is file.data in HTTP: the flag repeats the sticky buffer.
      const auto body = [](Buffer b) {
        return b == Buffer::FileData || b == Buffer::HttpResponseBody;
      };
      if (sticky_ != Buffer::Payload && sticky_ != *buf && !(body(sticky_) && body(*buf)))
        return makeError(strCat("buffer flag for ", bufferName(*buf), " inside the sticky buffer ",
                                bufferName(sticky_)));
      if (sticky_ == Buffer::Payload) m.buffer = *buf;
    }
    p.options = opts;
    int err = 0;
    PCRE2_SIZE at = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.pattern.data()),
                                     p.pattern.size(), opts, &err, &at, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return makeError(strCat("does not compile at offset ", std::to_string(at), ": ",
                              reinterpret_cast<const char*>(msg)));
    }
    p.code = std::shared_ptr<pcre2_real_code_8>(code, [](pcre2_code* c) { pcre2_code_free(c); });
    return {};
  }

  Status byteTest(std::string_view value) {
    auto parts = splitComma(value);
    if (parts.size() < 4) return makeError("expected bytes, operator, value, offset[, options]");
    Match& m = add(Match::Kind::ByteTest);
    ByteTest& t = m.byte_test;
    auto n = number<uint8_t>(parts[0], "bytes");
    if (!n) return n.error();
    t.bytes = *n;
    std::string_view op = parts[1];
    if (!op.empty() && op.front() == '!') {
      t.negated = true;
      op.remove_prefix(1);
    }
    if (op == "<")
      t.op = ByteTest::Op::Lt;
    else if (op == ">")
      t.op = ByteTest::Op::Gt;
    else if (op == "<=")
      t.op = ByteTest::Op::Le;
    else if (op == ">=")
      t.op = ByteTest::Op::Ge;
    else if (op == "=" || op.empty())
      t.op = ByteTest::Op::Eq;  // "!" alone is "!="
    else if (op == "&")
      t.op = ByteTest::Op::And;
    else if (op == "^")
      t.op = ByteTest::Op::Or;
    else
      return makeError(strCat("operator '", printable(parts[1]), "'"));
    auto val = operand(parts[2], "value");
    if (!val) return val.error();
    t.value = *val;
    auto off = operand(parts[3], "offset");
    if (!off) return off.error();
    t.offset = *off;
    for (size_t i = 4; i < parts.size(); ++i) {
      auto known = byteOption(parts[i], t);
      if (!known) return known.error();
      if (!*known) return makeError(strCat("option '", printable(parts[i]), "'"));
    }
    if (Status st = checkByteCount(t, true); !st) return st;
    return {};
  }

  Status byteJump(std::string_view value) {
    auto parts = splitComma(value);
    if (parts.size() < 2) return makeError("expected bytes, offset[, options]");
    Match& m = add(Match::Kind::ByteJump);
    ByteJump& j = m.byte_jump;
    auto n = number<uint8_t>(parts[0], "bytes");
    if (!n) return n.error();
    j.bytes = *n;
    auto off = operand(parts[1], "offset");
    if (!off) return off.error();
    j.offset = *off;
    for (size_t i = 2; i < parts.size(); ++i) {
      const std::string_view o = parts[i];
      auto known = byteOption(o, j);
      if (!known) return known.error();
      if (*known) continue;
      if (o == "align") {
        j.align = true;
      } else if (o == "from_beginning") {
        j.from_beginning = true;
      } else if (o == "from_end") {
        j.from_end = true;
      } else if (o.starts_with("post_offset")) {
        auto v = number<int32_t>(o.substr(11), "post_offset");
        if (!v) return v.error();
        j.post_offset = *v;
      } else {
        return makeError(strCat("option '", printable(o), "'"));
      }
    }
    if (Status st = checkByteCount(j, false); !st) return st;
    return {};
  }

  Status byteExtract(std::string_view value) {
    auto parts = splitComma(value);
    if (parts.size() < 3) return makeError("expected bytes, offset, name[, options]");
    Match& m = add(Match::Kind::ByteExtract);
    ByteExtract& e = m.byte_extract;
    auto n = number<uint8_t>(parts[0], "bytes");
    if (!n) return n.error();
    e.bytes = *n;
    auto off = number<int32_t>(parts[1], "offset");
    if (!off) return off.error();
    e.offset = *off;
    const std::string_view name = parts[2];
    if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_'))
      return makeError(strCat("'", printable(name), "' is not a variable name"));
    if (std::find(r_.byte_vars.begin(), r_.byte_vars.end(), name) != r_.byte_vars.end())
      return makeError(strCat("variable '", name, "' extracted twice"));
    if (r_.byte_vars.size() >= kMaxByteVars) return makeError("more than 64 variables");
    for (size_t i = 3; i < parts.size(); ++i) {
      const std::string_view o = parts[i];
      auto known = byteOption(o, e);
      if (!known) return known.error();
      if (*known) continue;
      if (o.starts_with("align")) {
        auto v = number<uint32_t>(o.substr(5), "align");
        if (!v || (*v != 2 && *v != 4)) return makeError("align must be 2 or 4");
        e.align = *v;
      } else {
        return makeError(strCat("option '", printable(o), "'"));
      }
    }
    if (Status st = checkByteCount(e, false); !st) return st;
    e.var = static_cast<int8_t>(r_.byte_vars.size());
    r_.byte_vars.emplace_back(name);
    return {};
  }

  Status isdataat(std::string_view value) {
    auto parts = splitComma(value);
    Match& m = add(Match::Kind::IsDataAt);
    IsDataAt& d = m.isdataat;
    std::string_view first = parts[0];
    if (!first.empty() && first.front() == '!') {
      d.negated = true;
      first.remove_prefix(1);
    }
    auto n = number<int32_t>(first, "offset");
    if (!n) return n.error();
    d.offset = *n;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] == "relative")
        d.relative = true;
      else if (parts[i] != "rawbytes")
        return makeError(strCat("option '", printable(parts[i]), "'"));
    }
    return {};
  }

  Status flow(std::string_view value) {
    FlowOpt f;
    for (std::string_view o : splitComma(value)) {
      if (o == "to_server" || o == "from_client")
        f.to_server = true;
      else if (o == "to_client" || o == "from_server")
        f.to_client = true;
      else if (o == "established")
        f.established = true;
      else if (o == "not_established")
        f.not_established = true;
      else if (o == "stateless")
        f.stateless = true;
      else if (o == "only_stream")
        f.only_stream = true;
      else if (o == "no_stream")
        f.no_stream = true;
      else if (o == "only_frag" || o == "no_frag")
        return makeError(strCat("'", o, "' is not supported"));
      else
        return makeError(strCat("'", printable(o), "' (to_server, to_client, established, ...)"));
    }
    if (f.to_server && f.to_client) return makeError("both to_server and to_client");
    if (f.established && f.not_established)
      return makeError("both established and not_established");
    if (f.only_stream && f.no_stream) return makeError("both only_stream and no_stream");
    r_.flow = f;
    return {};
  }

  Status flowbits(std::string_view value) {
    auto parts = splitComma(value);
    Flowbit fb;
    const std::string_view cmd = parts[0];
    if (cmd == "set")
      fb.cmd = Flowbit::Cmd::Set;
    else if (cmd == "unset")
      fb.cmd = Flowbit::Cmd::Unset;
    else if (cmd == "toggle")
      fb.cmd = Flowbit::Cmd::Toggle;
    else if (cmd == "isset")
      fb.cmd = Flowbit::Cmd::IsSet;
    else if (cmd == "isnotset")
      fb.cmd = Flowbit::Cmd::IsNotSet;
    else if (cmd == "noalert")
      fb.cmd = Flowbit::Cmd::NoAlert;
    else
      return makeError(
          strCat("command '", printable(cmd), "' (set, unset, toggle, isset, isnotset, noalert)"));
    if (fb.cmd == Flowbit::Cmd::NoAlert) {
      if (parts.size() != 1) return makeError("noalert takes no name");
      r_.noalert = true;
      return {};
    }
    if (parts.size() != 2 || parts[1].empty()) return makeError(strCat(cmd, " needs one name"));
    const std::string_view names = parts[1];
    const bool has_or = names.find('|') != std::string_view::npos;
    const bool has_and = names.find('&') != std::string_view::npos;
    if (has_or && has_and) return makeError("'|' and '&' mixed");
    if ((has_or || has_and) && fb.cmd != Flowbit::Cmd::IsSet && fb.cmd != Flowbit::Cmd::IsNotSet)
      return makeError(strCat(cmd, " takes one name, not a list"));
    fb.any_of = has_or;
    size_t start = 0;
    for (size_t i = 0; i <= names.size(); ++i) {
      if (i < names.size() && names[i] != '|' && names[i] != '&') continue;
      std::string_view n = trim(names.substr(start, i - start));
      start = i + 1;
      if (n.empty()) return makeError("empty name in the list");
      fb.names.emplace_back(n);
    }
    r_.flowbits.push_back(std::move(fb));
    return {};
  }

  Status threshold(std::string_view value, bool detection_filter) {
    auto kv = keyValues(value, "value");
    if (!kv) return kv.error();
    Threshold t;
    DetectionFilter d;
    bool has_type = false, has_track = false, has_count = false, has_seconds = false;
    for (const auto& [k, v] : *kv) {
      if (k == "type" && !detection_filter) {
        has_type = true;
        if (v == "limit")
          t.type = Threshold::Type::Limit;
        else if (v == "threshold")
          t.type = Threshold::Type::Threshold;
        else if (v == "both")
          t.type = Threshold::Type::Both;
        else
          return makeError(strCat("type '", printable(v), "' (limit, threshold, both)"));
      } else if (k == "track") {
        has_track = true;
        auto tr = track(v, "track");
        if (!tr) return tr.error();
        t.track = d.track = *tr;
      } else if (k == "count") {
        has_count = true;
        auto c = number<uint32_t>(v, "count");
        if (!c) return c.error();
        t.count = d.count = *c;
      } else if (k == "seconds") {
        has_seconds = true;
        auto s = number<uint32_t>(v, "seconds");
        if (!s) return s.error();
        t.seconds = d.seconds = *s;
      } else if (k == "unique_on" && detection_filter) {
        if (v == "src_port")
          d.unique = DetectionFilter::Unique::SrcPort;
        else if (v == "dst_port")
          d.unique = DetectionFilter::Unique::DstPort;
        else
          return makeError(strCat("unique_on '", printable(v), "' (src_port, dst_port)"));
      } else {
        return makeError(strCat("'", printable(k), "'"));
      }
    }
    if ((!detection_filter && !has_type) || !has_track || !has_count || !has_seconds)
      return makeError(detection_filter ? "needs track, count and seconds"
                                        : "needs type, track, count and seconds");
    if (t.seconds == 0) return makeError("seconds must be at least 1");
    if (detection_filter)
      r_.detection_filter = d;
    else
      r_.threshold = t;
    return {};
  }

  Status tag(std::string_view value) {
    auto parts = splitComma(value);
    Tag t;
    if (parts[0] == "session")
      t.scope = Tag::Scope::Session;
    else if (parts[0] == "host")
      t.scope = Tag::Scope::Host;
    else
      return makeError(strCat("'", printable(parts[0]), "' (session or host)"));
    if (parts.size() >= 3) {
      auto c = number<uint32_t>(parts[1], "count");
      if (!c) return c.error();
      t.count = *c;
      if (parts[2] == "packets")
        t.metric = Tag::Metric::Packets;
      else if (parts[2] == "seconds")
        t.metric = Tag::Metric::Seconds;
      else if (parts[2] == "bytes")
        t.metric = Tag::Metric::Bytes;
      else
        return makeError(strCat("metric '", printable(parts[2]), "' (packets, seconds, bytes)"));
    } else if (parts.size() == 2) {
      return makeError("expected session|host[, count, packets|seconds|bytes[, src|dst]]");
    }
    if (parts.size() >= 4) {
      if (t.scope != Tag::Scope::Host) return makeError("src/dst is for host tags");
      if (parts[3] == "dst")
        t.host_dst = true;
      else if (parts[3] != "src")
        return makeError(strCat("'", printable(parts[3]), "' (src or dst)"));
    }
    if (parts.size() > 4) return makeError("too many fields");
    if (r_.tags.size() >= 8) return makeError("more than 8 tags");
    r_.tags.push_back(t);
    return {};
  }

  Status flags(std::string_view value) {
    FlagsTest f;
    std::string_view v = trim(value), mask;
    if (const size_t comma = v.find(','); comma != std::string_view::npos) {
      mask = trim(v.substr(comma + 1));
      v = trim(v.substr(0, comma));
    }
    auto bit = [](char c) -> int {
      switch (c) {
        case 'F':
          return 0x01;
        case 'S':
          return 0x02;
        case 'R':
          return 0x04;
        case 'P':
          return 0x08;
        case 'A':
          return 0x10;
        case 'U':
          return 0x20;
        case 'E':
        case '2':
          return 0x40;
        case 'C':
        case '1':
          return 0x80;
        default:
          return -1;
      }
    };
    for (char c : v) {
      if (c == '+')
        f.mode = FlagsTest::Mode::Plus;
      else if (c == '*')
        f.mode = FlagsTest::Mode::Any;
      else if (c == '!')
        f.mode = FlagsTest::Mode::Not;
      else if (c == '0')
        f.bits = 0;
      else if (int b = bit(c); b >= 0)
        f.bits = static_cast<uint8_t>(f.bits | b);
      else
        return makeError(strCat("flag '", printable(std::string_view(&c, 1)), "'"));
    }
    for (char c : mask) {
      const int b = bit(c);
      if (b < 0) return makeError(strCat("mask flag '", printable(std::string_view(&c, 1)), "'"));
      f.mask = static_cast<uint8_t>(f.mask & ~b);
    }
    r_.flags = f;
    return {};
  }

  Status sticky(Buffer b) {
    sticky_ = b;
    dotprefix_ = false;
    last_content_ = -1;  // modifiers after a sticky buffer need a new content
    return {};
  }

  Status option(std::string_view name, std::string_view value) {
    // Metadata.
    if (name == "msg") {
      r_.msg = unescape(unquote(value));
      return {};
    }
    if (name == "sid" || name == "rev" || name == "gid") {
      auto n = number<uint32_t>(value, name);
      if (!n) return n.error();
      (name == "sid" ? r_.sid : name == "rev" ? r_.rev : r_.gid) = *n;
      return {};
    }
    if (name == "classtype") {
      r_.classtype = std::string(trim(value));
      return {};
    }
    if (name == "priority") {
      auto n = number<uint8_t>(value, name);
      if (!n || *n == 0) return makeError("must be 1-255");
      r_.priority = *n;
      r_.priority_set = true;
      return {};
    }
    if (name == "reference") {
      r_.references.emplace_back(trim(value));
      return {};
    }
    if (name == "metadata") {
      for (std::string_view kv : splitComma(value)) {
        const size_t sp = kv.find(' ');
        r_.metadata.emplace_back(
            std::string(kv.substr(0, sp)),
            sp == std::string_view::npos ? std::string() : std::string(trim(kv.substr(sp + 1))));
      }
      return {};
    }
    if (name == "target") {
      if (value == "src_ip")
        r_.target = Rule::Target::Src;
      else if (value == "dest_ip")
        r_.target = Rule::Target::Dst;
      else
        return makeError("src_ip or dest_ip");
      return {};
    }
    // Payload.
    if (name == "content") return content(value, sticky_);
    if (name == "uricontent") {
      if (sticky_ != Buffer::Payload) return makeError("inside a sticky buffer");
      return content(value, Buffer::HttpUri);
    }
    if (name == "nocase" || name == "startswith" || name == "endswith" || name == "rawbytes" ||
        name == "fast_pattern") {
      auto c = lastContent(name);
      if (!c) return c.error();
      if (name == "nocase") (*c)->nocase = true;
      if (name == "startswith") (*c)->startswith = true;
      if (name == "endswith") (*c)->endswith = true;
      if (name == "fast_pattern") {
        (*c)->fast_pattern = true;
        if (value == "only")
          (*c)->fast_pattern_only = true;
        else if (!value.empty()) {
          auto parts = splitComma(value);  // "offset,length" of the part to use
          if (parts.size() != 2 || !number<uint16_t>(parts[0], "offset") ||
              !number<uint16_t>(parts[1], "length"))
            return makeError("expected only or OFFSET,LENGTH");
        }
      }
      return {};
    }
    if (name == "depth" || name == "offset" || name == "distance" || name == "within") {
      auto c = lastContent(name);
      if (!c) return c.error();
      auto o = operand(value, name);
      if (!o) return o.error();
      if ((name == "depth" || name == "within") && o->var < 0 && o->value <= 0)
        return makeError("must be at least 1");
      if (name == "offset" && o->var < 0 && o->value < 0) return makeError("must not be negative");
      std::optional<Operand>& slot = name == "depth"      ? (*c)->depth
                                     : name == "offset"   ? (*c)->offset
                                     : name == "distance" ? (*c)->distance
                                                          : (*c)->within;
      if (slot) return makeError("given twice for one content");
      slot = *o;
      return {};
    }
    if (name == "pcre") return pcre(value);
    if (name == "byte_test") return byteTest(value);
    if (name == "byte_jump") return byteJump(value);
    if (name == "byte_extract") return byteExtract(value);
    if (name == "isdataat") return isdataat(value);
    if (name == "bsize") {
      if (sticky_ == Buffer::Payload) return makeError("needs a sticky buffer before it");
      auto t = numberTest(value, name, false);
      if (!t) return t.error();
      add(Match::Kind::Bsize).bsize = *t;
      return {};
    }
    if (name == "dsize" || name == "ttl" || name == "itype" || name == "icode" ||
        name == "urilen") {
      std::string_view v = value;
      if (name == "urilen") {
        auto parts = splitComma(value);
        v = parts[0];
        if (parts.size() == 2 && parts[1] == "raw")
          r_.urilen_raw = true;
        else if (parts.size() == 2 && parts[1] != "norm")
          return makeError("raw or norm");
        else if (parts.size() > 2)
          return makeError("too many fields");
      }
      auto t = numberTest(v, name, name == "ttl");
      if (!t) return t.error();
      auto& slot = name == "dsize"   ? r_.dsize
                   : name == "ttl"   ? r_.ttl
                   : name == "itype" ? r_.itype
                   : name == "icode" ? r_.icode
                                     : r_.urilen;
      slot = *t;
      return {};
    }
    if (name == "icmp_id" || name == "icmp_seq") {
      auto n = number<uint16_t>(value, name);
      if (!n) return n.error();
      (name == "icmp_id" ? r_.icmp_id : r_.icmp_seq) = *n;
      return {};
    }
    if (name == "flags") return flags(value);
    if (name == "flow") return flow(value);
    if (name == "flowbits") return flowbits(value);
    if (name == "noalert") {
      r_.noalert = true;
      return {};
    }
    if (name == "threshold") return threshold(value, false);
    if (name == "detection_filter") return threshold(value, true);
    if (name == "tag") return tag(value);
    // Buffers.
    if (name == "pkt_data") return sticky(Buffer::Payload);
    if (auto b = bufferByName(name); b && *b != Buffer::Payload) return sticky(*b);
    if (legacySticky(name)) return sticky(*bufferByLegacy(name));
    if (auto b = bufferByLegacy(name)) {
      auto c = lastContent(name);
      if (!c) return c.error();
      if (sticky_ != Buffer::Payload) return makeError("a content modifier inside a sticky buffer");
      r_.matches[static_cast<size_t>(last_content_)].buffer = *b;
      return {};
    }
    if (name == "dotprefix") {
      if (sticky_ == Buffer::Payload) return makeError("needs a sticky buffer before it");
      dotprefix_ = true;
      last_content_ = -1;
      return {};
    }
    for (std::string_view u : kUninspected)
      if (name == u) return makeError("this buffer is not inspected");
    return makeError("unsupported keyword");
  }

  Status finish() {
    if (r_.sid == 0) return makeError("no sid");
    for (size_t i = 0; i < r_.matches.size(); ++i) {
      const Match& m = r_.matches[i];
      if (m.kind != Match::Kind::Content) continue;
      const Content& c = m.content;
      if (c.startswith && (c.offset || c.depth || c.distance || c.within))
        return makeError("content: startswith with offset, depth, distance or within");
      if (c.depth && c.depth->var < 0 && static_cast<size_t>(c.depth->value) < c.bytes.size())
        return makeError("content: depth is shorter than the pattern");
      if (c.within && c.within->var < 0 && static_cast<size_t>(c.within->value) < c.bytes.size())
        return makeError("content: within is shorter than the pattern");
      if ((c.distance || c.within) && (c.offset || c.depth))
        return makeError("content: distance/within mixed with offset/depth");
      if (c.fast_pattern_only && (c.negated || c.relative() || c.offset || c.depth))
        return makeError("content: fast_pattern:only on a negated or positioned content");
    }
    const Proto app = r_.appProto();
    const auto appOf = [](Proto p) {
      return p == Proto::Http || p == Proto::Dns || p == Proto::Tls;
    };
    if (appOf(app) && appOf(r_.proto) && app != r_.proto)
      return makeError(
          strCat("a ", protoName(r_.proto), " rule inspects a ", protoName(app), " buffer"));
    if (appOf(app) && (r_.proto == Proto::Icmp || (r_.proto == Proto::Udp && app != Proto::Dns)))
      return makeError(
          strCat("a ", protoName(r_.proto), " rule inspects a ", protoName(app), " buffer"));
    if ((r_.itype || r_.icode || r_.icmp_id || r_.icmp_seq) && r_.proto != Proto::Icmp &&
        r_.proto != Proto::Ip)
      return makeError("ICMP keywords in a non-ICMP rule");
    if (r_.flags && r_.proto != Proto::Tcp && r_.proto != Proto::TcpPkt && r_.proto != Proto::Ip &&
        r_.proto != Proto::TcpStream)
      return makeError("flags in a non-TCP rule");
    if (!r_.classtype.empty() && classes_) {
      auto it = classes_->classes.find(r_.classtype);
      if (it == classes_->classes.end())
        return makeError(
            strCat("classtype '", printable(r_.classtype), "' is not in classification.config"));
      if (!r_.priority_set) r_.priority = it->second.priority;
    }
    return {};
  }

  const Vars& vars_;
  const ClassificationTable* classes_;
  Rule r_;
  Buffer sticky_ = Buffer::Payload;
  bool dotprefix_ = false;
  int last_content_ = -1;
};

}  // namespace

std::string_view protoName(Proto p) {
  switch (p) {
    case Proto::Ip:
      return "ip";
    case Proto::Tcp:
      return "tcp";
    case Proto::TcpPkt:
      return "tcp-pkt";
    case Proto::TcpStream:
      return "tcp-stream";
    case Proto::Udp:
      return "udp";
    case Proto::Icmp:
      return "icmp";
    case Proto::Http:
      return "http";
    case Proto::Dns:
      return "dns";
    case Proto::Tls:
      return "tls";
  }
  return "?";
}

std::string_view bufferName(Buffer b) {
  return kBuffers[static_cast<size_t>(b)].name;
}

Proto bufferProto(Buffer b) {
  if (b == Buffer::Payload) return Proto::Tcp;
  if (b == Buffer::DnsQuery) return Proto::Dns;
  if (b == Buffer::TlsSni) return Proto::Tls;
  return Proto::Http;
}

bool NumberTest::test(uint64_t v) const {
  switch (op) {
    case Op::Eq:
      return v == a;
    case Op::Lt:
      return v < a;
    case Op::Gt:
      return v > a;
    case Op::Le:
      return v <= a;
    case Op::Ge:
      return v >= a;
    case Op::Ne:
      return v != a;
    case Op::Between:
      return v > a && v < b;
    case Op::Range:
      return v >= a && v <= b;
  }
  return false;
}

Proto Rule::appProto() const {
  for (const Match& m : matches)
    if (m.buffer != Buffer::Payload) return bufferProto(m.buffer);
  if (urilen) return Proto::Http;
  return proto;
}

std::string Rule::id() const {
  return strCat("[", std::to_string(gid), ":", std::to_string(sid), ":", std::to_string(rev), "]");
}

Result<std::string> parseContentBytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool hex = false;
  int nibble = -1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '|') {
      if (hex && nibble >= 0) return makeError("odd number of hex digits between '|'");
      hex = !hex;
      continue;
    }
    if (hex) {
      if (c == ' ' || c == '\t') continue;
      const int v = hexValue(c);
      if (v < 0)
        return makeError(
            strCat("'", printable(std::string_view(&c, 1)), "' between '|' is not a hex digit"));
      if (nibble < 0) {
        nibble = v;
      } else {
        out += static_cast<char>(nibble << 4 | v);
        nibble = -1;
      }
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) return makeError("a trailing backslash");
      const char n = text[++i];
      if (n != '"' && n != ';' && n != '\\' && n != ':' && n != '|')
        return makeError(strCat("'\\", printable(std::string_view(&n, 1)),
                                "' (only \\\" \\; \\: \\| and \\\\ are escapes)"));
      out += n;
      continue;
    }
    if (c == '"' || c == ';')
      return makeError(strCat("an unescaped '", std::string_view(&c, 1), "'"));
    out += c;
  }
  if (hex) return makeError("'|' without its closing '|'");
  return out;
}

Result<Rule> parseRule(std::string_view text, const Vars& vars,
                       const ClassificationTable* classes) {
  return Parser(vars, classes).parse(text);
}

Result<ClassificationTable> ClassificationTable::parse(std::string_view text) {
  ClassificationTable t;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    constexpr std::string_view kPrefix = "config classification:";
    if (!line.starts_with(kPrefix))
      return makeError(strCat("line ", std::to_string(line_no),
                              ": expected 'config classification: name,description,priority'"));
    auto parts = splitComma(line.substr(kPrefix.size()));
    if (parts.size() != 3 || parts[0].empty())
      return makeError(
          strCat("line ", std::to_string(line_no), ": expected name,description,priority"));
    auto prio = number<uint8_t>(parts[2], "priority");
    if (!prio || *prio == 0)
      return makeError(strCat("line ", std::to_string(line_no), ": priority must be 1-255"));
    t.classes[std::string(parts[0])] = Class{std::string(parts[1]), *prio};
  }
  return t;
}

Result<ClassificationTable> ClassificationTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(errnoText(path));
  std::ostringstream ss;
  ss << in.rdbuf();
  auto t = parse(ss.str());
  if (!t) return makeError(strCat(path, ": ", t.error().message));
  return t;
}

}  // namespace palisade::ids
