// What `palisade report` reads: any bytes as lines of stored events (a
// collector's store holds what its sources sent), aggregated and rendered.
// Must never crash or hang, and no markup of an event may reach the page.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "report/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::report;
  // A month, reported day by day, or a day hour by hour (the first byte picks).
  const palisade::TimeNs from = *palisade::parseTimestamp("2026-10-01");
  const bool month = size > 0 && (data[0] & 1);
  EventAggregator agg(from, from + (month ? 31 : 1) * palisade::kNsPerDay);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    const size_t nl = in.find('\n');
    agg.addLine(in.substr(0, nl));
    if (nl == std::string_view::npos) break;
    in.remove_prefix(nl + 1);
  }
  RenderOptions o;
  o.monthly = month;
  const std::string html = renderHtml(agg.data(), o);
  // The page's own markup has none of these; an event's would be escaped.
  for (const char* tag : {"<script", "<iframe", "<img", "<object"})
    if (html.find(tag) != std::string::npos) std::abort();
  (void)toJson(agg.data(), 10);
  return 0;
}
