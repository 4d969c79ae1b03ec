// Fuzzes the data-plane pipeline: arbitrary frames through every port of the
// example topology, with state carried between inputs (so flows, NAT and TCP
// windows are exercised, not only first packets). The first byte picks the
// ingress port (its top bit: the switch of host hv1, with VXLAN to hv2, instead
// of the all-local one), the second nudges the clock and, when odd, sends the
// frame 1-8 times as one burst through processBurst. Must never crash, read out
// of bounds, or leave the flow table inconsistent.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "pipeline/pipeline.h"
#include "policy/loader.h"

using namespace palisade;

namespace {

pipeline::Pipeline& pipelineOnce(bool on_host) {
  static auto make = [](const char* host) {
    auto r = policy::loadPolicyFile(PALISADE_SOURCE_DIR "/examples/cloud.yaml");
    if (!r.policy) std::abort();
    auto cp = pipeline::CompiledPolicy::compile(
        std::make_shared<const policy::Policy>(std::move(*r.policy)), 1);
    if (!cp) std::abort();
    pipeline::Config cfg;
    cfg.conntrack.capacity = 256;  // small: eviction and table-full paths run too
    cfg.host = host;
    return std::make_unique<pipeline::Pipeline>(*cp, cfg);
  };
  static std::unique_ptr<pipeline::Pipeline> local = make(""), hv1 = make("hv1");
  return on_host ? *hv1 : *local;
}

TimeNs clock_ns = 1'000'000'000;

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
  } else {
    check(pl.process(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), port,
                     clock_ns));
  }
  pl.tick(clock_ns, 64);
  return 0;
}
