// Decode rate, one core, in-memory replay: packets are loaded into one arena
// first, so the figures are the decoder's, not the disk's. Reports packets per
// second (Mpps) and bytes per second for:
//   - 64-byte TCP segments of established flows (the data plane's common case),
//   - a protocol mix built with PacketBuilder (TCP with options, DNS, ARP,
//     IPv6 neighbour discovery, DHCP, VXLAN with its inner frame),
//   - every real DDoS capture in ../shared/data/ddos (skipped when absent).
#include <benchmark/benchmark.h>
#include <dirent.h>

#include <string>
#include <vector>

#include "io/capture.h"
#include "packet/builder.h"
#include "packet/decoder.h"

using namespace palisade;
using pkt::PacketBuilder;

namespace {

const MacAddr kA = *MacAddr::parse("02:00:00:00:00:01");
const MacAddr kB = *MacAddr::parse("02:00:00:00:00:02");

io::CaptureBuffer make64ByteTcp() {
  io::CaptureBuffer buf;
  for (uint32_t i = 0; i < 4096; ++i) {
    auto f = PacketBuilder()
                 .eth(kA, kB)
                 .ipv4(IpAddr::v4(0xC6336400u | (i & 0xff)), IpAddr::v4(0xCB00710Au))
                 .tcp(static_cast<uint16_t>(10000 + i), 443, pkt::tcpflag::kAck, i * 1000, 1)
                 .payload(std::string(6, 'x'))  // 14 + 20 + 20 + 6 = 60, + FCS = 64 on the wire
                 .build();
    buf.add({Bytes(f), i, 64, 0, pkt::LinkType::Ethernet, {}});
  }
  return buf;
}

io::CaptureBuffer makeMix() {
  io::CaptureBuffer buf;
  const IpAddr c = *IpAddr::parse("198.51.100.7"), v = *IpAddr::parse("203.0.113.10");
  const IpAddr c6 = *IpAddr::parse("2001:db8::7"), v6 = *IpAddr::parse("2001:db8:a::4");
  pkt::TcpOptions o;
  o.has_mss = o.sack_permitted = o.has_timestamp = o.has_wscale = true;
  o.mss = 1460;
  o.wscale = 7;
  PacketBuilder::Dhcp d;
  d.client_mac = kA;
  std::vector<std::vector<std::byte>> frames = {
      PacketBuilder().eth(kA, kB).ipv4(c, v).tcp(5555, 443, pkt::tcpflag::kSyn, 1, 0, o).build(),
      PacketBuilder()
          .eth(kA, kB)
          .ipv4(c, v)
          .tcp(5555, 443, pkt::tcpflag::kAck, 2, 2)
          .payload(std::string(512, 'x'))
          .build(),
      PacketBuilder()
          .eth(kA, kB)
          .vlan(100)
          .ipv4(c, v)
          .udp(40000, 53)
          .payload(std::string(40, 'q'))
          .build(),
      PacketBuilder().eth(kA, kB).arp(1, kA, c, MacAddr{}, v).build(),
      PacketBuilder().eth(kA, kB).ipv6(c6, v6, 255).nd(135, v6, &kA).build(),
      PacketBuilder().eth(kA, kB).ipv6(c6, v6).tcp(6000, 22, pkt::tcpflag::kAck, 5, 6).build(),
      PacketBuilder()
          .eth(kA, kB)
          .ipv4(IpAddr::v4(0u), IpAddr::v4(0xffffffffu))
          .udp(68, 67)
          .dhcp(d)
          .build(),
      PacketBuilder()
          .eth(kA, kB)
          .ipv4(c, v)
          .udp(49152, 4789)
          .vxlan(5001)
          .eth(kA, kB)
          .ipv4(c, v)
          .tcp(1, 2, 0)
          .build(),
  };
  for (uint32_t i = 0; i < 4096; ++i) {
    const auto& f = frames[i % frames.size()];
    buf.add({Bytes(f), i, static_cast<uint32_t>(f.size()), 0, pkt::LinkType::Ethernet, {}});
  }
  return buf;
}

void runDecode(benchmark::State& state, const io::CaptureBuffer& buf) {
  if (buf.size() == 0) {
    state.SkipWithError("no packets");
    return;
  }
  pkt::Decoder dec;
  pkt::Decoder inner_dec;
  pkt::Packet p, inner;
  std::vector<io::RawPacket> view;
  view.reserve(buf.size());
  uint64_t bytes = 0;
  for (size_t i = 0; i < buf.size(); ++i) {
    view.push_back(buf[i]);
    bytes += buf[i].wire_len;
  }
  for (auto _ : state) {
    for (const io::RawPacket& r : view) {
      dec.decode(r.link, r.data, r.wire_len, p);
      if (p.has(pkt::kVxlan)) inner_dec.decodeInner(p, inner);
      benchmark::DoNotOptimize(p.layers);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * view.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["ns_per_pkt"] = benchmark::Counter(
      static_cast<double>(state.iterations() * view.size()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::OneK::kIs1000);
  state.counters["malformed"] = static_cast<double>(dec.stats().malformed);
}

}  // namespace

int main(int argc, char** argv) {
  static const io::CaptureBuffer tcp64 = make64ByteTcp();
  static const io::CaptureBuffer mix = makeMix();
  benchmark::RegisterBenchmark("decode/tcp64_established",
                               [](benchmark::State& s) { runDecode(s, tcp64); });
  benchmark::RegisterBenchmark("decode/protocol_mix",
                               [](benchmark::State& s) { runDecode(s, mix); });

  static std::vector<std::pair<std::string, io::CaptureBuffer>> captures;
  const std::string dir = std::string(PALISADE_SHARED_DATA) + "/ddos";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.find(".pcap") == std::string::npos) continue;
      auto r = io::openCapture(dir + "/" + name);
      if (!r) continue;
      io::CaptureBuffer buf;
      if (buf.load(**r)) captures.emplace_back(name, std::move(buf));
    }
    closedir(d);
  } else {
    std::fprintf(stderr, "note: %s is absent; the real-capture benchmarks are skipped\n",
                 dir.c_str());
  }
  for (auto& [name, buf] : captures) {
    const io::CaptureBuffer* b = &buf;
    benchmark::RegisterBenchmark(("decode/ddos/" + name).c_str(),
                                 [b](benchmark::State& s) { runDecode(s, *b); });
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
