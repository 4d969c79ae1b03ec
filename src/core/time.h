// Timestamps are nanoseconds since the Unix epoch, UTC, everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace palisade {

using TimeNs = uint64_t;

TimeNs wallClockNs();
TimeNs monotonicNs();

// RFC 3339 with microseconds and an explicit zone: 2026-11-22T10:04:05.123456+00:00.
// buf needs 33 bytes; returns characters written.
size_t formatRfc3339(TimeNs t, char* buf);
std::string formatRfc3339(TimeNs t);

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
