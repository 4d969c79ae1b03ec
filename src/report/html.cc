// The report as one self-contained HTML page: inline CSS, inline SVG, no
// script, nothing fetched. Everything that came from an event is escaped.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "pipeline/pipeline.h"
#include "report/report.h"
#include "report/top.h"

namespace palisade::report {
namespace {

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters would make the page invalid; show them as '?'.
        out += static_cast<unsigned char>(c) < 0x20 && c != '\t' ? '?' : c;
    }
  }
  return out;
}

// 1234567 -> "1,234,567"
std::string num(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string bytes(uint64_t v) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double x = static_cast<double>(v);
  size_t u = 0;
  while (x >= 1000 && u + 1 < std::size(kUnits)) {
    x /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", x, kUnits[u]);
  return buf;
}

std::string percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "";
  char buf[16];
  const double p = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  std::snprintf(buf, sizeof buf, p < 0.1 && part ? "&lt;0.1%%" : "%.1f%%", p);
  return buf;
}

std::string date(TimeNs t) {
  const CivilDate c = civilFromDays(static_cast<int64_t>(t / kNsPerDay));
  static constexpr const char* kMonths[] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};
  return strCat(std::to_string(c.day), " ", kMonths[c.month - 1], " ", std::to_string(c.year));
}

std::string monthName(TimeNs t) {
  std::string d = date(t);
  return d.substr(d.find(' ') + 1);
}

std::string clock(TimeNs t) {
  char buf[8];
  const auto s = static_cast<unsigned>(t / 1000000000ull % 86400);
  std::snprintf(buf, sizeof buf, "%02u:%02u", s / 3600, s / 60 % 60);
  return buf;
}

std::string dateTime(TimeNs t) {
  return strCat(date(t), " ", clock(t), " UTC");
}

// A key as a table shows it: escaped, at most 48 characters (the whole of it
// in the tooltip), so one hostile name cannot widen the page.
std::string keyCell(const std::string& k) {
  if (k.size() <= 48) return strCat("<span class=\"mono\">", esc(k), "</span>");
  size_t n = 47;
  while (n > 0 && (static_cast<unsigned char>(k[n]) & 0xC0) == 0x80)
    --n;  // whole UTF-8 only
  return strCat("<span class=\"mono\" title=\"", esc(k), "\">", esc(k.substr(0, n)),
                "&hellip;</span>");
}
// A bar inside a table cell: its length against the largest of the table.
std::string bar(uint64_t v, uint64_t max, const char* cls = "") {
  const double w = max ? 100.0 * static_cast<double>(v) / static_cast<double>(max) : 0;
  char buf[96];
  std::snprintf(buf, sizeof buf, "<div class=\"bar %s\" style=\"width:%.1f%%\"></div>", cls, w);
  return buf;
}

// A round number at or above v for a chart's scale: 1, 2, 5 times a power of ten.
uint64_t niceCeil(uint64_t v) {
  if (v <= 1) return 1;
  uint64_t p = 1;
  while (p * 10 <= v)
    p *= 10;
  for (uint64_t m : {1, 2, 5, 10})
    if (m * p >= v) return m * p;
  return 10 * p;
}

struct Stack {
  const char* name;
  const char* color;
  uint64_t Series::*field;
};

// Stacked columns over time, one per bucket, with a scale, labelled days or
// hours, and each column's figures in its tooltip.
std::string timeChart(const ReportData& d, std::initializer_list<Stack> stacks,
                      std::string (*fmt)(uint64_t)) {
  const size_t n = d.series.size();
  if (n == 0) return {};
  uint64_t max = 0;
  for (const Series& s : d.series) {
    uint64_t sum = 0;
    for (const Stack& k : stacks)
      sum += s.*(k.field);
    max = std::max(max, sum);
  }
  // Five intervals on a 1-2-5 scale of at least 5: every tick a whole number.
  const uint64_t top = std::max<uint64_t>(5, niceCeil(max));
  constexpr double kW = 880, kH = 180, kLeft = 70, kBottom = 22, kTop = 8;
  const double plot_w = kW - kLeft - 6, plot_h = kH - kBottom - kTop;
  const double col = plot_w / static_cast<double>(n);
  std::string svg;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
                "xmlns=\"http://www.w3.org/2000/svg\">",
                kW, kH);
  svg += buf;
  for (int i = 0; i <= 5; ++i) {
    const double y = kTop + plot_h - plot_h * i / 5;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"grid\"/>"
                  "<text x=\"%.0f\" y=\"%.1f\" class=\"axis\" text-anchor=\"end\">%s</text>",
                  kLeft, y, kW - 6, y, kLeft - 6, y + 4,
                  fmt(top * static_cast<uint64_t>(i) / 5).c_str());
    svg += buf;
  }
  const bool hours = d.bucket == Bucket::Hour;
  // At most about 16 labels, whatever the period.
  const size_t label_every =
      hours ? std::max<size_t>(3, (n + 7) / 8) : std::max<size_t>(1, (n + 15) / 16);
  for (size_t i = 0; i < n; ++i) {
    const Series& s = d.series[i];
    const TimeNs t = d.bucketStart(i);
    double y = kTop + plot_h;
    std::string tip = hours ? strCat(date(t), " ", clock(t)) : date(t);
    for (const Stack& k : stacks) {
      const uint64_t v = s.*(k.field);
      tip += strCat("\n", k.name, ": ", fmt(v));
      if (v == 0) continue;
      const double h = plot_h * static_cast<double>(v) / static_cast<double>(top);
      y -= h;
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                    kLeft + col * static_cast<double>(i) + col * 0.12, y, col * 0.76,
                    std::max(h, 0.5), k.color);
      svg += buf;
    }
    // A transparent column over the whole height carries the tooltip.
    std::snprintf(
        buf, sizeof buf,
        "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"transparent\">",
        kLeft + col * static_cast<double>(i), kTop, col, plot_h);
    svg += strCat(buf, "<title>", esc(tip), "</title></rect>");
    if (i % label_every == 0) {
      const CivilDate c = civilFromDays(static_cast<int64_t>(t / kNsPerDay));
      const std::string label = hours ? clock(t) : std::to_string(c.day);
      std::snprintf(buf, sizeof buf,
                    "<text x=\"%.1f\" y=\"%.0f\" class=\"axis\" text-anchor=\"middle\">%s</text>",
                    kLeft + col * (static_cast<double>(i) + 0.5), kH - 6, label.c_str());
      svg += buf;
    }
  }
  svg += "</svg><div class=\"legend\">";
  for (const Stack& k : stacks)
    svg += strCat("<span><i style=\"background:", k.color, "\"></i>", k.name, "</span>");
  svg += "</div>";
  return svg;
}

std::string numStr(uint64_t v) {
  return num(v);
}
std::string bytesStr(uint64_t v) {
  return bytes(v);
}

std::string card(const std::string& value, const char* label, const std::string& note,
                 const char* cls = "") {
  return strCat("<div class=\"card ", cls, "\"><div class=\"v\">", value, "</div><div class=\"l\">",
                label, "</div><div class=\"n\">", note, "</div></div>");
}

std::string none(const char* what) {
  return strCat("<p class=\"none\">", what, "</p>");
}

std::string talkerTable(const char* title, const char* key_name,
                        const std::map<std::string, Talker>& m, size_t top, uint64_t total) {
  std::string h = strCat("<div class=\"col\"><h3>", title, "</h3>");
  if (m.empty()) return h + none("No traffic.") + "</div>";
  const auto rows = topN(m, top, bytesOf);
  h += strCat("<table><tr><th>", key_name,
              "</th><th class=\"r\">Bytes</th><th class=\"r\">Share</th>"
              "<th class=\"r\">Connections</th><th class=\"w\"></th></tr>");
  for (const auto& [k, t] : rows)
    h += strCat("<tr><td>", keyCell(k), "</td><td class=\"r\">", bytes(t.bytes),
                "</td><td class=\"r\">", percent(t.bytes, total), "</td><td class=\"r\">",
                num(t.flows), "</td><td class=\"w\">", bar(t.bytes, rows[0].second.bytes),
                "</td></tr>");
  return h + "</table></div>";
}

std::string countTable(const char* title, const char* key_name,
                       const std::map<std::string, uint64_t>& m, size_t top, uint64_t total,
                       const char* cls, const char* empty,
                       std::string (*describe)(const std::string&) = nullptr) {
  std::string h = strCat("<div class=\"col\"><h3>", title, "</h3>");
  if (m.empty()) return h + none(empty) + "</div>";
  const auto rows = topN(m, top, countOf);
  h += strCat("<table><tr><th>", key_name,
              "</th><th class=\"r\">Count</th><th class=\"r\">Share</th>"
              "<th class=\"w\"></th></tr>");
  for (const auto& [k, v] : rows) {
    std::string name = keyCell(k);
    if (describe) {
      const std::string what = describe(k);
      if (!what.empty()) name += strCat("<div class=\"what\">", esc(what), "</div>");
    }
    h += strCat("<tr><td>", name, "</td><td class=\"r\">", num(v), "</td><td class=\"r\">",
                percent(v, total), "</td><td class=\"w\">", bar(v, rows[0].second, cls),
                "</td></tr>");
  }
  if (m.size() > rows.size())
    h += strCat("<tr><td colspan=\"4\" class=\"more\">and ", num(m.size() - rows.size()),
                " more</td></tr>");
  return h + "</table></div>";
}

std::string reasonText(const std::string& name) {
  const pipeline::Reason r = pipeline::reasonByName(name);
  return r == pipeline::Reason::None ? std::string() : pipeline::describe(r);
}

std::string layerOfReason(const std::string& name) {
  const pipeline::Reason r = pipeline::reasonByName(name);
  return r == pipeline::Reason::None ? std::string("?") : pipeline::toString(pipeline::layerOf(r));
}

const char* severityName(uint64_t s) {
  switch (s) {
    case 1:
      return "1 (high)";
    case 2:
      return "2 (medium)";
    case 3:
      return "3 (low)";
    case 4:
      return "4 (informational)";
    default:
      return "not given";
  }
}

constexpr const char* kStyle = R"(
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--allow:#2563eb;--deny:#ea580c;--drop:#b91c1c;--alert:#7c3aed;--ok:#15803d}
*{box-sizing:border-box}
body{font:14px/1.45 "DejaVu Sans",system-ui,sans-serif;color:var(--ink);margin:0;background:#f5f7fa}
main{max-width:960px;margin:0 auto;padding:28px 32px 40px;background:#fff}
header{border-bottom:3px solid var(--ink);padding-bottom:12px;margin-bottom:18px}
h1{font-size:24px;margin:0 0 4px}
.sub{color:var(--muted);margin:0}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:12px 0 6px;color:var(--muted);font-weight:600}
p{margin:6px 0}
.lead{color:var(--muted);margin-bottom:10px}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
.card{border:1px solid var(--line);border-left:4px solid var(--allow);border-radius:4px;padding:8px 12px}
.card.deny{border-left-color:var(--deny)}.card.drop{border-left-color:var(--drop)}.card.alert{border-left-color:var(--alert)}
.card .v{font-size:22px;font-weight:700}.card .l{font-weight:600}.card .n{color:var(--muted);font-size:12px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:var(--muted);font-weight:600;border-bottom:1px solid var(--line);padding:3px 6px}
td{border-bottom:1px solid #f0f2f4;padding:3px 6px;vertical-align:top}
.r{text-align:right;white-space:nowrap}.w{width:28%}
.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px;white-space:nowrap}
.long{white-space:normal;overflow-wrap:anywhere;word-break:break-word}
.what{color:var(--muted);font-size:12px}
.bar{height:10px;background:var(--allow);border-radius:2px;margin-top:4px;min-width:1px}
.bar.deny{background:var(--deny)}.bar.drop{background:var(--drop)}.bar.alert{background:var(--alert)}
.more{color:var(--muted);font-style:italic}
.none{color:var(--muted);font-style:italic}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .axis{font-size:11px;fill:var(--muted)}
.legend{font-size:12px;color:var(--muted);margin:2px 0 8px 70px}
.legend span{margin-right:16px}.legend i{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px;vertical-align:-1px}
.sev1{color:var(--drop);font-weight:700}.sev2{color:var(--deny);font-weight:600}
.good{color:var(--ok)}.warn{color:var(--deny);font-weight:600}
footer{margin-top:28px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
@page{size:A4;margin:14mm 12mm}
@media print{body{background:#fff}main{padding:0;max-width:none}section{break-inside:avoid-page}h2{break-after:avoid}}
)";

}  // namespace

std::string renderHtml(const ReportData& d, const RenderOptions& o) {
  const std::string title =
      !o.title.empty() ? o.title
                       : (o.monthly ? strCat("Monthly security summary: ", monthName(d.from))
                                    : std::string("Palisade security report"));
  const TimeNs last_day = d.to > d.from ? d.to - 1 : d.to;
  std::string period = d.to - d.from == kNsPerDay && d.from % kNsPerDay == 0
                           ? date(d.from)
                           : (d.from % kNsPerDay == 0 && d.to % kNsPerDay == 0
                                  ? strCat(date(d.from), " to ", date(last_day))
                                  : strCat(dateTime(d.from), " to ", dateTime(d.to)));
  std::string h;
  h.reserve(64 * 1024);
  h += strCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<meta name=\"generator\" content=\"palisade report\"><title>",
      esc(title), "</title><style>", kStyle, "</style></head><body><main>\n");
  h += strCat("<header><h1>", esc(title), "</h1><p class=\"sub\">", period, " (UTC)");
  if (!d.hosts.empty()) {
    std::vector<std::string> hosts;
    for (const std::string& x : d.hosts)
      hosts.push_back(esc(x));
    h += strCat(" &middot; host", d.hosts.size() > 1 ? "s " : " ", join(hosts, ", "));
  }
  if (o.generated_at) h += strCat(" &middot; generated ", dateTime(o.generated_at));
  h += "</p></header>\n";

  if (d.events == 0) {
    h += strCat("<section><h2>No events in this period</h2><p>", num(d.lines),
                " lines were read from ", num(d.sources.size()),
                " files; none was an event between these dates.</p></section>");
  }

  // --- summary --------------------------------------------------------------
  const uint64_t attacks = d.attacks.size();
  h += "<section><h2>Summary</h2><div class=\"cards\">";
  h += card(bytes(d.bytes), "Traffic", strCat(num(d.packets), " packets on allowed connections"));
  h += card(num(d.flows_allowed), "Connections allowed",
            d.top_src.empty() ? std::string("")
                              : strCat(num(d.top_src.size()), " sources, ", num(d.top_dst.size()),
                                       " destinations"));
  h += card(num(d.flows_denied), "Connections refused",
            strCat(num(d.denied_src.size()), " sources; ",
                   percent(d.flows_denied, d.flows_denied + d.flows_allowed), " of attempts"),
            "deny");
  h += card(num(d.stats_dropped), "Packets dropped",
            d.stats_packets ? strCat(percent(d.stats_dropped, d.stats_packets), " of ",
                                     num(d.stats_packets), " packets")
                            : std::string("no counters in this period"),
            "drop");
  h += card(num(d.alerts_total), "IDS alerts",
            d.alerts_total
                ? strCat(num(d.alerts.size()), " signatures, ",
                         num(d.alerts_by_severity.count(1) ? d.alerts_by_severity.at(1) : 0),
                         " high severity")
                : std::string("none raised"),
            "alert");
  h += card(num(attacks), "Attacks mitigated",
            attacks ? strCat(num(d.anomalies), " anomalies besides") : std::string("none detected"),
            "alert");
  h += "</div></section>\n";

  // --- activity -------------------------------------------------------------
  h += strCat("<section><h2>Activity</h2><p class=\"lead\">Connections per ",
              d.bucket == Bucket::Hour ? "hour" : "day",
              "; hover over a column for its figures.</p>");
  h += timeChart(d,
                 {{"allowed", "#2563eb", &Series::flows_allowed},
                  {"refused", "#ea580c", &Series::flows_denied}},
                 numStr);
  h += strCat("<h3>Traffic on allowed connections (bytes per ",
              d.bucket == Bucket::Hour ? "hour" : "day", ")</h3>");
  h += timeChart(d, {{"bytes", "#0e7490", &Series::bytes}}, bytesStr);
  if (d.stats_dropped) {
    h += strCat("<h3>Packets dropped per ", d.bucket == Bucket::Hour ? "hour" : "day", "</h3>");
    h += timeChart(d, {{"dropped", "#b91c1c", &Series::dropped_packets}}, numStr);
  }
  h += "</section>\n";

  // --- talkers --------------------------------------------------------------
  h += "<section><h2>Top talkers</h2><p class=\"lead\">By bytes on allowed connections, "
       "both directions; connections counted where they began.</p><div class=\"cols\">";
  h += talkerTable("Sources", "Address", d.top_src, o.top, d.bytes);
  h += talkerTable("Destinations", "Address", d.top_dst, o.top, d.bytes);
  h += "</div>";
  h += talkerTable("Tenant NICs", "NIC", d.top_nic, o.top, d.bytes);
  h += "</section>\n";

  // --- drops ----------------------------------------------------------------
  h += "<section><h2>Drops by layer and reason</h2>";
  if (d.stats_dropped == 0 && d.flows_denied == 0) {
    h += none("Nothing was dropped or refused in this period.");
  } else {
    h += "<p class=\"lead\">Packets each layer of the switch dropped (from its counters), "
         "and the connections refused on their first packet (from the flow log).</p>";
    // Layers in the order a packet meets them.
    std::string layers = "<div class=\"col\"><h3>Dropped packets by layer</h3>";
    uint64_t max_layer = 0;
    for (const auto& [k, v] : d.layer_dropped)
      max_layer = std::max(max_layer, v);
    if (max_layer == 0) {
      layers += none("No layer dropped anything.");
    } else {
      layers +=
          "<table><tr><th>Layer</th><th class=\"r\">Dropped</th><th class=\"r\">Of its "
          "packets</th><th class=\"w\"></th></tr>";
      for (size_t l = 0; l < static_cast<size_t>(pipeline::Layer::Count); ++l) {
        const std::string name = pipeline::toString(static_cast<pipeline::Layer>(l));
        const auto it = d.layer_dropped.find(name);
        if (it == d.layer_dropped.end() || it->second == 0) continue;
        const auto p = d.layer_passed.find(name);
        const uint64_t seen = it->second + (p == d.layer_passed.end() ? 0 : p->second);
        layers += strCat("<tr><td class=\"mono\">", esc(name), "</td><td class=\"r\">",
                         num(it->second), "</td><td class=\"r\">", percent(it->second, seen),
                         "</td><td class=\"w\">", bar(it->second, max_layer, "drop"), "</td></tr>");
      }
      layers += "</table>";
    }
    layers += "</div>";
    std::string reasons = "<div class=\"col\"><h3>Dropped packets by reason</h3>";
    if (d.reason_dropped.empty()) {
      reasons += none("None.");
    } else {
      const auto rows = topN(d.reason_dropped, 64, countOf);
      reasons +=
          "<table><tr><th>Reason</th><th>Layer</th><th class=\"r\">Packets</th>"
          "<th class=\"w\"></th></tr>";
      for (const auto& [k, v] : rows) {
        const std::string what = reasonText(k);
        reasons +=
            strCat("<tr><td>", keyCell(k),
                   what.empty() ? "" : strCat("<div class=\"what\">", esc(what), "</div>"),
                   "</td><td class=\"mono\">", esc(layerOfReason(k)), "</td><td class=\"r\">",
                   num(v), "</td><td class=\"w\">", bar(v, rows[0].second, "drop"), "</td></tr>");
      }
      reasons += "</table>";
    }
    reasons += "</div>";
    h += strCat("<div class=\"cols\">", layers, reasons, "</div>");
    h += "<div class=\"cols\">";
    h += countTable("Refused connections by reason", "Reason", d.denied_reason, o.top,
                    d.flows_denied, "deny", "None.", reasonText);
    h += countTable("Refused connections by rule", "Rule", d.denied_rule, o.top, d.flows_denied,
                    "deny",
                    "No security rule refused a connection: the refusals above came from "
                    "endpoints, isolation or the infrastructure layer.");
    h += countTable("Most refused sources", "Source", d.denied_src, o.top, d.flows_denied, "deny",
                    "None.");
    h += countTable("Most refused destination ports", "Port", d.denied_port, o.top, d.flows_denied,
                    "deny", "None.");
    h += "</div>";
  }
  h += "</section>\n";

  // --- alerts ---------------------------------------------------------------
  h += "<section><h2>Alerts by signature and severity</h2>";
  if (d.alerts_total == 0) {
    h += none("No IDS alert in this period.");
  } else {
    h += timeChart(d, {{"alerts", "#7c3aed", &Series::alerts}}, numStr);
    h += "<div class=\"cols\"><div class=\"col\"><h3>By severity</h3><table><tr><th>Severity</th>"
         "<th class=\"r\">Alerts</th><th class=\"w\"></th></tr>";
    uint64_t max_sev = 0;
    for (const auto& [s, v] : d.alerts_by_severity)
      max_sev = std::max(max_sev, v);
    for (const auto& [s, v] : d.alerts_by_severity)
      h += strCat("<tr><td class=\"sev", std::to_string(s), "\">", severityName(s),
                  "</td><td class=\"r\">", num(v), "</td><td class=\"w\">",
                  bar(v, max_sev, "alert"), "</td></tr>");
    h += "</table></div>";
    h += countTable("Sources of alerts", "Source", d.alert_src, o.top, d.alerts_total, "alert",
                    "No alert named a source.");
    h += "</div><h3>By signature</h3><table><tr><th>SID</th><th>Signature</th><th>Severity</th>"
         "<th class=\"r\">Alerts</th><th>Last source</th></tr>";
    std::vector<const AlertRow*> rows;
    for (const auto& [k, r] : d.alerts)
      rows.push_back(&r);
    std::sort(rows.begin(), rows.end(), [](const AlertRow* a, const AlertRow* b) {
      return a->count != b->count ? a->count > b->count : a->sid < b->sid;
    });
    for (size_t i = 0; i < rows.size() && i < o.top * 3; ++i)
      h += strCat("<tr><td class=\"mono\">", std::to_string(rows[i]->sid), "</td><td>",
                  "<span class=\"long\">", esc(rows[i]->signature), "</span></td><td class=\"sev",
                  std::to_string(rows[i]->severity), "\">", severityName(rows[i]->severity),
                  "</td><td class=\"r\">", num(rows[i]->count), "</td><td>",
                  keyCell(rows[i]->last_src), "</td></tr>");
    h += "</table>";
  }
  h += "</section>\n";

  // --- attacks --------------------------------------------------------------
  h += "<section><h2>Attacks</h2>";
  if (d.attacks.empty()) {
    h += none("No DDoS attack was detected in this period.");
  } else {
    h += timeChart(d, {{"attacks begun", "#b91c1c", &Series::attacks}}, numStr);
    h += "<table><tr><th>Attack</th><th>Target</th><th>Began</th><th>Last seen</th>"
         "<th class=\"r\">Peak pps</th><th class=\"r\">Peak Mbit/s</th>"
         "<th class=\"r\">Dropped</th><th class=\"r\">Passed</th><th>Heaviest sources</th></tr>";
    std::vector<const AttackRow*> rows;
    for (const auto& [k, r] : d.attacks)
      rows.push_back(&r);
    std::sort(rows.begin(), rows.end(),
              [](const AttackRow* a, const AttackRow* b) { return a->first < b->first; });
    for (size_t i = 0; i < rows.size() && i < o.top * 5; ++i)
      h += strCat(
          "<tr><td>", keyCell(rows[i]->vectors.empty() ? rows[i]->attack : rows[i]->vectors),
          "</td><td>",
          keyCell(strCat(rows[i]->target, rows[i]->direction == "outbound" ? " (from it)" : "")),
          "</td><td>", dateTime(rows[i]->first), "</td><td>", dateTime(rows[i]->last),
          rows[i]->ended ? "" : " (no end recorded)", "</td><td class=\"r\">",
          num(rows[i]->peak_pps), "</td><td class=\"r\">", num(rows[i]->peak_bps / 1000000),
          "</td><td class=\"r\">", num(rows[i]->dropped), "</td><td class=\"r\">",
          num(rows[i]->passed), "</td><td>", keyCell(rows[i]->top), "</td></tr>");
    h += "</table>";
  }
  h += "</section>\n";

  // --- the record itself ----------------------------------------------------
  h += "<section><h2>About these records</h2><table>";
  auto row = [&](const char* k, const std::string& v) {
    h += strCat("<tr><td>", k, "</td><td>", v, "</td></tr>");
  };
  row("Events in the period", strCat(num(d.events), " of ", num(d.lines), " lines read"));
  if (d.first_event)
    row("First and last event", strCat(dateTime(d.first_event), " and ", dateTime(d.last_event)));
  std::vector<std::string> types;
  for (const auto& [k, v] : d.by_type)
    types.push_back(strCat(esc(k), " ", num(v)));
  if (!types.empty()) row("By type", join(types, ", "));
  if (d.outside) row("Outside the period", strCat(num(d.outside), " events (not counted)"));
  row("Unreadable lines", d.malformed ? strCat("<span class=\"warn\">", num(d.malformed),
                                               " lines were not events and were skipped</span>")
                                      : std::string("<span class=\"good\">none</span>"));
  if (d.checkpoints || d.log_files)
    row("Tamper-evident log", strCat(num(d.log_files), " files opened, ", num(d.checkpoints),
                                     " signed checkpoints, ", num(d.heartbeats), " heartbeats"));
  if (d.clock_unsynced)
    row("Clock", strCat("<span class=\"warn\">", num(d.clock_unsynced),
                        " warnings that the sender's clock was not synchronised</span>"));
  if (!d.alarms.empty()) {
    std::vector<std::string> kinds;
    for (const auto& [k, v] : d.alarms)
      kinds.push_back(strCat(esc(k), " ", num(v)));
    row("Collector alarms", strCat("<span class=\"warn\">", join(kinds, ", "), "</span>"));
  }
  std::vector<std::string> files;
  for (size_t i = 0; i < d.sources.size() && i < 20; ++i)
    files.push_back(strCat("<span class=\"mono long\">", esc(d.sources[i]), "</span>"));
  if (d.sources.size() > 20) files.push_back(strCat("and ", num(d.sources.size() - 20), " more"));
  row("Read from", join(files, "<br>"));
  h += "</table><p class=\"lead\">The integrity of a hash-chained log is checked by "
       "<span class=\"mono\">palisade log verify</span>, not by this report: a report counts "
       "what the files say.</p></section>\n";
  h += "<footer>Palisade &middot; times in UTC &middot; figures are sums of the records in the "
       "period</footer>\n</main></body></html>\n";
  return h;
}

}  // namespace palisade::report
