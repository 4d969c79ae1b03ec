// Inline inspection in the data plane: the policy's `ids:` section, rules on
// the NIC's side of a flow across SNAT, IPS drops of the packet and the rest
// of its flow, alert events, overload (fail-open and fail-closed, by flag and
// by capacity), which NICs are inspected, and reloads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/file.h"
#include "events/queue.h"
#include "packet/builder.h"
#include "packet/decoder.h"
#include "pipeline/inspection.h"
#include "pipeline/pipeline.h"
#include "policy/loader.h"

namespace palisade::pipeline {
namespace {

namespace tf = pkt::tcpflag;

// The example policy without its own ids section (tests give theirs).
std::string exampleWithoutIds() {
  auto text = readFile(PALISADE_SOURCE_DIR "/examples/cloud.yaml", 1 << 20);
  EXPECT_TRUE(text);
  std::string t = *text;
  const size_t start = t.find("\nids:\n");
  EXPECT_NE(start, std::string::npos);
  const size_t end = t.find("\n\n", start + 1);
  return t.substr(0, start) + t.substr(end);
}

IpAddr ip(const char* s) {
  return IpAddr::parse(s).value();
}
const MacAddr kRouter = MacAddr::parse("02:00:00:00:00:01").value();
const MacAddr kWeb1 = MacAddr::parse("02:00:0a:00:00:04").value();

const char* kRules =
    "drop http any any -> any any (msg:\"traversal\"; http.uri; content:\"/etc/passwd\"; "
    "sid:7001; rev:2;)\n"
    "alert http any any -> any any (msg:\"scanner\"; http.user_agent; content:\"EvilScan\"; "
    "sid:7002; rev:1;)\n"
    "alert tcp $HOME_NET any -> any any (msg:\"home net outbound\"; flags:S; sid:7003;)\n"
    "reject tcp any any -> any 80 (msg:\"refused word\"; content:\"REJECTME\"; sid:7020;)\n"
    "reject udp any any -> any 53 (msg:\"refused name\"; content:\"rejectme\"; sid:7021;)\n";

class PipelineIdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("palisade-ids-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    writeRules(kRules);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void writeRules(const std::string& text) { std::ofstream(dir_ / "local.rules") << text; }

  // The example topology with `ids_yaml` appended, compiled, its rules loaded.
  std::shared_ptr<const CompiledPolicy> policyWith(const std::string& ids_yaml, uint32_t gen = 1) {
    const std::string path = (dir_ / "policy.yaml").string();
    std::ofstream(path) << exampleWithoutIds() << "\n" << ids_yaml;
    auto r = policy::loadPolicyFile(path);
    EXPECT_TRUE(r.policy.has_value()) << r.diagnostics.format();
    auto c =
        CompiledPolicy::compile(std::make_shared<const policy::Policy>(std::move(*r.policy)), gen);
    EXPECT_TRUE(c);
    const Status st = loadIdsRules(**c, path);
    EXPECT_TRUE(st) << (st ? "" : st.error().message);
    return *c;
  }
  void make(const std::string& ids_yaml) {
    cp_ = policyWith(ids_yaml);
    pl_ = std::make_unique<Pipeline>(cp_, Config{}, &queue_);
  }
  Verdict send(const char* port_name, const std::vector<std::byte>& frame) {
    last_ = frame;
    ts_ += 1'000'000;
    return pl_->process(pkt::LinkType::Ethernet, Bytes(last_.data(), last_.size()),
                        static_cast<uint32_t>(last_.size()),
                        static_cast<uint16_t>(cp_->portByName(port_name)), ts_);
  }
  // web1 (192.0.2.4:sport) to an Internet server 198.51.100.9:80, SNAT to 203.0.113.10.
  std::vector<std::byte> fromWeb1(uint16_t sport, uint8_t flags, uint32_t seq, uint32_t ack,
                                  std::string_view data = {}) {
    return pkt::PacketBuilder()
        .eth(kWeb1, kGatewayMac)
        .ipv4(ip("192.0.2.4"), ip("198.51.100.9"))
        .tcp(sport, 80, flags, seq, ack)
        .payload(data)
        .build();
  }
  std::vector<std::byte> toWeb1(uint16_t nat_port, uint8_t flags, uint32_t seq, uint32_t ack,
                                std::string_view data = {}) {
    return pkt::PacketBuilder()
        .eth(kRouter, kGatewayMac)
        .ipv4(ip("198.51.100.9"), ip("203.0.113.10"))
        .tcp(80, nat_port, flags, seq, ack)
        .payload(data)
        .build();
  }
  // The handshake through SNAT; returns the translated port.
  uint16_t handshake(uint16_t sport) {
    Verdict v = send("contoso/web1", fromWeb1(sport, tf::kSyn, 100, 0));
    EXPECT_EQ(v.action, Action::Forward);
    pkt::Packet p;
    pkt::Decoder d;
    d.decode(pkt::LinkType::Ethernet, v.frame, static_cast<uint32_t>(v.frame.size()), p);
    const uint16_t nat_port = p.sport;
    EXPECT_EQ(send("uplink", toWeb1(nat_port, tf::kSyn | tf::kAck, 500, 101)).action,
              Action::Forward);
    EXPECT_EQ(send("contoso/web1", fromWeb1(sport, tf::kAck, 101, 501)).action, Action::Forward);
    return nat_port;
  }
  std::vector<std::string> alerts() {
    std::vector<std::string> out;
    while (events::Event* e = queue_.front()) {
      if (e->type == events::EventType::Alert) {
        std::string line;
        events::formatEveJson(*e, line);
        out.push_back(line);
      }
      queue_.pop();
    }
    return out;
  }
  uint64_t drops(Reason r) const { return pl_->stats().drops[static_cast<size_t>(r)]; }

  std::filesystem::path dir_;
  events::EventQueue queue_{1024, 512};
  std::shared_ptr<const CompiledPolicy> cp_;
  std::unique_ptr<Pipeline> pl_;
  std::vector<std::byte> last_;
  TimeNs ts_ = 1'000'000'000;
};

const char* kIps = "ids:\n  mode: ips\n  rules: [local.rules]\n";

TEST_F(PipelineIdsTest, IpsDropsTheRequestAndTheRestOfItsFlowOnTheNicSide) {
  make(kIps);
  const uint16_t nat_port = handshake(40000);
  const std::string req = "GET /x/../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n";
  Verdict v = send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501, req));
  EXPECT_EQ(v.action, Action::Drop);
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  EXPECT_EQ(v.ids_sid, 7001u);
  EXPECT_TRUE(v.ids_alert);
  // The server's answer, and the client's retransmission, go no further.
  v = send("uplink", toWeb1(nat_port, tf::kAck | tf::kPsh, 501, 101, "HTTP/1.1 200 OK\r\n\r\n"));
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  EXPECT_EQ(v.ids_sid, 7001u);  // the flow's alert
  EXPECT_FALSE(v.ids_alert);
  EXPECT_EQ(send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501, req)).reason,
            Reason::IdsDrop);
  EXPECT_EQ(drops(Reason::IdsDrop), 3u);
  EXPECT_EQ(pl_->stats().ids_flows_dropped, 1u);
  EXPECT_EQ(pl_->stats().layer_drop[static_cast<size_t>(Layer::Ids)], 3u);
  // Another connection from the same VM is not affected.
  handshake(40001);
  EXPECT_EQ(send("contoso/web1", fromWeb1(40001, tf::kAck | tf::kPsh, 101, 501,
                                          "GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"))
                .action,
            Action::Forward);

  // The events: the NIC's private address (not the SNAT address), the tenant and NIC,
  // "blocked" for the drop rule; HOME_NET is the VNets' address spaces (sid 7003).
  const std::vector<std::string> a = alerts();
  size_t blocked = 0, home = 0;
  for (const std::string& line : a) {
    if (line.find("\"signature_id\":7001") != std::string::npos) {
      ++blocked;
      EXPECT_NE(line.find("\"action\":\"blocked\""), std::string::npos) << line;
      EXPECT_NE(line.find("\"src_ip\":\"192.0.2.4\""), std::string::npos) << line;
      EXPECT_NE(line.find("\"tenant\":\"contoso\",\"nic\":\"contoso/web1\""), std::string::npos)
          << line;
      EXPECT_NE(line.find("\"url\":\"/x/../etc/passwd\""), std::string::npos) << line;
    }
    home += line.find("\"signature_id\":7003") != std::string::npos;
  }
  EXPECT_EQ(blocked, 1u);
  EXPECT_EQ(home, 2u);  // both SYNs
}

TEST_F(PipelineIdsTest, RejectAnswersTheSenderAsItSentThePacket) {
  make(kIps);
  handshake(40000);
  Verdict v = send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501, "REJECTME"));
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  ASSERT_FALSE(v.reply.empty());
  EXPECT_EQ(v.reply_port, cp_->portByName("contoso/web1"));
  pkt::Packet r;
  pkt::Decoder d;
  ASSERT_TRUE(d.decode(pkt::LinkType::Ethernet, v.reply, static_cast<uint32_t>(v.reply.size()), r));
  // From the server as web1 addressed it (before SNAT), the RST at its ACK.
  EXPECT_EQ(r.src, ip("198.51.100.9"));
  EXPECT_EQ(r.dst, ip("192.0.2.4"));
  EXPECT_EQ(r.sport, 80);
  EXPECT_EQ(r.dport, 40000);
  EXPECT_EQ(r.tcp.flags, tf::kRst);
  EXPECT_EQ(r.tcp.seq, 501u);
  EXPECT_EQ(MacAddr::from(reinterpret_cast<const uint8_t*>(v.reply.data())), kWeb1);
  // UDP: an ICMP port unreachable quoting the datagram.
  v = send("contoso/web1", pkt::PacketBuilder()
                               .eth(kWeb1, kGatewayMac)
                               .ipv4(ip("192.0.2.4"), ip("198.51.100.53"))
                               .udp(5353, 53)
                               .payload("rejectme.example")
                               .build());
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  ASSERT_FALSE(v.reply.empty());
  ASSERT_TRUE(d.decode(pkt::LinkType::Ethernet, v.reply, static_cast<uint32_t>(v.reply.size()), r));
  EXPECT_EQ(r.src, ip("198.51.100.53"));
  EXPECT_TRUE(r.has(pkt::kIcmp));
  EXPECT_EQ(r.icmp.type, 3);
  EXPECT_EQ(r.icmp.code, 3);
  EXPECT_EQ(pl_->stats().ids_rejects, 2u);
  // A drop rule drops without an answer.
  handshake(40002);
  v = send("contoso/web1",
           fromWeb1(40002, tf::kAck | tf::kPsh, 101, 501, "GET /etc/passwd HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  EXPECT_TRUE(v.reply.empty());
}

// The data plane forwards a datagram's fragments as they come; the inline
// engine reassembles them and inspects the datagram whole, so content cut
// across fragments is found, and the fragment that completes it is dropped.
TEST_F(PipelineIdsTest, FragmentsAreInspectedAsTheirWholeDatagram) {
  writeRules(
      "drop udp any any -> any 53 (msg:\"split name\"; content:\"smuggled-name\"; sid:7030;)\n");
  make(kIps);
  std::string data(3000, 'a');
  data.replace(1465, 13, "smuggled-name");  // the first fragment carries data bytes 0-1471
  auto datagram = [&](uint16_t sport) {
    return pkt::PacketBuilder()
        .eth(kWeb1, kGatewayMac)
        .ipv4(ip("192.0.2.4"), ip("198.51.100.53"))
        .udp(sport, 53)
        .payload(data)
        .build();
  };
  const auto frags = pkt::fragmentFrame(datagram(5353), {1480}, 0x55);
  EXPECT_EQ(send("contoso/web1", frags[0]).action, Action::Forward);
  const Verdict v = send("contoso/web1", frags[1]);
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  EXPECT_EQ(v.ids_sid, 7030u);
  bool alerted = false;
  for (const std::string& line : alerts())
    alerted |= line.find("\"signature_id\":7030") != std::string::npos;
  EXPECT_TRUE(alerted);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 0u);  // the one later fragment was dropped

  // Such a datagram of another flow (that one is stopped), its later
  // fragment first: held, released after its first and inspected then; the
  // IPS drop falls on it as it is released.
  const auto again = pkt::fragmentFrame(datagram(5354), {1480}, 0x56);
  EXPECT_EQ(send("contoso/web1", again[1]).action, Action::Hold);
  EXPECT_EQ(send("contoso/web1", again[0]).action, Action::Forward);
  ASSERT_EQ(pl_->released().size(), 1u);
  EXPECT_EQ(pl_->released()[0].verdict.reason, Reason::IdsDrop);
  EXPECT_EQ(pl_->released()[0].verdict.ids_sid, 7030u);
  EXPECT_EQ(pl_->stats().fragments_held, 1u);
  EXPECT_EQ(pl_->stats().fragments_forwarded, 0u);
}

TEST_F(PipelineIdsTest, IdsModeAlertsAndForwards) {
  make("ids:\n  mode: ids\n  rules: [local.rules]\n");
  handshake(40000);
  const Verdict v = send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501,
                                                  "GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(v.action, Action::Forward);
  EXPECT_EQ(v.ids_sid, 7001u);
  bool allowed = false;
  for (const std::string& line : alerts())
    allowed |= line.find("\"signature_id\":7001") != std::string::npos &&
               line.find("\"action\":\"allowed\"") != std::string::npos;
  EXPECT_TRUE(allowed);
}

TEST_F(PipelineIdsTest, OverloadFailsOpenOrClosedAsThePolicySays) {
  for (const char* mode : {"fail-open", "fail-closed"}) {
    make(std::string(kIps) + "  overload: " + mode + "\n");
    const bool closed = std::string(mode) == "fail-closed";
    handshake(40000);
    pl_->setOverloaded(true);
    const Verdict v = send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501,
                                                    "GET /etc/passwd HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(v.action, closed ? Action::Drop : Action::Forward) << mode;
    EXPECT_EQ(drops(Reason::IdsOverload), closed ? 1u : 0u) << mode;
    EXPECT_EQ(pl_->stats().ids_bypassed, closed ? 0u : 1u) << mode;
    // Not inspected at all: no alert, no flow marked.
    EXPECT_EQ(pl_->stats().ids_flows_dropped, 0u);
    pl_->setOverloaded(false);
  }
}

TEST_F(PipelineIdsTest, CapacityBoundsWhatIsInspected) {
  // 1 Mbit/s with 100 ms of burst: 12,500 bytes, then overload (fail-open).
  make(std::string(kIps) + "  capacity: 1M\n");
  const uint16_t nat_port = handshake(40000);
  const std::string chunk(1400, 'x');
  uint32_t seq = 501;
  for (int i = 0; i < 20; ++i, seq += 1400) {
    ts_ -= 999'000;  // 20 packets within a few milliseconds
    send("uplink", toWeb1(nat_port, tf::kAck, seq, 101, chunk));
  }
  EXPECT_GT(pl_->stats().ids_bypassed, 5u);
  EXPECT_LT(pl_->stats().ids_bypassed, 20u);
  EXPECT_EQ(pl_->stats().dropped, 0u);
}

TEST_F(PipelineIdsTest, OnlyTheSelectedNicsAreInspected) {
  make(std::string(kIps) + "  inspect:\n    - nic: contoso/db1\n");
  handshake(40000);
  const Verdict v = send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501,
                                                  "GET /etc/passwd HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(v.action, Action::Forward);
  EXPECT_EQ(pl_->stats().ids_inspected, 0u);
  EXPECT_TRUE(alerts().empty());
}

TEST_F(PipelineIdsTest, ReloadKeepsTheEngineUnlessTheRulesChange) {
  make(kIps);
  handshake(40000);
  // The same rules: the engine and its flows stay (no mid-stream pickup).
  pl_->setPolicy(policyWith(kIps, 2));
  const ids::EngineStats* before = pl_->idsStats();
  EXPECT_EQ(send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 101, 501,
                                          "GET /a HTTP/1.1\r\nUser-Agent: EvilScan\r\n\r\n"))
                .ids_sid,
            7002u);
  EXPECT_EQ(pl_->idsStats(), before);
  EXPECT_EQ(pl_->idsStats()->tcp_midstream, 0u);
  // The digest follows what the engine is built from: the same inputs agree;
  // a setting, the mode or the files' bytes change it.
  EXPECT_EQ(policyWith(kIps, 7)->ids_digest, policyWith(kIps, 8)->ids_digest);
  EXPECT_NE(policyWith(std::string(kIps) + "  settings:\n    stream.midstream: true\n")->ids_digest,
            policyWith(kIps)->ids_digest);
  EXPECT_NE(policyWith("ids:\n  mode: ids\n  rules: [local.rules]\n")->ids_digest,
            policyWith(kIps)->ids_digest);
  // New rules: the session under way is picked up mid-stream and inspected.
  writeRules(std::string(kRules) +
             "drop tcp any any -> any 80 (msg:\"exfil\"; content:\"SECRET\"; sid:7010;)\n");
  // Built off the data path (as the live switch's reload does) and swapped in.
  auto next = policyWith(kIps, 3);
  auto engine = Pipeline::buildIdsEngine(*next, true);
  const ids::EngineStats* built = &engine->stats();
  pl_->offerIdsEngine(std::move(engine), next->ids_digest);
  pl_->setPolicy(next);
  EXPECT_EQ(pl_->idsStats(), built);
  const Verdict v = send("contoso/web1", fromWeb1(40000, tf::kAck | tf::kPsh, 151, 501,
                                                  "POST /up HTTP/1.1\r\n\r\nSECRET"));
  EXPECT_EQ(v.reason, Reason::IdsDrop);
  EXPECT_EQ(v.ids_sid, 7010u);
  EXPECT_EQ(pl_->idsStats()->tcp_midstream, 1u);
  // No ids section: no inspection.
  auto model = std::make_shared<policy::Policy>(*cp_->model);
  model->ids = {};
  auto none = CompiledPolicy::compile(model, 5);
  ASSERT_TRUE(none);
  pl_->setPolicy(*none);
  EXPECT_EQ(pl_->idsStats(), nullptr);
}

TEST_F(PipelineIdsTest, BrokenSectionsAreRefusedWithTheReason) {
  // ids_yaml appended to the example; capture_rule added to its capture rules.
  auto load = [&](const std::string& ids_yaml, const std::string& capture_rule = {}) {
    std::string policy = exampleWithoutIds();
    const size_t at = policy.find("    - name: spoofing");
    EXPECT_NE(at, std::string::npos);
    policy.insert(at, capture_rule);
    const std::string path = (dir_ / "bad.yaml").string();
    std::ofstream(path) << policy << "\n" << ids_yaml;
    auto r = policy::loadPolicyFile(path);
    if (!r.policy) return r.diagnostics.format();
    auto c =
        CompiledPolicy::compile(std::make_shared<const policy::Policy>(std::move(*r.policy)), 1);
    if (!c) return c.error().message;
    const Status st = loadIdsRules(**c, path);
    return st ? std::string() : st.error().message;
  };
  EXPECT_EQ(load(kIps, "    - name: x\n      alert: 7001\n"), "");
  EXPECT_NE(load("ids:\n  mode: ips\n").find("rules"), std::string::npos);
  EXPECT_NE(load("ids:\n  mode: loud\n  rules: [local.rules]\n").find("mode"), std::string::npos);
  EXPECT_NE(load("ids:\n  rules: [nothere.rules]\n").find("nothere.rules"), std::string::npos);
  EXPECT_NE(
      load("ids:\n  rules: [local.rules]\n  inspect:\n    - nic: contoso/nosuch\n").find("nosuch"),
      std::string::npos);
  EXPECT_NE(load("ids:\n  rules: [local.rules]\n  settings:\n    stream.midstream: maybe\n")
                .find("stream.midstream"),
            std::string::npos);
  EXPECT_NE(load("", "    - name: x\n      alert: 7001\n").find("no ids section"),
            std::string::npos);
  EXPECT_NE(load(kIps, "    - name: x\n      alert: often\n").find("sid"), std::string::npos);
  writeRules("alert tcp any any -> any any (msg:\"x\"; nosuchkeyword; sid:1;)\n");
  EXPECT_NE(load(kIps).find("no rule loaded"), std::string::npos);
}

}  // namespace
}  // namespace palisade::pipeline
