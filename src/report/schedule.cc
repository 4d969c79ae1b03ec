// Writing reports: once (palisade report) and on a schedule (palisade run).
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file.h"
#include "core/strings.h"
#include "report/report.h"
#include "report/top.h"

namespace palisade::report {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The top rows of a table as JSON objects: row(value) plus the key.
template <class V>
nlohmann::json topJson(const std::map<std::string, V>& m, size_t top, uint64_t (*key)(const V&),
                       nlohmann::json (*row)(const V&)) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [k, v] : topN(m, top, key)) {
    nlohmann::json r = row(v);
    r["key"] = k;
    out.push_back(std::move(r));
  }
  return out;
}

nlohmann::json countRow(const uint64_t& v) {
  return {{"count", v}};
}
nlohmann::json talkerRow(const Talker& t) {
  return {{"bytes", t.bytes}, {"packets", t.packets}, {"flows", t.flows}};
}

}  // namespace

std::string toJson(const ReportData& d, size_t top) {
  nlohmann::json j;
  j["from"] = formatRfc3339(d.from);
  j["to"] = formatRfc3339(d.to);
  j["lines"] = d.lines;
  j["events"] = d.events;
  j["malformed"] = d.malformed;
  j["outside"] = d.outside;
  j["by_type"] = d.by_type;
  j["flows"] = {{"allowed", d.flows_allowed},
                {"denied", d.flows_denied},
                {"bytes", d.bytes},
                {"packets", d.packets}};
  j["top_src"] = topJson(d.top_src, top, bytesOf, talkerRow);
  j["top_dst"] = topJson(d.top_dst, top, bytesOf, talkerRow);
  j["top_nic"] = topJson(d.top_nic, top, bytesOf, talkerRow);
  j["denied_reason"] = d.denied_reason;
  j["denied_src"] = topJson(d.denied_src, top, countOf, countRow);
  j["dropped"] = {{"packets", d.stats_dropped},
                  {"of", d.stats_packets},
                  {"layers", d.layer_dropped},
                  {"reasons", d.reason_dropped}};
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& [k, a] : d.alerts)
    alerts.push_back(
        {{"sid", a.sid}, {"signature", a.signature}, {"severity", a.severity}, {"count", a.count}});
  j["alerts"] = {{"total", d.alerts_total}, {"signatures", alerts}};
  nlohmann::json attacks = nlohmann::json::array();
  for (const auto& [k, a] : d.attacks)
    attacks.push_back({{"attack", a.attack},
                       {"target", a.target},
                       {"events", a.events},
                       {"peak_pps", a.peak_pps},
                       {"dropped", a.dropped}});
  j["attacks"] = attacks;
  j["log"] = {{"checkpoints", d.checkpoints},
              {"heartbeats", d.heartbeats},
              {"clock_unsynchronized", d.clock_unsynced},
              {"alarms", d.alarms}};
  // Invalid UTF-8 from a hostile event is replaced, not thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status writeReport(const std::vector<std::string>& inputs, const Period& p, bool monthly,
                   const std::string& html_path, const std::string& pdf_path, TimeNs now) {
  EventAggregator agg(p.from, p.to);
  for (const std::string& in : inputs)
    if (Status s = agg.addPath(in); !s) return s;
  RenderOptions o;
  o.monthly = monthly;
  o.generated_at = now;
  if (Status s = writeFileAtomically(html_path, renderHtml(agg.data(), o)); !s) return s;
  if (!pdf_path.empty()) return renderPdf(html_path, pdf_path);
  return {};
}

Result<std::string> ReportScheduler::runOnce(TimeNs now) {
  const Period p = lastCompletePeriod(now, cfg_.every);
  std::error_code ec;
  std::filesystem::create_directories(cfg_.dir, ec);
  if (ec) return makeError(strCat(cfg_.dir, ": ", ec.message()));
  const std::string stem = strCat(cfg_.dir, "/palisade-report-", p.label);
  const std::string html = strCat(stem, ".html");
  if (exists(html)) return std::string();
  if (Status s = writeReport(cfg_.inputs, p, cfg_.every == Every::Month, html,
                             cfg_.pdf ? strCat(stem, ".pdf") : std::string(), now);
      !s)
    return s.error();
  return html;
}

void ReportScheduler::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      auto r = runOnce(wallClockNs());
      if (!r)
        std::fprintf(stderr, "palisade: scheduled report: %s\n", r.error().message.c_str());
      else if (!r->empty())
        std::fprintf(stderr, "palisade: scheduled report written: %s\n", r->c_str());
      lock.lock();
      cv_.wait_for(lock, std::chrono::minutes(1), [this] { return stopping_; });
    }
  });
}

void ReportScheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace palisade::report
