// What the collector reads from a peer: any bytes as a TCP stream, split into
// segments, framed (RFC 5425 octet counting or RFC 6587 lines), each frame
// parsed as RFC 5424 syslog and as an acknowledgement. Must never crash,
// hang, or buffer more than the frame limit allows.
//
// Input: the first byte picks the segment size (1-64) and the frame limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shipping/syslog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::shipping;
  if (size == 0) return 0;
  const size_t segment = (data[0] & 63) + 1;
  const size_t max_frame = 64u << (data[0] >> 6);
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  FrameDecoder d(max_frame);
  while (!in.empty()) {
    const size_t n = in.size() < segment ? in.size() : segment;
    d.feed(in.substr(0, n));
    in.remove_prefix(n);
    std::string_view frame;
    while (d.next(frame)) {
      if (frame.size() > max_frame) std::abort();
      SyslogMessage m;
      std::string why;
      if (parseSyslog(frame, m, why)) {
        if (m.msg.size() > frame.size()) std::abort();
        (void)m.sdParam(kSdId, "log");
      }
      std::string id;
      uint64_t seq = 0;
      (void)parseAck(frame, id, seq);
    }
    // Bounded: whatever is buffered fits in a frame, its length and a little more.
    if (!d.failed() && d.buffered() > max_frame + segment + 16) std::abort();
    if (d.failed()) break;
  }
  return 0;
}
