// Reports over stored events: what an operator reads at the end of a day or a
// month, and hands on. EventAggregator reads EVE JSON lines (plain event files,
// hash-chained log files, a collector's store) and keeps only aggregates, so a
// month of events takes bounded memory; renderHtml turns them into one
// self-contained HTML page (inline CSS and SVG charts, no script, nothing
// fetched); renderPdf prints that page with a headless Chromium when one is
// installed.
//
// Events are untrusted input (a collector stores what its sources sent): every
// field is read with the jf:: accessors, every string is escaped on output, and
// the per-key tables are capped (kMaxKeys), overflow counted as "(other)".
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace palisade::report {

// Distinct keys kept per table (talkers, rules, signatures...); beyond it,
// new keys are summed under "(other)".
inline constexpr size_t kMaxKeys = 100000;

enum class Bucket : uint8_t { Hour, Day };

struct Talker {
  uint64_t bytes = 0, packets = 0, flows = 0;
};

struct AlertRow {
  std::string signature;
  uint64_t sid = 0;
  uint64_t severity = 0;  // 1 (high) to 4; 0 when the event did not say
  uint64_t count = 0;
  std::string last_src;
};

// One attack: its events (start, updates, end) share a target and a start
// time; older events without those are grouped by vector and target.
struct AttackRow {
  std::string attack, target, vectors, direction, top;
  TimeNs first = 0, last = 0;
  uint64_t events = 0, peak_pps = 0, peak_bps = 0, dropped = 0, passed = 0;
  bool ended = false;
};

struct Series {
  uint64_t flows_allowed = 0, flows_denied = 0, bytes = 0, dropped_packets = 0, alerts = 0,
           attacks = 0;
};

struct ReportData {
  TimeNs from = 0, to = 0;  // [from, to)
  Bucket bucket = Bucket::Hour;
  TimeNs first_event = 0, last_event = 0;

  uint64_t lines = 0, malformed = 0, outside = 0, events = 0;
  std::map<std::string, uint64_t> by_type;
  std::vector<std::string> sources;  // files read
  std::vector<std::string> hosts;    // hosts named by the events

  // Flows: allowed (begin records), denied (first packets refused), traffic
  // (the deltas every allowed record carries).
  uint64_t flows_allowed = 0, flows_denied = 0, bytes = 0, packets = 0;
  std::map<std::string, Talker> top_src, top_dst, top_nic;
  std::map<std::string, uint64_t> denied_src, denied_reason, denied_rule, denied_port;

  // Packets each layer dropped, and why (stats events).
  uint64_t stats_packets = 0, stats_dropped = 0;
  std::map<std::string, uint64_t> layer_dropped, layer_passed, reason_dropped;

  std::map<std::string, AlertRow> alerts;  // by "sid|signature"
  std::map<uint64_t, uint64_t> alerts_by_severity;
  std::map<std::string, uint64_t> alert_src;
  uint64_t alerts_total = 0;

  std::map<std::string, AttackRow> attacks;  // by "attack|target"
  uint64_t anomalies = 0;

  // The log itself: what it says of its own health.
  uint64_t checkpoints = 0, heartbeats = 0, clock_unsynced = 0, log_files = 0;
  std::map<std::string, uint64_t> alarms;  // collector alarms by kind

  std::vector<Series> series;  // one per bucket of [from, to)
  TimeNs bucketStart(size_t i) const;
};

class EventAggregator {
 public:
  EventAggregator(TimeNs from, TimeNs to);

  // One line of EVE JSON. Lines that are not a JSON object with a valid
  // timestamp count as malformed; events outside [from, to) as outside.
  void addLine(std::string_view line);
  // A file of lines, or a directory: every *.jsonl and *.json file in it and
  // its subdirectories (a log directory, a collector store), in name order.
  Status addPath(const std::string& path);

  const ReportData& data() const { return d_; }
  ReportData& data() { return d_; }

 private:
  Status addFile(const std::string& path);
  size_t bucketOf(TimeNs ts) const;
  ReportData d_;
};

struct RenderOptions {
  std::string title;        // default: "Palisade security report"
  TimeNs generated_at = 0;  // shown in the header
  size_t top = 10;          // rows per top-N table
  bool monthly = false;     // titled and laid out as a monthly summary
};

std::string renderHtml(const ReportData& d, const RenderOptions& o);

// The command that renders PDF here (chromium, else chromium-browser), or
// empty when none is installed.
std::string findPdfRenderer();
// Prints html_path to pdf_path with the renderer, headless, with no network
// and a private profile; stops it after timeout_s.
Status renderPdf(const std::string& html_path, const std::string& pdf_path, int timeout_s = 120);

// The report period a schedule is due for at `now`: the last complete month
// (or day) before now, as [from, to).
struct Period {
  TimeNs from = 0, to = 0;
  std::string label;  // 2026-10 or 2026-10-31: the file name's stem
};
enum class Every : uint8_t { Day, Month };
Period lastCompletePeriod(TimeNs now, Every every);
// A period's parse of --month (YYYY-MM) or a day (YYYY-MM-DD).
Result<Period> periodOf(std::string_view label);

}  // namespace palisade::report

namespace palisade::report {

// The aggregates as JSON (report --json): totals and each table's top rows.
std::string toJson(const ReportData& d, size_t top);

// Reports written on a schedule by a running daemon: at start and every
// minute after, the report of the last complete period (month or day) is
// written to dir/palisade-report-LABEL.html (and .pdf when asked and possible)
// unless it is already there. Events are read from `inputs` (the daemon's log
// directory). Problems are printed to stderr and retried at the next period.
class ReportScheduler {
 public:
  struct Config {
    std::vector<std::string> inputs;
    std::string dir;
    Every every = Every::Month;
    bool pdf = false;
  };
  explicit ReportScheduler(Config c) : cfg_(std::move(c)) {}
  ~ReportScheduler() { stop(); }
  ReportScheduler(const ReportScheduler&) = delete;
  ReportScheduler& operator=(const ReportScheduler&) = delete;

  void start();
  void stop();
  // One check at `now`: the path written, or empty when the report was
  // already there.
  Result<std::string> runOnce(TimeNs now);

 private:
  Config cfg_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// Writes one report: reads inputs over p, renders HTML to html_path (atomically,
// by rename) and, when pdf_path is not empty, the PDF.
Status writeReport(const std::vector<std::string>& inputs, const Period& p, bool monthly,
                   const std::string& html_path, const std::string& pdf_path, TimeNs now);

}  // namespace palisade::report
