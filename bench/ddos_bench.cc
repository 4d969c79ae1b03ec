// DDoS layer benchmarks: one core, in memory.
//
//   cookies        SYN cookie generation and validation per second (SipHash-2-4)
//   detector       packets per second through the detector (classification,
//                  window counters, heavy hitters, scrubbing verdict) while a
//                  spoofed SYN flood is under way; and the ratio to decoding
//   heavy hitters  recall of the true top 100 sources of a skewed stream
//                  (Zipf, 1 M sources, plus uniform spoofed noise) by a
//                  SpaceSaving summary of at most 100 KB, and its update rate
//
// Prints figures; records go in bench/RESULTS.md. --quick runs smaller sizes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/hash.h"
#include "ddos/detector.h"
#include "ddos/sketch.h"
#include "ddos/syncookie.h"
#include "packet/builder.h"
#include "packet/decoder.h"

using namespace palisade;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

IpAddr ip(const char* s) {
  return IpAddr::parse(s).value();
}

volatile uint64_t g_sink;

void cookies(uint64_t n) {
  const ddos::SynCookies c;
  ddos::CookieTuple t{ip("198.51.100.7"), ip("192.0.2.10"), 40000, 443};
  ddos::CookieOptions o;
  o.mss = 1460;
  o.wscale = 7;
  o.sack = true;
  const TimeNs t0 = 1'800'000'000'000'000'000;
  struct Sent {
    uint16_t port;
    uint32_t isn;
    ddos::SynCookies::Made m;
  };
  std::vector<Sent> made(4096);
  double a = now();
  uint64_t x = 0;
  for (uint64_t i = 0; i < n; ++i) {
    t.client_port = static_cast<uint16_t>(i);
    const auto m = c.make(t, static_cast<uint32_t>(i * 2654435761u), o, t0, 1000);
    made[i & 4095] = {t.client_port, static_cast<uint32_t>(i * 2654435761u), m};
    x += m.isn;
  }
  const double make_s = now() - a;
  // A burst's cookies, as processBurst() makes them: staged 32 at a time,
  // their MACs eight per SipHash pass in vector lanes.
  ddos::SynCookies staging(c);
  ddos::SynCookies::Made m{};
  a = now();
  for (uint64_t i = 0; i < n; ++i) {
    t.client_port = static_cast<uint16_t>(i);
    staging.stage(t, static_cast<uint32_t>(i * 2654435761u), o, t0, 1000,
                  static_cast<uint32_t>(i & 31), m);
    x += m.isn;
    if ((i & 31) == 31 || i + 1 == n)
      for (const auto& mac : staging.finishStaged())
        x += mac.mac;
  }
  const double stage_s = now() - a;
  a = now();
  uint64_t ok = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const Sent& s = made[i & 4095];
    t.client_port = s.port;
    ok += c.check(t, s.isn + 1, s.m.isn + 1, s.m.tsval, t0).has_value();
  }
  const double check_s = now() - a;
  g_sink = x;
  std::printf(
      "cookies: %.2f M made/s (%.0f ns each) one at a time, %.2f M made/s (%.0f ns each) in "
      "bursts of 32; %.2f M checked/s (%.0f ns each); %llu of %llu checks valid\n",
      static_cast<double>(n) / make_s / 1e6, make_s / static_cast<double>(n) * 1e9,
      static_cast<double>(n) / stage_s / 1e6, stage_s / static_cast<double>(n) * 1e9,
      static_cast<double>(n) / check_s / 1e6, check_s / static_cast<double>(n) * 1e9,
      static_cast<unsigned long long>(ok), static_cast<unsigned long long>(n));
}

void detector(uint64_t n) {
  // 64 K distinct spoofed SYNs to one protected server, cycled, 64 bytes each,
  // arriving at 10 Mpps of packet time.
  std::vector<std::vector<std::byte>> frames;
  std::mt19937_64 rng(3);
  const MacAddr mac{};
  for (int i = 0; i < 65536; ++i) {
    auto f =
        pkt::PacketBuilder()
            .eth(mac, mac)
            .ipv4(IpAddr::v4(static_cast<uint32_t>(rng()) | 0x01000000u), ip("192.0.2.10"))
            .tcp(static_cast<uint16_t>(rng()), 80, pkt::tcpflag::kSyn, static_cast<uint32_t>(rng()))
            .build();
    f.resize(60);
    frames.push_back(std::move(f));
  }
  pkt::Decoder dec;
  std::vector<pkt::Packet> decoded(frames.size());
  for (size_t i = 0; i < frames.size(); ++i)
    dec.decode(pkt::LinkType::Ethernet, frames[i], 60, decoded[i]);

  ddos::DetectorConfig cfg;
  cfg.protect.push_back({*Prefix::parse("192.0.2.0/24"), 0, "servers"});
  ddos::Detector det(cfg);
  uint64_t events = 0;
  det.setSink([&](const events::Event&) { ++events; });
  const TimeNs t0 = 1'800'000'000'000'000'000;
  double a = now();
  uint64_t drops = 0;
  for (uint64_t i = 0; i < n; ++i)
    drops += det.process(decoded[i & 65535], t0 + static_cast<TimeNs>(i) * 100) ==
             ddos::Detector::Verdict::Drop;
  const double detect_s = now() - a;
  a = now();
  pkt::Packet p;
  for (uint64_t i = 0; i < n; ++i)
    dec.decode(pkt::LinkType::Ethernet, frames[i & 65535], 60, p);
  const double decode_s = now() - a;
  g_sink = drops;
  std::printf(
      "detector: %.2f Mpps per core under a spoofed SYN flood (%.0f ns/packet); decoding alone "
      "%.2f Mpps (%.0f ns); %llu attack, %llu events\n",
      static_cast<double>(n) / detect_s / 1e6, detect_s / static_cast<double>(n) * 1e9,
      static_cast<double>(n) / decode_s / 1e6, decode_s / static_cast<double>(n) * 1e9,
      static_cast<unsigned long long>(det.stats().attacks),
      static_cast<unsigned long long>(events));
}

void heavyHitters(uint64_t n) {
  // Sources: 1 M addresses drawn Zipf(s = 1.1) for 70% of the packets, plus 30%
  // uniformly random (spoofed) addresses.
  const uint32_t universe = 1'000'000;
  std::vector<double> cdf(universe);
  double sum = 0;
  for (uint32_t k = 0; k < universe; ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k + 1), 1.1);
    cdf[k] = sum;
  }
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<IpAddr> stream(n);
  std::unordered_map<uint32_t, uint64_t> truth;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t a;
    if (rng() % 10 < 7) {
      const auto k =
          static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
      a = static_cast<uint32_t>(mix64(k + 1)) | 0x01000000u;
    } else {
      a = static_cast<uint32_t>(rng()) | 0x01000000u;
    }
    stream[i] = IpAddr::v4(a);
    ++truth[a];
  }
  std::vector<std::pair<uint64_t, uint32_t>> top;
  top.reserve(truth.size());
  for (const auto& [a, c] : truth)
    top.emplace_back(c, a);
  std::partial_sort(top.begin(), top.begin() + 100, top.end(), std::greater<>());
  // Keyed by source alone, and as the detector keeps them: (source,
  // destination) pairs, 32 bytes, at its configured capacity (the memory a
  // worker spends), here all to one destination.
  struct Pair {
    IpAddr src, dst;
    bool operator==(const Pair&) const = default;
  };
  auto run = [&](auto& s, const char* what, auto key) {
    const double a = now();
    for (const IpAddr& x : stream)
      s.add(key(x));
    const double secs = now() - a;
    const auto got = s.top(100);
    size_t hit = 0;
    for (size_t i = 0; i < 100; ++i)
      hit += std::any_of(got.begin(), got.end(),
                         [&](const auto& e) { return e.key == key(IpAddr::v4(top[i].second)); });
    std::printf(
        "heavy hitters%s: %zu counters, %.1f KB: recall of the top 100 %zu%%, %.1f M updates/s "
        "(%.0f ns); %llu packets from %zu sources\n",
        what, s.capacity(), static_cast<double>(s.memoryBytes()) / 1024, hit,
        static_cast<double>(n) / secs / 1e6, secs / static_cast<double>(n) * 1e9,
        static_cast<unsigned long long>(n), truth.size());
  };
  for (uint32_t capacity : {256u, 1024u, 2048u}) {
    ddos::SpaceSaving<IpAddr> s(capacity);
    run(s, "", [](const IpAddr& x) { return x; });
  }
  const IpAddr victim = ip("192.0.2.10");
  ddos::SpaceSaving<Pair> pairs(ddos::DetectorConfig{}.heavy_hitters);
  run(pairs, " (the detector's: source and destination pairs)", [&](const IpAddr& x) {
    return Pair{x, victim};
  });
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (argc > 1 && !quick) {
    std::printf("usage: ddos_bench [--quick]\n");
    return std::strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  cookies(quick ? 1'000'000 : 10'000'000);
  detector(quick ? 2'000'000 : 20'000'000);
  heavyHitters(quick ? 1'000'000 : 10'000'000);
  return 0;
}
