// Writing reports: once (palisade report) and on a schedule (palisade run).
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/strings.h"
#include "report/report.h"

namespace palisade::report {
namespace {

Status writeFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = strCat(path, ".tmp");
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return makeError(errnoText(tmp));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
                  std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    const Error e = makeError(errnoText(tmp));
    ::unlink(tmp.c_str());
    return e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const Error e = makeError(errnoText(path));
    ::unlink(tmp.c_str());
    return e;
  }
  return {};
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

template <class V>
nlohmann::json topJson(const std::map<std::string, V>& m, size_t top, uint64_t (*key)(const V&),
                       nlohmann::json (*row)(const V&)) {
  std::vector<std::pair<std::string, const V*>> v;
  for (const auto& [k, x] : m)
    v.push_back({k, &x});
  std::stable_sort(v.begin(), v.end(),
                   [&](const auto& a, const auto& b) { return key(*a.second) > key(*b.second); });
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < v.size() && i < top; ++i) {
    nlohmann::json r = row(*v[i].second);
    r["key"] = v[i].first;
    out.push_back(std::move(r));
  }
  return out;
}

uint64_t count(const uint64_t& v) {
  return v;
}
nlohmann::json countRow(const uint64_t& v) {
  return {{"count", v}};
}
uint64_t talkerBytes(const Talker& t) {
  return t.bytes;
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
  j["top_src"] = topJson(d.top_src, top, talkerBytes, talkerRow);
  j["top_dst"] = topJson(d.top_dst, top, talkerBytes, talkerRow);
  j["top_nic"] = topJson(d.top_nic, top, talkerBytes, talkerRow);
  j["denied_reason"] = d.denied_reason;
  j["denied_src"] = topJson(d.denied_src, top, count, countRow);
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
