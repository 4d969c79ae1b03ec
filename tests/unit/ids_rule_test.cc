#include <gtest/gtest.h>

#include "ids/addr.h"
#include "ids/rule.h"
#include "ids/ruleset.h"

namespace palisade::ids {
namespace {

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

TEST(IdsAddr, ListsNegationAndVariables) {
  Vars v = Vars::defaults();
  auto home = parseAddressSet("$HOME_NET", v);
  ASSERT_TRUE(home) << home.error().message;
  EXPECT_TRUE(home->contains(ip("10.1.2.3")));
  EXPECT_FALSE(home->contains(ip("192.0.2.1")));
  auto ext = parseAddressSet("$EXTERNAL_NET", v);
  ASSERT_TRUE(ext);
  EXPECT_TRUE(ext->contains(ip("192.0.2.1")));
  EXPECT_TRUE(ext->contains(ip("2001:db8::1")));  // !IPv4 set includes IPv6, as in Suricata
  EXPECT_FALSE(ext->contains(ip("172.16.0.9")));
  auto l = parseAddressSet("[192.0.2.0/24, !192.0.2.128/25, 198.51.100.7]", v);
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->contains(ip("192.0.2.5")));
  EXPECT_FALSE(l->contains(ip("192.0.2.200")));
  EXPECT_TRUE(l->contains(ip("198.51.100.7")));
  EXPECT_FALSE(l->contains(ip("198.51.100.8")));
  auto neg = parseAddressSet("![192.0.2.0/24,2001:db8::/32]", v);
  ASSERT_TRUE(neg);
  EXPECT_FALSE(neg->contains(ip("192.0.2.9")));
  EXPECT_FALSE(neg->contains(ip("2001:db8:1::1")));
  EXPECT_TRUE(neg->contains(ip("203.0.113.1")));
  auto mask = parseAddressSet("192.0.2.77/255.255.255.0", v);
  ASSERT_TRUE(mask);
  EXPECT_TRUE(mask->contains(ip("192.0.2.1")));
  EXPECT_TRUE(parseAddressSet("any", v)->isAny());
}

TEST(IdsAddr, PortsAndBadInput) {
  Vars v = Vars::defaults();
  auto p = parsePortSet("[80:90, !85, 1024:]", v);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->contains(80));
  EXPECT_FALSE(p->contains(85));
  EXPECT_TRUE(p->contains(65535));
  EXPECT_FALSE(p->contains(100));
  EXPECT_FALSE(parsePortSet("$SHELLCODE_PORTS", v)->contains(80));
  EXPECT_TRUE(parsePortSet("$SHELLCODE_PORTS", v)->contains(81));
  EXPECT_FALSE(parsePortSet("70000", v));
  EXPECT_FALSE(parsePortSet("90:80", v));
  EXPECT_FALSE(parsePortSet("[80", v));
  EXPECT_FALSE(parseAddressSet("[!any]", v));  // matches nothing
  EXPECT_FALSE(parseAddressSet("$NOPE", v));
  EXPECT_FALSE(parseAddressSet("192.0.2.0/33", v));
  // A variable defined through itself is an error, not a hang.
  Vars loop = v;
  loop.address["A"] = "[$B]";
  loop.address["B"] = "[$A, 192.0.2.1]";
  auto r = parseAddressSet("$A", loop);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("through itself"), std::string::npos) << r.error().message;
  // Deep nesting is bounded.
  EXPECT_FALSE(parseAddressSet(std::string(100, '[') + "any" + std::string(100, ']'), v));
  EXPECT_TRUE(v.set("address-groups.HOME_NET=[192.0.2.0/24]"));
  EXPECT_TRUE(parseAddressSet("$HOME_NET", v)->contains(ip("192.0.2.9")));
  EXPECT_FALSE(v.set("address-groups.HOME_NET=[nonsense]"));
  EXPECT_TRUE(parseAddressSet("$HOME_NET", v)->contains(ip("192.0.2.9")));  // unchanged
  EXPECT_FALSE(v.set("HOME_NET=1.2.3.4"));
}

TEST(IdsRule, ParsesHeaderMetaAndContent) {
  ClassificationTable classes = *ClassificationTable::parse(
      "# comment\nconfig classification: trojan-activity,A Network Trojan was detected,1\n");
  auto r = parseRule(
      "alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:\"ET Test \\\"quoted\\\"\"; "
      "flow:established,to_server; http.method; content:\"POST\"; http.uri; "
      "content:\"/a|3b|b\\;\"; "
      "depth:10; nocase; fast_pattern; content:!\"x\"; distance:0; within:5; "
      "pcre:\"/^\\/a/Ui\"; classtype:trojan-activity; reference:url,example.com; "
      "metadata:created_at 2024_01_01, deployment Perimeter; sid:2000001; rev:3;)",
      Vars::defaults(), &classes);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->action, Action::Alert);
  EXPECT_EQ(r->proto, Proto::Http);
  EXPECT_EQ(r->msg, "ET Test \"quoted\"");
  EXPECT_EQ(r->sid, 2000001u);
  EXPECT_EQ(r->rev, 3u);
  EXPECT_EQ(r->priority, 1);
  ASSERT_TRUE(r->flow);
  EXPECT_TRUE(r->flow->established && r->flow->to_server);
  ASSERT_EQ(r->matches.size(), 4u);
  EXPECT_EQ(r->matches[0].buffer, Buffer::HttpMethod);
  EXPECT_EQ(r->matches[1].buffer, Buffer::HttpUri);
  EXPECT_EQ(r->matches[1].content.bytes, "/a;b;");
  EXPECT_TRUE(r->matches[1].content.nocase && r->matches[1].content.fast_pattern);
  EXPECT_EQ(r->matches[1].content.depth->value, 10);
  EXPECT_TRUE(r->matches[2].content.negated);
  EXPECT_EQ(r->matches[3].kind, Match::Kind::Pcre);
  EXPECT_EQ(r->matches[3].buffer, Buffer::HttpUri);
  EXPECT_NE(r->matches[3].pcre.code, nullptr);
  EXPECT_EQ(r->metadata.size(), 2u);
  EXPECT_EQ(r->appProto(), Proto::Http);
}

TEST(IdsRule, LegacyModifiersAndStickyLegacyNames) {
  auto r = parseRule(
      "alert tcp any any -> any 80 (content:\"GET\"; http_method; uricontent:\"/x\"; "
      "content:\"Host\"; http_header; sid:1;)",
      Vars::defaults());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->matches[0].buffer, Buffer::HttpMethod);
  EXPECT_EQ(r->matches[1].buffer, Buffer::HttpUri);
  EXPECT_EQ(r->matches[2].buffer, Buffer::HttpHeader);
  EXPECT_EQ(r->appProto(), Proto::Http);
  auto d = parseRule(
      "alert dns any any -> any any (content:\"|01 00|\"; offset:2; depth:4; dns_query; "
      "content:\"evil\"; dotprefix; content:\".example.com\"; endswith; sid:2;)",
      Vars::defaults());
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->matches[0].buffer, Buffer::Payload);
  EXPECT_EQ(d->matches[1].buffer, Buffer::DnsQuery);
  EXPECT_FALSE(d->matches[1].dotprefix);
  EXPECT_TRUE(d->matches[2].dotprefix);
  // http_content_type is the sticky alias of http.content_type, not a modifier.
  auto ct = parseRule(
      "alert http any any -> any any (http.uri; content:\"/a\"; http_content_type; "
      "content:\"application/json\"; startswith; sid:3;)",
      Vars::defaults());
  ASSERT_TRUE(ct) << ct.error().message;
  EXPECT_EQ(ct->matches[0].buffer, Buffer::HttpUri);
  EXPECT_EQ(ct->matches[1].buffer, Buffer::HttpContentType);
}

TEST(IdsRule, ByteTestsFlagsThresholdsAndTags) {
  auto r = parseRule(
      "alert tcp-pkt any any -> any any (content:\"|48 54|\"; byte_test:2,!=,0x90a,0,relative,"
      "bitmask 0xf8f8; byte_extract:2,0,len,relative; byte_jump:2,0,relative,little,post_offset "
      "-1; "
      "content:\"x\"; distance:len; isdataat:!1,relative; flags:SA,12; dsize:>10; "
      "threshold: type limit, track by_src, count 1, seconds 60; tag:host,9,packets,dst; "
      "tag:session; sid:3;)",
      Vars::defaults());
  ASSERT_TRUE(r) << r.error().message;
  const ByteTest& bt = r->matches[1].byte_test;
  EXPECT_TRUE(bt.negated);
  EXPECT_EQ(bt.op, ByteTest::Op::Eq);
  EXPECT_EQ(bt.value.value, 0x90a);
  EXPECT_EQ(bt.bitmask, 0xf8f8u);
  EXPECT_EQ(r->byte_vars.size(), 1u);
  EXPECT_EQ(r->matches[4].content.distance->var, 0);
  EXPECT_EQ(r->flags->bits, 0x12);
  EXPECT_EQ(r->flags->mask, 0x3f);
  EXPECT_TRUE(r->dsize->test(11));
  EXPECT_FALSE(r->dsize->test(10));
  EXPECT_EQ(r->threshold->type, Threshold::Type::Limit);
  ASSERT_EQ(r->tags.size(), 2u);
  EXPECT_TRUE(r->tags[0].host_dst);
  auto df = parseRule(
      "alert tcp any any -> 192.0.2.1 any (flags:S; flow:stateless; detection_filter: track "
      "by_dst, count 3, seconds 60, unique_on dst_port; sid:4;)",
      Vars::defaults());
  ASSERT_TRUE(df) << df.error().message;
  EXPECT_EQ(df->detection_filter->unique, DetectionFilter::Unique::DstPort);
  auto fb =
      parseRule("alert tcp any any -> any any (flowbits:isset,a|b; sid:5;)", Vars::defaults());
  ASSERT_TRUE(fb);
  EXPECT_TRUE(fb->flowbits[0].any_of);
  EXPECT_EQ(fb->flowbits[0].names.size(), 2u);
}

// Every refusal is one line naming the option and the reason.
TEST(IdsRule, RefusalsArePrecise) {
  const Vars v = Vars::defaults();
  struct Case {
    const char* rule;
    const char* says;
  } cases[] = {
      {"alert smtp any any -> any any (sid:1;)", "protocol 'smtp' is not inspected"},
      {"alert tcp any any -> any any (xbits:set,a,track ip_src; sid:1;)",
       "xbits: unsupported keyword"},
      {"alert tls any any -> any any (tls.certs; content:\"a\"; sid:1;)", "tls.certs: this buffer"},
      {"alert tcp any any -> any any (content:\"a\"; sid:1)", "not ended by ';'"},
      {"alert tcp any any -> any any (nocase; content:\"a\"; sid:1;)", "no content before it"},
      {"alert tcp any any -> any any (content:\"|4|\"; sid:1;)", "odd number of hex digits"},
      {"alert tcp any any -> any any (content:\"abc\"; depth:2; sid:1;)", "depth is shorter"},
      {"alert tcp any any -> any any (pcre:\"/a(/\"; sid:1;)", "does not compile"},
      {"alert tcp any any -> any any (content:\"a\";)", "no sid"},
      {"alert tcp any any <- any any (sid:1;)", "direction '<-'"},
      {"alert tcp any any -> any (sid:1;)", "the header has 6 fields"},
      {"alert dns any any -> any any (http.uri; content:\"a\"; sid:1;)",
       "a dns rule inspects a http buffer"},
      {"alert tcp any any -> any any (classtype:nope; sid:1;)", "not in classification.config"},
      {"alert tcp any any -> any any (byte_test:9,=,1,0; sid:1;)", "bytes must be"},
      {"alert tcp any any -> any any (threshold: type limit, count 1; sid:1;)",
       "needs type, track"},
  };
  ClassificationTable classes;
  for (const Case& c : cases) {
    auto r = parseRule(c.rule, v, &classes);
    ASSERT_FALSE(r) << c.rule;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos)
        << c.rule << " -> " << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

TEST(IdsRuleSet, LoadsFilesGoesOnPastRefusalsAndDropsDuplicates) {
  RuleSet set;
  addRules(set,
           "# a comment\n"
           "#alert tcp any any -> any any (sid:9;)\n"
           "alert tcp any any -> any any (content:\"a\"; \\\n"
           "    sid:1; rev:1;)\n"
           "alert smtp any any -> any any (sid:2;)\n"
           "\n"
           "alert tcp any any -> any any (content:\"b\"; sid:1; rev:2;)\n"
           "alert tcp any any -> any any (bogus; sid:3;)\n",
           "t.rules", LoadOptions{});
  dropDuplicates(set);
  ASSERT_EQ(set.rules.size(), 1u);
  EXPECT_EQ(set.rules[0].rev, 2u);
  EXPECT_EQ(set.commented, 1u);
  ASSERT_EQ(set.rejected.size(), 3u);
  EXPECT_EQ(set.rejected[0].line, 5u);
  EXPECT_EQ(set.rejected[0].sid, 2u);
  EXPECT_EQ(set.rejected[1].category, "unsupported keyword 'bogus'");
  EXPECT_EQ(set.rejected[2].category, "duplicate sid");
  // A rule that never ends is bounded.
  RuleSet big;
  addRules(big,
           "alert tcp any any -> any any (content:\"" + std::string(70000, 'a') + "\"; sid:1;)\n",
           "big.rules", LoadOptions{});
  ASSERT_EQ(big.rejected.size(), 1u);
  EXPECT_EQ(big.rejected[0].reason, "rule longer than 64 KiB");
}

}  // namespace
}  // namespace palisade::ids
