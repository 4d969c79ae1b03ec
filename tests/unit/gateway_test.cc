// The API gateway's parsers and checks: HTTP/1.1 framing (with the request
// smuggling cases), chunked bodies, JSON and XML threat checks, the
// configuration's errors, and the shared rate limiter.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "core/strings.h"
#include "gateway/config.h"
#include "gateway/content.h"
#include "gateway/http.h"
#include "gateway/jwt.h"
#include "gateway/limiter.h"

namespace palisade::gateway {
namespace {

struct Parsed {
  Parse p;
  RequestHead head;
  HttpError err;
};

Parsed req(std::string_view text, HttpLimits lim = {}) {
  Parsed out;
  out.p = parseRequestHead(text, lim, out.head, out.err);
  return out;
}

TEST(GatewayHttp, ParsesAnOriginFormRequest) {
  const std::string text =
      "POST /v1/orders?x=1 HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 7\r\n"
      "X-Api-Key:  k1 \r\n\r\n{\"a\":1}";
  Parsed r = req(text);
  ASSERT_EQ(r.p, Parse::Done) << r.err.reason;
  EXPECT_EQ(r.head.method, "POST");
  EXPECT_EQ(r.head.path, "/v1/orders");
  EXPECT_EQ(r.head.query, "x=1");
  EXPECT_EQ(r.head.host, "api.example.test");
  EXPECT_EQ(r.head.body, BodyKind::Length);
  EXPECT_EQ(r.head.content_length, 7u);
  EXPECT_EQ(r.head.header("x-api-key"), "k1");
  EXPECT_EQ(r.head.head_bytes, text.size() - 7);
  EXPECT_TRUE(r.head.keep_alive);
}

TEST(GatewayHttp, WaitsForTheBlankLineAndScansEachByteOnce) {
  const std::string text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  HttpLimits lim;
  RequestHead h;
  HttpError err;
  size_t scanned = 0;
  for (size_t n = 1; n < text.size(); ++n) {
    ASSERT_EQ(parseRequestHead(std::string_view(text).substr(0, n), lim, h, err, &scanned),
              Parse::Incomplete)
        << n;
    EXPECT_EQ(scanned, n);
  }
  EXPECT_EQ(parseRequestHead(text, lim, h, err, &scanned), Parse::Done);
}

TEST(GatewayHttp, RefusesSmugglingShapes) {
  struct Case {
    const char* text;
    int status;
  } cases[] = {
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
       "b\r\n\r\n",
       400},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
      {"GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405},
      {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
  };
  for (const Case& c : cases) {
    Parsed r = req(c.text);
    EXPECT_EQ(r.p, Parse::Failed) << c.text;
    EXPECT_EQ(r.err.status, c.status) << c.text << " -> " << r.err.reason;
  }
}

TEST(GatewayHttp, ARefusedHeadLeavesOnlyCheckedFields) {
  for (const char* text :
       {"G\xffT / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /\xc3( HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: \xff\r\n\r\n"}) {
    Parsed r = req(text);
    ASSERT_EQ(r.p, Parse::Failed) << text;
    for (std::string_view f : {r.head.method, r.head.target, r.head.path, r.head.host})
      for (char c : f)
        EXPECT_TRUE(c > 0x20 && c < 0x7f) << text;
  }
}

TEST(GatewayHttp, LimitsAnswerWithTheirOwnStatus) {
  HttpLimits lim;
  lim.max_url = 100;
  lim.max_header_bytes = 1024;
  lim.max_headers = 3;
  lim.max_body = 10;
  EXPECT_EQ(req("GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", lim).err.status,
            414);
  // Refused before the head ends: the client cannot make us wait for the rest.
  EXPECT_EQ(req("GET /" + std::string(300, 'a'), lim).err.status, 414);
  EXPECT_EQ(req("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(2000, 'b'), lim).err.status, 431);
  EXPECT_EQ(req("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", lim).err.status, 431);
  EXPECT_EQ(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", lim).err.status, 413);
  EXPECT_EQ(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", lim).p, Parse::Done);
}

TEST(GatewayHttp, AbsoluteFormConnectionAndExpect) {
  Parsed r = req("GET https://api.test:8443/x/y?q HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_EQ(r.p, Parse::Done);
  EXPECT_EQ(r.head.host, "api.test:8443");
  EXPECT_EQ(r.head.path, "/x/y");
  EXPECT_EQ(r.head.query, "q");
  r = req("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.p, Parse::Done);
  EXPECT_FALSE(r.head.keep_alive);
  r = req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_TRUE(r.head.keep_alive);
  r = req("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n");
  EXPECT_FALSE(r.head.keep_alive);
  r = req(
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(r.p, Parse::Done);
  EXPECT_TRUE(r.head.expect_continue);
  EXPECT_EQ(r.head.body, BodyKind::Chunked);
  r = req("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(r.p, Parse::Done);
  EXPECT_EQ(r.head.head_bytes, 31u);
}

TEST(GatewayHttp, ResponseFraming) {
  ResponseHead h;
  HttpError err;
  ASSERT_EQ(
      parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", 65536, h, err),
      Parse::Done);
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.content_length, 5u);
  ASSERT_EQ(
      parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", 65536, h, err),
      Parse::Done);
  EXPECT_EQ(h.body, BodyKind::None);
  ASSERT_EQ(parseResponseHead("HTTP/1.1 204 No Content\r\n\r\n", "GET", 65536, h, err),
            Parse::Done);
  EXPECT_EQ(h.body, BodyKind::None);
  ASSERT_EQ(parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 65536,
                              h, err),
            Parse::Done);
  EXPECT_EQ(h.body, BodyKind::Chunked);
  ASSERT_EQ(parseResponseHead("HTTP/1.0 200 OK\r\n\r\n", "GET", 65536, h, err), Parse::Done);
  EXPECT_EQ(h.body, BodyKind::UntilClose);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parseResponseHead("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", 65536, h, err),
            Parse::Done);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(parseResponseHead("HTTP/1.1 2000 OK\r\n\r\n", "GET", 65536, h, err), Parse::Failed);
  EXPECT_EQ(err.status, 502);
  EXPECT_EQ(parseResponseHead(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "GET",
                65536, h, err),
            Parse::Failed);
  EXPECT_EQ(parseResponseHead(std::string(70000, 'x'), "GET", 65536, h, err), Parse::Failed);
}

TEST(GatewayHttp, HopByHopHeaders) {
  EXPECT_TRUE(isHopByHop("Connection", ""));
  EXPECT_TRUE(isHopByHop("transfer-encoding", ""));
  EXPECT_TRUE(isHopByHop("X-Secret", "keep-alive, x-secret"));
  EXPECT_FALSE(isHopByHop("Content-Type", "keep-alive"));
}

TEST(GatewayChunked, DecodesAcrossAnySplit) {
  const std::string wire =
      "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
  for (size_t split = 0; split <= wire.size(); ++split) {
    ChunkedDecoder d;
    std::string out;
    size_t used = d.feed(std::string_view(wire).substr(0, split), &out);
    if (!d.done()) used += d.feed(std::string_view(wire).substr(used), &out);
    ASSERT_TRUE(d.done()) << split;
    EXPECT_EQ(out, "Wikipedia in\r\n\r\nchunks.");
    EXPECT_EQ(wire.substr(used), "NEXT");
  }
}

TEST(GatewayChunked, RefusesMalformedAndOversized) {
  for (const char* bad : {"g\r\n", "\r\n", "4\r\nabcdX", "4\nabcd\r\n", "1234567890123456\r\n",
                          "0\r\nX\n", "4\r\nabcd\r\r"}) {
    ChunkedDecoder d;
    std::string out;
    d.feed(bad, &out);
    EXPECT_TRUE(d.failed()) << bad;
  }
  ChunkedDecoder d(10);
  std::string out;
  d.feed("b\r\n", &out);
  EXPECT_TRUE(d.failed());
  EXPECT_TRUE(d.tooLarge());
}

TEST(GatewayContent, JsonAcceptsValidDocuments) {
  JsonLimits lim;
  for (const char* ok : {"{}", "[]", " {\"a\": [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"]} ",
                         "\"\xc3\xa9\"", "0", "[{\"a\":{}}]"}) {
    EXPECT_TRUE(checkJson(ok, lim).ok) << ok << ": " << checkJson(ok, lim).reason;
  }
}

TEST(GatewayContent, JsonRefusesMalformedAndBeyondBounds) {
  JsonLimits lim;
  lim.max_depth = 3;
  lim.max_keys = 2;
  lim.max_string = 8;
  for (const char* bad : {"", "{", "[1,]", "{\"a\"}", "{\"a\":1,}", "01", "1.", "-", "tru",
                          "\"a\x01\"", "\"\\x\"", "\"\xc3\"", "\"\xed\xa0\x80\"", "[1] [2]",
                          "{a:1}", "[[[[1]]]]", "{\"a\":1,\"b\":2,\"c\":3}", "\"123456789\""}) {
    EXPECT_FALSE(checkJson(bad, lim).ok) << bad;
  }
  EXPECT_EQ(checkJson("[[[[1]]]]", lim).reason, "JSON nesting too deep");
  lim.max_size = 4;
  EXPECT_EQ(checkJson("[1,2,3]", lim).status, 413);
  // Deep nesting costs no recursion: a million brackets are refused at the limit.
  EXPECT_FALSE(checkJson(std::string(1000000, '['), JsonLimits{}).ok);
}

TEST(GatewayContent, XmlRefusesDoctypeAndEntities) {
  XmlLimits lim;
  EXPECT_TRUE(
      checkXml("<?xml version=\"1.0\"?><a x='1'><b/>t&amp;&#x41;<![CDATA[<x>]]><!-- c --></a>", lim)
          .ok);
  const char* xxe =
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>";
  EXPECT_EQ(checkXml(xxe, lim).reason, "XML document type declarations are refused");
  EXPECT_FALSE(checkXml("<r>&x;</r>", lim).ok);
  EXPECT_FALSE(checkXml("<r a=\"&x;\"/>", lim).ok);
  for (const char* bad :
       {"", "text", "<a>", "<a></b>", "<a/><b/>", "<a x=1/>", "<a x='1' x2=\"<\"/>",
        "<a><![CDATA[x</a>", "<a>&amp</a>", "</a>", "<1a/>", "<a x='1'y='2'/>"}) {
    EXPECT_FALSE(checkXml(bad, lim).ok) << bad;
  }
  lim.max_depth = 2;
  lim.max_attributes = 1;
  lim.max_nodes = 3;
  EXPECT_EQ(checkXml("<a><b><c/></b></a>", lim).ok, true);
  EXPECT_EQ(checkXml("<a><b><c></c></b></a>", lim).reason, "XML nesting too deep");
  EXPECT_EQ(checkXml("<a x='1' y='2'/>", lim).reason, "too many XML attributes on one element");
  EXPECT_EQ(checkXml("<a><b/><b/><b/></a>", lim).reason, "too many XML elements");
}

TEST(GatewayContent, BodyTypeFollowsTheLabelAndCatchesMislabelledXml) {
  EXPECT_EQ(bodyType("application/json; charset=utf-8", "{}"), BodyType::Json);
  EXPECT_EQ(bodyType("application/vnd.api+json", "{}"), BodyType::Json);
  EXPECT_EQ(bodyType("text/xml", "<a/>"), BodyType::Xml);
  EXPECT_EQ(bodyType("application/soap+xml", "<a/>"), BodyType::Xml);
  EXPECT_EQ(bodyType("text/plain", "  <?xml version='1.0'?><a/>"), BodyType::Xml);
  EXPECT_EQ(bodyType("text/plain", "<!-- hi --><!DOCTYPE a><a/>"), BodyType::Xml);
  EXPECT_EQ(bodyType("text/plain", "<b>bold</b>"), BodyType::Other);
  EXPECT_EQ(bodyType("", "{\"a\":1}"), BodyType::Other);
}

const char* kGoodConfig = R"(
listen:
  - {address: 127.0.0.1:8443, cert: gw.pem, key: gw.key, client_ca: ca.pem}
  - {address: 127.0.0.1:8080, health: true}
upstreams:
  - name: api
    hosts: [127.0.0.1:8081, 127.0.0.1:8082]
    pool: 8
    retries: {attempts: 2, backoff: 50ms, budget: 10%, min_retries: 5}
    health_check: {path: /healthz, interval: 2s, timeout: 500ms, healthy: 3, unhealthy: 4}
    outlier: {failures: 7, ejection: 10s, max_ejected: 34%}
credentials:
  api_keys:
    - {id: billing, sha256: a6c1eaef9d5f23f4e13d9b574cbbe07ae877227d92be87d077005dc6776bcdcc, roles: [orders]}
  certificates:
    - {subject: client1, roles: [admin]}
  revoked: [old]
  jwt: {keys: jwks.json, issuer: "https://login.example.test/", audience: api, leeway: 30s, roles_claim: roles}
routes:
  - name: orders
    host: API.example.test
    path: /v1/orders
    methods: [get, POST]
    upstream: api
    auth: [api_key, mtls]
    roles: [orders]
    allow: [192.0.2.0/24]
    rate_limit: {client: 600/m, ip: 20/s, burst: 40}
    max_body: 64K
    json: {max_depth: 8}
    xml: off
    waf: {mode: detection, paranoia: 2}
timeouts: {header: 500ms, idle: 30s}
limits: {max_body: 2M}
waf: {threshold: 10, rules: crs/rules}
)";

TEST(GatewayConfig, LoadsEveryField) {
  GatewayLoad l = parseGatewayConfig(kGoodConfig, "g.yaml", "/etc/palisade");
  ASSERT_TRUE(l.config) << l.diagnostics.format();
  const GatewayConfig& c = *l.config;
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].cert, "/etc/palisade/gw.pem");
  EXPECT_EQ(c.listeners[0].client_cert, ClientCert::Optional);
  EXPECT_TRUE(c.listeners[1].health);
  EXPECT_EQ(c.upstreams[0].hosts.size(), 2u);
  EXPECT_EQ(c.upstreams[0].pool, 8u);
  const Upstream& u = c.upstreams[0];
  EXPECT_EQ(u.retries.attempts, 2u);
  EXPECT_EQ(u.retries.backoff, 50'000'000u);
  EXPECT_DOUBLE_EQ(u.retries.budget, 0.1);
  EXPECT_EQ(u.retries.min_retries, 5u);
  EXPECT_EQ(u.health.path, "/healthz");
  EXPECT_EQ(u.health.interval, 2'000'000'000u);
  EXPECT_EQ(u.health.timeout, 500'000'000u);
  EXPECT_EQ(u.health.healthy, 3u);
  EXPECT_EQ(u.health.unhealthy, 4u);
  EXPECT_EQ(u.outlier.failures, 7u);
  EXPECT_EQ(u.outlier.ejection, 10'000'000'000u);
  EXPECT_DOUBLE_EQ(u.outlier.max_ejected, 0.34);
  const Route& r = c.routes[0];
  EXPECT_EQ(r.host, "api.example.test");
  EXPECT_EQ(r.methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(r.auth.size(), 2u);
  EXPECT_DOUBLE_EQ(r.per_client.rate, 10);
  EXPECT_DOUBLE_EQ(r.per_ip.rate, 20);
  EXPECT_DOUBLE_EQ(r.per_ip.burst, 40);
  EXPECT_EQ(r.max_body, 64u << 10);
  ASSERT_TRUE(r.json);
  EXPECT_EQ(r.json->max_depth, 8u);
  EXPECT_FALSE(r.xml);
  EXPECT_EQ(r.waf.mode, WafMode::Detection);
  EXPECT_EQ(r.waf.paranoia, 2);
  EXPECT_EQ(c.waf.threshold, 10);
  EXPECT_EQ(c.waf.rules_dir, "/etc/palisade/crs/rules");
  EXPECT_EQ(c.timeouts.header, 500'000'000u);
  EXPECT_EQ(c.limits.max_body, 2u << 20);
  EXPECT_EQ(c.credentials.revoked, std::vector<std::string>{"old"});
  EXPECT_EQ(c.credentials.jwt_keys, "/etc/palisade/jwks.json");
  EXPECT_EQ(c.credentials.jwt.leeway_s, 30);
  EXPECT_EQ(c.credentials.jwt.audiences, std::vector<std::string>{"api"});
  EXPECT_EQ(c.credentials.jwt.roles_claim, "roles");
}

TEST(GatewayConfig, ReportsEveryProblemWithItsLine) {
  const char* bad = R"(
listen:
  - {address: 127.0.0.1:8080}
upstreams:
  - {name: api, hosts: [nowhere], retries: {budget: 150%}, health_check: {path: x, interval: 1s, timeout: 2s}}
routes:
  - name: a
    upstream: apj
    auth: [jwt, magic]
    rate_limit: {client: 10/fortnight}
    pathh: /x
    waf: {mode: block, paranoia: 7}
)";
  GatewayLoad l = parseGatewayConfig(bad, "g.yaml", ".");
  EXPECT_FALSE(l.config);
  const std::string text = l.diagnostics.format();
  for (const char* want :
       {"a plaintext listener is only allowed as a health port", "did you mean 'api'",
        "auth jwt but credentials has no jwt keys", "auth method 'magic'", "10/fortnight",
        "did you mean 'path'", "waf mode must be blocking, detection or off", "paranoia '7'",
        "budget '150%' must be a percentage", "health_check path must start with '/'",
        "health_check timeout must be under its interval", "g.yaml:3:", "g.yaml:8:"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

TEST(GatewayConfig, RefusesBrokenYamlAndAliasBombs) {
  EXPECT_FALSE(parseGatewayConfig("listen: [", "g.yaml", ".").config);
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c)
    bomb += strCat(
        std::string(1, c), ": &", std::string(1, c), " [*", std::string(1, c - 1), ", *",
        std::string(1, c - 1), ", *", std::string(1, c - 1), ", *", std::string(1, c - 1), ", *",
        std::string(1, c - 1), ", *", std::string(1, c - 1), ", *", std::string(1, c - 1), ", *",
        std::string(1, c - 1), ", *", std::string(1, c - 1), ", *", std::string(1, c - 1), "]\n");
  bomb += "routes:\n  - {name: r, upstream: x, allow: *h}\n";
  GatewayLoad l = parseGatewayConfig(bomb, "g.yaml", ".");
  EXPECT_FALSE(l.config);
  // The reader never walks into nested lists it did not ask for, so the
  // 10^8 nodes the aliases stand for are never visited.
  EXPECT_NE(l.diagnostics.format().find("allow must be a non-empty string"), std::string::npos)
      << l.diagnostics.format();
}

TEST(GatewayConfig, ParsesRates) {
  EXPECT_DOUBLE_EQ(*parseRate("100/s"), 100);
  EXPECT_DOUBLE_EQ(*parseRate("60/m"), 1);
  EXPECT_DOUBLE_EQ(*parseRate("7200/h"), 2);
  EXPECT_FALSE(parseRate("0/s"));
  EXPECT_FALSE(parseRate("-1/s"));
  EXPECT_FALSE(parseRate("100"));
  EXPECT_FALSE(parseRate("100/d"));
}

TEST(GatewayLimiter, AllowsTheBurstThenTellsWhenToRetry) {
  RateLimiter lim;
  const TimeNs t0 = 1'000'000'000;
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(lim.take(0, 1, "alice", 1, 5, t0), 0u) << i;
  EXPECT_EQ(lim.take(0, 1, "alice", 1, 5, t0), 1u);
  EXPECT_EQ(lim.take(0, 1, "bob", 1, 5, t0), 0u);    // another client
  EXPECT_EQ(lim.take(1, 1, "alice", 1, 5, t0), 0u);  // another route
  EXPECT_EQ(lim.take(0, 1, "alice", 1, 5, t0 + 1'000'000'000), 0u);
}

TEST(GatewayLimiter, StaysWithinItsMemory) {
  RateLimiter lim(1600);
  for (int i = 0; i < 20000; ++i)
    lim.take(0, 0, std::to_string(i), 1, 1, 1'000'000'000 + static_cast<TimeNs>(i));
  EXPECT_LE(lim.size(), 1600u);
  EXPECT_GT(lim.evictions(), 0u);
}

// ---- JWT: tokens signed here with OpenSSL, keys published as a JWK Set.

std::string b64url(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::string bnBytes(const BIGNUM* bn, int len = 0) {
  std::string out(static_cast<size_t>(len > 0 ? len : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  return out;
}

struct Signer {
  std::string kid;
  std::string alg;
  std::string secret;
  EVP_PKEY* pkey = nullptr;
  ~Signer() { EVP_PKEY_free(pkey); }

  std::string jwk() const {
    if (alg == "HS256")
      return strCat(R"({"kty":"oct","kid":")", kid, R"(","k":")", b64url(secret), "\"}");
    BIGNUM *a = nullptr, *b = nullptr;
    std::string out;
    if (alg == "RS256") {
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &a);
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b);
      out = strCat(R"({"kty":"RSA","kid":")", kid, R"(","alg":"RS256","n":")", b64url(bnBytes(a)),
                   R"(","e":")", b64url(bnBytes(b)), "\"}");
    } else {
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a);
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b);
      out = strCat(R"({"kty":"EC","kid":")", kid, R"(","crv":"P-256","x":")",
                   b64url(bnBytes(a, 32)), R"(","y":")", b64url(bnBytes(b, 32)), "\"}");
    }
    BN_free(a);
    BN_free(b);
    return out;
  }

  std::string sign(std::string_view claims, std::string header = {}) const {
    if (header.empty()) header = strCat(R"({"alg":")", alg, R"(","typ":"JWT","kid":")", kid, "\"}");
    const std::string input = strCat(b64url(header), ".", b64url(claims));
    std::string sig;
    if (alg == "HS256") {
      unsigned char mac[32];
      unsigned int len = 0;
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
      sig.assign(reinterpret_cast<char*>(mac), len);
    } else {
      EVP_MD_CTX* md = EVP_MD_CTX_new();
      size_t len = 0;
      EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, pkey);
      EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size());
      std::string der(len, '\0');
      EVP_DigestSign(md, reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size());
      der.resize(len);
      EVP_MD_CTX_free(md);
      if (alg == "RS256") {
        sig = der;
      } else {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
        ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
        sig = bnBytes(ECDSA_SIG_get0_r(es), 32) + bnBytes(ECDSA_SIG_get0_s(es), 32);
        ECDSA_SIG_free(es);
      }
    }
    return strCat(input, ".", b64url(sig));
  }
};

class GatewayJwt : public ::testing::Test {
 protected:
  void SetUp() override {
    hs.kid = "hs";
    hs.alg = "HS256";
    hs.secret = std::string(32, 'k');
    rs.kid = "rs";
    rs.alg = "RS256";
    rs.pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    es.kid = "es";
    es.alg = "ES256";
    es.pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    ASSERT_NE(rs.pkey, nullptr);
    ASSERT_NE(es.pkey, nullptr);
    auto set =
        JwtKeySet::parse(strCat(R"({"keys":[)", hs.jwk(), ",", rs.jwk(), ",", es.jwk(), "]}"));
    ASSERT_TRUE(set) << set.error().message;
    keys = std::move(*set);
    rules.issuer = "https://login.example.test/";
    rules.audiences = {"orders-api"};
  }
  static std::string claims(std::string_view extra = {}) {
    return strCat(
        R"({"sub":"svc-7","iss":"https://login.example.test/","aud":["other","orders-api"],)",
        R"("exp":2000000000,"scope":"orders:read orders:write","jti":"t-1")", extra, "}");
  }
  JwtResult verify(const std::string& token, int64_t now = 1'800'000'000) {
    return verifyJwt(token, keys, rules, now);
  }
  Signer hs, rs, es;
  JwtKeySet keys;
  JwtRules rules;
};

TEST_F(GatewayJwt, VerifiesEachAlgorithm) {
  for (const Signer* s : {&hs, &rs, &es}) {
    JwtResult r = verify(s->sign(claims()));
    ASSERT_TRUE(r.ok) << s->alg << ": " << r.reason;
    EXPECT_EQ(r.id.subject, "svc-7");
    EXPECT_EQ(r.id.roles, (std::vector<std::string>{"orders:read", "orders:write"}));
    EXPECT_EQ(r.id.kid, s->kid);
    EXPECT_EQ(r.id.jti, "t-1");
  }
}

TEST_F(GatewayJwt, RefusesForgeriesAndConfusion) {
  std::string t = rs.sign(claims());
  t[t.size() - 5] = t[t.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify(t).reason, "bad token signature");
  // The claims changed after signing.
  const std::string good = es.sign(claims());
  const size_t d1 = good.find('.'), d2 = good.rfind('.');
  const std::string tampered =
      good.substr(0, d1 + 1) + b64url(claims(R"(,"admin":true)")) + good.substr(d2);
  EXPECT_EQ(verify(tampered).reason, "bad token signature");
  // alg none, and an HS256 token naming the RSA key (the public key as a secret).
  EXPECT_EQ(verify(strCat(b64url(R"({"alg":"none"})"), ".", b64url(claims()), ".")).reason,
            "token algorithm not accepted");
  EXPECT_EQ(verify(hs.sign(claims(), R"({"alg":"HS256","kid":"rs"})")).reason,
            "bad token signature");
  EXPECT_EQ(verify(hs.sign(claims(), R"({"alg":"HS256","kid":"nobody"})")).reason,
            "token key (kid) unknown");
  // Without a kid: any key of the token's algorithm.
  EXPECT_TRUE(verify(es.sign(claims(), R"({"alg":"ES256"})")).ok);
  EXPECT_EQ(verify(hs.sign(claims(), R"({"alg":"HS256","crit":["x"]})")).reason,
            "token has critical extensions");
  for (const char* junk : {"", "a.b", "a.b.c.d", "!!!.e30.", "e30.e30.e30"})
    EXPECT_FALSE(verify(junk).ok) << junk;
}

TEST_F(GatewayJwt, ChecksTimeIssuerAndAudience) {
  EXPECT_EQ(verify(hs.sign(claims()), 2'000'000'061).reason, "token expired");
  EXPECT_TRUE(verify(hs.sign(claims()), 2'000'000'059).ok);  // within the 60 s leeway
  EXPECT_EQ(verify(hs.sign(R"({"sub":"a","iss":"https://login.example.test/","aud":"orders-api"})"))
                .reason,
            "token without an expiry (exp)");
  EXPECT_EQ(verify(hs.sign(claims(R"(,"nbf":1800000100)"))).reason, "token not yet valid (nbf)");
  EXPECT_TRUE(verify(hs.sign(claims(R"(,"nbf":1800000030)"))).ok);
  EXPECT_EQ(
      verify(
          hs.sign(R"({"sub":"a","iss":"https://evil.test/","aud":"orders-api","exp":2000000000})"))
          .reason,
      "token issuer not accepted");
  EXPECT_EQ(
      verify(
          hs.sign(
              R"({"sub":"a","iss":"https://login.example.test/","aud":"billing","exp":2000000000})"))
          .reason,
      "token audience not accepted");
  EXPECT_EQ(
      verify(
          hs.sign(R"({"iss":"https://login.example.test/","aud":"orders-api","exp":2000000000})"))
          .reason,
      "token without a subject");
  rules.roles_claim = "roles";
  JwtResult r = verify(hs.sign(claims(R"(,"roles":["admin","ops"])")));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.id.roles, (std::vector<std::string>{"admin", "ops"}));
}

TEST(GatewayJwks, RefusesWeakAndMalformedKeys) {
  struct Case {
    const char* jwks;
    const char* says;
  } cases[] = {
      {"{}", "non-empty \"keys\""},
      {R"({"keys":[{"kty":"oct","k":"c2hvcnQ"}]})", "at least 32 bytes"},
      {R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]})", "kty 'OKP' is not supported"},
      {R"({"keys":[{"kty":"oct","use":"enc","k":"c2hvcnQ"}]})", "use 'enc' is not sig"},
      {R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]})",
       "not a point on P-256"},
      {R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})", "RSA"},
      {R"({"keys":[{"kty":"oct","alg":"HS512","k":"a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"}]})",
       "HS512"},
      {"not json", "not valid JSON"},
  };
  for (const Case& c : cases) {
    auto r = JwtKeySet::parse(c.jwks);
    ASSERT_FALSE(r) << c.jwks;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  const std::string k =
      R"({"kty":"oct","kid":"a","k":"a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"})";
  auto dup = JwtKeySet::parse(strCat(R"({"keys":[)", k, ",", k, "]}"));
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("appears twice"), std::string::npos);
}

TEST(GatewayJwks, Base64UrlIsStrict) {
  std::string out;
  EXPECT_TRUE(base64UrlDecode("aGVsbG8", out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(base64UrlDecode("aGVsbG8=", out));  // no padding in JWS
  EXPECT_FALSE(base64UrlDecode("aGVsbG9", out));   // non-zero leftover bits
  EXPECT_FALSE(base64UrlDecode("a+b/", out));      // base64, not base64url
  EXPECT_FALSE(base64UrlDecode("a", out));
}

}  // namespace
}  // namespace palisade::gateway
