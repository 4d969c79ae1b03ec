// Fuzzes the data-plane pipeline: arbitrary frames through every port of the
// example topology, with state carried between inputs (so flows, NAT and TCP
// windows are exercised, not only first packets). The first byte picks the
// ingress port (its top bit: the switch of host hv1, with VXLAN to hv2, instead
// of the all-local one), the second nudges the clock and, when odd, sends the
// frame 1-8 times as one burst through processBurst. Must never crash, read out
// of bounds, or leave the flow table inconsistent.
// The all-local switch runs contoso's VIP behind the SYN proxy (always): when
// it answers a SYN with a cookie, the fuzzer completes the handshake (the
// client's ACK, the server's SYN-ACK) so later inputs reach a proxied
// connection's translation, not only the cookie check a guess cannot pass.
// Its profiles also limit connections, so flows are charged and released.
// Both run the example's inline IPS (examples/ids.rules, plus reject rules
// on any TCP and UDP payload starting "R", so reject answers are built from
// hostile packets too).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "ids/offline.h"
#include "packet/builder.h"
#include "packet/decoder.h"
#include "pipeline/inspection.h"
#include "pipeline/pipeline.h"
#include "policy/loader.h"

using namespace palisade;

namespace {

pipeline::Pipeline& pipelineOnce(bool on_host) {
  static auto make = [](const char* host) {
    auto r = policy::loadPolicyFile(PALISADE_SOURCE_DIR "/examples/cloud.yaml");
    if (!r.policy) std::abort();
    for (auto& prof : r.policy->ddos.profiles) {
      prof.syn_proxy = *host ? policy::DdosSynProxy::OnAttack : policy::DdosSynProxy::Always;
      prof.source_connections = 4;  // connection limits counted, refused and released
      prof.target_half_open = 64;
      prof.source_cps = 100;
    }
    auto cp = pipeline::CompiledPolicy::compile(
        std::make_shared<const policy::Policy>(std::move(*r.policy)), 1);
    if (!cp) std::abort();
    if (!pipeline::loadIdsRules(**cp, PALISADE_SOURCE_DIR "/examples/cloud.yaml")) std::abort();
    {
      // The example's rules and two reject rules, for the answers' paths.
      auto rules = std::make_shared<ids::PreparedRules>(*(*cp)->ids_rules);
      ids::LoadOptions opt;
      ids::addRules(rules->rules,
                    "reject tcp any any -> any any (content:\"R\"; depth:1; sid:1;)\n"
                    "reject udp any any -> any any (content:\"R\"; depth:1; sid:2;)\n",
                    "fuzz", opt);
      (*cp)->ids_rules = std::move(rules);
    }
    pipeline::Config cfg;
    cfg.conntrack.capacity = 256;  // small: eviction and table-full paths run too
    cfg.host = host;
    return std::make_unique<pipeline::Pipeline>(*cp, cfg);
  };
  static std::unique_ptr<pipeline::Pipeline> local = make(""), hv1 = make("hv1");
  return on_host ? *hv1 : *local;
}

TimeNs clock_ns = 1'000'000'000;

// The answer's reply: from the answer's destination back to its source (the
// ACK of a SYN-ACK, or a server's SYN-ACK to a SYN), with the echoed timestamp.
std::vector<std::byte> replyTo(const pkt::Packet& p, uint8_t flags, uint32_t seq) {
  pkt::TcpOptions o;
  o.has_timestamp = p.tcp.opt.has_timestamp;
  o.ts_val = 77;
  o.ts_ecr = p.tcp.opt.ts_val;
  o.has_wscale = p.tcp.opt.has_wscale;
  o.wscale = 5;
  pkt::PacketBuilder b;
  b.eth(p.eth_dst, p.eth_src);
  if (p.src.isV4())
    b.ipv4(p.dst, p.src);
  else
    b.ipv6(p.dst, p.src);
  return b.tcp(p.dport, p.sport, flags, seq, p.tcp.seq + 1, o, 1000).build();
}

// A SYN the switch answered with a cookie: the client's ACK, then (its SYN
// reached the server) the server's SYN-ACK, so the connection is proxied.
void completeHandshake(pipeline::Pipeline& pl, const pipeline::Verdict& v) {
  static pkt::Decoder d;
  pkt::Packet sa;
  if (v.action != pipeline::Action::Answer ||
      !d.decode(pkt::LinkType::Ethernet, v.frame, static_cast<uint32_t>(v.frame.size()), sa) ||
      !sa.has(pkt::kTcp) || sa.tcp.flags != (pkt::tcpflag::kSyn | pkt::tcpflag::kAck))
    return;
  const auto ack = replyTo(sa, pkt::tcpflag::kAck, sa.tcp.ack);
  const pipeline::Verdict s =
      pl.process(pkt::LinkType::Ethernet, ack, static_cast<uint32_t>(ack.size()), 0, clock_ns);
  pkt::Packet syn;
  if (s.action != pipeline::Action::Forward ||
      !d.decode(pkt::LinkType::Ethernet, s.frame, static_cast<uint32_t>(s.frame.size()), syn))
    return;
  const auto synack = replyTo(syn, pkt::tcpflag::kSyn | pkt::tcpflag::kAck, 0x7ffffff0);
  pl.process(pkt::LinkType::Ethernet, synack, static_cast<uint32_t>(synack.size()), s.out_port,
             clock_ns);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  pipeline::Pipeline& pl = pipelineOnce((data[0] & 0x80) != 0);
  const uint16_t port = static_cast<uint16_t>((data[0] & 0x7f) % pl.policy().ports.size());
  clock_ns += static_cast<TimeNs>(data[1]) * 10'000'000;  // up to 2.55 s per input
  const Bytes frame(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  auto check = [&](const pipeline::Verdict& v) {
    if (v.action == pipeline::Action::Forward && v.out_port >= pl.policy().ports.size())
      std::abort();
  };
  // Held fragments released by the call: after one of its packets, their
  // frames readable to the end (ASan checks every byte).
  auto checkReleased = [&](size_t n) {
    for (const pipeline::Pipeline::Released& r : pl.released()) {
      if (r.after >= n) std::abort();
      check(r.verdict);
      volatile uint8_t sum = 0;
      for (const Bytes b : {r.frame, r.verdict.frame})
        for (std::byte c : b)
          sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(c));
    }
  };
  if (data[1] & 1) {
    std::array<pipeline::Pipeline::Input, 8> in;
    std::array<pipeline::Verdict, 8> out;
    const size_t n = 1 + (data[1] >> 5);
    for (size_t i = 0; i < n; ++i)
      in[i] = {pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), port,
               clock_ns + static_cast<TimeNs>(i)};
    const size_t done = pl.processBurst(std::span(in.data(), n), out);
    if (done != n) std::abort();
    for (size_t i = 0; i < n; ++i)
      check(out[i]);
    checkReleased(n);
  } else {
    const pipeline::Verdict v = pl.process(pkt::LinkType::Ethernet, frame,
                                           static_cast<uint32_t>(frame.size()), port, clock_ns);
    check(v);
    checkReleased(1);
    completeHandshake(pl, v);
  }
  pl.tick(clock_ns, 64);
  return 0;
}
