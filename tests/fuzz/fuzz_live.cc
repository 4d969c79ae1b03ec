// What the live switch parses around the pipeline, from hostile frames: the
// uplink's ARP and neighbour discovery (answers, learning), the cutting of
// TCP super-frames (segment.h) and IP reassembly (packet/reassembly.h). The
// first two bytes pick the MTU for the cutting; the rest is an Ethernet frame.
// Every segment must fit the MTU and every reassembled datagram decode
// within its bounds; memory stays within the reassembler's cap.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "live/segment.h"
#include "live/uplink.h"
#include "packet/decoder.h"
#include "packet/reassembly.h"

using namespace palisade;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint32_t mtu = 68 + ((uint32_t{data[0]} << 8 | data[1]) % 9000);
  const Bytes frame = asBytes(data + 2, size - 2);
  std::vector<std::vector<std::byte>> segs;
  if (live::segmentTcp(frame, mtu, segs)) {
    for (const auto& s : segs)
      if (s.size() > 14 + mtu) abort();
  } else if (!segs.empty()) {
    abort();
  }
  static live::Uplink uplink([] {
    live::UplinkConfig c;
    c.mac = MacAddr{{2, 0, 0, 0, 0, 1}};
    c.v6.subnet = Prefix::parse("2001:db8::/64").value();
    return c;
  }());
  static bool owned = [] {
    uplink.setOwned({*IpAddr::parse("2001:db8::10"), *IpAddr::parse("203.0.113.10")});
    return true;
  }();
  (void)owned;
  pkt::Decoder dec;
  pkt::Packet p;
  dec.decode(pkt::LinkType::Ethernet, frame, static_cast<uint32_t>(frame.size()), p);
  std::vector<std::byte> reply;
  if (p.has(pkt::kArp)) uplink.onArp(p, reply);
  if (p.has(pkt::kIcmpv6)) uplink.onNd(p, reply);
  std::vector<std::byte> copy(frame.begin(), frame.end());
  uplink.address(copy, 1'000'000'000, reply);
  static pkt::Reassembler reasm(
      {.memcap = 1 << 20, .timeout = 1'000'000'000, .max_datagrams = 64, .max_fragments = 32});
  static TimeNs now = 0;
  now += 1'000'000;
  if (p.has(pkt::kFragment)) {
    const auto whole = reasm.add(p, now);
    if (!whole.empty()) {
      pkt::Packet w;
      dec.decode(pkt::LinkType::Ethernet, whole, static_cast<uint32_t>(whole.size()), w);
      if (w.payload_off + w.payload_len > whole.size()) abort();
    }
  }
  if (reasm.bytesHeld() > (1u << 20)) abort();
  return 0;
}
