// Small string helpers for the control plane (messages, suggestions).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace palisade {

// Levenshtein distance, case-insensitive.
size_t editDistance(std::string_view a, std::string_view b);

// The candidate closest to word when it is a plausible typo (distance at most
// a third of the word's length, at least 1, at most 3); empty otherwise.
std::string_view closestMatch(std::string_view word, std::span<const std::string_view> candidates);

std::string join(std::span<const std::string_view> parts, std::string_view sep);

// s without leading and trailing spaces, tabs, CR and LF.
// ASCII case folding (protocol tokens, header names): no locale involved.
inline char asciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}
inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  return true;
}
inline bool containsIgnoreCase(std::string_view hay, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (equalsIgnoreCase(hay.substr(i, needle.size()), needle)) return true;
  return needle.empty();
}

// A hex digit's value (either case), or -1.
inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t a = s.find_first_not_of(kSpace);
  if (a == std::string_view::npos) return {};
  return s.substr(a, s.find_last_not_of(kSpace) - a + 1);
}

// s with control characters and bytes >= 0x7f shown as \xNN, for messages.
std::string printable(std::string_view s);

// Concatenates string-like pieces with one allocation. Prefer it to chains of
// operator+ (which also trip GCC 12's -Wrestrict false positive, PR105329).
template <class... Parts>
std::string strCat(const Parts&... parts) {
  const std::string_view views[] = {std::string_view(parts)...};
  size_t n = 0;
  for (std::string_view v : views)
    n += v.size();
  std::string out;
  out.reserve(n);
  for (std::string_view v : views)
    out.append(v);
  return out;
}
std::string join(const std::vector<std::string>& parts, std::string_view sep);

// "WHAT: strerror(errno)", for messages about a failed system call.
std::string errnoText(std::string_view what);

// "64M", "1G", "4096" (bytes; K, M, G, T are powers of 1024).
Result<uint64_t> parseSize(std::string_view s);
// "500ms", "30s", "15m", "24h", "30d" (a bare number is seconds).
Result<TimeNs> parseDuration(std::string_view s);

}  // namespace palisade
