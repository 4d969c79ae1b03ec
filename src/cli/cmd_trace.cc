// palisade trace: what the data plane does with one packet, layer by layer
// (in the spirit of Azure's IP flow verify and ovn-trace).
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "cli/policy_input.h"
#include "core/strings.h"
#include "io/capture.h"
#include "packet/builder.h"
#include "pipeline/pipeline.h"

namespace palisade::cli {
namespace {

struct TraceArgs {
  std::string policy, spec, pcap, host;
  uint64_t packet = 0;
  TcpTracking tracking;
};

struct Spec {
  uint8_t proto = 6;
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  std::string port;
  uint8_t flags = pkt::tcpflag::kSyn;
};

// "ADDR:PORT", "[V6]:PORT" or a bare address.
bool parseEndpoint(const std::string& t, IpAddr& a, uint16_t& port, std::string& err) {
  std::string host = t, p;
  if (!t.empty() && t[0] == '[') {
    const auto close = t.find(']');
    if (close == std::string::npos) {
      err = strCat("'", t, "': missing ']'");
      return false;
    }
    host = t.substr(1, close - 1);
    if (close + 1 < t.size() && t[close + 1] == ':') p = t.substr(close + 2);
  } else if (std::count(t.begin(), t.end(), ':') == 1) {
    host = t.substr(0, t.find(':'));
    p = t.substr(t.find(':') + 1);
  }
  auto ip = IpAddr::parse(host);
  if (!ip) {
    err = strCat("'", host, "' is not an IP address");
    return false;
  }
  a = *ip;
  if (!p.empty()) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(p.c_str(), &end, 10);
    if (*end != '\0' || v > 65535) {
      err = strCat("'", p, "' is not a port (0-65535)");
      return false;
    }
    port = static_cast<uint16_t>(v);
  }
  return true;
}

bool parseSpec(const std::string& text, Spec& s, std::string& err) {
  std::istringstream in(text);
  std::vector<std::string> w;
  for (std::string t; in >> t;)
    w.push_back(t);
  size_t i = 0;
  auto next = [&]() -> std::string { return i < w.size() ? w[i++] : std::string(); };
  const std::string proto = next();
  if (proto == "tcp")
    s.proto = 6;
  else if (proto == "udp")
    s.proto = 17;
  else if (proto == "icmp")
    s.proto = 1;
  else if (proto == "icmpv6")
    s.proto = 58;
  else {
    err = strCat("protocol '", proto, "': expected tcp, udp, icmp or icmpv6");
    return false;
  }
  if (!parseEndpoint(next(), s.src, s.sport, err)) return false;
  if (next() != "->") {
    err = "expected '->' between source and destination";
    return false;
  }
  if (!parseEndpoint(next(), s.dst, s.dport, err)) return false;
  if (s.src.isV4() != s.dst.isV4()) {
    err = "source and destination are of different address families";
    return false;
  }
  for (std::string t = next(); !t.empty(); t = next()) {
    if (t == "in" || t == "out") continue;
    if (t == "via") {
      s.port = next();
    } else if (t == "flags") {
      const std::string f = next();
      s.flags = 0;
      for (char c : f) {
        switch (c) {
          case 'S':
            s.flags |= pkt::tcpflag::kSyn;
            break;
          case 'A':
            s.flags |= pkt::tcpflag::kAck;
            break;
          case 'F':
            s.flags |= pkt::tcpflag::kFin;
            break;
          case 'R':
            s.flags |= pkt::tcpflag::kRst;
            break;
          case 'P':
            s.flags |= pkt::tcpflag::kPsh;
            break;
          default:
            err = strCat("flag '", std::string(1, c), "': expected letters of SAFRP");
            return false;
        }
      }
    } else {
      err = strCat("unexpected '", t, "' (expected: via PORT, flags SAFRP)");
      return false;
    }
  }
  if (s.port.empty()) {
    err = "missing 'via PORT' (uplink or tenant/nic)";
    return false;
  }
  return true;
}

void printTrace(const pipeline::Trace& trace, const pipeline::Verdict& v,
                const pipeline::CompiledPolicy& cp) {
  int step = 1;
  for (const pipeline::TraceStep& t : trace)
    std::printf("  %2d  %-15s %-5s %s\n", step++, pipeline::toString(t.layer),
                t.pass ? "pass" : "DENY", t.detail.c_str());
  switch (v.action) {
    case pipeline::Action::Forward:
      std::printf("verdict: FORWARD to %s\n", cp.ports[v.out_port].name.c_str());
      break;
    case pipeline::Action::Answer:
      std::printf("verdict: ANSWERED by the switch%s\n", v.frame.empty() ? " (absorbed)" : "");
      break;
    case pipeline::Action::Hold:
      std::printf("verdict: HELD for its datagram's first fragment\n");
      break;
    case pipeline::Action::Drop:
      std::printf("verdict: DROP (%s, layer %s%s%s)\n", pipeline::toString(v.reason),
                  pipeline::toString(pipeline::layerOf(v.reason)),
                  v.rule != pipeline::kNoIndex ? ", rule " : "",
                  v.rule != pipeline::kNoIndex ? cp.rules[v.rule].name.c_str() : "");
      break;
  }
}

uint32_t findPort(const pipeline::CompiledPolicy& cp, const std::string& name) {
  uint32_t p = cp.portByName(name);
  if (p != pipeline::kNoIndex) return p;
  // A bare NIC name, when only one tenant has it.
  uint32_t found = pipeline::kNoIndex;
  for (uint32_t i = 1; i < cp.ports.size(); ++i) {
    const std::string& n = cp.ports[i].name;
    if (n.size() > name.size() && n.compare(n.size() - name.size(), name.size(), name) == 0 &&
        n[n.size() - name.size() - 1] == '/') {
      if (found != pipeline::kNoIndex) return pipeline::kNoIndex - 1;  // ambiguous
      found = i;
    }
  }
  return found;
}

void run(const TraceArgs& a, Context& ctx) {
  auto policy = loadCompiled(a.policy, "trace", ctx);
  if (!policy || !checkHost(*policy, a.host, "trace", ctx)) return;
  pipeline::Config base;
  base.conntrack.capacity = 1u << 16;  // a trace replays at most a capture's worth
  pipeline::Config cfg = pipeline::withPolicySettings(base, *policy->model);
  cfg.host = a.host;
  a.tracking.apply(cfg);
  pipeline::Pipeline pl(policy, cfg);
  pipeline::Trace trace;

  if (!a.pcap.empty()) {
    auto reader = io::openCapture(a.pcap);
    if (!reader) {
      std::fprintf(stderr, "palisade trace: %s\n", reader.error().message.c_str());
      ctx.exit_code = kCannotRead;
      return;
    }
    IngressPorts ingress;
    io::RawPacket raw;
    uint64_t n = 0;
    while ((*reader)->next(raw)) {
      ++n;
      const uint16_t port = ingress.portOf(**reader, raw, pl);
      const bool target = n == a.packet;
      const pipeline::Verdict v =
          pl.process(raw.link, raw.data, raw.wire_len, static_cast<uint16_t>(port), raw.ts_ns,
                     target ? &trace : nullptr);
      if (target) {
        std::printf("trace: packet %llu of %s, in via %s (state from the %llu packets before it)\n",
                    static_cast<unsigned long long>(n), a.pcap.c_str(),
                    policy->ports[port].name.c_str(), static_cast<unsigned long long>(n - 1));
        printTrace(trace, v, *policy);
        ctx.exit_code = kOk;
        return;
      }
    }
    std::fprintf(stderr, "palisade trace: %s has %llu packets; packet %llu does not exist\n",
                 a.pcap.c_str(), static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(a.packet));
    ctx.exit_code = kUsage;
    return;
  }

  Spec s;
  std::string err;
  if (!parseSpec(a.spec, s, err)) {
    std::fprintf(
        stderr,
        "palisade trace: %s\n  expected: PROTO SRC[:PORT] -> DST[:PORT] [in|out] via PORT "
        "[flags SAFRP]\n  e.g.: 'tcp 198.51.100.7:5555 -> 203.0.113.10:443 in via uplink'\n",
        err.c_str());
    ctx.exit_code = kUsage;
    return;
  }
  const uint32_t port = findPort(*policy, s.port);
  if (port >= pipeline::kNoIndex - 1) {
    std::fprintf(stderr, "palisade trace: port '%s' %s; ports are 'uplink' and tenant/nic names\n",
                 s.port.c_str(), port == pipeline::kNoIndex ? "does not exist" : "is ambiguous");
    ctx.exit_code = kUsage;
    return;
  }
  const uint32_t nic = policy->ports[port].nic;
  const MacAddr src_mac = nic == pipeline::kNoIndex ? MacAddr{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}}
                                                    // upstream router
                                                    : policy->nics[nic].mac;
  pkt::PacketBuilder b;
  b.eth(src_mac, pipeline::kGatewayMac);
  if (s.src.isV4())
    b.ipv4(s.src, s.dst);
  else
    b.ipv6(s.src, s.dst);
  if (s.proto == 6)
    b.tcp(s.sport, s.dport, s.flags, 1000, (s.flags & pkt::tcpflag::kAck) ? 1 : 0);
  else if (s.proto == 17)
    b.udp(s.sport, s.dport);
  else if (s.proto == 1)
    b.icmp(8, 0, s.sport, 1);
  else
    b.icmpv6(128, 0, static_cast<uint32_t>(s.sport) << 16 | 1);
  const auto frame = b.build();
  std::printf("trace: %s\n", a.spec.c_str());
  const pipeline::Verdict v =
      pl.process(pkt::LinkType::Ethernet, Bytes(frame.data(), frame.size()),
                 static_cast<uint32_t>(frame.size()), static_cast<uint16_t>(port), 1, &trace);
  printTrace(trace, v, *policy);
  ctx.exit_code = kOk;
}

}  // namespace

void registerTrace(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "trace", "Show each layer's matching rule, the rewrite and the verdict for one packet");
  cmd->footer(
      "SPEC: PROTO SRC[:PORT] -> DST[:PORT] [in|out] via PORT [flags SAFRP]\n"
      "  PROTO tcp|udp|icmp|icmpv6 (icmp: PORT is the echo id); PORT 'uplink' or 'tenant/nic'\n"
      "  (a bare NIC name when unique); TCP flags default to S (a new connection).\n"
      "  palisade trace -p cloud.yaml 'tcp 198.51.100.7:5555 -> 203.0.113.10:443 via uplink'\n"
      "  palisade trace -p cloud.yaml --pcap demo.pcapng --packet 42\n"
      "With --pcap, the packets before the chosen one are replayed first, so the trace\n"
      "sees the connection state they built. Exit status: 0 traced (whatever the verdict),\n"
      "1 invalid policy, 2 bad spec, 3 unreadable input.");
  auto a = std::make_shared<TraceArgs>();
  cmd->add_option("-p,--policy", a->policy, "Policy file (YAML)")->required();
  auto* spec = cmd->add_option("SPEC", a->spec, "The packet, in the form above");
  auto* pcap = cmd->add_option("-r,--pcap", a->pcap, "Trace a packet of this capture");
  auto* packet = cmd->add_option("-n,--packet", a->packet, "1-based packet number in --pcap");
  pcap->needs(packet);
  packet->needs(pcap);
  spec->excludes(pcap);
  a->tracking.addFlags(cmd);
  cmd->add_option("--host", a->host,
                  "The policy host the switch runs on: NICs of other hosts are behind VXLAN");
  cmd->callback([a, &ctx] {
    if (a->spec.empty() && a->pcap.empty()) {
      std::fprintf(stderr, "palisade trace: give a SPEC or --pcap FILE --packet N\n");
      ctx.exit_code = kUsage;
      return;
    }
    run(*a, ctx);
  });
}

}  // namespace palisade::cli
