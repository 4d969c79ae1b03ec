// Decoder fuzzer: the first byte picks the link type, the rest is the frame.
// Any input must decode without reading out of bounds, and the counters must
// agree with the verdict.
#include <cstdlib>

#include "packet/decoder.h"
#include "packet/summary.h"

using namespace palisade;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr pkt::LinkType kLinks[] = {pkt::LinkType::Ethernet, pkt::LinkType::Raw,
                                             pkt::LinkType::LinuxSll, pkt::LinkType::LinuxSll2,
                                             pkt::LinkType::Null,     pkt::LinkType::Loop};
  const pkt::LinkType link = kLinks[data[0] % 6];
  const bool short_capture = data[0] & 0x80;  // pretend the capture was cut (snaplen)
  const Bytes frame = asBytes(data + 1, size - 1);
  pkt::Decoder dec;
  pkt::Packet p, inner;
  const auto wire = static_cast<uint32_t>(frame.size() + (short_capture ? 1000 : 0));
  const bool ok = dec.decode(link, frame, wire, p);
  if (ok != (dec.stats().malformed == 0)) abort();
  if (p.payload_off + p.payload_len > frame.size()) abort();
  const bool has_inner = ok && p.has(pkt::kVxlan) && dec.decodeInner(p, inner);
  std::string line;
  pkt::appendSummary(line, p, has_inner ? &inner : nullptr);
  return 0;
}
