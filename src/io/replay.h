// Replay loop: feeds a capture's packets to a handler as fast as possible or at
// capture speed, with a progress line on a terminal for long files.
#pragma once

#include <cstdint>
#include <cstdio>

#include "core/time.h"
#include "io/capture.h"

namespace palisade::io {

struct ReplayOptions {
  bool capture_speed = false;  // pace by the packets' timestamps
  double speed = 1.0;          // pace multiplier (2.0 = twice capture speed)
  enum class Progress : uint8_t { Auto, Always, Never } progress = Progress::Auto;
  uint64_t max_packets = 0;  // 0: all
};

struct ReplaySummary {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  TimeNs wall_ns = 0;
  TimeNs first_ts = 0;
  TimeNs last_ts = 0;
};

// Sleeps so packet timestamps map onto wall time (capture speed / speed).
class Pacer {
 public:
  Pacer(bool enabled, double speed) : enabled_(enabled), speed_(speed > 0 ? speed : 1.0) {}
  void wait(TimeNs packet_ts);

 private:
  bool enabled_;
  double speed_;
  bool started_ = false;
  TimeNs first_ts_ = 0, wall_start_ = 0;
};

// A progress line on stderr ("\r 42% 1,234,567 pkts 1.23 Mpps"), at most 5 times a second.
class ProgressLine {
 public:
  explicit ProgressLine(ReplayOptions::Progress mode, FILE* out = stderr);
  ~ProgressLine();
  void update(uint64_t packets, uint64_t position, uint64_t size) {
    if (enabled_ && (packets & 1023) == 0) draw(packets, position, size, false);
  }
  void finish(uint64_t packets, uint64_t position, uint64_t size);

 private:
  void draw(uint64_t packets, uint64_t position, uint64_t size, bool force);
  bool enabled_;
  bool drawn_ = false;
  FILE* out_;
  TimeNs start_, last_draw_ = 0;
};

// Runs handler(const RawPacket&) over every packet. Returns the summary, or the
// reader's error after the packets it could read were handled.
template <class Handler>
Result<ReplaySummary> replay(PacketReader& reader, const ReplayOptions& opt, Handler&& handler) {
  ReplaySummary s;
  Pacer pacer(opt.capture_speed, opt.speed);
  ProgressLine progress(opt.progress);
  const TimeNs start = monotonicNs();
  RawPacket p;
  while ((opt.max_packets == 0 || s.packets < opt.max_packets) && reader.next(p)) {
    if (s.packets == 0) s.first_ts = p.ts_ns;
    s.last_ts = p.ts_ns;
    pacer.wait(p.ts_ns);
    handler(p);
    ++s.packets;
    s.bytes += p.wire_len;
    progress.update(s.packets, reader.position(), reader.size());
  }
  progress.finish(s.packets, reader.position(), reader.size());
  s.wall_ns = monotonicNs() - start;
  if (reader.error()) return *reader.error();
  return s;
}

}  // namespace palisade::io
