// Reading stored events into a report's aggregates.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/strings.h"
#include "events/json_fields.h"
#include "report/report.h"

namespace palisade::report {
namespace {

namespace jf = events::jf;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr TimeNs kHourNs = 3600ull * 1000000000ull;
constexpr size_t kMaxLine = 1 << 20;  // longer lines are not events Palisade writes

TimeNs bucketNs(Bucket b) {
  return b == Bucket::Hour ? kHourNs : kNsPerDay;
}

// The table's entry for key, or "(other)"'s once the table is full.
template <class Map>
typename Map::mapped_type& slot(Map& m, const std::string& key) {
  auto it = m.find(key);
  if (it != m.end()) return it->second;
  return m.size() < kMaxKeys ? m[key] : m["(other)"];
}

uint64_t bytesOf(const json& flow) {
  return jf::u64(flow, "bytes_toserver") + jf::u64(flow, "bytes_toclient");
}

uint64_t packetsOf(const json& flow) {
  return jf::u64(flow, "pkts_toserver") + jf::u64(flow, "pkts_toclient");
}

// "tenant/nic" interfaces are tenant NICs; "uplink" (and anything else) is not.
bool isNicPort(const std::string& iface) {
  return !iface.empty() && iface != "uplink" && iface.find('/') != std::string::npos;
}

}  // namespace

TimeNs ReportData::bucketStart(size_t i) const {
  return from + i * bucketNs(bucket);
}

EventAggregator::EventAggregator(TimeNs from, TimeNs to) {
  d_.from = from;
  d_.to = std::max(from, to);
  // Hours for up to three days, days beyond (a month is 28 to 31 bars).
  d_.bucket = d_.to - d_.from <= 3 * kNsPerDay ? Bucket::Hour : Bucket::Day;
  const TimeNs step = bucketNs(d_.bucket);
  const TimeNs span = d_.to - d_.from;
  d_.series.resize(static_cast<size_t>(std::min<TimeNs>((span + step - 1) / step, 4096)));
}

size_t EventAggregator::bucketOf(TimeNs ts) const {
  const size_t i = static_cast<size_t>((ts - d_.from) / bucketNs(d_.bucket));
  return std::min(i, d_.series.size() - 1);
}

void EventAggregator::addLine(std::string_view line) {
  ++d_.lines;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.remove_suffix(1);
  if (line.empty()) return;
  json j = json::parse(line, nullptr, false);
  const std::optional<TimeNs> ts =
      j.is_object() ? parseTimestamp(jf::str(j, "timestamp")) : std::nullopt;
  const std::string type = jf::str(j, "event_type");
  if (!ts || type.empty()) {
    ++d_.malformed;
    return;
  }
  if (*ts < d_.from || *ts >= d_.to || d_.series.empty()) {
    ++d_.outside;
    return;
  }
  ++d_.events;
  ++slot(d_.by_type, type);
  if (d_.first_event == 0 || *ts < d_.first_event) d_.first_event = *ts;
  d_.last_event = std::max(d_.last_event, *ts);
  Series& s = d_.series[bucketOf(*ts)];
  const std::string src = jf::str(j, "src_ip"), dst = jf::str(j, "dest_ip");

  if (type == "flow") {
    const json& flow = jf::object(j, "flow");
    const std::string decision = jf::str(flow, "decision");
    const std::string state = jf::str(flow, "state");
    if (decision == "deny") {
      ++d_.flows_denied;
      ++s.flows_denied;
      ++slot(d_.denied_src, src.empty() ? std::string("?") : src);
      ++slot(d_.denied_reason, jf::str(flow, "reason", "unknown"));
      // Endpoint, isolation and infrastructure refusals name no rule ("none").
      if (const std::string rule = jf::str(flow, "rule"); !rule.empty() && rule != "none")
        ++slot(d_.denied_rule, rule);
      if (jf::has(j, "dest_port"))
        ++slot(d_.denied_port,
               strCat(jf::str(j, "proto", "?"), "/", std::to_string(jf::u64(j, "dest_port"))));
      return;
    }
    if (state == "begin") {
      ++d_.flows_allowed;
      ++s.flows_allowed;
    }
    const uint64_t b = bytesOf(flow), p = packetsOf(flow);
    d_.bytes += b;
    d_.packets += p;
    s.bytes += b;
    auto count = [&](std::map<std::string, Talker>& m, const std::string& key) {
      if (key.empty()) return;
      Talker& t = slot(m, key);
      t.bytes += b;
      t.packets += p;
      if (state == "begin") ++t.flows;
    };
    count(d_.top_src, src);
    count(d_.top_dst, dst);
    const std::string in = jf::str(j, "in_iface"), out = jf::str(j, "out_iface");
    if (isNicPort(in)) count(d_.top_nic, in);
    if (isNicPort(out) && out != in) count(d_.top_nic, out);
  } else if (type == "stats") {
    const json& st = jf::object(j, "stats");
    d_.stats_packets += jf::u64(st, "packets");
    d_.stats_dropped += jf::u64(st, "dropped");
    s.dropped_packets += jf::u64(st, "dropped");
    const std::string host = jf::str(st, "host");
    if (!host.empty() && std::find(d_.hosts.begin(), d_.hosts.end(), host) == d_.hosts.end() &&
        d_.hosts.size() < 1000)
      d_.hosts.push_back(host);
    for (const auto& [layer, v] : jf::object(st, "layers").items()) {
      slot(d_.layer_passed, layer) += jf::u64(v, "passed");
      slot(d_.layer_dropped, layer) += jf::u64(v, "dropped");
    }
    for (const auto& [reason, v] : jf::object(st, "drop_reasons").items())
      if (v.is_number_unsigned()) slot(d_.reason_dropped, reason) += v.get<uint64_t>();
  } else if (type == "alert") {
    const json& a = jf::object(j, "alert");
    const uint64_t sid = jf::u64(a, "signature_id");
    const std::string sig = jf::str(a, "signature", "(no signature)");
    AlertRow& row = slot(d_.alerts, strCat(std::to_string(sid), "|", sig));
    row.signature = sig;
    row.sid = sid;
    row.severity = jf::u64(a, "severity");
    ++row.count;
    row.last_src = src;
    ++d_.alerts_by_severity[std::min<uint64_t>(row.severity, 5)];
    if (!src.empty()) ++slot(d_.alert_src, src);
    ++d_.alerts_total;
    ++s.alerts;
  } else if (type == "ddos") {
    const json& a = jf::object(j, "ddos");
    const std::string attack = jf::str(a, "attack", "unknown");
    const std::string target = jf::str(a, "target", dst);
    const std::string started = jf::str(a, "start");
    // Events of one attack carry its start; their counts are running totals.
    const bool cumulative = !started.empty();
    AttackRow& row =
        slot(d_.attacks, cumulative ? strCat(target, "|", started) : strCat(attack, "|", target));
    if (row.events == 0) {
      row.target = target;
      row.first = cumulative ? parseTimestamp(started).value_or(*ts) : *ts;
      ++s.attacks;
    }
    row.attack = attack;
    row.direction = jf::str(a, "direction", "inbound");
    if (const json& v = jf::array(a, "vectors"); !v.empty()) {
      std::string names;
      for (const json& x : v)
        if (x.is_string() && names.size() < 200)
          names += strCat(names.empty() ? "" : ", ", x.get<std::string>().substr(0, 40));
      row.vectors = names;
    }
    for (const char* key : {"top_sources", "top_destinations"}) {
      const json& t = jf::array(a, key);
      if (t.empty()) continue;
      std::string top;
      for (size_t i = 0; i < t.size() && i < 3; ++i)
        top += strCat(i ? ", " : "", jf::str(t[i], "ip").substr(0, 45));
      row.top = top;
    }
    row.first = std::min(row.first, *ts);
    row.last = std::max(row.last, *ts);
    ++row.events;
    // Records without start/update/end (one per attack) end as they are.
    const std::string event = jf::str(a, "event");
    row.ended |= event == "end" || event.empty();
    row.peak_pps = std::max({row.peak_pps, jf::u64(a, "pps"), jf::u64(a, "peak_pps")});
    row.peak_bps = std::max({row.peak_bps, jf::u64(a, "bps"), jf::u64(a, "peak_bps")});
    if (cumulative) {
      row.dropped = std::max(row.dropped, jf::u64(a, "dropped"));
      row.passed = std::max(row.passed, jf::u64(a, "passed"));
    } else {
      row.dropped += jf::u64(a, "dropped");
    }
  } else if (type == "anomaly") {
    ++d_.anomalies;
  } else if (type == "log") {
    const std::string ev = jf::str(jf::object(j, "log"), "event");
    if (ev == "checkpoint") ++d_.checkpoints;
    if (ev == "heartbeat") ++d_.heartbeats;
    if (ev == "clock_unsynchronized") ++d_.clock_unsynced;
    if (ev == "file") ++d_.log_files;
    const std::string host = jf::str(jf::object(j, "log"), "host");
    if (!host.empty() && std::find(d_.hosts.begin(), d_.hosts.end(), host) == d_.hosts.end() &&
        d_.hosts.size() < 1000)
      d_.hosts.push_back(host);
  } else if (type == "alarm") {
    ++slot(d_.alarms, jf::str(jf::object(j, "alarm"), "kind", "unknown"));
  }
}

Status EventAggregator::addFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return makeError(errnoText(path));
  d_.sources.push_back(path);
  // Read in blocks; a line longer than kMaxLine is counted malformed and
  // skipped to its end, never held whole (a hostile file cannot grow memory).
  std::string line;
  bool skipping = false;
  std::vector<char> buf(1 << 16);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    std::string_view chunk(buf.data(), n);
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      const std::string_view piece = chunk.substr(0, nl);
      if (!skipping) {
        if (line.size() + piece.size() > kMaxLine) {
          skipping = true;
          line.clear();
          ++d_.lines;
          ++d_.malformed;
        } else {
          line.append(piece);
        }
      }
      if (nl == std::string_view::npos) break;
      if (!skipping) addLine(line);
      line.clear();
      skipping = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return makeError(strCat(path, ": read error"));
  if (!skipping && !line.empty()) addLine(line);
  return {};
}

Status EventAggregator::addPath(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec) return makeError(strCat(path, ": ", ec.message()));
  if (!fs::is_directory(st)) return addFile(path);
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (name.ends_with(".jsonl") || name.ends_with(".json")) files.push_back(it->path().string());
  }
  if (ec) return makeError(strCat(path, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  if (files.empty()) return makeError(strCat(path, ": no *.jsonl or *.json event files in it"));
  for (const std::string& f : files)
    if (Status s = addFile(f); !s) return s;
  return {};
}

Period lastCompletePeriod(TimeNs now, Every every) {
  Period p;
  char label[16];
  if (every == Every::Day) {
    p.to = now / kNsPerDay * kNsPerDay;
    p.from = p.to >= kNsPerDay ? p.to - kNsPerDay : 0;
    const CivilDate c = civilFromDays(static_cast<int64_t>(p.from / kNsPerDay));
    std::snprintf(label, sizeof label, "%04d-%02u-%02u", c.year, c.month, c.day);
  } else {
    p.to = monthStart(now);
    p.from = monthStart(now, -1);
    const CivilDate c = civilFromDays(static_cast<int64_t>(p.from / kNsPerDay));
    std::snprintf(label, sizeof label, "%04d-%02u", c.year, c.month);
  }
  p.label = label;
  return p;
}

Result<Period> periodOf(std::string_view label) {
  const bool month = label.size() == 7;
  const std::optional<TimeNs> t = month
                                      ? parseTimestamp(strCat(label, "-01"))
                                      : (label.size() == 10 ? parseTimestamp(label) : std::nullopt);
  if (!t)
    return makeError(
        strCat("'", printable(label), "' is not a month (YYYY-MM) or a day (YYYY-MM-DD)"));
  Period p;
  p.from = *t;
  p.to = month ? monthStart(*t, 1) : *t + kNsPerDay;
  p.label = std::string(label);
  return p;
}

}  // namespace palisade::report
