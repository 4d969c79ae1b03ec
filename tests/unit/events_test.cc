#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

#include "core/json_writer.h"
#include "events/writer.h"

namespace palisade::events {
namespace {

TEST(Eve, FormatsSuricataStyleFields) {
  Event e;
  e.ts_ns = 1795341845123456789ull;
  e.flow_id = 42;
  e.type = EventType::Alert;
  e.has_tuple = true;
  e.src_ip = *IpAddr::parse("198.51.100.7");
  e.dest_ip = *IpAddr::parse("203.0.113.10");
  e.src_port = 5555;
  e.dest_port = 443;
  e.proto = 6;
  JsonWriter(e.body).field("tenant", "contoso").field("nic", "web1");
  std::string line;
  formatEveJson(e, line);
  EXPECT_EQ(
      line,
      "{\"timestamp\":\"2026-11-22T10:04:05.123456+00:00\",\"flow_id\":42,\"event_type\":\"alert\","
      "\"src_ip\":\"198.51.100.7\",\"src_port\":5555,\"dest_ip\":\"203.0.113.10\",\"dest_port\":"
      "443,"
      "\"proto\":\"TCP\",\"tenant\":\"contoso\",\"nic\":\"web1\"}\n");
  Event icmp;
  icmp.has_tuple = true;
  icmp.proto = 58;
  icmp.src_ip = *IpAddr::parse("2001:db8::1");
  icmp.dest_ip = *IpAddr::parse("2001:db8::2");
  std::string l2;
  formatEveJson(icmp, l2);
  auto j = nlohmann::json::parse(l2);
  EXPECT_EQ(j["proto"], "IPv6-ICMP");
  EXPECT_FALSE(j.contains("src_port"));
  EXPECT_FALSE(j.contains("flow_id"));

  // The longest envelope (every field at its widest), no body, appended after
  // what the batch already holds.
  Event wide;
  wide.ts_ns = ~0ull;
  wide.flow_id = ~0ull;
  wide.type = EventType::Anomaly;
  wide.has_tuple = true;
  wide.proto = 132;
  wide.src_port = wide.dest_port = 65535;
  wide.src_ip = *IpAddr::parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
  wide.dest_ip = wide.src_ip;
  std::string l3 = "{}\n";
  formatEveJson(wide, l3);
  ASSERT_EQ(l3.substr(0, 3), "{}\n");
  ASSERT_EQ(l3.back(), '\n');
  auto w = nlohmann::json::parse(l3.substr(3));
  EXPECT_EQ(w["flow_id"], ~0ull);
  EXPECT_EQ(w["src_ip"], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(w["dest_port"], 65535);
  EXPECT_EQ(w["proto"], "SCTP");
  EXPECT_EQ(w["event_type"], "anomaly");
  Event other;
  other.has_tuple = true;
  other.proto = 250;
  std::string l4;
  formatEveJson(other, l4);
  EXPECT_EQ(nlohmann::json::parse(l4)["proto"], "250");
}

TEST(EventQueue, CountsDropsWhenFullAndNeverBlocks) {
  EventQueue q(4);
  for (int i = 0; i < 4; ++i) {
    Event* e = q.acquire();
    ASSERT_NE(e, nullptr);
    e->flow_id = static_cast<uint64_t>(i + 1);
    q.commit();
  }
  EXPECT_EQ(q.acquire(), nullptr);
  EXPECT_EQ(q.dropped(), 1u);
  ASSERT_NE(q.front(), nullptr);
  EXPECT_EQ(q.front()->flow_id, 1u);
  q.pop();
  EXPECT_NE(q.acquire(), nullptr);  // space again
}

// Two producer threads, one writer: every committed event is written exactly once,
// in order per producer, and stop() drains what was accepted.
TEST(EventWriter, DeliversEveryAcceptedEventOnce) {
  char tmpl[] = "/tmp/palisade-events-XXXXXX";
  const int fd = mkstemp(tmpl);
  close(fd);
  const std::string path = tmpl;
  uint64_t accepted[2] = {0, 0};
  uint64_t dropped = 0;
  {
    EventWriter w;
    auto sink = FileSink::open(path);
    ASSERT_TRUE(sink);
    w.addSink(std::move(*sink));
    EventQueue* queues[2] = {&w.addQueue(256), &w.addQueue(256)};
    w.start();
    std::thread producers[2];
    for (int t = 0; t < 2; ++t) {
      producers[t] = std::thread([&, t] {
        for (uint64_t i = 1; i <= 20000; ++i) {
          Event* e = queues[t]->acquire();
          if (!e) continue;
          e->type = EventType::Flow;
          e->flow_id = (uint64_t(t) << 32) | i;
          JsonWriter(e->body).field("worker", t);
          queues[t]->commit();
          ++accepted[t];
        }
      });
    }
    for (auto& p : producers)
      p.join();
    w.stop();
    dropped = w.dropped();
    EXPECT_EQ(w.written(), accepted[0] + accepted[1]);
    EXPECT_EQ(w.lost(), 0u);
  }
  EXPECT_EQ(accepted[0] + accepted[1] + dropped, 40000u);
  std::ifstream in(path);
  std::string line;
  uint64_t last[2] = {0, 0}, count[2] = {0, 0};
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const int t = j["worker"];
    const uint64_t seq = j["flow_id"].get<uint64_t>() & 0xffffffffu;
    EXPECT_GT(seq, last[t]);
    last[t] = seq;
    ++count[t];
  }
  EXPECT_EQ(count[0], accepted[0]);
  EXPECT_EQ(count[1], accepted[1]);
  unlink(path.c_str());
}

// Events reach the file soon after the queues run dry, also when the last
// batch was written while events were still arriving and nothing is left
// waiting: a file sink's stdio buffer must not hold the tail until the next
// event (a live test once missed a quarantine event that way).
TEST(EventWriter, EventsReachTheFileOnceTheQueuesRunDry) {
  char tmpl[] = "/tmp/palisade-events-XXXXXX";
  const int fd = mkstemp(tmpl);
  close(fd);
  const std::string path = tmpl;
  auto lines = [&] {
    std::ifstream in(path);
    std::string line;
    size_t n = 0;
    while (std::getline(in, line))
      n += !line.empty() && line.back() == '}';
    return n;
  };
  EventWriter w;
  auto sink = FileSink::open(path);
  ASSERT_TRUE(sink);
  w.addSink(std::move(*sink));
  EventQueue& q = w.addQueue(256);
  // About 9 KB, taken in one pass and written as one batch (over the 4 KiB a
  // batch waits for), which leaves nothing pending.
  for (uint64_t i = 1; i <= 60; ++i) {
    Event* e = q.acquire();
    ASSERT_NE(e, nullptr);
    e->type = EventType::Flow;
    e->flow_id = i;
    JsonWriter(e->body).field("note", std::string(80, 'x'));
    q.commit();
  }
  w.start();
  size_t seen = 0;
  for (int i = 0; i < 200 && seen < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    seen = lines();
  }
  EXPECT_EQ(seen, 60u);
  w.stop();
  EXPECT_EQ(lines(), 60u);
  unlink(path.c_str());
}

TEST(FileSink, ReportsUnwritablePath) {
  auto s = FileSink::open("/nonexistent/dir/eve.json");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, "/nonexistent/dir/eve.json: No such file or directory");
}

}  // namespace
}  // namespace palisade::events
