#include "core/strings.h"

#include <charconv>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace palisade {

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string_view closestMatch(std::string_view word, std::span<const std::string_view> candidates) {
  const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::string_view best;
  size_t best_d = limit + 1;
  for (std::string_view c : candidates) {
    const size_t d = editDistance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string join(std::span<const std::string_view> parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string errnoText(std::string_view what) {
  return strCat(what, ": ", std::strerror(errno));
}

namespace {

Result<uint64_t> parseScaled(std::string_view s, std::string_view what,
                             uint64_t (*unit)(char suffix)) {
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr == s.data()) {
    return makeError(strCat("'", std::string(s), "' is not a ", std::string(what)));
  }
  const std::string_view rest(r.ptr, static_cast<size_t>(s.data() + s.size() - r.ptr));
  uint64_t scale = 1;
  if (!rest.empty()) {
    scale = rest.size() == 1 ? unit(rest[0]) : 0;
    if (scale == 0) return makeError(strCat("'", std::string(s), "' is not a ", std::string(what)));
  }
  if (v > UINT64_MAX / scale) return makeError(strCat("'", std::string(s), "' is too large"));
  return v * scale;
}

}  // namespace

Result<uint64_t> parseSize(std::string_view s) {
  return parseScaled(s, "size (e.g. 64M)", [](char c) -> uint64_t {
    switch (c) {
      case 'K':
      case 'k':
        return 1ull << 10;
      case 'M':
      case 'm':
        return 1ull << 20;
      case 'G':
      case 'g':
        return 1ull << 30;
      case 'T':
      case 't':
        return 1ull << 40;
      default:
        return 0;
    }
  });
}

Result<TimeNs> parseDuration(std::string_view s) {
  if (s.size() > 2 && s.ends_with("ms")) {
    auto ms = parseScaled(s.substr(0, s.size() - 2), "duration (e.g. 500ms, 30s, 15m)",
                          [](char) -> uint64_t { return 0; });
    if (!ms) return makeError(strCat("'", std::string(s), "' is not a duration (e.g. 500ms)"));
    if (*ms > UINT64_MAX / 1'000'000ull)
      return makeError(strCat("'", std::string(s), "' is too large"));
    return *ms * 1'000'000ull;
  }
  return parseScaled(s, "duration (e.g. 30s, 15m, 24h, 30d)", [](char c) -> uint64_t {
    constexpr uint64_t kSec = 1'000'000'000ull;
    switch (c) {
      case 's':
        return kSec;
      case 'm':
        return 60 * kSec;
      case 'h':
        return 3600 * kSec;
      case 'd':
        return 86400 * kSec;
      default:
        return 0;
    }
  });
}

}  // namespace palisade
