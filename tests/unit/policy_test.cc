#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <algorithm>
#include <chrono>
#include <string>

#include "core/strings.h"
#include "policy/describe.h"
#include "policy/lint.h"
#include "policy/loader.h"
#include "policy/overlaps.h"

namespace palisade::policy {
namespace {

const std::string kExample = std::string(PALISADE_SOURCE_DIR) + "/examples/cloud.yaml";

LoadResult load(const std::string& text) {
  return loadPolicyText(text, "p.yaml");
}

TEST(Policy, ExampleLoadsCompletely) {
  LoadResult r = loadPolicyFile(kExample);
  ASSERT_TRUE(r.policy) << r.diagnostics.format();
  const Policy& p = *r.policy;
  EXPECT_EQ(p.version, 1u);
  ASSERT_EQ(p.tenants.size(), 2u);
  const Tenant& contoso = p.tenants[0];
  EXPECT_EQ(contoso.name, "contoso");
  ASSERT_EQ(contoso.vnets.size(), 1u);
  EXPECT_EQ(contoso.vnets[0].vni, 5001u);
  EXPECT_EQ(contoso.vnets[0].subnets.size(), 4u);
  EXPECT_EQ(contoso.nics.size(), 5u);
  // Both tenants use 192.0.2.4: allowed, they are different VNets.
  EXPECT_EQ(contoso.nics[0].ips[0], p.tenants[1].nics[0].ips[0]);
  // Source locations point into the file.
  EXPECT_GT(contoso.nics[0].loc.line, 0u);
  const Endpoint& ssh = contoso.endpoints[2];
  EXPECT_TRUE(ssh.management);
  EXPECT_TRUE(ssh.random_public_port);
  EXPECT_GE(ssh.public_port, 49152);
  ASSERT_EQ(ssh.acl.size(), 2u);
  EXPECT_EQ(ssh.acl[0].action, AclAction::Permit);
  const SecurityRule& r0 = contoso.security_groups[0].rules[0];
  EXPECT_EQ(r0.priority, 100);
  ASSERT_EQ(r0.sources.size(), 1u);
  EXPECT_EQ(r0.sources[0].kind, AddressRef::Kind::Tag);
  EXPECT_EQ(r0.sources[0].tag, "Internet");
  ASSERT_EQ(r0.destination_ports.size(), 2u);
  const SecurityRule& web_nic = contoso.security_groups[1].rules[0];
  ASSERT_EQ(web_nic.destination_ports.size(), 2u);
  EXPECT_EQ(web_nic.destination_ports[1].lo, 443);
  EXPECT_EQ(web_nic.destination_ports[1].hi, 443);
  const SecurityRule& no_mgmt = contoso.security_groups[1].rules[2];
  EXPECT_EQ(no_mgmt.direction, Direction::Outbound);
  ASSERT_EQ(no_mgmt.destinations.size(), 1u);
  EXPECT_EQ(no_mgmt.destinations[0].prefix.toString(), "192.0.2.96/28");
  EXPECT_NE(describePolicy(p).find("endpoint ssh  203.0.113.10:"), std::string::npos);
}

TEST(Policy, RandomPortIsStableAndAvoidsTakenPorts) {
  const std::string base = R"(version: 1
tenants:
  - name: t
    vnets: [{name: v, vni: 1, address_space: [192.0.2.0/24], subnets: [{name: s, prefixes: [192.0.2.0/26]}]}]
    deployments: [{name: d, vip: 203.0.113.10}]
    nics: [{name: n, mac: '02:00:00:00:00:01', ips: [192.0.2.4], subnet: v/s, deployment: d}]
    endpoints:
      - {name: ssh, deployment: d, protocol: tcp, public_port: random, nic: n, private_port: 22, management: true}
)";
  LoadResult a = load(base), b = load(base);
  ASSERT_TRUE(a.policy) << a.diagnostics.format();
  const uint16_t port = a.policy->tenants[0].endpoints[0].public_port;
  EXPECT_EQ(b.policy->tenants[0].endpoints[0].public_port, port);
  // Take that port with a fixed endpoint: the random one moves to the next free port.
  const std::string taken =
      base +
      "      - {name: other, deployment: d, protocol: tcp, public_port: " + std::to_string(port) +
      ", nic: n, private_port: 80}\n";
  LoadResult c = load(taken);
  ASSERT_TRUE(c.policy) << c.diagnostics.format();
  EXPECT_NE(c.policy->tenants[0].endpoints[0].public_port, port);
}

TEST(Policy, ReportsEveryProblemAtOnceWithLocations) {
  LoadResult r = load(R"(version: 1
tenants:
  - name: t
    vnets:
      - name: v
        vni: 1
        address_space: [192.0.2.0/24, 192.0.2.0/25]
        subnets:
          - name: s
            prefixes: [192.0.2.0/26]
            security_group: nope
    nics:
      - name: n
        mac: 01:00:00:00:00:01
        ips: [192.0.2.200]
        subnet: v/s
)");
  ASSERT_FALSE(r.policy);
  EXPECT_EQ(r.diagnostics.errorCount(), 4u) << r.diagnostics.format();
  const std::string out = r.diagnostics.format();
  EXPECT_NE(out.find("p.yaml:5:9: error: address space 192.0.2.0/25 of vnet 'v' overlaps "
                     "192.0.2.0/24 of vnet 'v'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("p.yaml:11:29: error: unknown security group 'nope' in subnet 's'; no "
                     "security group is defined"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("p.yaml:14:14: error: MAC address 01:00:00:00:00:01 of nic 'n' must be a "
                     "unicast, non-zero address"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("p.yaml:15:15: error: address 192.0.2.200 of nic 'n' lies outside its subnet "
                     "'v/s' (192.0.2.0/26)"),
            std::string::npos)
      << out;
}

TEST(Policy, ConntrackSettingsLoadAndBadOnesAreLocated) {
  LoadResult ok = load(R"(version: 1
conntrack:
  capacity: 5000
  per_nic_limit: 100
  tcp_tracking: loose
  flow_log_interval: 0
  fragment_timeout: 2
  fragment_datagrams: 0
  fragments_held: 17
  timeouts: {udp: 5, tcp_established: 3600}
)");
  ASSERT_TRUE(ok.policy) << ok.diagnostics.format();
  const ConntrackSettings& c = ok.policy->conntrack;
  EXPECT_EQ(c.fragment_timeout, 2u);
  EXPECT_EQ(c.fragment_datagrams, 0u);
  EXPECT_EQ(c.fragments_held, 17u);
  EXPECT_EQ(c.capacity, 5000u);
  EXPECT_EQ(c.per_nic_limit, 100u);
  EXPECT_EQ(c.loose, true);
  EXPECT_EQ(c.flow_log_interval, 0u);
  ASSERT_EQ(c.timeouts.size(), 2u);
  EXPECT_EQ(c.timeouts[0], (std::pair<std::string, uint32_t>{"tcp_established", 3600}));
  EXPECT_EQ(c.timeouts[1], (std::pair<std::string, uint32_t>{"udp", 5}));
  EXPECT_FALSE(load("version: 1\n").policy->conntrack.capacity);

  LoadResult bad = load(R"(version: 1
conntrack:
  capacity: 0
  tcp_tracking: lax
  timeouts: {udp_strem: 5, icmp: 0}
  window: 3
  fragment_timeout: 600
)");
  ASSERT_FALSE(bad.policy);
  const std::string out = bad.diagnostics.format();
  EXPECT_EQ(bad.diagnostics.errorCount(), 6u) << out;
  EXPECT_NE(out.find("p.yaml:7:21: error: fragment_timeout"), std::string::npos) << out;
  EXPECT_NE(out.find("p.yaml:3:13: error: capacity"), std::string::npos) << out;
  EXPECT_NE(out.find("p.yaml:4:17: error"), std::string::npos) << out;
  EXPECT_NE(out.find("udp_strem"), std::string::npos) << out;
  EXPECT_NE(out.find("did you mean 'udp_stream'"), std::string::npos) << out;
  EXPECT_NE(out.find("p.yaml:5:34: error: icmp"), std::string::npos) << out;
  EXPECT_NE(out.find("window"), std::string::npos) << out;
}

TEST(Policy, CaptureSettingsLoadAndBadOnesAreLocated) {
  LoadResult ex = loadPolicyFile(kExample);
  ASSERT_TRUE(ex.policy) << ex.diagnostics.format();
  const CaptureSettings& c = ex.policy->capture;
  EXPECT_EQ(c.file_size, 16u << 20);
  EXPECT_EQ(c.file_seconds, 3600u);
  EXPECT_EQ(c.max_files, 24u);
  EXPECT_EQ(c.snaplen, 2048u);
  ASSERT_EQ(c.rules.size(), 5u);
  EXPECT_EQ(c.rules[0].nic, "contoso/db1");
  EXPECT_EQ(c.rules[2].decision, CaptureDecision::Deny);
  EXPECT_EQ(c.rules[3].reason, "ip_spoof");
  EXPECT_EQ(c.rules[4].alert, 0u);  // any alert
  EXPECT_TRUE(ex.policy->ids.enabled);
  EXPECT_EQ(ex.policy->ids.rules, std::vector<std::string>{"ids.rules"});

  // The example, with a broken capture section.
  std::ifstream in(kExample);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find("\ncapture:\n") + 1;
  text = text.substr(0, at) + R"(capture:
  file_size: 10x
  file_duration: 0s
  max_files: 0
  rules:
    - name: a
      nic: contoso/db2
      decision: maybe
    - name: a
      tenant: nobody
      alert: 20x19401
    - name: b
      tenant: fabrikam
      nic: contoso/db1
    - name: everything
)" + text.substr(text.find("\n\n", at) + 1);
  LoadResult bad = load(text);
  ASSERT_FALSE(bad.policy);
  const std::string out = bad.diagnostics.format();
  EXPECT_NE(out.find("file_size '10x' must be a size"), std::string::npos) << out;
  EXPECT_NE(out.find("file_duration '0s' must be a duration from 1s"), std::string::npos) << out;
  EXPECT_NE(out.find("max_files"), std::string::npos) << out;
  EXPECT_NE(out.find("unknown NIC 'db2' in capture rule 'a' (tenant contoso); did you mean 'db1'?"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("maybe"), std::string::npos) << out;
  EXPECT_NE(out.find("duplicate capture rule name 'a'"), std::string::npos) << out;
  EXPECT_NE(out.find("unknown tenant 'nobody' in capture rule 'a'"), std::string::npos) << out;
  EXPECT_NE(out.find("alert '20x19401' must be 'any' or a rule's sid"), std::string::npos) << out;
  EXPECT_NE(out.find("nothing can match both"), std::string::npos) << out;
  EXPECT_NE(out.find("warning: capture rule 'everything' selects every packet"), std::string::npos)
      << out;
}

TEST(Policy, PeeringsResolveAcrossTenantsAndRejectOverlap) {
  LoadResult ok = load(R"(version: 1
tenants:
  - name: a
    vnets: [{name: v, vni: 1, address_space: [192.0.2.0/25], peerings: [b/w]}]
  - name: b
    vnets: [{name: w, vni: 2, address_space: [192.0.2.128/25]}]
)");
  EXPECT_TRUE(ok.policy) << ok.diagnostics.format();
  LoadResult bad = load(R"(version: 1
tenants:
  - name: a
    vnets: [{name: v, vni: 1, address_space: [192.0.2.0/25], peerings: [b/w]}]
  - name: b
    vnets: [{name: w, vni: 2, address_space: [192.0.2.0/24]}]
)");
  ASSERT_FALSE(bad.policy);
  EXPECT_NE(bad.diagnostics.format().find(
                "cannot peer with 'b/w': address spaces 192.0.2.0/25 and 192.0.2.0/24 overlap"),
            std::string::npos);
}

TEST(Policy, DiagnosticsAreBounded) {
  std::string text = "version: 1\ntenants:\n";
  for (int i = 0; i < 500; ++i)
    text += "  - {name: t" + std::to_string(i) + ", bogus: 1}\n";
  LoadResult r = load(text);
  ASSERT_FALSE(r.policy);
  EXPECT_EQ(r.diagnostics.errorCount(), 500u);
  EXPECT_EQ(r.diagnostics.list().size(), Diagnostics::kMaxKept);
  EXPECT_NE(r.diagnostics.format().find("p.yaml: note: 300 more problems not shown"),
            std::string::npos);
}

TEST(Overlaps, SweepFindsNestedDuplicateAndCrossListOverlaps) {
  auto P = [](const char* s) { return *Prefix::parse(s); };
  std::vector<PrefixItem> items = {
      {P("::/0"), 0, 0},             // contains every IPv6 prefix, no IPv4 one
      {P("192.0.2.0/24"), 1, 0},     // IPv4 sorts apart: must not pop ::/0 from the chain
      {P("2001:db8::/32"), 2, 0},    // inside ::/0
      {P("192.0.2.128/25"), 3, 0},   // inside 192.0.2.0/24
      {P("192.0.2.128/25"), 4, 0},   // duplicate
      {P("198.51.100.0/24"), 5, 0},  // overlaps nothing
  };
  std::vector<std::pair<uint32_t, uint32_t>> found;
  findOverlaps(items, [&](const PrefixItem& a, const PrefixItem& b) {
    found.push_back({a.owner, b.owner});
  });
  std::sort(found.begin(), found.end());
  const std::vector<std::pair<uint32_t, uint32_t>> want = {{2, 0}, {3, 1}, {4, 3}};
  EXPECT_EQ(found, want);
}

// Thousands of mutually overlapping subnets: a quadratic check would report
// millions of pairs; checking stops at the error limit instead.
TEST(Policy, OverlapStormStopsAtTheErrorLimit) {
  std::string text =
      "version: 1\ntenants:\n  - name: t\n    vnets:\n      - name: v\n        vni: 1\n"
      "        address_space: [192.0.2.0/24]\n        subnets:\n";
  for (int i = 0; i < 20000; ++i)
    text += "          - {name: s" + std::to_string(i) + ", prefixes: [192.0.2.0/24]}\n";
  LoadResult r = load(text);
  ASSERT_FALSE(r.policy);
  EXPECT_GE(r.diagnostics.errorCount(), Diagnostics::kStopAfter);
  EXPECT_LT(r.diagnostics.errorCount(), 20000u);
  EXPECT_NE(r.diagnostics.format().find("checking stopped after too many errors"),
            std::string::npos);
}

TEST(Policy, HostileInputIsRefusedNotCrashed) {
  EXPECT_FALSE(load("").policy);
  EXPECT_FALSE(load("[1, 2").policy);
  EXPECT_FALSE(load("version: 1\ntenants: {a: b}\n").policy);
  EXPECT_FALSE(load(std::string(5000, '[')).policy);  // deep nesting
  EXPECT_FALSE(load("version: 1\ntenants:\n  - name: \"\\x00\"\n").policy);
  LoadResult big = load(std::string(kMaxPolicyBytes + 1, ' '));
  ASSERT_FALSE(big.policy);
  EXPECT_NE(big.diagnostics.format().find("policy is larger than 64 MiB"), std::string::npos);
}

// Lint at DASH scale: 1,000 rules of 100 prefixes each, none covering another,
// is compared pair by pair without hitting the work budget, and a rule at the
// end that one earlier rule covers is still found.
TEST(Lint, DashScaleGroupIsCheckedCompletely) {
  Policy p;
  Tenant& t = p.tenants.emplace_back();
  t.name = "t";
  SecurityGroup& g = t.security_groups.emplace_back();
  g.name = "g";
  for (uint32_t i = 0; i < 1000; ++i) {
    SecurityRule& r = g.rules.emplace_back();
    r.name = strCat("r", std::to_string(i));
    r.priority = static_cast<uint16_t>(100 + i);
    r.access = Access::Deny;
    r.protocol = Protocol::Tcp;
    r.destination_ports = {{static_cast<uint16_t>(1000 + i), static_cast<uint16_t>(1000 + i)}};
    for (uint32_t k = 0; k < 100; ++k) {
      AddressRef a;
      a.kind = AddressRef::Kind::Prefix;
      a.prefix = {IpAddr::v4(0x0a000000u + ((i * 100 + k) << 8)), 24};
      r.sources.push_back(a);
    }
  }
  SecurityRule last = g.rules[7];
  last.name = "copy-of-r7";
  last.priority = 4000;
  last.sources.resize(10);
  g.rules.push_back(last);
  Diagnostics d("p.yaml");
  const auto t0 = std::chrono::steady_clock::now();
  lintPolicy(p, d, {"unused-group"});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = d.format();
  EXPECT_EQ(d.warningCount(), 1u) << out;
  EXPECT_NE(out.find("'copy-of-r7' (priority 4000) in group 't/g' can never match: 'r7'"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("stopped"), std::string::npos) << out;
  RecordProperty("lint_seconds", std::to_string(secs));
}

// hosts[].snat_ports: a share of at least 256 ports above 1023; hosts that
// serve one deployment with overlapping shares are flagged.
TEST(Policy, HostSnatPortsAreCheckedAndOverlapsLinted) {
  const std::string base = R"(version: 1
hosts:
  - {name: hv1, underlay_ip: 198.51.100.201, snat_ports: SHARE1}
  - {name: hv2, underlay_ip: 198.51.100.202, snat_ports: SHARE2}
tenants:
  - name: t
    vnets:
      - name: v
        vni: 7
        address_space: [192.0.2.0/24]
        subnets: [{name: s, prefixes: [192.0.2.0/24]}]
    deployments: [{name: d, vip: 203.0.113.10, vnet: v}]
    nics:
      - {name: a, mac: "02:00:00:00:00:01", ips: [192.0.2.4], subnet: v/s, deployment: d, host: hv1}
      - {name: b, mac: "02:00:00:00:00:02", ips: [192.0.2.5], subnet: v/s, deployment: d, host: hv2}
)";
  auto with = [&](const std::string& s1, const std::string& s2) {
    std::string y = base;
    y.replace(y.find("SHARE1"), 6, s1);
    y.replace(y.find("SHARE2"), 6, s2);
    return loadPolicyText(y, "hosts.yaml");
  };
  LoadResult ok = with("1024-30000", "30001-65535");
  ASSERT_TRUE(ok.policy) << ok.diagnostics.format();
  EXPECT_EQ(ok.policy->hosts[1].snat_ports.lo, 30001);
  lintPolicy(*ok.policy, ok.diagnostics);
  EXPECT_EQ(ok.diagnostics.format().find("snat-overlap"), std::string::npos)
      << ok.diagnostics.format();

  LoadResult overlap = with("1024-40000", "30001-65535");
  ASSERT_TRUE(overlap.policy);
  lintPolicy(*overlap.policy, overlap.diagnostics);
  EXPECT_NE(overlap.diagnostics.format().find(
                "hosts 'hv1' and 'hv2' both serve deployment 't/d' and share SNAT ports"),
            std::string::npos)
      << overlap.diagnostics.format();

  for (const char* bad : {"80-9000", "2000-2100", "\"*\"", "70000"}) {
    LoadResult r = with(bad, "30001-65535");
    EXPECT_FALSE(r.policy) << bad;
    EXPECT_NE(r.diagnostics.format().find("snat_ports"), std::string::npos)
        << r.diagnostics.format();
  }
}

TEST(Lint, ExampleWarnsOnlyAboutTheDeliberateRdpEndpoint) {
  LoadResult r = loadPolicyFile(kExample);
  ASSERT_TRUE(r.policy);
  lintPolicy(*r.policy, r.diagnostics);
  const std::string out = r.diagnostics.format();
  EXPECT_EQ(r.diagnostics.warningCount(), 2u) << out;
  EXPECT_NE(out.find("endpoint 'rdp' exposes RDP"), std::string::npos) << out;
  EXPECT_NE(out.find("rule 'rdp-in' in group 'fabrikam/backend'"), std::string::npos) << out;
}

}  // namespace
}  // namespace palisade::policy
