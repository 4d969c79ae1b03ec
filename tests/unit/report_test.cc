#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/time.h"
#include "report/report.h"

namespace palisade::report {
namespace {

TimeNs at(const char* s) {
  return *parseTimestamp(s);
}

const char* kAllowed =
    R"({"timestamp":"2026-10-05T10:00:00.000000+00:00","event_type":"flow","src_ip":"198.51.100.1","dest_ip":"203.0.113.10","dest_port":443,"proto":"TCP","in_iface":"uplink","out_iface":"contoso/web1","flow":{"state":"begin","decision":"allow","pkts_toserver":3,"bytes_toserver":300,"pkts_toclient":2,"bytes_toclient":1700}})";
const char* kDenied =
    R"({"timestamp":"2026-10-05T11:00:00.000000+00:00","event_type":"flow","src_ip":"198.51.100.66","dest_ip":"203.0.113.10","dest_port":23,"proto":"TCP","in_iface":"uplink","flow":{"state":"begin","decision":"deny","reason":"no_endpoint","rule":"none"}})";
const char* kStats =
    R"({"timestamp":"2026-10-05T12:00:00.000000+00:00","event_type":"stats","stats":{"packets":100,"dropped":7,"layers":{"endpoint":{"passed":10,"dropped":7}},"drop_reasons":{"no_endpoint":7}}})";

TEST(Report, AggregatesFlowsDropsAlertsAndAttacks) {
  EventAggregator agg(at("2026-10-01"), at("2026-11-01"));
  agg.addLine(kAllowed);
  agg.addLine(kDenied);
  agg.addLine(kStats);
  agg.addLine(
      R"({"timestamp":"2026-10-06T00:00:00Z","event_type":"alert","src_ip":"198.51.100.9","alert":{"signature_id":2001,"signature":"ET SCAN","severity":2}})");
  agg.addLine(
      R"({"timestamp":"2026-10-07T00:00:00Z","event_type":"ddos","ddos":{"attack":"syn_flood","target":"203.0.113.10","pps":90000,"dropped":500}})");
  agg.addLine(R"({"timestamp":"2026-09-30T23:59:59Z","event_type":"flow"})");  // before
  agg.addLine(R"({"timestamp":"2026-11-01T00:00:00Z","event_type":"flow"})");  // after (exclusive)
  agg.addLine("not json");
  agg.addLine(R"({"event_type":"flow"})");                          // no timestamp
  agg.addLine(R"({"timestamp":"yesterday","event_type":"flow"})");  // bad timestamp
  agg.addLine(R"(["timestamp","2026-10-05T10:00:00Z"])");           // not an object
  const ReportData& d = agg.data();
  EXPECT_EQ(d.events, 5u);
  EXPECT_EQ(d.outside, 2u);
  EXPECT_EQ(d.malformed, 4u);
  EXPECT_EQ(d.flows_allowed, 1u);
  EXPECT_EQ(d.flows_denied, 1u);
  EXPECT_EQ(d.bytes, 2000u);
  EXPECT_EQ(d.packets, 5u);
  EXPECT_EQ(d.top_src.at("198.51.100.1").bytes, 2000u);
  EXPECT_EQ(d.top_nic.at("contoso/web1").flows, 1u);
  EXPECT_EQ(d.top_nic.count("uplink"), 0u);
  EXPECT_EQ(d.denied_reason.at("no_endpoint"), 1u);
  EXPECT_EQ(d.denied_rule.count("none"), 0u);  // no rule decided it
  EXPECT_EQ(d.denied_port.at("TCP/23"), 1u);
  EXPECT_EQ(d.stats_dropped, 7u);
  EXPECT_EQ(d.layer_dropped.at("endpoint"), 7u);
  EXPECT_EQ(d.alerts_total, 1u);
  EXPECT_EQ(d.alerts_by_severity.at(2), 1u);
  ASSERT_EQ(d.attacks.size(), 1u);
  EXPECT_EQ(d.attacks.begin()->second.peak_pps, 90000u);
  // A month is reported day by day; day 5 holds the flows and the drops.
  EXPECT_EQ(d.bucket, Bucket::Day);
  ASSERT_EQ(d.series.size(), 31u);
  EXPECT_EQ(d.series[4].flows_allowed, 1u);
  EXPECT_EQ(d.series[4].flows_denied, 1u);
  EXPECT_EQ(d.series[4].dropped_packets, 7u);
  EXPECT_EQ(d.series[5].alerts, 1u);
}

TEST(Report, AnAttacksEventsMakeOneRowOfRunningTotals) {
  EventAggregator agg(at("2026-10-01"), at("2026-11-01"));
  const std::string head = R"({"timestamp":"2026-10-07T00:00:0)";
  const std::string common =
      R"(","event_type":"ddos","ddos":{"id":1,"target":"203.0.113.10","direction":"inbound","start":"2026-10-07T00:00:00.100000+00:00",)";
  agg.addLine(
      head + "1Z" + common +
      R"("event":"start","attack":"syn_flood","vectors":["syn_flood"],"pps":3000,"peak_pps":9000,"dropped":10,"passed":3000,"top_sources":[]}})");
  agg.addLine(
      head + "5Z" + common +
      R"("event":"update","attack":"syn_flood","vectors":["syn_flood","synack_reflection"],"pps":5000,"peak_pps":20000,"dropped":800,"passed":9000,"top_sources":[{"ip":"198.51.100.9","packets":7}]}})");
  agg.addLine(
      head + "9Z" + common +
      R"("event":"end","attack":"syn_flood","vectors":["syn_flood","synack_reflection"],"pps":0,"peak_pps":20000,"peak_bps":96000000,"dropped":900,"passed":9100,"top_sources":[{"ip":"198.51.100.9","packets":9}]}})");
  const ReportData& d = agg.data();
  ASSERT_EQ(d.attacks.size(), 1u);
  const AttackRow& r = d.attacks.begin()->second;
  EXPECT_EQ(r.events, 3u);
  EXPECT_EQ(r.peak_pps, 20000u);
  EXPECT_EQ(r.peak_bps, 96000000u);
  EXPECT_EQ(r.dropped, 900u);  // running totals: the largest, not their sum
  EXPECT_EQ(r.passed, 9100u);
  EXPECT_EQ(r.vectors, "syn_flood, synack_reflection");
  EXPECT_EQ(r.top, "198.51.100.9");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(d.series[6].attacks, 1u);
}

TEST(Report, HtmlEscapesEverythingAnEventSays) {
  EventAggregator agg(at("2026-10-01"), at("2026-10-02"));
  agg.addLine(
      R"({"timestamp":"2026-10-01T01:00:00Z","event_type":"alert","src_ip":"<img src=x onerror=alert(1)>","alert":{"signature_id":1,"signature":"<script>alert('x')</script> & \"quotes\"","severity":1}})");
  agg.addLine(
      R"({"timestamp":"2026-10-01T02:00:00Z","event_type":"flow","src_ip":"</td><script>","dest_ip":"x","in_iface":"a/<b>","flow":{"state":"begin","decision":"allow","bytes_toserver":1}})");
  RenderOptions o;
  o.title = "<b>title</b>";
  const std::string html = renderHtml(agg.data(), o);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"),
            std::string::npos);
  EXPECT_NE(html.find("Alerts by signature and severity"), std::string::npos);
  // A day is reported hour by hour: 24 columns, labelled every 3 hours.
  EXPECT_EQ(agg.data().bucket, Bucket::Hour);
  EXPECT_EQ(agg.data().series.size(), 24u);
  EXPECT_NE(html.find(">03:00</text>"), std::string::npos);
}

TEST(Report, LongKeysAreCutWithoutSplittingUtf8) {
  EventAggregator agg(at("2026-10-01"), at("2026-10-02"));
  std::string src(46, 'a');
  src += "\xc3\xa9\xc3\xa9\xc3\xa9";  // "ééé" straddling the 47-byte cut
  agg.addLine(std::string(R"({"timestamp":"2026-10-01T01:00:00Z","event_type":"flow","src_ip":")") +
              src + R"(","flow":{"state":"begin","decision":"deny","reason":"x"}})");
  const std::string html = renderHtml(agg.data(), {});
  EXPECT_NE(html.find(std::string(46, 'a') + "&hellip;"), std::string::npos);
}

TEST(Report, FilesWithHugeLinesAndDirectoriesAreRead) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("palisade-report-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "peer" / "log1");
  {
    std::ofstream f(dir / "peer" / "log1" / "events-1.jsonl");
    f << kAllowed << "\n" << std::string(3 << 20, 'x') << "\n" << kDenied;  // no final newline
  }
  {
    std::ofstream f(dir / "alarms.jsonl");
    f << R"({"timestamp":"2026-10-05T13:00:00Z","event_type":"alarm","alarm":{"kind":"feed_stopped"}})"
      << "\n";
  }
  {
    std::ofstream f(dir / "notes.txt");
    f << "ignored\n";
  }
  EventAggregator agg(at("2026-10-01"), at("2026-11-01"));
  ASSERT_TRUE(agg.addPath(dir.string()));
  const ReportData& d = agg.data();
  EXPECT_EQ(d.sources.size(), 2u);
  EXPECT_EQ(d.events, 3u);
  EXPECT_EQ(d.malformed, 1u);
  EXPECT_EQ(d.alarms.at("feed_stopped"), 1u);
  EXPECT_FALSE(agg.addPath((dir / "absent").string()));
  std::filesystem::create_directories(dir / "empty");
  EXPECT_FALSE(agg.addPath((dir / "empty").string()));
  std::filesystem::remove_all(dir);
}

TEST(Report, PeriodsAndTheSchedule) {
  const Period m = lastCompletePeriod(at("2026-11-22T10:00:00Z"), Every::Month);
  EXPECT_EQ(m.label, "2026-10");
  EXPECT_EQ(m.from, at("2026-10-01"));
  EXPECT_EQ(m.to, at("2026-11-01"));
  const Period jan = lastCompletePeriod(at("2027-01-01T00:00:00Z"), Every::Month);
  EXPECT_EQ(jan.label, "2026-12");
  const Period d = lastCompletePeriod(at("2026-11-22T10:00:00Z"), Every::Day);
  EXPECT_EQ(d.label, "2026-11-21");
  EXPECT_EQ(d.to - d.from, kNsPerDay);
  auto p = periodOf("2026-02");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->to - p->from, 28 * kNsPerDay);
  EXPECT_FALSE(periodOf("2026-2"));
  EXPECT_FALSE(periodOf("2026-02-30"));

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("palisade-sched-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "log");
  {
    std::ofstream f(dir / "log" / "events.jsonl");
    f << kAllowed << "\n" << kDenied << "\n";
  }
  ReportScheduler::Config c;
  c.inputs = {(dir / "log").string()};
  c.dir = dir.string();
  c.every = Every::Month;
  ReportScheduler s(c);
  auto first = s.runOnce(at("2026-11-03T00:00:00Z"));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, (dir / "palisade-report-2026-10.html").string());
  std::ifstream in(*first);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("Monthly security summary: October 2026"), std::string::npos);
  auto again = s.runOnce(at("2026-11-03T00:01:00Z"));  // already there: not rewritten
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  ReportScheduler broken({{(dir / "nothing").string()}, dir.string(), Every::Day, false});
  EXPECT_FALSE(broken.runOnce(at("2026-11-03T00:00:00Z")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace palisade::report
