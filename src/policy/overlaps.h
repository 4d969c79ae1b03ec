// Overlap detection among many prefixes in O(n log n).
//
// Sorted by (family, network, length), prefixes that overlap are nested, so a
// sweep keeps the chain of prefixes containing the current one (at most 129
// deep). Each prefix overlapping an earlier one is reported once, with the
// nearest prefix containing it. For lists that are each free of inner overlaps,
// every overlap between them is found.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/net.h"

namespace palisade::policy {

struct PrefixItem {
  Prefix prefix;
  uint32_t owner;  // caller's id (which VNet, which list, ...)
  uint32_t index;  // caller's index within the owner
};

// Calls report(const PrefixItem& later, const PrefixItem& container) for each
// prefix that lies inside (or equals) an earlier one in sorted order.
template <class Report>
void findOverlaps(std::vector<PrefixItem> items, Report&& report) {
  std::sort(items.begin(), items.end(), [](const PrefixItem& a, const PrefixItem& b) {
    if (a.prefix.isV4() != b.prefix.isV4()) return a.prefix.isV4();
    if (a.prefix.addr != b.prefix.addr) return a.prefix.addr < b.prefix.addr;
    if (a.prefix.len != b.prefix.len) return a.prefix.len < b.prefix.len;
    return a.owner != b.owner ? a.owner < b.owner : a.index < b.index;
  });
  std::vector<const PrefixItem*> chain;
  for (const PrefixItem& it : items) {
    while (!chain.empty() && !chain.back()->prefix.contains(it.prefix))
      chain.pop_back();
    if (!chain.empty()) {
      report(it, *chain.back());
      if (chain.back()->prefix == it.prefix) continue;  // duplicates do not deepen the chain
    }
    chain.push_back(&it);
  }
}

}  // namespace palisade::policy
