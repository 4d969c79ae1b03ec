// The IDS engine's parts: content inspection, TCP reassembly, the HTTP, DNS
// and TLS parsers, and the engine end to end on built packets.
#include <gtest/gtest.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ids/applayer.h"
#include "ids/engine.h"
#include "ids/eve.h"
#include "ids/flow_index.h"
#include "ids/http.h"
#include "ids/inflate.h"
#include "ids/inspect.h"
#include "ids/prefilter.h"
#include "ids/stream.h"
#include "packet/builder.h"
#include "packet/decoder.h"

namespace palisade::ids {
namespace {

Rule rule(const std::string& text) {
  auto r = parseRule(text, Vars::defaults());
  EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().message);
  return r ? std::move(*r) : Rule{};
}

// True when the rule's payload matches `data`.
bool payloadMatches(const std::string& opts, std::string_view data) {
  const Rule r = rule("alert tcp any any -> any any (" + opts + " sid:1;)");
  const auto progs = compilePrograms(r);
  EXPECT_EQ(progs.size(), 1u);
  Inspector in;
  std::vector<int64_t> vars(r.byte_vars.size() + 1);
  return in.run(progs[0], data, vars);
}

TEST(IdsInspect, RelativeContentBacktracks) {
  // The first "a" has no "b" right after it; the second does.
  EXPECT_TRUE(payloadMatches(R"(content:"a"; content:"b"; distance:0; within:1;)", "a x ab"));
  EXPECT_FALSE(payloadMatches(R"(content:"a"; content:"b"; distance:0; within:1;)", "a x a b"));
  EXPECT_TRUE(payloadMatches(R"(content:"DullBoy"; distance:1; within:7;)", "xDullBoy"));
}

TEST(IdsInspect, PositionsAndNegation) {
  EXPECT_TRUE(payloadMatches(R"(content:"GET"; depth:3;)", "GET /"));
  EXPECT_FALSE(payloadMatches(R"(content:"GET"; depth:3; offset:1;)", "GET /"));
  EXPECT_TRUE(payloadMatches(R"(content:"/x"; offset:4; depth:2;)", "GET /x"));
  EXPECT_TRUE(payloadMatches(R"(content:"AAA"; endswith;)", "xxAAA"));
  EXPECT_FALSE(payloadMatches(R"(content:"AAA"; endswith;)", "AAAx"));
  EXPECT_TRUE(payloadMatches(R"(content:"get"; nocase; startswith;)", "GET /"));
  EXPECT_TRUE(payloadMatches(R"(content:"a"; content:!"b"; distance:0;)", "a c"));
  EXPECT_FALSE(payloadMatches(R"(content:"a"; content:!"b"; distance:0;)", "a b"));
}

TEST(IdsInspect, ByteTestJumpExtractIsDataAt) {
  // 'H' is 0x48; masked with 0xf8 and shifted by the mask's zero bits: 9.
  EXPECT_TRUE(payloadMatches(R"(content:"HTTP"; byte_test:1,=,0x9,0,bitmask 0xf8;)", "HTTP"));
  EXPECT_FALSE(payloadMatches(R"(content:"HTTP"; byte_test:1,=,0x48,0,bitmask 0xf8;)", "HTTP"));
  EXPECT_TRUE(payloadMatches(R"(content:"L"; byte_test:2,>,9,0,relative,string,dec;)", "L42"));
  // byte_jump over a length byte lands on "ok".
  EXPECT_TRUE(payloadMatches(R"(content:"|00|"; byte_jump:1,0,relative; content:"ok"; within:2;)",
                             std::string("\x00\x03xyzok", 7)));
  EXPECT_TRUE(payloadMatches(R"(byte_extract:1,0,len; content:"ok"; distance:0; within:len;)",
                             std::string("\x03xok", 4)));
  EXPECT_TRUE(payloadMatches(R"(content:"ab"; isdataat:1,relative;)", "abc"));
  EXPECT_FALSE(payloadMatches(R"(content:"ab"; isdataat:1,relative;)", "ab"));
}

TEST(IdsInspect, PcreRelativeAnchorsAfterThePreviousMatch) {
  EXPECT_TRUE(payloadMatches(R"(content:"google"; pcre:"/^\.[a-z]{2,3}$/R";)", "www.google.com"));
  EXPECT_FALSE(payloadMatches(R"(content:"google"; pcre:"/^\.[a-z]{2,3}$/R";)", "google.co.uk"));
}

TEST(IdsInspect, HostileBacktrackingIsBounded) {
  const Rule r = rule(R"(alert tcp any any -> any any (content:"a"; content:"a"; distance:0; )"
                      R"(content:"a"; distance:0; content:"b"; distance:0; within:1; sid:1;))");
  const auto progs = compilePrograms(r);
  Inspector in;
  std::vector<int64_t> vars(1);
  const std::string data(4000, 'a');
  EXPECT_FALSE(in.run(progs[0], data, vars));
  EXPECT_LE(in.steps(), Inspector::kMaxSteps + 8);  // the bound, plus one per nesting level
}

TEST(IdsInspect, CatastrophicPcreGivesUp) {
  // (a+)+b on a run of a's backtracks 2^n ways; the match limit stops it (as
  // a non-match) whether the pattern runs interpreted or JIT-compiled.
  Rule r = rule(R"(alert tcp any any -> any any (pcre:"/(a+)+b/"; sid:1;))");
  const std::string data(40, 'a');
  for (bool jit : {false, true}) {
    if (jit) {
      EXPECT_EQ(jitCompile(r), 1u);
    }
    const auto progs = compilePrograms(r);
    Inspector in;
    std::vector<int64_t> vars(1);
    EXPECT_FALSE(in.run(progs[0], data, vars)) << jit;
    EXPECT_TRUE(in.run(progs[0], data + "b", vars)) << jit;
  }
}

Bytes bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

TEST(IdsStream, ReordersAndKeepsFirstOnOverlap) {
  TcpStream s;
  StreamCounters c;
  s.start(1000);
  s.add(1005, bytes("world"), {}, c);  // ahead: held
  EXPECT_EQ(s.end(), 0u);
  s.add(1000, bytes("hello"), {}, c);
  EXPECT_EQ(s.window(), "helloworld");
  s.add(1003, bytes("LOWO"), {}, c);  // overlaps with different bytes: kept data wins
  EXPECT_EQ(s.window(), "helloworld");
  EXPECT_EQ(c.overlap_diff, 1u);
  EXPECT_EQ(c.retransmitted, 1u);
}

TEST(IdsStream, DepthAndOutOfOrderBudget) {
  TcpStream s;
  StreamCounters c;
  s.start(0);
  s.add(0, bytes("0123456789"), {.depth = 4, .out_of_order = 1024}, c);
  EXPECT_EQ(s.window(), "0123");
  EXPECT_EQ(c.depth_dropped, 6u);

  TcpStream t;
  StreamCounters d;
  t.start(0);
  t.add(0, bytes("ab"), {.depth = 0, .out_of_order = 4}, d);
  t.add(10, bytes("cd"), {.depth = 0, .out_of_order = 4}, d);   // held (2 of 4)
  t.add(20, bytes("efg"), {.depth = 0, .out_of_order = 4}, d);  // over budget: hole skipped
  EXPECT_EQ(d.gaps, 1u);
  EXPECT_TRUE(t.gap_pending);
  EXPECT_EQ(t.windowStart(), 10u);
  EXPECT_EQ(t.window(), "cd");
  EXPECT_EQ(t.heldBytes(), 3u);
}

TEST(IdsStream, SequenceNumbersWrap) {
  TcpStream s;
  StreamCounters c;
  s.start(0xfffffffe);
  s.add(0xfffffffe, bytes("ab"), {}, c);
  s.add(0, bytes("cd"), {}, c);
  EXPECT_EQ(s.window(), "abcd");
}

// `plain` compressed by zlib: window_bits 15 + 16 is gzip, 15 zlib, -15 raw.
std::string compress(std::string_view plain, int window_bits = 15 + 16) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(plain.size() + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
std::string gzip(std::string_view plain) {
  return compress(plain);
}

// Text that compresses well but not trivially, as pages do.
std::string page(size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i)
    s += "<p id=\"" + std::to_string(i * 7919 % 10007) + "\">line " + std::to_string(i) + "</p>\n";
  s.resize(n);
  return s;
}

// Everything `in` inflates to, fed in pieces of `piece` bytes.
std::pair<std::string, Inflater::Result> inflateAll(std::string_view in, size_t piece,
                                                    Inflater::Wrapper* wrapper = nullptr,
                                                    bool allow_raw = true) {
  Inflater f(allow_raw);
  std::string out;
  Inflater::Result r = Inflater::Result::More;
  for (size_t i = 0; i < in.size() && r == Inflater::Result::More; i += piece)
    r = f.feed(in.substr(i, piece), [&](std::string_view o) {
      out.append(o);
      return true;
    });
  if (wrapper) *wrapper = f.wrapper();
  return {out, r};
}

TEST(IdsInflate, GzipZlibAndRawDeflateInPiecesOfAnySize) {
  const std::string plain = page(300 << 10);  // several 16 KiB output buffers
  const struct {
    int bits;
    Inflater::Wrapper wrapper;
  } kinds[] = {{15 + 16, Inflater::Wrapper::Gzip},
               {15, Inflater::Wrapper::Zlib},
               {-15, Inflater::Wrapper::Raw}};
  for (const auto& k : kinds) {
    const std::string z = compress(plain, k.bits);
    for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{1448}, z.size()}) {
      Inflater::Wrapper w{};
      const auto [out, r] = inflateAll(z, piece, &w);
      EXPECT_EQ(r, Inflater::Result::End) << k.bits << " " << piece;
      EXPECT_EQ(w, k.wrapper);
      EXPECT_TRUE(out == plain) << k.bits << " in pieces of " << piece << ": " << out.size();
    }
  }
}

TEST(IdsInflate, EndsAtTheStreamsEndAndRefusesBrokenData) {
  const std::string plain = page(5000);
  // Bytes after a gzip member's trailer are not inflated.
  auto [out, r] = inflateAll(compress(plain) + "trailing garbage", 7);
  EXPECT_EQ(r, Inflater::Result::End);
  EXPECT_EQ(out, plain);
  // A flipped byte in the gzip trailer's CRC: the checksum does not match.
  std::string z = compress(plain);
  z[z.size() - 6] ^= 0x55;
  EXPECT_EQ(inflateAll(z, 100).second, Inflater::Result::Error);
  // A zlib stream with a bad Adler-32.
  z = compress(plain, 15);
  z.back() ^= 1;
  EXPECT_EQ(inflateAll(z, 100).second, Inflater::Result::Error);
  // Plain text taken for raw deflate: not valid (its first block type is 3).
  EXPECT_EQ(inflateAll("\x07not compressed at all", 5).second, Inflater::Result::Error);
  // Clear text that parses as raw deflate (`{` opens a fixed-Huffman block)
  // is refused when raw deflate is not allowed (a body labelled gzip).
  EXPECT_EQ(inflateAll("{\"sdk_version\":1}", 4, nullptr, false).second, Inflater::Result::Error);
  EXPECT_EQ(inflateAll(compress(plain, 15), 4, nullptr, false).first, plain);
  // Two bytes or fewer: nothing decided yet, nothing produced.
  Inflater f(true);
  EXPECT_EQ(f.feed("\x1f", [](std::string_view) { return true; }), Inflater::Result::More);
  EXPECT_EQ(f.wrapper(), Inflater::Wrapper::Unknown);
}

TEST(IdsInflate, StopsWhenTheSinkHasEnough) {
  const std::string z = compress(std::string(10 << 20, 'a'));  // a bomb: 10 MiB from ~10 KiB
  Inflater f(false);
  size_t got = 0, calls = 0;
  f.feed(z, [&](std::string_view o) {
    got += o.size();
    return ++calls < 3;
  });
  EXPECT_EQ(calls, 3u);
  EXPECT_LE(got, 3u * Inflater::kOutPiece);
  EXPECT_LT(got, 10u << 20);
}

TEST(IdsHttp, DeflateBodiesRawOrZlibAndTheBombBound) {
  for (int bits : {15, -15}) {
    HttpParser p;
    HttpCounters c;
    const std::string z = compress("<html>deflated page</html>", bits);
    p.feed(false,
           "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: " +
               std::to_string(z.size()) + "\r\n\r\n" + z,
           c);
    ASSERT_EQ(p.transactions().size(), 1u);
    EXPECT_EQ(p.transactions()[0].response.body, "<html>deflated page</html>") << bits;
    EXPECT_EQ(c.inflate_errors, 0u);
  }
  // 10 MiB of one byte in about 10 KiB: kept no further than the body limit.
  HttpParser p;
  HttpCounters c;
  const std::string z = gzip(std::string(10 << 20, 'a'));
  p.feed(false,
         "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " +
             std::to_string(z.size()) + "\r\n\r\n" + z,
         c);
  ASSERT_EQ(p.transactions().size(), 1u);
  EXPECT_EQ(p.transactions()[0].response.body.size(), HttpLimits{}.body);
  EXPECT_TRUE(p.transactions()[0].response.body_truncated);
  EXPECT_EQ(c.body_truncated, 1u);
  // A body labelled gzip that is not: kept as sent, counted.
  HttpParser q;
  q.feed(false, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!",
         c);
  EXPECT_EQ(q.transactions()[0].response.body, "not gzip!");
  EXPECT_EQ(c.inflate_errors, 1u);
  // The same, the body arriving a byte at a time: its first byte, held to
  // tell the wrapper, is kept too.
  HttpParser one;
  one.feed(false, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\n", c);
  for (char ch : std::string_view("not gzip!"))
    one.feed(false, std::string_view(&ch, 1), c);
  EXPECT_EQ(one.transactions()[0].response.body, "not gzip!");
  EXPECT_EQ(c.inflate_errors, 2u);
}

TEST(IdsHttp, PipelinedChunkedAndGzip) {
  HttpParser p;
  HttpCounters c;
  const std::string req =
      "GET /a/./b/../c%2ex?q=../x HTTP/1.1\r\nHost: WWW.Example.COM:8080\r\nX-Long: a\r\n  "
      "folded\r\n\r\nPOST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nbody\r\n3;ext=1\r\n123\r\n0\r\n\r\n";
  // In pieces of 7 bytes: the parser keeps state across any split.
  for (size_t i = 0; i < req.size(); i += 7)
    p.feed(true, std::string_view(req).substr(i, 7), c);
  const std::string z = gzip("<html>compressed page</html>");
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(z.size()) +
      "\r\n\r\n" + z + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  p.feed(false, resp, c);
  auto& txs = p.transactions();
  ASSERT_EQ(txs.size(), 2u);
  EXPECT_EQ(txs[0].uri_normalized, "/a/c.x?q=../x");
  EXPECT_EQ(txs[0].host, "www.example.com");
  EXPECT_EQ(*txs[0].request.header("x-long"), "a folded");
  EXPECT_TRUE(txs[0].request.done);
  EXPECT_EQ(txs[0].response.body, "<html>compressed page</html>");
  EXPECT_EQ(txs[0].status, "200");
  EXPECT_EQ(txs[1].request.body, "body123");
  EXPECT_EQ(txs[1].status, "404");
  EXPECT_TRUE(txs[1].response.done);
  EXPECT_EQ(c.requests, 2u);
  EXPECT_EQ(c.malformed, 0u);
}

// A body's room is taken as its bytes come: a Content-Length of a gigabyte
// under a raised body limit does not allocate it up front.
TEST(IdsHttp, AClaimedLengthDoesNotAllocateUpFront) {
  HttpLimits lim;
  lim.body = 1u << 30;
  HttpParser p(lim);
  HttpCounters c;
  p.feed(false, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nfirst bytes", c);
  ASSERT_EQ(p.transactions().size(), 1u);
  const std::string& body = p.transactions()[0].response.body;
  EXPECT_EQ(body, "first bytes");
  EXPECT_LE(body.capacity(), 256u << 10);
  // A small body gets no more room than its length.
  HttpParser q;
  q.feed(false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", c);
  ASSERT_EQ(q.transactions().size(), 1u);
  EXPECT_EQ(q.transactions()[0].response.body, "hello");
  EXPECT_LE(q.transactions()[0].response.body.capacity(), 64u);
}

TEST(IdsHttp, BoundsAndGarbage) {
  HttpLimits lim;
  lim.line = 64;
  HttpParser p(lim);
  HttpCounters c;
  p.feed(true, "GET /" + std::string(100, 'a'), c);
  EXPECT_TRUE(p.failed(true));
  EXPECT_EQ(c.too_long, 1u);
  HttpParser q;
  q.feed(true, "GET%00 / HTTP/1.1\r\n\r\n", c);
  EXPECT_TRUE(q.failed(true));
  EXPECT_TRUE(q.transactions().empty());
  // A response with no request (picked up mid-stream) gets its own transaction.
  HttpParser r;
  r.feed(false, "HTTP/1.0 200 OK\r\nServer: x", c);
  r.finish(c);
  ASSERT_EQ(r.transactions().size(), 1u);
  EXPECT_TRUE(r.transactions()[0].response.headers_done);
  EXPECT_EQ(*r.transactions()[0].response.header("Server"), "x");
}

TEST(IdsAppLayer, DnsNamesAndPointerLoops) {
  // id 0x1234, RD, one question www.example.com A, then a pointer back to it.
  std::string q("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  q += std::string(
      "\x03www\x07"
      "example\x03"
      "com\x00\x00\x01\x00\x01",
      21);
  DnsMessage m;
  ASSERT_TRUE(parseDns(q, m));
  ASSERT_EQ(m.queries.size(), 1u);
  EXPECT_EQ(m.queries[0], "www.example.com");
  EXPECT_FALSE(m.response);
  // A name that points at itself.
  std::string loop("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", 18);
  EXPECT_FALSE(parseDns(loop, m));
  EXPECT_FALSE(parseDns("short", m));
}

// A ClientHello for `sni`, as one handshake message.
std::string clientHello(const std::string& sni) {
  std::string ext;
  const size_t n = sni.size();
  ext += std::string("\x00\x00", 2);  // server_name
  ext += static_cast<char>((n + 5) >> 8);
  ext += static_cast<char>((n + 5) & 0xff);
  ext += static_cast<char>((n + 3) >> 8);
  ext += static_cast<char>((n + 3) & 0xff);
  ext += '\0';
  ext += static_cast<char>(n >> 8);
  ext += static_cast<char>(n & 0xff);
  ext += sni;
  std::string body("\x03\x03", 2);
  body += std::string(32, 'r');
  body += '\0';                                // session id
  body += std::string("\x00\x02\x13\x01", 4);  // one cipher suite
  body += std::string("\x01\x00", 2);          // null compression
  body += static_cast<char>(ext.size() >> 8);
  body += static_cast<char>(ext.size() & 0xff);
  body += ext;
  std::string hs("\x01", 1);
  hs += '\0';
  hs += static_cast<char>(body.size() >> 8);
  hs += static_cast<char>(body.size() & 0xff);
  return hs + body;
}

std::string record(std::string_view payload) {
  std::string r("\x16\x03\x01", 3);
  r += static_cast<char>(payload.size() >> 8);
  r += static_cast<char>(payload.size() & 0xff);
  r += payload;
  return r;
}

TEST(IdsAppLayer, TlsSniAcrossRecordsAndSegments) {
  const std::string hello = clientHello("www.google.com");
  // The handshake split over two records, the records fed a byte at a time.
  const std::string wire =
      record(std::string_view(hello).substr(0, 20)) + record(std::string_view(hello).substr(20));
  TlsHello t;
  bool done = false;
  for (char ch : wire)
    done = t.feed(std::string_view(&ch, 1));
  EXPECT_TRUE(done);
  EXPECT_EQ(t.sni(), "www.google.com");
  EXPECT_EQ(detectTcp(wire, true, 443), AppProto::Tls);
  EXPECT_EQ(detectTcp("GE", true, 80), AppProto::Unknown);
  EXPECT_EQ(detectTcp("GET / HTTP/1.1", true, 8080), AppProto::Http);
  EXPECT_EQ(detectTcp("SSH-2.0-x", true, 22), AppProto::Failed);
  TlsHello bad;
  EXPECT_FALSE(bad.feed(std::string_view("\x17\x03\x03\x00\x05hello", 10)));
  EXPECT_TRUE(bad.failed());
}

std::string tlsRecord(uint8_t type, std::string_view payload) {
  std::string r{static_cast<char>(type), '\x03', '\x03'};
  r += static_cast<char>(payload.size() >> 8);
  r += static_cast<char>(payload.size() & 0xff);
  r += payload;
  return r;
}

TEST(IdsAppLayer, TlsRecordsTellWhenApplicationDataFlows) {
  const std::string hello = record(clientHello("a.example"));
  const std::string wire = hello + tlsRecord(20, "\x01") + tlsRecord(23, std::string(300, 'x'));
  TlsRecords byte_by_byte, whole;
  for (size_t i = 0; i < wire.size(); ++i) {
    // From the moment the application data record's header is whole.
    EXPECT_EQ(byte_by_byte.appData(), i >= wire.size() - 300) << i;
    byte_by_byte.feed(std::string_view(&wire[i], 1));
  }
  EXPECT_TRUE(byte_by_byte.appData());
  whole.feed(hello);
  EXPECT_FALSE(whole.appData());
  whole.feed(wire.substr(hello.size()));
  EXPECT_TRUE(whole.appData());
  // Bytes that are not records end the walk: never taken as encrypted.
  TlsRecords http;
  http.feed("GET / HTTP/1.1\r\n\r\n" + tlsRecord(23, "x"));
  EXPECT_TRUE(http.failed());
  EXPECT_FALSE(http.appData());
  TlsRecords midstream;  // picked up inside a record's body
  midstream.feed(std::string(40, '\x5a'));
  EXPECT_TRUE(midstream.failed());
}

// Drives an engine with built packets and collects the sids that alerted.
struct Harness {
  std::vector<Rule> rules;
  EngineConfig cfg;
  std::vector<uint32_t> sids;
  std::vector<uint64_t> pcap_cnts;
  std::vector<bool> blocked;      // per alert: EVE action "blocked"
  std::vector<bool> on_packet;    // per alert: raised on the packet being inspected
  std::vector<uint64_t> dropped;  // packets (by number) the engine said to drop
  std::unique_ptr<Engine> engine;
  pkt::Decoder dec;
  uint64_t n = 0;

  explicit Harness(const std::vector<std::string>& texts, EngineConfig c = {}) : cfg(c) {
    for (const auto& t : texts)
      rules.push_back(rule(t));
    engine = std::make_unique<Engine>(rules, cfg, [this](const AlertInfo& a) {
      sids.push_back(a.rule->sid);
      pcap_cnts.push_back(a.pcap_cnt);
      blocked.push_back(a.blocked);
      on_packet.push_back(a.on_packet);
    });
  }
  void send(const std::vector<std::byte>& frame) {
    pkt::Packet p;
    dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
    ++n;
    if (engine->packet(p, 1000000000ull * (1 + n), n).drop) dropped.push_back(n);
  }
  size_t count(uint32_t sid) const { return std::count(sids.begin(), sids.end(), sid); }
};

const IpAddr kClient = *IpAddr::parse("192.0.2.10");
const IpAddr kServer = *IpAddr::parse("198.51.100.20");

std::vector<std::byte> tcpFrame(bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                                std::string_view data = {}) {
  pkt::PacketBuilder b;
  b.eth(MacAddr{}, MacAddr{});
  if (from_client)
    b.ipv4(kClient, kServer).tcp(40000, 80, flags, seq, ack);
  else
    b.ipv4(kServer, kClient).tcp(80, 40000, flags, seq, ack);
  if (!data.empty()) b.payload(data);
  return b.build();
}

// A whole HTTP exchange: handshake, request, response, close.
void httpSession(Harness& h, std::string_view req, std::string_view resp) {
  using namespace pkt::tcpflag;
  const auto rq = static_cast<uint32_t>(req.size()), rs = static_cast<uint32_t>(resp.size());
  h.send(tcpFrame(true, kSyn, 100, 0));
  h.send(tcpFrame(false, kSyn | kAck, 500, 101));
  h.send(tcpFrame(true, kAck, 101, 501));
  h.send(tcpFrame(true, kAck | kPsh, 101, 501, req));
  h.send(tcpFrame(false, kAck, 501, 101 + rq));
  h.send(tcpFrame(false, kAck | kPsh, 501, 101 + rq, resp));
  h.send(tcpFrame(true, kAck, 101 + rq, 501 + rs));
  h.send(tcpFrame(true, kFin | kAck, 101 + rq, 501 + rs));
  h.send(tcpFrame(false, kFin | kAck, 501 + rs, 102 + rq));
  h.send(tcpFrame(true, kAck, 102 + rq, 502 + rs));
}

// A TCP session carrying `messages` (true: from the client), each
// acknowledged, then closed.
void tcpSession(Harness& h, const std::vector<std::pair<bool, std::string>>& messages) {
  using namespace pkt::tcpflag;
  uint32_t c = 100, s = 500;
  h.send(tcpFrame(true, kSyn, c++, 0));
  h.send(tcpFrame(false, kSyn | kAck, s++, c));
  h.send(tcpFrame(true, kAck, c, s));
  for (const auto& [from_client, data] : messages) {
    const auto n = static_cast<uint32_t>(data.size());
    if (from_client) {
      h.send(tcpFrame(true, kAck | kPsh, c, s, data));
      c += n;
      h.send(tcpFrame(false, kAck, s, c));
    } else {
      h.send(tcpFrame(false, kAck | kPsh, s, c, data));
      s += n;
      h.send(tcpFrame(true, kAck, c, s));
    }
  }
  h.send(tcpFrame(true, kFin | kAck, c, s));
  h.send(tcpFrame(false, kFin | kAck, s, c + 1));
  h.send(tcpFrame(true, kAck, c + 1, s + 1));
}

// Suricata's TLS encryption handling: once application data flows both
// ways, content rules no longer look at the payload (default), nothing is
// inspected (bypass), or everything still is (full).
TEST(IdsEngine, EncryptedTlsPayloadIsInspectedAsTheSettingSays) {
  const std::vector<std::string> rules = {
      R"(alert tcp any any -> any any (msg:"in the encrypted data"; content:"secret-two"; sid:1;))",
      R"(alert tls any any -> any any (tls.sni; content:"shop.example"; sid:2;))",
      R"(alert tcp any any -> any any (msg:"before the handshake ended"; content:"secret-one"; sid:3;))",
      R"(alert tcp any any -> any any (flow:to_server; dsize:>5; sid:4;))",
      R"(alert tcp any any -> any any (msg:"a packet rule"; dsize:>5; content:"secret-two"; sid:5;))",
      R"(alert tcp any any -> any any (msg:"no fast pattern"; dsize:>5; pcre:"/secret-two/"; sid:6;))",
  };
  const std::vector<std::pair<bool, std::string>> session = {
      {true, record(clientHello("shop.example"))},
      {false, record(std::string("\x02\x00\x00\x02\x03\x03", 6)) + tlsRecord(20, "\x01")},
      {true, tlsRecord(20, "\x01") + tlsRecord(23, "secret-one, finished")},
      {false, tlsRecord(23, "server's first data")},
      {true, tlsRecord(23, "the request, with secret-two")},
      {false, tlsRecord(23, "the answer, with secret-two")},
  };
  struct Want {
    const char* mode;
    size_t sid1, sid4;
    uint64_t encrypted;
  };
  for (const Want& w : {Want{"default", 0, 3, 1}, Want{"bypass", 0, 2, 1}, Want{"full", 2, 3, 0}}) {
    EngineConfig cfg;
    Vars vars = Vars::defaults();
    ASSERT_TRUE(applySetting(cfg, vars,
                             std::string("app-layer.protocols.tls.encryption-handling=") + w.mode));
    Harness h(rules, cfg);
    tcpSession(h, session);
    h.engine->finish();
    EXPECT_EQ(h.count(1), w.sid1) << w.mode;
    EXPECT_EQ(h.count(5), w.sid1) << w.mode;
    EXPECT_EQ(h.count(6), w.sid1) << w.mode;
    EXPECT_EQ(h.count(2), 1u) << w.mode;
    EXPECT_EQ(h.count(3), 1u) << w.mode;
    // A rule without payload tests goes on, unless the flow is bypassed.
    EXPECT_EQ(h.count(4), w.sid4) << w.mode;
    EXPECT_EQ(h.engine->stats().tls_encrypted, w.encrypted) << w.mode;
  }
  EngineConfig cfg;
  Vars vars = Vars::defaults();
  EXPECT_FALSE(applySetting(cfg, vars, "app-layer.protocols.tls.encryption-handling=off"));
}

TEST(IdsEngine, HttpTransactionsStreamsAndPackets) {
  Harness h({
      R"(alert http any any -> any any (msg:"uri"; http.uri; content:"/etc/passwd"; sid:1;))",
      R"(alert http any any -> any any (http.stat_code; content:"403"; sid:2;))",
      R"(alert tcp any any -> any any (content:"/etc/"; sid:3;))",
      R"(alert tcp any any -> any 80 (flags:S; sid:4;))",
      R"(alert http any any -> any any (http.header; content:"User-Agent|3a| evil"; sid:5;))",
      R"(alert http any any -> any any (http.uri; content:"/nothere"; sid:6;))",
      R"(alert tcp any any -> any any (flow:established,to_server; dsize:>0; sid:7;))",
  });
  httpSession(h, "GET /x/../etc/%70asswd HTTP/1.1\r\nHost: a\r\nUser-Agent: evil\r\n\r\n",
              "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  h.engine->finish();
  EXPECT_EQ(h.count(1), 1u);
  EXPECT_EQ(h.count(2), 1u);
  EXPECT_EQ(h.count(3), 1u);  // the raw stream, where "passwd" is still %70asswd
  EXPECT_EQ(h.count(4), 1u);
  EXPECT_EQ(h.count(5), 1u);
  EXPECT_EQ(h.count(6), 0u);
  EXPECT_EQ(h.count(7), 1u);  // the one to-server packet with data
  EXPECT_EQ(h.engine->stats().app_http, 1u);
}

// EVE's http and flow events: one http event per transaction once its
// response is seen, one flow event when the flow ends, with its counters.
TEST(IdsEngine, HttpAndFlowEvents) {
  Harness h({R"(alert tcp any any -> any any (content:"nothing-matches"; sid:1;))"});
  std::vector<std::string> lines;
  h.engine->setEventSink([&](const AppEvent& e) {
    std::string line;
    appendEventJson(line, e);
    lines.push_back(line);
  });
  const std::string req =
      "GET /shop?q=1 HTTP/1.1\r\nHost: Shop.Example\r\nUser-Agent: curl/8\r\n\r\n";
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello";
  httpSession(h, req, resp);
  ASSERT_EQ(lines.size(), 1u);  // the transaction, once its response is whole
  const auto http = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(http["event_type"], "http");
  EXPECT_EQ(http["src_ip"], "192.0.2.10");
  EXPECT_EQ(http["dest_port"], 80);
  EXPECT_EQ(http["app_proto"], "http");
  EXPECT_EQ(http["tx_id"], 0);
  EXPECT_EQ(http["http"]["hostname"], "shop.example");
  EXPECT_EQ(http["http"]["url"], "/shop?q=1");
  EXPECT_EQ(http["http"]["http_user_agent"], "curl/8");
  EXPECT_EQ(http["http"]["http_method"], "GET");
  EXPECT_EQ(http["http"]["status"], 200);
  EXPECT_EQ(http["http"]["http_content_type"], "text/html");
  EXPECT_EQ(http["http"]["length"], 5);
  h.engine->finish();
  ASSERT_EQ(lines.size(), 2u);
  const auto flow = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(flow["event_type"], "flow");
  EXPECT_EQ(flow["flow_id"], http["flow_id"]);
  EXPECT_FALSE(flow.contains("pcap_cnt"));  // at the flow's end, no packet
  EXPECT_EQ(flow["flow"]["pkts_toserver"], 6);
  EXPECT_EQ(flow["flow"]["pkts_toclient"], 4);
  EXPECT_EQ(flow["flow"]["state"], "closed");
  EXPECT_EQ(flow["flow"]["reason"], "shutdown");
  EXPECT_EQ(flow["flow"]["alerted"], false);
}

TEST(IdsEngine, IdsModeWaitsForTheAckInlineDoesNot) {
  const std::vector<std::string> rules = {
      R"(alert tcp any any -> any any (content:"EVIL"; sid:1;))"};
  using namespace pkt::tcpflag;
  for (bool inline_mode : {false, true}) {
    EngineConfig cfg;
    cfg.inline_mode = inline_mode;
    Harness h(rules, cfg);
    h.send(tcpFrame(true, kSyn, 100, 0));
    h.send(tcpFrame(false, kSyn | kAck, 500, 101));
    h.send(tcpFrame(true, kAck, 101, 501));
    h.send(tcpFrame(true, kAck | kPsh, 101, 501, "EVIL"));  // packet 4
    h.send(tcpFrame(false, kAck, 501, 105));                // packet 5 acknowledges it
    ASSERT_EQ(h.sids.size(), 1u) << inline_mode;
    EXPECT_EQ(h.pcap_cnts[0], inline_mode ? 4u : 5u);
  }
}

TEST(IdsEngine, SplitAcrossSegmentsAndOutOfOrder) {
  Harness h({R"(alert tcp any any -> any any (content:"ATTACK"; sid:1;))"});
  using namespace pkt::tcpflag;
  h.send(tcpFrame(true, kSyn, 100, 0));
  h.send(tcpFrame(false, kSyn | kAck, 500, 101));
  h.send(tcpFrame(true, kAck, 101, 501));
  h.send(tcpFrame(true, kAck, 104, 501, "ACK"));  // second half first
  h.send(tcpFrame(true, kAck, 101, 501, "ATT"));
  h.send(tcpFrame(false, kAck, 501, 107));
  h.send(tcpFrame(true, kAck, 101, 501, "ATT"));  // a retransmission: no second alert
  h.send(tcpFrame(false, kAck, 501, 107));
  h.engine->finish();
  EXPECT_EQ(h.count(1), 1u);
}

TEST(IdsEngine, FlowbitsThresholdsAndIpOnly) {
  Harness h({
      R"(alert tcp any any -> any any (content:"login"; flowbits:set,in; flowbits:noalert; sid:1;))",
      R"(alert tcp any any -> any any (content:"cmd"; flowbits:isset,in; sid:2;))",
      R"(alert tcp any any -> any any (content:"cmd"; flowbits:isnotset,in; sid:3;))",
      R"(alert tcp any any -> any any (flags:A; threshold:type limit,track by_src,count 2,seconds 60; sid:4;))",
      R"(alert ip 192.0.2.0/24 any -> any any (sid:5;))",
  });
  using namespace pkt::tcpflag;
  h.send(tcpFrame(true, kSyn, 100, 0));
  h.send(tcpFrame(false, kSyn | kAck, 500, 101));
  h.send(tcpFrame(true, kAck, 101, 501));
  h.send(tcpFrame(true, kAck, 101, 501, "login"));
  h.send(tcpFrame(false, kAck, 501, 106));
  h.send(tcpFrame(true, kAck, 106, 501, "cmd"));
  h.send(tcpFrame(false, kAck, 501, 109));
  h.engine->finish();
  EXPECT_EQ(h.count(1), 0u);  // noalert
  EXPECT_EQ(h.count(2), 1u);
  EXPECT_EQ(h.count(3), 0u);
  EXPECT_EQ(h.count(4), 4u);  // ACK-only packets, limited to 2 per source address
  EXPECT_EQ(h.count(5), 1u);  // IP-only: once per flow direction (the client's)
}

// A signature cut in two by IP fragmentation (an old IDS evasion) is seen
// once the datagram is whole, in any fragment order, over IPv4 and IPv6;
// without reassembly it is not.
TEST(IdsEngine, FragmentedDatagramsAreInspectedWhole) {
  const std::vector<std::string> rules = {
      R"(alert udp any any -> any 53 (msg:"evil"; content:"evil-payload"; sid:7;))",
      R"(alert udp any any -> any 53 (msg:"big"; dsize:>100; sid:8;))",
  };
  for (const bool v6 : {false, true}) {
    pkt::PacketBuilder b;
    b.eth(MacAddr{}, MacAddr{});
    if (v6)
      b.ipv6(*IpAddr::parse("2001:db8::10"), *IpAddr::parse("2001:db8::20"));
    else
      b.ipv4(kClient, kServer);
    const std::string data = std::string(12, 'A') + "evil-payload" + std::string(100, 'B');
    // The UDP header and 16 bytes, then the rest: "evil" | "-payload".
    const auto frags = pkt::fragmentFrame(b.udp(40000, 53).payload(data).build(), {24, 64}, 77);
    ASSERT_EQ(frags.size(), 3u);
    Harness h(rules);
    h.send(frags[2]);
    h.send(frags[0]);
    EXPECT_TRUE(h.sids.empty());
    h.send(frags[1]);
    h.engine->finish();
    EXPECT_EQ(h.count(7), 1u) << (v6 ? "IPv6" : "IPv4");
    EXPECT_EQ(h.count(8), 1u);
    EXPECT_EQ(h.pcap_cnts, (std::vector<uint64_t>{3, 3}));  // on the fragment that completed it
    EXPECT_EQ(h.engine->stats().defrag.reassembled, 1u);
    EngineConfig off;
    Vars vars;
    ASSERT_TRUE(applySetting(off, vars, "defrag.enabled=no"));
    Harness without(rules, off);
    for (const auto& f : frags)
      without.send(f);
    without.engine->finish();
    EXPECT_EQ(without.count(7), 0u);
    EXPECT_EQ(without.count(8), 0u);  // the first fragment's 16 bytes
  }
}

TEST(IdsEngine, TagsLogThePacketsThatFollow) {
  using namespace pkt::tcpflag;
  // A session tag of 3 packets: the SYN that alerted counts, two more are logged.
  Harness h({R"(alert tcp any any -> any any (flags:S; tag:session,3,packets; sid:1;))",
             R"(alert tcp any any -> any any (flags:SA; tag:host,2,packets,dst; sid:2;))"});
  std::vector<uint64_t> tagged;
  h.engine->setTagSink([&](const TaggedPacket& t) { tagged.push_back(t.pcap_cnt); });
  h.send(tcpFrame(true, kSyn, 100, 0));            // 1: alerts (sid 1)
  h.send(tcpFrame(false, kSyn | kAck, 500, 101));  // 2: tagged; alerts (sid 2: host 192.0.2.10)
  h.send(tcpFrame(true, kAck, 101, 501));          // 3: tagged (session and host)
  h.send(tcpFrame(true, kAck, 101, 501));          // 4: both tags spent
  EXPECT_EQ(tagged, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(h.engine->stats().tagged_packets, 2u);
}

TEST(IdsEngine, IpsDropsThePacketAndTheRestOfItsFlow) {
  using namespace pkt::tcpflag;
  const std::vector<std::string> rules = {
      R"(drop http any any -> any any (msg:"traversal"; http.uri; content:"/etc/passwd"; sid:1;))",
      R"(alert tcp any any -> any any (flags:S; sid:2;))"};
  const std::string req = "GET /x/../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n";
  for (bool ips : {false, true}) {
    EngineConfig cfg;
    cfg.ips = ips;
    cfg.inline_mode = true;
    Harness h(rules, cfg);
    httpSession(h, req, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(h.count(1), 1u) << ips;
    EXPECT_EQ(h.count(2), 1u);
    const size_t i =
        static_cast<size_t>(std::find(h.sids.begin(), h.sids.end(), 1u) - h.sids.begin());
    EXPECT_EQ(h.blocked[i], ips);   // without IPS a drop rule alerts as "allowed"
    EXPECT_EQ(h.pcap_cnts[i], 4u);  // the request's packet, inline
    if (!ips) {
      EXPECT_TRUE(h.dropped.empty());
      continue;
    }
    // The request and everything after it in the flow, both ways.
    EXPECT_EQ(h.dropped, (std::vector<uint64_t>{4, 5, 6, 7, 8, 9, 10}));
    EXPECT_EQ(h.engine->stats().dropped_packets, 1u);
    EXPECT_EQ(h.engine->stats().dropped_flows, 1u);
    EXPECT_EQ(h.engine->stats().dropped_flow_packets, 6u);
  }
}

TEST(IdsEngine, IpsDropFollowsThresholdSemantics) {
  using namespace pkt::tcpflag;
  // limit: alerts twice, but every match drops (Suricata 7/8); threshold: nothing
  // (no alert, no drop) before the count; UDP has no stream: packet by packet.
  EngineConfig cfg;
  cfg.ips = true;
  cfg.inline_mode = true;
  Harness h(
      {R"(drop udp any any -> any 53 (content:"bad"; threshold:type limit,track by_src,count 2,seconds 60; sid:1;))",
       R"(drop udp any any -> any 54 (content:"bad"; threshold:type threshold,track by_src,count 3,seconds 60; sid:2;))"},
      cfg);
  auto udp = [](uint16_t sport, uint16_t dport, std::string_view data) {
    pkt::PacketBuilder b;
    b.eth(MacAddr{}, MacAddr{}).ipv4(kClient, kServer).udp(sport, dport).payload(data);
    return b.build();
  };
  for (uint16_t i = 0; i < 4; ++i)
    h.send(udp(static_cast<uint16_t>(1000 + i), 53, "bad"));  // 1-4: all dropped, 2 alerts
  for (uint16_t i = 0; i < 3; ++i)
    h.send(udp(static_cast<uint16_t>(2000 + i), 54, "bad"));  // 5-7: the 3rd alerts and drops
  h.send(udp(3000, 53, "good"));                              // 8: passes
  EXPECT_EQ(h.count(1), 2u);
  EXPECT_EQ(h.count(2), 1u);
  EXPECT_EQ(h.dropped, (std::vector<uint64_t>{1, 2, 3, 4, 7}));
}

TEST(IdsEngine, IpsMatchesInAClosingFlowDropNoOtherPacket) {
  using namespace pkt::tcpflag;
  // A response body that ends with the connection is inspected when the flow
  // is closed for idleness, during another flow's packet: it alerts (not
  // "blocked", not on that packet) and that packet is not dropped.
  EngineConfig cfg;
  cfg.ips = true;
  cfg.inline_mode = true;
  cfg.flow_timeout = 5ull * 1000000000ull;
  Harness h({R"(drop http any any -> any any (http.response_body; content:"secret"; sid:1;))"},
            cfg);
  const std::string req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string resp = "HTTP/1.0 200 OK\r\n\r\nthe secret";  // no length: ends at close
  const auto rq = static_cast<uint32_t>(req.size());
  h.send(tcpFrame(true, kSyn, 100, 0));
  h.send(tcpFrame(false, kSyn | kAck, 500, 101));
  h.send(tcpFrame(true, kAck, 101, 501));
  h.send(tcpFrame(true, kAck | kPsh, 101, 501, req));
  h.send(tcpFrame(false, kAck | kPsh, 501, 101 + rq, resp));
  ASSERT_TRUE(h.sids.empty());
  for (uint16_t i = 0; i < 25; ++i) {  // other flows, a second apart: the sweep comes
    pkt::PacketBuilder b;
    b.eth(MacAddr{}, MacAddr{}).ipv4(kClient, kServer).udp(static_cast<uint16_t>(3000 + i), 9);
    b.payload("x");
    h.send(b.build());
  }
  EXPECT_GE(h.engine->stats().flows_timed_out, 1u);  // the HTTP flow (and idle UDP ones)
  ASSERT_EQ(h.count(1), 1u);
  EXPECT_FALSE(h.blocked[0]);
  EXPECT_FALSE(h.on_packet[0]);
  EXPECT_TRUE(h.dropped.empty());
}

// A flow idle past its timeout is freed by the sweep that the next packet
// brings; when that packet is the flow's own (the flow the engine looked up
// last), it starts a new flow rather than finding the freed one.
TEST(IdsEngine, AFlowIdlePastItsTimeoutStartsAgain) {
  EngineConfig cfg;
  cfg.flow_timeout = 60ull * 1000000000ull;
  Harness h({R"(alert udp any any -> any any (content:"x"; sid:1;))"}, cfg);
  pkt::PacketBuilder b;
  b.eth(MacAddr{}, MacAddr{}).ipv4(kClient, kServer).udp(3000, 9);
  b.payload("x");
  const std::vector<std::byte> frame = b.build();
  pkt::Packet p;
  h.dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
  const TimeNs s = 1000000000ull;
  const uint64_t first = h.engine->packet(p, 1 * s, 1).flow_id;
  EXPECT_EQ(h.engine->packet(p, 20 * s, 2).flow_id, first);  // a sweep; the flow is not idle
  const uint64_t again = h.engine->packet(p, 500 * s, 3).flow_id;
  EXPECT_NE(again, first);
  EXPECT_EQ(h.engine->stats().flows_timed_out, 1u);
  EXPECT_EQ(h.engine->stats().flows, 2u);
  EXPECT_EQ(h.engine->packet(p, 501 * s, 4).flow_id, again);
  EXPECT_EQ(h.count(1), 4u);
}

// The sweep frees exactly the flows idle past their timeout (a TCP flow
// closed by a RST after the shorter closed timeout), each once, wherever they
// sit among the flows it keeps; a kept flow goes on as the same flow, and the
// rest end at shutdown.
TEST(IdsEngine, TheSweepFreesEachIdleFlowOnceAndKeepsTheRest) {
  EngineConfig cfg;
  const TimeNs s = 1000000000ull;
  cfg.flow_timeout = 30 * s;
  cfg.closed_timeout = 10 * s;
  Harness h({R"(alert udp any any -> any any (content:"x"; sid:1;))"}, cfg);
  struct Ended {
    uint16_t cport;
    std::string reason, state;
    uint64_t pkts;
  };
  std::vector<Ended> ended;
  h.engine->setEventSink([&](const AppEvent& e) {
    if (e.kind == AppEvent::Kind::Flow)
      ended.push_back({e.sport, e.flow.reason, e.flow.state, e.flow.pkts[0] + e.flow.pkts[1]});
  });
  auto udp = [&](uint16_t cport, TimeNs at) {
    pkt::PacketBuilder b;
    b.eth(MacAddr{}, MacAddr{}).ipv4(kClient, kServer).udp(cport, 9);
    b.payload("x");
    const std::vector<std::byte> frame = b.build();
    pkt::Packet p;
    h.dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
    return h.engine->packet(p, at, ++h.n).flow_id;
  };
  auto rst = [&](TimeNs at) {
    const std::vector<std::byte> frame = tcpFrame(true, pkt::tcpflag::kRst, 100, 0);
    pkt::Packet p;
    h.dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
    h.engine->packet(p, at, ++h.n);
  };
  // Eight UDP flows at 1 s; the even ones are seen again at 5 s; a TCP flow
  // ends with a RST at 2 s.
  std::map<uint16_t, uint64_t> id;
  for (uint16_t c = 1000; c < 1008; ++c)
    id[c] = udp(c, 1 * s);
  rst(2 * s);
  for (uint16_t c = 1000; c < 1008; c += 2)
    EXPECT_EQ(udp(c, 5 * s), id[c]);
  EXPECT_EQ(h.engine->flowCount(), 9u);
  // Sweeps at 12 s (the RST's flow, idle 10 s, is not yet past it) and 23 s
  // (it is), then at 34 s: the odd flows are idle 33 s, the even ones 29 s.
  udp(2000, 12 * s);
  EXPECT_EQ(h.engine->flowCount(), 10u);
  udp(2000, 23 * s);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].cport, 40000);
  EXPECT_EQ(ended[0].state, "closed");
  udp(2000, 34 * s);
  ASSERT_EQ(ended.size(), 5u);
  std::set<uint16_t> timed_out;
  for (size_t i = 1; i < ended.size(); ++i) {
    EXPECT_EQ(ended[i].reason, "timeout");
    EXPECT_EQ(ended[i].pkts, 1u);
    timed_out.insert(ended[i].cport);
  }
  EXPECT_EQ(timed_out, (std::set<uint16_t>{1001, 1003, 1005, 1007}));
  EXPECT_EQ(h.engine->stats().flows_timed_out, 5u);
  EXPECT_EQ(h.engine->flowCount(), 5u);
  for (uint16_t c = 1000; c < 1008; c += 2)
    EXPECT_EQ(udp(c, 35 * s), id[c]);
  EXPECT_NE(udp(1001, 35 * s), id[1001]);  // a new flow
  h.engine->finish();
  ASSERT_EQ(ended.size(), 11u);
  std::map<uint16_t, uint64_t> at_shutdown;
  for (size_t i = 5; i < ended.size(); ++i) {
    EXPECT_EQ(ended[i].reason, "shutdown");
    at_shutdown[ended[i].cport] = ended[i].pkts;
  }
  EXPECT_EQ(at_shutdown, (std::map<uint16_t, uint64_t>{
                             {1000, 3}, {1002, 3}, {1004, 3}, {1006, 3}, {1001, 1}, {2000, 3}}));
}

TEST(IdsEngine, MidstreamPickupIsASetting) {
  const std::vector<std::string> rules = {
      R"(alert tcp any any -> any any (flow:established; content:"uid=0"; sid:1;))"};
  using namespace pkt::tcpflag;
  for (bool mid : {false, true}) {
    EngineConfig cfg;
    Vars v;
    ASSERT_TRUE(applySetting(cfg, v, mid ? "stream.midstream=true" : "stream.midstream=false"));
    Harness h(rules, cfg);
    h.send(tcpFrame(false, kAck | kPsh, 700, 300, "uid=0(root)"));
    h.send(tcpFrame(true, kAck, 300, 711));
    h.engine->finish();
    EXPECT_EQ(h.count(1), mid ? 1u : 0u) << mid;
  }
  EngineConfig cfg;
  Vars v;
  EXPECT_FALSE(applySetting(cfg, v, "stream.midstream=perhaps"));
  EXPECT_FALSE(applySetting(cfg, v, "no.such.key=1"));
  EXPECT_FALSE(applySetting(cfg, v, "novalue"));
  EXPECT_TRUE(applySetting(cfg, v, "stream.reassembly.depth=1mb"));
  EXPECT_EQ(cfg.stream.depth, 1u << 20);
}

// The flow index finds exactly the flows inserted and not yet erased, under
// churn, with hashes that collide on purpose (long runs of one home slot,
// runs wrapping past the last slot) and with spread ones, through growth.
TEST(FlowIndex, FindsExactlyTheLiveFlowsUnderChurnAndCollisions) {
  struct F {
    uint64_t key;
  };
  for (int spread : {0, 1}) {
    FlowIndex<F, uint64_t> idx(7);
    std::mt19937_64 rng(2611 + spread);
    std::vector<std::unique_ptr<F>> pool;
    std::map<uint64_t, F*> live;
    // Colliding: 40 distinct hashes for thousands of keys, several of them
    // homing in the last slots of any table size, so runs wrap.
    auto hashOf = [&](uint64_t k) {
      return spread ? idx.hash(k) : (k % 40 < 4 ? ~uint64_t{0} - k % 4 : k % 40);
    };
    for (int step = 0; step < 20000; ++step) {
      const uint64_t k = rng() % 3000;
      auto it = live.find(k);
      if (it == live.end()) {
        pool.push_back(std::make_unique<F>(F{k}));
        idx.insert(pool.back().get(), hashOf(k));
        live[k] = pool.back().get();
      } else if (rng() % 3 != 0) {
        idx.erase(it->second, hashOf(k));
        live.erase(it);
      }
      if (step % 997 == 0 || step == 19999) {
        ASSERT_EQ(idx.size(), live.size());
        ASSERT_LE(idx.size() * 2, idx.slots());
        for (uint64_t q = 0; q < 3000; ++q) {
          auto l = live.find(q);
          ASSERT_EQ(idx.find(q, hashOf(q)), l == live.end() ? nullptr : l->second)
              << "key " << q << " step " << step << " spread " << spread;
        }
      }
    }
  }
}

// The literal prefilter finds exactly the literals a buffer contains, each
// once, whether it scans for whole literals or for windows of the long ones
// (confirmed whole): over texts built from pieces of the literals, so windows
// often occur without their literal, and literals cut off at either end.
TEST(LiteralSet, FindsExactlyTheLiteralsPresentWithOrWithoutWindows) {
  std::mt19937 rng(2511);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::string alphabet("abcAB <>=\"x\x00\xff", 13);
  std::vector<std::pair<std::string, bool>> lits;  // bytes, nocase
  for (int i = 0; i < 300; ++i) {
    std::string l;
    const size_t len = 1 + pick(i < 40 ? 8 : 30);
    for (size_t k = 0; k < len; ++k)
      l += alphabet[pick(alphabet.size())];
    lits.emplace_back(l, pick(2) == 0);
  }
  lits.emplace_back(std::string(LiteralSet::kWindow, 'q'), false);  // exactly a window long
  LiteralSet whole, windowed;
  windowed.scanByWindows();
  for (size_t i = 0; i < lits.size(); ++i) {
    whole.add(static_cast<uint32_t>(i), lits[i].first, lits[i].second);
    windowed.add(static_cast<uint32_t>(i), lits[i].first, lits[i].second);
  }
  HsScratch scratch;
  ASSERT_TRUE(whole.build(scratch));
  ASSERT_TRUE(windowed.build(scratch));
  auto fold = [](std::string t) {
    for (char& c : t)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return t;
  };
  size_t found = 0;
  for (int round = 0; round < 400; ++round) {
    std::string text;
    const size_t pieces = 1 + pick(12);
    for (size_t p = 0; p < pieces; ++p) {
      const std::string& l = lits[pick(lits.size())].first;
      switch (pick(6)) {
        case 0:  // the literal, its case flipped here and there
          for (char c : l)
            text += pick(4) == 0 && c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
          break;
        case 5:  // the literal twice
          text += l + l;
          break;
        case 1:  // a piece of it, often its window without the rest
          text += l.substr(pick(l.size()), 1 + pick(l.size()));
          break;
        case 2: {  // the literal with one byte changed
          std::string m = l;
          m[pick(m.size())] = alphabet[pick(alphabet.size())];
          text += m;
          break;
        }
        default:
          for (size_t k = pick(20); k > 0; --k)
            text += alphabet[pick(alphabet.size())];
      }
    }
    const std::string folded = fold(text);
    std::vector<uint32_t> want;
    for (size_t i = 0; i < lits.size(); ++i) {
      const bool nocase = lits[i].second;
      const std::string needle = nocase ? fold(lits[i].first) : lits[i].first;
      if ((nocase ? folded : text).find(needle) != std::string::npos)
        want.push_back(static_cast<uint32_t>(i));
    }
    found += want.size();
    for (const LiteralSet* set : {&whole, &windowed}) {
      std::vector<uint32_t> got;
      set->scan(text, scratch, got);
      std::vector<uint32_t> sorted = got;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
          << "a literal reported twice in one scan";
      sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
      ASSERT_EQ(sorted, want) << (set == &whole ? "whole" : "windowed") << " literals, round "
                              << round;
    }
  }
  EXPECT_GT(found, 400u);  // the texts do contain literals
}

// Payload patterns are looked for only in the direction their rule can match.
TEST(DirectedLiterals, ARuleForOneDirectionIsScannedForInThatDirectionOnly) {
  DirectedLiterals lits;
  lits.add(1, "to-server", false, true, false);
  lits.add(2, "to-client", false, false, true);
  lits.add(3, "either-way", true, false, false);
  HsScratch scratch;
  ASSERT_TRUE(lits.build(scratch));
  EXPECT_EQ(lits.size(), 3u);
  EXPECT_EQ(lits.size(0), 2u);
  EXPECT_EQ(lits.size(1), 2u);
  const std::string all = "to-server to-client EITHER-WAY";
  for (int dir : {0, 1}) {
    std::vector<uint32_t> got;
    lits.scan(all, dir, scratch, got);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<uint32_t>{dir == 0 ? 1u : 2u, 3u})) << "direction " << dir;
  }
}

// The engine: stream and packet rules for one direction alert on what goes
// that way, and not on the same bytes going the other way.
TEST(IdsEngine, PayloadRulesAreScannedForInTheirDirection) {
  Harness h({
      R"(alert tcp any any -> any any (flow:to_server; content:"marker-bytes"; sid:1;))",
      R"(alert tcp any any -> any any (flow:to_client; content:"marker-bytes"; sid:2;))",
      R"(alert tcp any any -> any any (flow:to_server; content:"request-mark"; sid:3;))",
      R"(alert tcp any any -> any any (flow:to_client; content:"request-mark"; sid:4;))",
      R"(alert tcp any any -> any any (flow:to_client; dsize:>0; content:"marker-bytes"; sid:5;))",
      R"(alert tcp any any -> any any (content:"marker-bytes"; sid:6;))",
  });
  httpSession(h, "GET /request-mark HTTP/1.1\r\nHost: a\r\n\r\n",
              "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nmarker-bytes");
  h.engine->finish();
  EXPECT_EQ(h.count(1), 0u);
  EXPECT_EQ(h.count(2), 1u);
  EXPECT_EQ(h.count(3), 1u);
  EXPECT_EQ(h.count(4), 0u);
  EXPECT_EQ(h.count(5), 1u);  // a packet rule (dsize)
  EXPECT_EQ(h.count(6), 1u);
}

// The port index hands back exactly the rules a packet's protocol and ports
// can match (checked against the rules' own port sets), each rule as often as
// it was added for that protocol, before and after ports no rule names.
TEST(PortIndex, CollectsTheRulesOfAPacketsProtocolAndPorts) {
  const Vars vars = Vars::defaults();
  auto portCount = [](const PortSet& p) {
    size_t n = 0;
    for (const PortRange& r : p.ranges())
      n += static_cast<size_t>(r.hi - r.lo) + 1;
    return n;
  };
  const char* sets[] = {"80",      "[80,443]",    "53",   "1024:1030", "!80", "any",
                        "[21:23]", "$HTTP_PORTS", "8080", "[0,65535]", ":2",  "65530:"};
  struct R {
    PortSet sport, dport;
    bool tcp, udp, icmp, other, bidirectional;
  };
  std::mt19937 rng(5);
  std::vector<R> rules;
  PortIndex idx;
  for (uint32_t i = 0; i < 300; ++i) {
    R r{*parsePortSet(sets[rng() % std::size(sets)], vars),
        *parsePortSet(sets[rng() % std::size(sets)], vars),
        rng() % 2 == 0,
        rng() % 2 == 0,
        rng() % 4 == 0,
        rng() % 8 == 0,
        rng() % 10 == 0};
    idx.add(i, r.tcp, r.udp, r.icmp, r.other, r.sport, r.dport, r.bidirectional);
    rules.push_back(std::move(r));
  }
  idx.build();
  EXPECT_EQ(idx.size(), rules.size());
  const uint16_t ports[] = {0,   1,    2,    21,   22,   23,    53,    80,
                            443, 1024, 1030, 1031, 8080, 49152, 65530, 65535};
  for (uint8_t proto : {uint8_t{6}, uint8_t{17}, uint8_t{1}, uint8_t{58}, uint8_t{47}})
    for (uint16_t sp : ports)
      for (uint16_t dp : ports) {
        std::vector<uint32_t> got;
        idx.collect(proto, sp, dp, got);
        std::sort(got.begin(), got.end());
        // A rule is there when its protocol class is the packet's and (for
        // TCP and UDP) the ports it is indexed by, destination when they are
        // few, else source, hold the packet's; a rule it cannot index is
        // always there. The engine checks the rest of each rule's header.
        for (uint32_t i = 0; i < rules.size(); ++i) {
          const R& r = rules[i];
          const bool ported = proto == 6 || proto == 17;
          const bool cls = proto == 6                  ? r.tcp
                           : proto == 17               ? r.udp
                           : proto == 1 || proto == 58 ? r.icmp
                                                       : r.other;
          bool want = cls;
          if (cls && ported && PortIndex::indexable(r.sport, r.dport, r.bidirectional))
            want = portCount(r.dport) <= 64 ? r.dport.contains(dp) : r.sport.contains(sp);
          // The expectation never leaves out a rule the packet's ports can
          // match (so, with the check below, neither does the index).
          if (cls && r.sport.contains(sp) && r.dport.contains(dp)) {
            ASSERT_TRUE(want);
          }
          ASSERT_EQ(std::binary_search(got.begin(), got.end(), i), want)
              << "rule " << i << ", protocol " << int{proto} << ", " << sp << " -> " << dp;
        }
        EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
      }
}

// A long literal's window is its rarest stretch: not the spaces around a
// rare token.
TEST(LiteralSet, WindowIsTheRarestStretch) {
  const std::string l = std::string(20, ' ') + "QZJX#" + std::string(20, ' ');
  const size_t at = LiteralSet::windowOf(l, false);
  EXPECT_LE(at, 20u);
  EXPECT_GE(at + LiteralSet::kWindow, 25u);
  EXPECT_EQ(LiteralSet::windowOf("short", true), 0u);
  // Caseless: a letter counts as both of its cases (common), digits do not.
  const size_t d = LiteralSet::windowOf("eeeeeeeeeeee1234eeeeeeeeeeee", true);
  EXPECT_LE(d, 12u);
  EXPECT_GE(d + LiteralSet::kWindow, 16u);
}

}  // namespace
}  // namespace palisade::ids
