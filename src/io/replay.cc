#include "io/replay.h"

#include <time.h>
#include <unistd.h>

namespace palisade::io {

void Pacer::wait(TimeNs packet_ts) {
  if (!enabled_) return;
  if (!started_) {
    started_ = true;
    first_ts_ = packet_ts;
    wall_start_ = monotonicNs();
    return;
  }
  if (packet_ts <= first_ts_) return;  // out-of-order timestamps are sent at once
  const auto offset = static_cast<TimeNs>(static_cast<double>(packet_ts - first_ts_) / speed_);
  const TimeNs due = wall_start_ + offset;
  const TimeNs now = monotonicNs();
  if (due <= now) return;
  timespec ts{static_cast<time_t>((due - now) / 1000000000ull),
              static_cast<long>((due - now) % 1000000000ull)};
  nanosleep(&ts, nullptr);
}

ProgressLine::ProgressLine(ReplayOptions::Progress mode, FILE* out)
    : enabled_(mode == ReplayOptions::Progress::Always ||
               (mode == ReplayOptions::Progress::Auto && isatty(fileno(out)))),
      out_(out),
      start_(monotonicNs()) {}

ProgressLine::~ProgressLine() {
  if (drawn_) std::fputs("\r\033[K", out_);
}

void ProgressLine::finish(uint64_t packets, uint64_t position, uint64_t size) {
  if (!enabled_ || !drawn_) return;
  draw(packets, position, size, true);
  std::fputs("\r\033[K", out_);
  drawn_ = false;
}

void ProgressLine::draw(uint64_t packets, uint64_t position, uint64_t size, bool force) {
  const TimeNs now = monotonicNs();
  if (!force && now - last_draw_ < 200'000'000) return;
  if (!force && !drawn_ && now - start_ < 500'000'000) return;  // short runs print nothing
  last_draw_ = now;
  drawn_ = true;
  const double secs = static_cast<double>(now - start_) / 1e9;
  const double mpps = secs > 0 ? static_cast<double>(packets) / secs / 1e6 : 0;
  if (size > 0) {
    std::fprintf(out_, "\r\033[K%5.1f%%  %llu packets  %.2f Mpps",
                 100.0 * static_cast<double>(position) / static_cast<double>(size),
                 static_cast<unsigned long long>(packets), mpps);
  } else {
    std::fprintf(out_, "\r\033[K%llu packets  %.2f Mpps", static_cast<unsigned long long>(packets),
                 mpps);
  }
  std::fflush(out_);
}

}  // namespace palisade::io
