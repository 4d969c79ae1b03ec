// pcapng reader fuzzer: reads every packet from an in-memory file; the reader
// must stop cleanly (end or a located error) and never hand out bytes outside
// the block it read.
#include <cstdio>
#include <cstdlib>

#include "io/capture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade;
  FILE* f = fmemopen(const_cast<uint8_t*>(data), size, "rb");
  if (!f) return 0;
  auto reader = io::pcapngFromStream(f, size);
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
