// palisade report: an HTML (and PDF) report over stored events.
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/file.h"
#include "core/strings.h"
#include "report/report.h"

namespace palisade::cli {
namespace {

struct ReportArgs {
  std::vector<std::string> inputs;
  std::string from, to, month, day, out, pdf, title;
  size_t top = 10;
  bool json = false, quiet = false;
};

// The first and last event of the inputs, for a report with no dates given:
// one pass over all time (unreadable inputs are reported by the real pass).
std::optional<std::pair<TimeNs, TimeNs>> spanOf(const std::vector<std::string>& inputs) {
  report::EventAggregator all(0, ~TimeNs{0} / 2);
  for (const std::string& in : inputs)
    (void)all.addPath(in);
  const report::ReportData& d = all.data();
  if (d.events == 0) return std::nullopt;
  return std::make_pair(d.first_event, d.last_event);
}

void run(const ReportArgs& a, Context& ctx) {
  auto fail = [&](int code, const std::string& msg) {
    std::fprintf(stderr, "palisade report: %s\n", msg.c_str());
    ctx.exit_code = code;
  };
  report::Period p;
  bool monthly = false;
  if (!a.month.empty() || !a.day.empty()) {
    if (!a.from.empty() || !a.to.empty() || (!a.month.empty() && !a.day.empty()))
      return fail(kUsage, "give --month, --day or --from/--to, not several");
    const std::string& label = a.month.empty() ? a.day : a.month;
    auto r = report::periodOf(label);
    if (!r || (a.month.empty() != (label.size() == 10)))
      return fail(kUsage, a.month.empty() ? strCat("--day '", label, "' is not YYYY-MM-DD")
                                          : strCat("--month '", label, "' is not YYYY-MM"));
    p = std::move(*r);
    monthly = !a.month.empty();
  } else {
    std::optional<TimeNs> from, to;
    if (!a.from.empty() && !(from = parseTimestamp(a.from)))
      return fail(kUsage, strCat("--from '", a.from,
                                 "' is not a date (2026-10-01) or an RFC 3339 time "
                                 "(2026-10-01T08:00:00Z)"));
    if (!a.to.empty() && !(to = parseTimestamp(a.to)))
      return fail(kUsage, strCat("--to '", a.to,
                                 "' is not a date (2026-11-01) or an RFC 3339 time "
                                 "(2026-10-31T18:00:00Z)"));
    if (!from || !to) {
      // The whole days the events span, for what was not given.
      const auto span = spanOf(a.inputs);
      if (!span && (!from || !to))
        return fail(kFindings,
                    "no events in the inputs, so no period to report on; give --from "
                    "and --to");
      if (!from) from = span->first / kNsPerDay * kNsPerDay;
      if (!to) to = (span->second / kNsPerDay + 1) * kNsPerDay;
    }
    if (*to <= *from) return fail(kUsage, "--to must be after --from");
    p.from = *from;
    p.to = *to;
  }
  report::EventAggregator agg(p.from, p.to);
  for (const std::string& in : a.inputs)
    if (Status s = agg.addPath(in); !s) return fail(kCannotRead, s.error().message);
  const report::ReportData& d = agg.data();
  if (a.json) std::printf("%s\n", report::toJson(d, a.top).c_str());
  if (!a.out.empty()) {
    report::RenderOptions o;
    o.title = a.title;
    o.top = a.top;
    o.monthly = monthly;
    o.generated_at = wallClockNs();
    const std::string html = report::renderHtml(d, o);
    if (a.out == "-") {
      if (std::fwrite(html.data(), 1, html.size(), stdout) != html.size() || std::fflush(stdout))
        return fail(kCannotRead, errnoText("stdout"));
    } else if (Status s = writeFileAtomically(a.out, html); !s) {
      return fail(kCannotRead, s.error().message);
    }
  }
  if (!a.pdf.empty()) {
    if (a.out.empty() || a.out == "-")
      return fail(kUsage, "--pdf prints the HTML report: give -o FILE.html too");
    if (Status s = report::renderPdf(a.out, a.pdf); !s) return fail(kCannotRead, s.error().message);
  }
  if (!a.quiet && !a.json)
    std::fprintf(stderr,
                 "palisade report: %s to %s: %llu events (%llu outside the period, %llu "
                 "unreadable lines) from %zu files%s%s%s%s\n",
                 formatRfc3339(p.from).c_str(), formatRfc3339(p.to).c_str(),
                 static_cast<unsigned long long>(d.events),
                 static_cast<unsigned long long>(d.outside),
                 static_cast<unsigned long long>(d.malformed), d.sources.size(),
                 a.out.empty() ? "" : "; wrote ", a.out.c_str(), a.pdf.empty() ? "" : " and ",
                 a.pdf.c_str());
  ctx.exit_code = kOk;
}

}  // namespace

void registerReport(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "report", "Report over stored events: traffic, top talkers, drops, alerts, attacks");
  cmd->footer(
      "INPUT is an EVE JSON file (replay -e, run --events), a hash-chained log directory\n"
      "(--log-dir) or a collector's store: directories are read recursively (*.jsonl,\n"
      "*.json). The period is --month, --day, or --from/--to (dates are midnight UTC;\n"
      "RFC 3339 times with a zone are taken as given); with none, the whole days the\n"
      "events span. The HTML file is self-contained (no script, nothing fetched);\n"
      "--pdf prints it with headless Chromium.\n"
      "Examples:\n"
      "  palisade report /var/log/palisade --month 2026-10 -o oct.html --pdf oct.pdf\n"
      "  palisade report flows.json --from 2026-11-22T08:00:00Z --to 2026-11-22T20:00:00Z -o "
      "day.html\n"
      "Exit status: 0 written, 1 no events to report on, 2 bad arguments, 3 an input\n"
      "unreadable or an output unwritable (PDF included).");
  auto a = std::make_shared<ReportArgs>();
  cmd->add_option("inputs", a->inputs, "Event files and directories")->required();
  cmd->add_option("--from", a->from, "Start of the period (inclusive): YYYY-MM-DD or RFC 3339");
  cmd->add_option("--to", a->to, "End of the period (exclusive): YYYY-MM-DD or RFC 3339");
  cmd->add_option("--month", a->month, "A monthly summary of YYYY-MM (UTC), day by day");
  cmd->add_option("--day", a->day, "A day (YYYY-MM-DD, UTC), hour by hour");
  cmd->add_option("-o,--out", a->out, "Write the HTML report here ('-': stdout)");
  cmd->add_option("--pdf", a->pdf, "Also print it to this PDF (needs Chromium)");
  cmd->add_option("--title", a->title, "Title of the report");
  cmd->add_option("--top", a->top, "Rows in each top-N table")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the aggregates as JSON on stdout");
  cmd->add_flag("-q,--quiet", a->quiet, "Print nothing but errors");
  cmd->callback([a, &ctx] {
    if (a->out.empty() && !a->json) {
      std::fprintf(stderr, "palisade report: nothing to write: give -o FILE.html or --json\n");
      ctx.exit_code = kUsage;
      return;
    }
    run(*a, ctx);
  });
}

}  // namespace palisade::cli
