// Syslog on the wire (shipping/syslog.h): RFC 5424 messages as the shipper
// writes them and as the collector reads them from any sender, RFC 5425 /
// RFC 6587 framing across arbitrary TCP segment boundaries, acknowledgements.
#include <gtest/gtest.h>

#include <string>

#include "shipping/syslog.h"
#include "shipping/tls.h"

namespace palisade::shipping {
namespace {

const std::string kRecord =
    R"({"timestamp":"2026-11-22T10:04:05.000250+00:00","flow_id":7,"event_type":"drop","src_ip":"192.0.2.1","note":"a \"quoted\" ] value","seq":42,"prev":")" +
    std::string(64, 'a') + R"(","hash":")" + std::string(64, 'b') + R"("})";

TEST(Syslog, RecordMessageRoundTrips) {
  std::string msg;
  formatRecordMessage(kRecord, "0123abcd", 16, "host-1", "99", msg);
  // <local0 * 8 + notice (a drop)>
  EXPECT_TRUE(msg.starts_with("<133>1 2026-11-22T10:04:05.000250+00:00 host-1 palisade 99 drop "))
      << msg;
  SyslogMessage m;
  std::string why;
  ASSERT_TRUE(parseSyslog(msg, m, why)) << why;
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.facility, 16);
  EXPECT_EQ(m.severity, 5);
  EXPECT_EQ(m.host, "host-1");
  EXPECT_EQ(m.app, "palisade");
  EXPECT_EQ(m.msgid, "drop");
  ASSERT_NE(m.sdParam(kSdId, "log"), nullptr);
  EXPECT_EQ(*m.sdParam(kSdId, "log"), "0123abcd");
  EXPECT_EQ(*m.sdParam(kSdId, "seq"), "42");
  EXPECT_EQ(m.msg, kRecord);  // byte for byte: its hash still checks
}

TEST(Syslog, HeaderFieldsAreSanitised) {
  std::string msg;
  formatRecordMessage("{}", "id", 23, "a host\nwith spaces", "", msg);
  SyslogMessage m;
  std::string why;
  ASSERT_TRUE(parseSyslog(msg, m, why)) << why;
  EXPECT_EQ(m.host, "a_host_with_spaces");
  EXPECT_EQ(m.timestamp, "-");
  EXPECT_EQ(m.procid, "-");
  EXPECT_EQ(m.msgid, "-");
  EXPECT_EQ(m.facility, 23);
}

TEST(Syslog, ParsesOtherSendersMessages) {
  SyslogMessage m;
  std::string why;
  // RFC 5424's own example 3, with structured data and a BOM.
  ASSERT_TRUE(
      parseSyslog("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
                  "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
                  "[examplePriority@32473 class=\"high\"] \xEF\xBB\xBF"
                  "An application event",
                  m, why))
      << why;
  EXPECT_EQ(m.sd.size(), 2u);
  EXPECT_EQ(*m.sdParam("exampleSDID@32473", "eventSource"), "Application");
  EXPECT_EQ(*m.sdParam("examplePriority@32473", "class"), "high");
  EXPECT_EQ(m.msg, "An application event");
  // Escapes inside PARAM-VALUE.
  ASSERT_TRUE(parseSyslog(R"(<13>1 - - - - - [x@1 v="a\"b\\c\]d"] m)", m, why)) << why;
  EXPECT_EQ(*m.sdParam("x@1", "v"), "a\"b\\c]d");
  // RFC 3164 (BSD) is kept as legacy: everything after PRI.
  ASSERT_TRUE(parseSyslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", m, why));
  EXPECT_EQ(m.version, 0);
  EXPECT_EQ(m.msg, "Oct 11 22:14:15 mymachine su: 'su root' failed");
}

TEST(Syslog, RejectsBrokenMessages) {
  SyslogMessage m;
  std::string why;
  EXPECT_FALSE(parseSyslog("", m, why));
  EXPECT_FALSE(parseSyslog("no pri", m, why));
  EXPECT_FALSE(parseSyslog("<999>1 - - - - - -", m, why));
  EXPECT_FALSE(parseSyslog("<1x>1 - - - - - -", m, why));
  EXPECT_FALSE(parseSyslog("<13>1 - - - - - [unterminated", m, why));
  EXPECT_FALSE(parseSyslog(R"(<13>1 - - - - - [x@1 v="no close])", m, why));
  EXPECT_FALSE(parseSyslog("<13>1 - - - - - garbage", m, why));
}

TEST(Syslog, SeverityFollowsTheEventType) {
  EXPECT_EQ(severityOf("alert"), 4);
  EXPECT_EQ(severityOf("ddos"), 4);
  EXPECT_EQ(severityOf("drop"), 5);
  EXPECT_EQ(severityOf("flow"), 6);
  EXPECT_EQ(severityOf(""), 6);
}

TEST(FrameDecoder, OctetCountingAcrossSegments) {
  std::string stream;
  appendOctetCounted("<13>1 - - - - - - first", stream);
  appendOctetCounted("<13>1 - - - - - - second\nwith a newline", stream);
  // Fed one byte at a time, as the worst TCP segmentation would.
  FrameDecoder d(1024);
  std::vector<std::string> frames;
  for (char c : stream) {
    d.feed(std::string_view(&c, 1));
    std::string_view f;
    while (d.next(f))
      frames.emplace_back(f);
  }
  ASSERT_FALSE(d.failed()) << d.error();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], "<13>1 - - - - - - first");
  EXPECT_EQ(frames[1], "<13>1 - - - - - - second\nwith a newline");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameDecoder, NonTransparentFraming) {
  FrameDecoder d(1024);
  d.feed("<13>one\r\n<13>two\n<13>thr");
  std::string_view f;
  ASSERT_TRUE(d.next(f));
  EXPECT_EQ(f, "<13>one");
  ASSERT_TRUE(d.next(f));
  EXPECT_EQ(f, "<13>two");
  EXPECT_FALSE(d.next(f));  // incomplete
  d.feed("ee\n");
  ASSERT_TRUE(d.next(f));
  EXPECT_EQ(f, "<13>three");
}

TEST(FrameDecoder, RefusesWhatCannotBeFramed) {
  {
    FrameDecoder d(100);
    d.feed("101 ");
    std::string_view f;
    EXPECT_FALSE(d.next(f));
    EXPECT_TRUE(d.failed());  // longer than the limit: refused before it is buffered
  }
  {
    FrameDecoder d(100);
    d.feed("12x<13>");
    std::string_view f;
    EXPECT_FALSE(d.next(f));
    EXPECT_TRUE(d.failed());
  }
  {
    FrameDecoder d(100);
    d.feed("\x16\x03\x01");  // a TLS ClientHello where syslog was expected, or any junk
    std::string_view f;
    EXPECT_FALSE(d.next(f));
    EXPECT_TRUE(d.failed());
  }
  {
    FrameDecoder d(16);
    d.feed("<13>a line that never ends and is long");
    std::string_view f;
    EXPECT_FALSE(d.next(f));
    EXPECT_TRUE(d.failed());
  }
  {
    FrameDecoder d(100);
    d.feed("99999999999999999999 x");
    std::string_view f;
    EXPECT_FALSE(d.next(f));
    EXPECT_TRUE(d.failed());
  }
}

TEST(Ack, RoundTripsAndRejectsJunk) {
  std::string id;
  uint64_t seq = 0;
  ASSERT_TRUE(parseAck(formatAck("0123abcd", 77), id, seq));
  EXPECT_EQ(id, "0123abcd");
  EXPECT_EQ(seq, 77u);
  EXPECT_FALSE(parseAck("palisade-ack-v1 id", id, seq));
  EXPECT_FALSE(parseAck("palisade-ack-v1 id 12x", id, seq));
  EXPECT_FALSE(parseAck("palisade-ack-v1  12", id, seq));
  EXPECT_FALSE(parseAck("<13>1 - - - - - - 12", id, seq));
}

TEST(HostPort, Parses) {
  auto a = parseHostPort("127.0.0.1:6514");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 6514);
  auto b = parseHostPort("[2001:db8::1]:10514");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first, "2001:db8::1");
  EXPECT_FALSE(parseHostPort("127.0.0.1"));
  EXPECT_FALSE(parseHostPort("127.0.0.1:0"));
  EXPECT_TRUE(parseHostPort("127.0.0.1:0", true));
  EXPECT_FALSE(parseHostPort("h:70000"));
}

}  // namespace
}  // namespace palisade::shipping
