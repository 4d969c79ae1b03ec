#include "gateway/content.h"

#include <string>
#include <vector>

#include "core/strings.h"

namespace palisade::gateway {
namespace {

constexpr ContentVerdict bad(std::string_view reason, int status = 400) {
  return {false, status, reason};
}

bool isWs(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isHex(char c) {
  return hexValue(c) >= 0;
}

// One UTF-8 sequence starting at s[i] (a byte >= 0x80); its length, or 0 when
// malformed (overlong forms, surrogates and code points past U+10FFFF too).
size_t utf8Length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (b0 >= 0xc2 && b0 <= 0xdf)
    n = 2, cp = b0 & 0x1f;
  else if (b0 >= 0xe0 && b0 <= 0xef)
    n = 3, cp = b0 & 0x0f;
  else if (b0 >= 0xf0 && b0 <= 0xf4)
    n = 4, cp = b0 & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

class JsonChecker {
 public:
  JsonChecker(std::string_view doc, const JsonLimits& limits) : s_(doc), lim_(limits) {
    stack_.reserve(limits.max_depth);
  }

  ContentVerdict run() {
    if (s_.size() > lim_.max_size) return bad("JSON body too large", 413);
    if (s_.starts_with("\xef\xbb\xbf"))
      i_ = 3;  // a byte order mark parsers may skip (RFC 8259 8.1)
    enum class Want : uint8_t { Value, Key, After };
    Want want = Want::Value;
    for (;;) {
      skipWs();
      if (want == Want::Value) {
        if (i_ >= s_.size()) return bad(stack_.empty() ? "empty JSON body" : "truncated JSON");
        const char c = s_[i_];
        if (c == '{' || c == '[') {
          if (stack_.size() >= lim_.max_depth) return bad("JSON nesting too deep");
          stack_.push_back(c);
          ++i_;
          skipWs();
          if (i_ < s_.size() && s_[i_] == (c == '{' ? '}' : ']')) {
            stack_.pop_back();
            ++i_;
            want = Want::After;
          } else {
            want = c == '{' ? Want::Key : Want::Value;
          }
          continue;
        }
        ContentVerdict v = c == '"'                             ? string()
                           : (c == '-' || isDigit(c))           ? number()
                           : (c == 't' || c == 'f' || c == 'n') ? literal()
                                                                : bad("malformed JSON value");
        if (!v.ok) return v;
        want = Want::After;
      } else if (want == Want::Key) {
        if (i_ >= s_.size() || s_[i_] != '"') return bad("JSON object key expected");
        if (++keys_ > lim_.max_keys) return bad("too many JSON object members");
        if (ContentVerdict v = string(); !v.ok) return v;
        skipWs();
        if (i_ >= s_.size() || s_[i_] != ':') return bad("':' expected after a JSON key");
        ++i_;
        want = Want::Value;
      } else {
        if (stack_.empty()) {
          if (i_ != s_.size()) return bad("data after the JSON document");
          return {};
        }
        if (i_ >= s_.size()) return bad("truncated JSON");
        const char c = s_[i_++];
        const char top = stack_.back();
        if (c == ',') {
          want = top == '{' ? Want::Key : Want::Value;
        } else if (c == (top == '{' ? '}' : ']')) {
          stack_.pop_back();
        } else {
          return bad("malformed JSON: ',' or a closing bracket expected");
        }
      }
    }
  }

 private:
  void skipWs() {
    while (i_ < s_.size() && isWs(s_[i_]))
      ++i_;
  }
  ContentVerdict string() {
    const size_t start = ++i_;
    while (i_ < s_.size()) {
      if (i_ - start > lim_.max_string) return bad("JSON string too long");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return {};
      }
      if (c < 0x20) return bad("control character in a JSON string");
      if (c == '\\') {
        if (i_ + 1 >= s_.size()) break;
        const char e = s_[i_ + 1];
        if (e == 'u') {
          if (i_ + 6 > s_.size()) break;
          for (size_t k = 2; k < 6; ++k)
            if (!isHex(s_[i_ + k])) return bad("malformed JSON \\u escape");
          i_ += 6;
        } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
          i_ += 2;
        } else {
          return bad("malformed JSON escape");
        }
      } else if (c >= 0x80) {
        const size_t n = utf8Length(s_, i_);
        if (n == 0) return bad("invalid UTF-8 in a JSON string");
        i_ += n;
      } else {
        ++i_;
      }
    }
    return bad("unterminated JSON string");
  }

  ContentVerdict number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !isDigit(s_[i_])) return bad("malformed JSON number");
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && isDigit(s_[i_]))
        ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !isDigit(s_[i_])) return bad("malformed JSON number");
      while (i_ < s_.size() && isDigit(s_[i_]))
        ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !isDigit(s_[i_])) return bad("malformed JSON number");
      while (i_ < s_.size() && isDigit(s_[i_]))
        ++i_;
    }
    // Numbers hundreds of digits long are how big-number parsers are made to spin.
    if (i_ - start > lim_.max_number) return bad("JSON number too long");
    return {};
  }

  ContentVerdict literal() {
    for (std::string_view lit : {"true", "false", "null"}) {
      if (s_.substr(i_, lit.size()) == lit) {
        i_ += lit.size();
        return {};
      }
    }
    return bad("malformed JSON literal");
  }

  std::string_view s_;
  const JsonLimits& lim_;
  size_t i_ = 0;
  uint32_t keys_ = 0;
  std::string stack_;
};

bool isNameStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}
bool isNameChar(unsigned char c) {
  return isNameStart(c) || isDigit(static_cast<char>(c)) || c == '-' || c == '.';
}

class XmlChecker {
 public:
  XmlChecker(std::string_view doc, const XmlLimits& limits) : s_(doc), lim_(limits) {
    names_.reserve(limits.max_depth);
  }

  ContentVerdict run() {
    if (s_.size() > lim_.max_size) return bad("XML body too large", 413);
    if (s_.substr(0, 3) == "\xef\xbb\xbf") i_ = 3;
    while (i_ < s_.size()) {
      const size_t lt = s_.find('<', i_);
      const std::string_view text = s_.substr(i_, lt - i_);
      if (ContentVerdict v = checkText(text); !v.ok) return v;
      if (lt == std::string_view::npos) break;
      i_ = lt;
      const std::string_view rest = s_.substr(i_);
      ContentVerdict v;
      if (rest.starts_with("<?")) {
        v = skipPast("?>", "unterminated XML processing instruction");
      } else if (rest.starts_with("<!--")) {
        v = skipPast("-->", "unterminated XML comment");
      } else if (rest.starts_with("<![CDATA[")) {
        if (names_.empty()) return bad("XML CDATA outside the root element");
        v = skipPast("]]>", "unterminated XML CDATA section");
      } else if (rest.starts_with("<!")) {
        // <!DOCTYPE, <!ENTITY, <!ELEMENT...: declarations are how entities get in.
        return bad("XML document type declarations are refused");
      } else if (rest.starts_with("</")) {
        v = endTag();
      } else {
        v = startTag();
      }
      if (!v.ok) return v;
    }
    if (!names_.empty()) return bad("unclosed XML element");
    if (!root_seen_) return bad(allWs() ? "empty XML body" : "XML document without an element");
    return {};
  }

 private:
  bool allWs() const {
    for (char c : s_)
      if (!isWs(c)) return false;
    return true;
  }

  // Character data: only whitespace outside the root; entity references only
  // the five predefined ones or character references (nothing is declared).
  ContentVerdict checkText(std::string_view t) {
    for (size_t k = 0; k < t.size(); ++k) {
      const char c = t[k];
      if (names_.empty()) {
        if (!isWs(c)) return bad("XML text outside the root element");
        continue;
      }
      if (c == '&') {
        if (ContentVerdict v = reference(t.substr(k)); !v.ok) return v;
      }
    }
    return {};
  }

  static ContentVerdict reference(std::string_view r) {
    const size_t semi = r.find(';');
    if (semi == std::string_view::npos || semi > 12) return bad("malformed XML entity reference");
    const std::string_view name = r.substr(1, semi - 1);
    if (name == "lt" || name == "gt" || name == "amp" || name == "apos" || name == "quot")
      return {};
    if (name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x';
      const std::string_view digits = name.substr(hex ? 2 : 1);
      if (digits.empty()) return bad("malformed XML character reference");
      for (char d : digits)
        if (!(hex ? isHex(d) : isDigit(d))) return bad("malformed XML character reference");
      return {};
    }
    return bad("undeclared XML entity reference");
  }

  ContentVerdict skipPast(std::string_view end, std::string_view why) {
    const size_t at = s_.find(end, i_ + 2);
    if (at == std::string_view::npos) return bad(why);
    i_ = at + end.size();
    return {};
  }

  std::string_view name() {
    const size_t start = i_;
    if (i_ >= s_.size() || !isNameStart(static_cast<unsigned char>(s_[i_]))) return {};
    while (i_ < s_.size() && isNameChar(static_cast<unsigned char>(s_[i_])))
      ++i_;
    return s_.substr(start, i_ - start);
  }
  void skipWs() {
    while (i_ < s_.size() && isWs(s_[i_]))
      ++i_;
  }

  ContentVerdict startTag() {
    ++i_;  // '<'
    const std::string_view tag = name();
    if (tag.empty()) return bad("malformed XML element name");
    if (names_.empty() && root_seen_) return bad("more than one XML root element");
    if (++nodes_ > lim_.max_nodes) return bad("too many XML elements");
    uint32_t attrs = 0;
    for (;;) {
      const size_t before = i_;
      skipWs();
      if (i_ >= s_.size()) return bad("unterminated XML start tag");
      if (s_[i_] == '>' || s_.substr(i_, 2) == "/>") {
        const bool empty = s_[i_] == '/';
        i_ += empty ? 2 : 1;
        root_seen_ = true;
        if (!empty) {
          if (names_.size() >= lim_.max_depth) return bad("XML nesting too deep");
          names_.push_back(tag);
        }
        return {};
      }
      if (i_ == before) return bad("whitespace expected between XML attributes");
      if (name().empty()) return bad("malformed XML attribute name");
      if (++attrs > lim_.max_attributes) return bad("too many XML attributes on one element");
      skipWs();
      if (i_ >= s_.size() || s_[i_] != '=') return bad("'=' expected after an XML attribute name");
      ++i_;
      skipWs();
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\''))
        return bad("unquoted XML attribute");
      const char quote = s_[i_++];
      const size_t close = s_.find(quote, i_);
      if (close == std::string_view::npos) return bad("unterminated XML attribute value");
      const std::string_view value = s_.substr(i_, close - i_);
      if (value.find('<') != std::string_view::npos) return bad("'<' in an XML attribute value");
      for (size_t k = value.find('&'); k != std::string_view::npos; k = value.find('&', k + 1))
        if (ContentVerdict v = reference(value.substr(k)); !v.ok) return v;
      i_ = close + 1;
    }
  }

  ContentVerdict endTag() {
    i_ += 2;
    const std::string_view tag = name();
    skipWs();
    if (tag.empty() || i_ >= s_.size() || s_[i_] != '>') return bad("malformed XML end tag");
    ++i_;
    if (names_.empty() || names_.back() != tag) return bad("mismatched XML end tag");
    names_.pop_back();
    return {};
  }

  std::string_view s_;
  const XmlLimits& lim_;
  size_t i_ = 0;
  uint32_t nodes_ = 0;
  bool root_seen_ = false;
  std::vector<std::string_view> names_;
};

}  // namespace

ContentVerdict checkJson(std::string_view doc, const JsonLimits& limits) {
  return JsonChecker(doc, limits).run();
}

ContentVerdict checkXml(std::string_view doc, const XmlLimits& limits) {
  return XmlChecker(doc, limits).run();
}

BodyType bodyType(std::string_view content_type, std::string_view body) {
  std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  auto endsWith = [&](std::string_view suffix) {
    return media.size() >= suffix.size() &&
           equalsIgnoreCase(media.substr(media.size() - suffix.size()), suffix);
  };
  if (equalsIgnoreCase(media, "application/json") || endsWith("+json")) return BodyType::Json;
  if (equalsIgnoreCase(media, "application/xml") || equalsIgnoreCase(media, "text/xml") ||
      endsWith("+xml"))
    return BodyType::Xml;
  std::string_view head = body.substr(0, 512);
  if (head.starts_with("\xef\xbb\xbf")) head.remove_prefix(3);
  while (!head.empty() && isWs(head.front()))
    head.remove_prefix(1);
  if (head.starts_with("<?xml")) return BodyType::Xml;
  // Markup carrying a declaration, even behind comments or a wrong label.
  const std::string_view window = body.substr(0, 65536);
  if (head.starts_with("<") &&
      (containsIgnoreCase(window, "<!doctype") || containsIgnoreCase(window, "<!entity")))
    return BodyType::Xml;
  return BodyType::Other;
}

}  // namespace palisade::gateway
