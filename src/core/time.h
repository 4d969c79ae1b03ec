// Timestamps are nanoseconds since the Unix epoch, UTC, everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace palisade {

using TimeNs = uint64_t;

TimeNs wallClockNs();
TimeNs monotonicNs();

// RFC 3339 with microseconds and an explicit zone: 2026-11-22T10:04:05.123456+00:00.
// buf needs 33 bytes; returns characters written.
size_t formatRfc3339(TimeNs t, char* buf);
std::string formatRfc3339(TimeNs t);

// Calendar dates (proleptic Gregorian, UTC) and days since 1970-01-01.
struct CivilDate {
  int year = 1970;
  unsigned month = 1, day = 1;  // 1-12, 1-31
};
int64_t daysFromCivil(CivilDate d);
CivilDate civilFromDays(int64_t days);
inline constexpr TimeNs kNsPerDay = 86400ull * 1000000000ull;
// The first instant of the month `months` after the one t falls in (0: its own).
TimeNs monthStart(TimeNs t, int months = 0);

// Parses what people and logs write for an instant: RFC 3339
// (2026-11-22T10:04:05Z, with up to 9 fraction digits and a Z or +hh:mm zone),
// the same with a space for the T, and a bare date (2026-11-22: its midnight,
// UTC). Nothing before 1970 and nothing malformed (nullopt).
std::optional<TimeNs> parseTimestamp(std::string_view s);

// Time of day with nanoseconds, as tcpdump -tttt shows it without the date:
// 10:04:05.123456789. buf needs 19 bytes.
size_t formatTimeOfDay(TimeNs t, char* buf);

// The kernel's view of the clock's synchronisation (adjtimex(2), read only):
// whether an NTP/PTP daemon has it disciplined, and its error bounds.
struct ClockSync {
  bool known = false;         // adjtimex answered
  bool synchronized = false;  // not TIME_ERROR and STA_UNSYNC clear
  int64_t max_error_us = 0;   // maximum error
  int64_t est_error_us = 0;   // estimated error
};
ClockSync readClockSync();

}  // namespace palisade
