// Fuzzes the DDoS detector: arbitrary frames, decoded, into a detector that
// protects every address (so every packet is classified and counted), with
// state carried between inputs and a clock the input moves: the first byte
// advances it by up to 25.5 s (gaps, attack ends, table sweeps), or, when
// 0xff, steps it back (time travel). A small target table makes the
// table-full path run. Must never crash or read out of bounds, and the
// attack count must stay consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "ddos/detector.h"
#include "packet/decoder.h"

using namespace palisade;

namespace {

ddos::Detector& detectorOnce() {
  static std::unique_ptr<ddos::Detector> d = [] {
    ddos::DetectorConfig cfg;
    cfg.max_targets = 64;
    cfg.heavy_hitters = 64;
    ddos::Profile strict;
    strict.name = "strict";
    for (auto& f : strict.floors)
      f = {2, 8000};
    strict.learning_s = 1;
    strict.end_after_s = 1;
    strict.update_s = 1;
    strict.quarantine = ddos::Quarantine::RateLimit;
    strict.quarantine_pps = 3;
    cfg.profiles = {strict};
    cfg.protect.push_back({*Prefix::parse("0.0.0.0/0"), 0, "v4"});
    cfg.protect.push_back({*Prefix::parse("::/0"), 0, "v6"});
    auto det = std::make_unique<ddos::Detector>(cfg);
    det->setSink([](const events::Event& e) {
      if (e.body.empty()) std::abort();
    });
    return det;
  }();
  return *d;
}

TimeNs clock_ns = 1'000'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ddos::Detector& det = detectorOnce();
  if (data[0] == 0xff)
    clock_ns -= 300'000'000;
  else
    clock_ns += static_cast<TimeNs>(data[0]) * 100'000'000;
  static pkt::Decoder dec;
  pkt::Packet p;
  const Bytes frame(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
  det.process(p, clock_ns);
  const ddos::DetectorStats& s = det.stats();
  if (s.active > s.attacks || s.targets > 64) std::abort();
  return 0;
}
