// What the log benchmarks share: a flow-log event like the data plane's and
// the clocks they time with.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdint>

#include "core/json_writer.h"
#include "core/net.h"
#include "events/event.h"

namespace palisade::bench {

inline double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of a clock (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID): on a
// shared machine, the figure that does not include time the hypervisor gave to others.
inline double cpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The calling thread's CPU time split into user and kernel (system) seconds:
// what the process does itself, and what write(2) costs it in the kernel.
struct CpuSplit {
  double user = 0, sys = 0;
};
inline CpuSplit threadCpu() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return {sec(ru.ru_utime), sec(ru.ru_stime)};
}

// A flow-log body like the data plane's (NSG flow log v2 fields).
inline void fillFlowEvent(events::Event& e, uint64_t i) {
  e.clear();
  e.ts_ns = 1795341845000000000ull + i * 1000;
  e.flow_id = 0x5a5a0000 + i;
  e.type = events::EventType::Flow;
  e.has_tuple = true;
  e.src_ip = *IpAddr::parse("198.51.100.7");
  e.dest_ip = *IpAddr::parse("203.0.113.10");
  e.src_port = static_cast<uint16_t>(1024 + i % 60000);
  e.dest_port = 443;
  e.proto = 6;
  JsonWriter w(e.body);
  w.key("flow").beginObject();
  w.field("state", "end").field("reason", "fin").field("tenant", "contoso");
  w.field("nic", "web1").field("rule", "contoso/web/allow-https").field("direction", "inbound");
  w.field("pkts_toserver", uint64_t{12 + i % 7}).field("pkts_toclient", uint64_t{10 + i % 5});
  w.field("bytes_toserver", uint64_t{1830 + i % 977})
      .field("bytes_toclient", uint64_t{24610 + i % 313});
  w.field("policy_generation", uint64_t{3});
  w.endObject();
}

}  // namespace palisade::bench
