// The largest entries of a report table, for the page and for --json alike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "report/report.h"

namespace palisade::report {

// The n entries of m with the largest key(value), ties in name order.
template <class V>
std::vector<std::pair<std::string, V>> topN(const std::map<std::string, V>& m, size_t n,
                                            uint64_t (*key)(const V&)) {
  std::vector<std::pair<std::string, V>> v(m.begin(), m.end());
  const size_t k = std::min(n, v.size());
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end(),
                    [&](const auto& a, const auto& b) {
                      return key(a.second) != key(b.second) ? key(a.second) > key(b.second)
                                                            : a.first < b.first;
                    });
  v.resize(k);
  return v;
}

inline uint64_t countOf(const uint64_t& v) {
  return v;
}
inline uint64_t bytesOf(const Talker& t) {
  return t.bytes;
}

}  // namespace palisade::report
