// Capture reader fuzzer (pcapng, and classic pcap when the input starts with
// a pcap magic number, as openCapture chooses): reads every packet from an
// in-memory file; the reader must stop cleanly (end or a located error) and
// never hand out bytes outside the block or record it read.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "io/capture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade;
  FILE* f = fmemopen(const_cast<uint8_t*>(data), size, "rb");
  if (!f) return 0;
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, data, 4);
  std::unique_ptr<io::PacketReader> reader;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d || magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    auto r = io::pcapFromStream(f, size);
    if (!r) return 0;  // a located error about the file header
    reader = std::move(*r);
  } else {
    reader = io::pcapngFromStream(f, size);
  }
  io::RawPacket p;
  size_t n = 0;
  uint64_t sum = 0;
  while (reader->next(p)) {
    for (std::byte b : p.data)
      sum += static_cast<uint8_t>(b);  // touch every byte (ASan)
    if (p.interface_id >= reader->interfaces().size()) abort();
    if (++n > 1000000) abort();
  }
  if (reader->position() > size) abort();
  volatile uint64_t keep = sum;  // the byte reads must not be optimised away
  (void)keep;
  return 0;
}
