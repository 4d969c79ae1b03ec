#include "shipping/syslog.h"

#include <charconv>
#include <cstring>

#include "core/strings.h"

namespace palisade::shipping {
namespace {

constexpr size_t kMaxLenDigits = 10;  // RFC 5425 allows any length; ours is bounded by max_frame

// The JSON string value of `key` near the start of a record we wrote
// ("timestamp" and "event_type" come first); empty when absent or escaped.
std::string_view leadingField(std::string_view record, std::string_view quoted_key) {
  const size_t limit = std::min<size_t>(record.size(), 160);
  const size_t at = record.substr(0, limit).find(quoted_key);
  if (at == std::string_view::npos) return {};
  const size_t start = at + quoted_key.size();
  const size_t end = record.find('"', start);
  if (end == std::string_view::npos || end - start > 64) return {};
  std::string_view v = record.substr(start, end - start);
  if (v.find('\\') != std::string_view::npos) return {};
  return v;
}

// RFC 5424 fields are PRINTUSASCII (33-126); anything else becomes '_'.
void appendHeaderField(std::string_view v, size_t max, std::string& out) {
  if (v.empty()) {
    out += '-';
    return;
  }
  for (size_t i = 0; i < v.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    out += (c >= 33 && c <= 126) ? static_cast<char>(c) : '_';
  }
}

void appendSdValue(std::string_view v, std::string& out) {
  for (char c : v) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
}

bool isPrintUsAscii(char c) {
  return c >= 33 && c <= 126;
}

// One space-delimited header field of at most `max` PRINTUSASCII characters.
bool takeField(std::string_view& s, size_t max, std::string_view& out) {
  size_t n = 0;
  while (n < s.size() && s[n] != ' ') {
    if (!isPrintUsAscii(s[n]) || n >= max) return false;
    ++n;
  }
  if (n == 0 || n >= s.size()) return false;  // empty, or no space after it
  out = s.substr(0, n);
  s.remove_prefix(n + 1);
  return true;
}

bool parseSd(std::string_view& s, std::vector<SdElement>& sd) {
  if (s.starts_with("-")) {
    s.remove_prefix(1);
    return true;
  }
  if (!s.starts_with("[")) return false;
  while (s.starts_with("[")) {
    s.remove_prefix(1);
    SdElement e;
    size_t n = 0;
    while (n < s.size() && isPrintUsAscii(s[n]) && s[n] != '=' && s[n] != ']' && s[n] != '"')
      ++n;
    if (n == 0 || n > 32) return false;
    e.id.assign(s.substr(0, n));
    s.remove_prefix(n);
    while (s.starts_with(" ")) {
      s.remove_prefix(1);
      n = 0;
      while (n < s.size() && isPrintUsAscii(s[n]) && s[n] != '=' && s[n] != ']' && s[n] != '"')
        ++n;
      if (n == 0 || n > 32 || n + 1 >= s.size() || s[n] != '=' || s[n + 1] != '"') return false;
      SdParam p;
      p.name.assign(s.substr(0, n));
      s.remove_prefix(n + 2);
      size_t i = 0;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i];
        if (c == '\\' && i + 1 < s.size() &&
            (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == ']')) {
          p.value += s[i + 1];
          i += 2;
          continue;
        }
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        if (c == ']') return false;  // must be escaped inside a value
        p.value += c;
        ++i;
      }
      if (!closed) return false;
      s.remove_prefix(i);
      e.params.push_back(std::move(p));
      if (e.params.size() > 64) return false;
    }
    if (!s.starts_with("]")) return false;
    s.remove_prefix(1);
    sd.push_back(std::move(e));
    if (sd.size() > 32) return false;
  }
  return true;
}

}  // namespace

int severityOf(std::string_view event_type) {
  if (event_type == "alert" || event_type == "ddos" || event_type == "anomaly") return 4;
  if (event_type == "drop") return 5;
  return 6;
}

void formatRecordMessage(std::string_view record, std::string_view log_id, int facility,
                         std::string_view host, std::string_view procid, std::string& out) {
  const std::string_view type = leadingField(record, "\"event_type\":\"");
  const std::string_view ts = leadingField(record, "{\"timestamp\":\"");
  char num[24];
  out += '<';
  out.append(num, std::to_chars(num, num + sizeof num, facility * 8 + severityOf(type)).ptr);
  out += ">1 ";
  appendHeaderField(ts, 48, out);
  out += ' ';
  appendHeaderField(host, 255, out);
  out += " palisade ";
  appendHeaderField(procid, 128, out);
  out += ' ';
  appendHeaderField(type, 32, out);
  out += " [";
  out += kSdId;
  out += " log=\"";
  appendSdValue(log_id, out);
  out += "\" seq=\"";
  {
    // The record's seq, read from its tail; the collector checks it against the record.
    const size_t at = record.rfind(",\"seq\":");
    uint64_t seq = 0;
    if (at != std::string_view::npos) {
      const char* p = record.data() + at + 7;
      std::from_chars(p, record.data() + record.size(), seq);
    }
    out.append(num, std::to_chars(num, num + sizeof num, seq).ptr);
  }
  out += "\"] ";
  out += record;
}

void appendOctetCounted(std::string_view msg, std::string& out) {
  char num[24];
  out.append(num, std::to_chars(num, num + sizeof num, msg.size()).ptr);
  out += ' ';
  out += msg;
}

const std::string* SyslogMessage::sdParam(std::string_view id, std::string_view param) const {
  for (const SdElement& e : sd) {
    if (e.id != id) continue;
    for (const SdParam& p : e.params) {
      if (p.name == param) return &p.value;
    }
  }
  return nullptr;
}

bool parseSyslog(std::string_view s, SyslogMessage& out, std::string& why) {
  out = SyslogMessage{};
  if (!s.starts_with("<")) {
    why = "no <PRI>";
    return false;
  }
  size_t close = s.find('>');
  if (close == std::string_view::npos || close < 2 || close > 4) {
    why = "bad <PRI>";
    return false;
  }
  int pri = 0;
  for (size_t i = 1; i < close; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      why = "bad <PRI>";
      return false;
    }
    pri = pri * 10 + (s[i] - '0');
  }
  if (pri > 191) {
    why = "PRI above 191";
    return false;
  }
  out.facility = pri / 8;
  out.severity = pri % 8;
  s.remove_prefix(close + 1);
  const std::string_view after_pri = s;
  auto legacy = [&] {
    out = SyslogMessage{};
    out.facility = pri / 8;
    out.severity = pri % 8;
    out.msg = after_pri;
    return true;
  };
  // VERSION: a nonzero digit and up to two more, then a space.
  size_t v = 0;
  while (v < s.size() && v < 3 && s[v] >= '0' && s[v] <= '9')
    ++v;
  if (v == 0 || s[0] == '0' || v >= s.size() || s[v] != ' ') return legacy();
  std::from_chars(s.data(), s.data() + v, out.version);
  s.remove_prefix(v + 1);
  if (!takeField(s, 48, out.timestamp) || !takeField(s, 255, out.host) ||
      !takeField(s, 48, out.app) || !takeField(s, 128, out.procid) || !takeField(s, 32, out.msgid))
    return legacy();
  if (!parseSd(s, out.sd)) {
    why = "malformed STRUCTURED-DATA";
    return false;
  }
  if (s.starts_with(" ")) s.remove_prefix(1);
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
  out.msg = s;
  return true;
}

void FrameDecoder::feed(std::string_view bytes) {
  if (failed()) return;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (64u << 10) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

bool FrameDecoder::next(std::string_view& frame) {
  if (failed()) return false;
  std::string_view rest = std::string_view(buf_).substr(pos_);
  if (rest.empty()) return false;
  if (mode_ == Mode::kUnknown) {
    if (rest[0] >= '1' && rest[0] <= '9') {
      mode_ = Mode::kOctet;
    } else if (rest[0] == '<') {
      mode_ = Mode::kLine;
    } else {
      error_ = strCat("the stream starts with byte ",
                      std::to_string(static_cast<unsigned char>(rest[0])),
                      ": neither RFC 5425 octet counting nor a syslog message");
      return false;
    }
  }
  if (mode_ == Mode::kLine) {
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      if (rest.size() > max_frame_) error_ = "a line longer than the frame limit";
      return false;
    }
    if (nl > max_frame_) {
      error_ = "a line longer than the frame limit";
      return false;
    }
    frame = rest.substr(0, nl);
    if (frame.ends_with('\r')) frame.remove_suffix(1);
    pos_ += nl + 1;
    return true;
  }
  // Octet counting: MSG-LEN = NONZERO-DIGIT *DIGIT, then SP.
  size_t n = 0;
  uint64_t len = 0;
  while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') {
    if (n == 0 && rest[0] == '0') break;
    len = len * 10 + static_cast<uint64_t>(rest[n] - '0');
    if (++n > kMaxLenDigits || len > max_frame_) {
      error_ = "a frame longer than the frame limit";
      return false;
    }
  }
  if (n == rest.size()) return false;  // the length is not complete yet
  if (n == 0 || rest[n] != ' ') {
    error_ = "malformed octet count (RFC 5425 wants \"LEN SP MSG\")";
    return false;
  }
  if (rest.size() - n - 1 < len) return false;
  frame = rest.substr(n + 1, len);
  pos_ += n + 1 + len;
  return true;
}

std::string formatAck(std::string_view log_id, uint64_t seq) {
  return strCat(kAckPrefix, log_id, " ", std::to_string(seq));
}

bool parseAck(std::string_view frame, std::string& log_id, uint64_t& seq) {
  if (!frame.starts_with(kAckPrefix)) return false;
  frame.remove_prefix(kAckPrefix.size());
  const size_t sp = frame.find(' ');
  if (sp == 0 || sp == std::string_view::npos || sp > 64) return false;
  const std::string_view num = frame.substr(sp + 1);
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), seq);
  if (ec != std::errc() || p != num.data() + num.size() || num.empty()) return false;
  log_id.assign(frame.substr(0, sp));
  return true;
}

}  // namespace palisade::shipping
