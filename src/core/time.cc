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

// Howard Hinnant's days_from_civil and civil_from_days (public domain algorithms).
int64_t daysFromCivil(CivilDate d) {
  const int64_t y = static_cast<int64_t>(d.year) - (d.month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (d.month > 2 ? d.month - 3 : d.month + 9) + 2) / 5 + d.day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

CivilDate civilFromDays(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  CivilDate c;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = static_cast<int>(static_cast<int64_t>(yoe) + era * 400 + (c.month <= 2 ? 1 : 0));
  return c;
}

TimeNs monthStart(TimeNs t, int months) {
  CivilDate c = civilFromDays(static_cast<int64_t>(t / kNsPerDay));
  int index = c.year * 12 + static_cast<int>(c.month) - 1 + months;
  c.year = index / 12;
  c.month = static_cast<unsigned>(index % 12) + 1;
  c.day = 1;
  const int64_t d = daysFromCivil(c);
  return d < 0 ? 0 : static_cast<TimeNs>(d) * kNsPerDay;
}

namespace {

// Exactly n digits at s[pos], as a number; -1 when they are not all digits.
int64_t digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int64_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::optional<TimeNs> parseTimestamp(std::string_view s) {
  const int64_t y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || s.size() < 10 || s[4] != '-' || s[7] != '-')
    return std::nullopt;
  const CivilDate date{static_cast<int>(y), static_cast<unsigned>(mo), static_cast<unsigned>(d)};
  if (civilFromDays(daysFromCivil(date)).day != date.day) return std::nullopt;  // 2026-02-30
  int64_t secs = daysFromCivil(date) * 86400;
  uint64_t nanos = 0;
  if (s.size() > 10) {
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
    const int64_t h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60 || s.size() < 19 ||
        s[13] != ':' || s[16] != ':')
      return std::nullopt;
    secs += h * 3600 + mi * 60 + se;
    size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
      size_t n = 0;
      uint64_t scale = 100000000;
      for (++pos; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++n) {
        if (n == 9) return std::nullopt;
        nanos += static_cast<uint64_t>(s[pos] - '0') * scale;
        scale /= 10;
      }
      if (n == 0) return std::nullopt;
    }
    if (pos == s.size()) return std::nullopt;  // a zone is required with a time
    if (s[pos] == 'Z' || s[pos] == 'z') {
      if (pos + 1 != s.size()) return std::nullopt;
    } else {
      const int64_t oh = digits(s, pos + 1, 2), om = digits(s, pos + 4, 2);
      if ((s[pos] != '+' && s[pos] != '-') || oh < 0 || oh > 23 || om < 0 || om > 59 ||
          pos + 6 != s.size() || s[pos + 3] != ':')
        return std::nullopt;
      const int64_t off = oh * 3600 + om * 60;
      secs -= s[pos] == '+' ? off : -off;
    }
  }
  if (secs < 0) return std::nullopt;
  return static_cast<TimeNs>(secs) * 1000000000ull + nanos;
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
