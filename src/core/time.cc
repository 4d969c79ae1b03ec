#include "core/time.h"

#include <sys/timex.h>

#include <cstdio>
#include <cstring>
#include <ctime>

namespace palisade {

TimeNs wallClockNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1000000000ull + static_cast<TimeNs>(ts.tv_nsec);
}

ClockSync readClockSync() {
  timex tx{};
  tx.modes = 0;  // read only
  const int state = adjtimex(&tx);
  ClockSync c;
  if (state < 0) return c;
  c.known = true;
  c.synchronized = state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
  c.max_error_us = tx.maxerror;
  c.est_error_us = tx.esterror;
  return c;
}

TimeNs monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1000000000ull + static_cast<TimeNs>(ts.tv_nsec);
}

size_t formatRfc3339(TimeNs t, char* buf) {
  // Events come many per second: the date and time of day are formatted once
  // per second per thread, the microseconds every time.
  thread_local time_t cached_secs = -1;
  thread_local char cached[20];  // 2026-11-22T10:04:05
  const time_t secs = static_cast<time_t>(t / 1000000000ull);
  unsigned micros = static_cast<unsigned>((t % 1000000000ull) / 1000);
  if (secs != cached_secs) {
    tm parts{};
    gmtime_r(&secs, &parts);
    char tmp[64];
    std::snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900,
                  parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
    std::memcpy(cached, tmp, sizeof cached - 1);
    cached_secs = secs;
  }
  std::memcpy(buf, cached, 19);
  buf[19] = '.';
  for (int i = 25; i >= 20; --i) {
    buf[i] = static_cast<char>('0' + micros % 10);
    micros /= 10;
  }
  std::memcpy(buf + 26, "+00:00", 6);
  buf[32] = '\0';
  return 32;
}

std::string formatRfc3339(TimeNs t) {
  char buf[40];
  return std::string(buf, formatRfc3339(t, buf));
}

size_t formatTimeOfDay(TimeNs t, char* buf) {
  const uint64_t secs = t / 1000000000ull;
  const unsigned nanos = static_cast<unsigned>(t % 1000000000ull);
  const unsigned day = static_cast<unsigned>(secs % 86400);
  const int n =
      std::snprintf(buf, 19, "%02u:%02u:%02u.%09u", day / 3600, day / 60 % 60, day % 60, nanos);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace palisade
