// The tamper-evident log's cost, one core:
//
//   sha256      SHA-256 of a typical record alone (the floor)
//   chain       ChainLog::write of preformatted EVE lines in 64 KiB batches, as
//               the EventWriter hands them over: hash, chain, write(2), a signed
//               and fdatasync'ed checkpoint every 10,000 records, rotation at 64 MiB
//   plain       the same lines through FileSink (no chain), for the ratio
//   writer      what the EventWriter thread does for each event, on one thread:
//               EVE JSON formatting, chain, write(2) — chained events per core
//   pipeline    Events from a worker's queue through the EventWriter thread
//               (EVE formatting + chain), wall time with a producer on the other
//               core — what `palisade run --log-dir` sustains
//   verify      palisade log verify's rate over what `chain` wrote
//
// Prints figures; record them in bench/RESULTS.md. Usage:
//   log_bench [--events N] [--dir DIR] [--only PHASE] [--cold]
// DIR: where to write (default a new dir in /tmp); PHASE: run that one alone
// (sha256, chain, plain, format, writer, pipeline), as for a profiler; --cold:
// no warm-up of the page cache (see below).
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "core/json_writer.h"
#include "core/strings.h"
#include "event_gen.h"
#include "events/chain_log.h"
#include "events/log_verify.h"
#include "events/writer.h"

using namespace palisade;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "log_bench: %s\n", what.c_str());
  std::exit(1);
}

events::SigningKey key() {
  auto k = events::SigningKey::generate();
  if (!k) die(k.error().message);
  return std::move(*k);
}

std::unique_ptr<events::ChainLog> openLog(const std::string& dir) {
  events::ChainLogOptions o;
  o.dir = dir;
  o.host = "bench";
  auto log = events::ChainLog::open(o, key());
  if (!log) die(log.error().message);
  return std::move(*log);
}

// " (user N ns + kernel M ns)" per event since `from`.
std::string splitText(const bench::CpuSplit& from, uint64_t n) {
  const bench::CpuSplit now = bench::threadCpu();
  char buf[64];
  std::snprintf(buf, sizeof buf, "(user %.0f + kernel %.0f ns)",
                (now.user - from.user) / static_cast<double>(n) * 1e9,
                (now.sys - from.sys) / static_cast<double>(n) * 1e9);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 2'000'000;
  std::string base, only;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      base = argv[++i];
    } else if (a == "--cold") {
      cold = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: log_bench [--events N] [--dir DIR] [--only PHASE] [--cold]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (base.empty()) {
    char tmpl[] = "/tmp/palisade-log-bench-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    base = tmpl;
  }

  // Preformatted lines, batched at 64 KiB as the EventWriter does.
  std::vector<std::string> batches(1);
  events::Event e;
  e.body.reserve(512);
  size_t line_bytes = 0;
  for (uint64_t i = 0; i < n; ++i) {
    bench::fillFlowEvent(e, i);
    std::string& b = batches.back();
    const size_t before = b.size();
    events::formatEveJson(e, b);
    line_bytes += b.size() - before;
    if (b.size() >= (1 << 16)) batches.emplace_back();
  }
  const double avg = static_cast<double>(line_bytes) / static_cast<double>(n);
  std::printf("log_bench: %llu events, %.0f bytes each before chaining, writing under %s\n",
              static_cast<unsigned long long>(n), avg, base.c_str());

  auto runs = [&](const char* phase) { return only.empty() || only == phase; };
  if (!cold) {
    // A VM's memory that was never touched costs the hypervisor a fault per
    // page the first time, which swings write(2) into the page cache by 5x
    // between runs; a host that has been up recycles its page cache instead.
    // Writing and removing as much as a phase writes first gives the phases
    // recycled pages (each phase removes its files when done). --cold skips it.
    fs::create_directories(base);
    const std::string warm = base + "/warm-up";
    auto sink = events::FileSink::open(warm);
    if (!sink) die(sink.error().message);
    for (int round = 0; round < 2; ++round) {
      for (const std::string& b : batches) {
        if (Status st = (*sink)->write(b); !st) die(st.error().message);
      }
    }
    if (Status st = (*sink)->flush(); !st) die(st.error().message);
    sink->reset();
    fs::remove(warm);
  }
  if (runs("sha256")) {
    events::Sha256 sha;
    std::string line = batches[0].substr(0, batches[0].find('\n'));
    const uint64_t reps = std::min<uint64_t>(n, 2'000'000);
    volatile uint8_t sink = 0;
    double t0 = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    for (uint64_t i = 0; i < reps; ++i) {
      line[20] = static_cast<char>('0' + i % 10);
      sink = sink ^ sha(line)[0];
    }
    double dt = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0;
    std::printf("  %-10s %8.2f M records/s  %7.0f ns/record  (SHA-256 of %zu bytes)\n", "sha256",
                static_cast<double>(reps) / dt / 1e6, dt / static_cast<double>(reps) * 1e9,
                line.size());
  }

  double chain_rate = 0, plain_rate = 0;
  std::string chain_dir = base + "/chain";
  if (runs("chain")) {
    auto log = openLog(chain_dir);
    double t0 = bench::wallSeconds(), c0 = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    const bench::CpuSplit u0 = bench::threadCpu();
    for (const std::string& b : batches) {
      if (Status st = log->write(b); !st) die(st.error().message);
    }
    if (Status st = log->close(); !st) die(st.error().message);
    double dt = bench::wallSeconds() - t0, dc = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    chain_rate = static_cast<double>(n) / dc;
    uint64_t bytes = 0;
    for (const auto& f : fs::directory_iterator(chain_dir))
      bytes += fs::file_size(f.path());
    std::printf(
        "  %-10s %8.2f M events/s per CPU-second (%.2f M/s wall)  %5.0f ns CPU/event %s %6.0f MB/s "
        "written  (%llu checkpoints, %.0f bytes/record on disk)\n",
        "chain", chain_rate / 1e6, static_cast<double>(n) / dt / 1e6,
        dc / static_cast<double>(n) * 1e9, splitText(u0, n).c_str(),
        static_cast<double>(bytes) / dt / 1e6, static_cast<unsigned long long>(log->checkpoints()),
        static_cast<double>(bytes) / static_cast<double>(log->records()));
  }
  if (runs("chain")) {
    double c0 = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    auto r = events::verifyLogFiles({chain_dir}, "", {});
    double dt = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (!r) die(r.error().message);
    if (!r->intact()) die("the benchmark's own log does not verify");
    std::printf(
        "  %-10s %8.2f M records/s per CPU-second  %5.0f ns CPU/record  (%llu records, "
        "chain only)\n",
        "verify", static_cast<double>(r->records) / dt / 1e6,
        dt / static_cast<double>(r->records) * 1e9, static_cast<unsigned long long>(r->records));
    fs::remove_all(chain_dir);
  }
  if (runs("plain")) {
    auto sink = events::FileSink::open(base + "/plain.jsonl");
    if (!sink) die(sink.error().message);
    double t0 = bench::wallSeconds(), c0 = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    const bench::CpuSplit u0 = bench::threadCpu();
    for (const std::string& b : batches) {
      if (Status st = (*sink)->write(b); !st) die(st.error().message);
    }
    if (Status st = (*sink)->flush(); !st) die(st.error().message);
    double dt = bench::wallSeconds() - t0, dc = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    plain_rate = static_cast<double>(n) / dc;
    std::printf("  %-10s %8.2f M events/s per CPU-second (%.2f M/s wall)  %5.0f ns CPU/event %s\n",
                "plain", plain_rate / 1e6, static_cast<double>(n) / dt / 1e6,
                dc / static_cast<double>(n) * 1e9, splitText(u0, n).c_str());
    if (chain_rate > 0)
      std::printf("  %-10s the chain costs %.1fx the plain file's CPU\n", "",
                  plain_rate / chain_rate);
    sink->reset();
    fs::remove(base + "/plain.jsonl");
  }
  if (runs("format") || runs("writer")) {
    // The EVE envelope alone (timestamp, flow id, type, tuple; the body is
    // copied): the writer's share before chaining.
    std::vector<events::Event> ring(4096);
    for (size_t i = 0; i < ring.size(); ++i)
      bench::fillFlowEvent(ring[i], i);
    std::string batch;
    batch.reserve(1 << 17);
    double c0 = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < n; ++i) {
      events::Event& ev = ring[i % ring.size()];
      ev.ts_ns += 1000;
      events::formatEveJson(ev, batch);
      if (batch.size() >= (1 << 16)) {
        bytes += batch.size();
        batch.clear();
      }
    }
    double dc = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    std::printf(
        "  %-10s %8.2f M events/s per CPU-second  %5.0f ns CPU/event  (EVE JSON only, %llu "
        "bytes)\n",
        "format", static_cast<double>(n) / dc / 1e6, dc / static_cast<double>(n) * 1e9,
        static_cast<unsigned long long>(bytes + batch.size()));
  }
  if (runs("writer")) {
    // The writer thread's whole work on one thread, without the queue's
    // handoff: EVE JSON formatting of the envelope, chaining, write(2).
    std::vector<events::Event> ring(4096);
    for (size_t i = 0; i < ring.size(); ++i)
      bench::fillFlowEvent(ring[i], i);
    auto log = openLog(base + "/writer");
    std::string batch;
    batch.reserve(1 << 17);
    double t0 = bench::wallSeconds(), c0 = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    const bench::CpuSplit u0 = bench::threadCpu();
    for (uint64_t i = 0; i < n; ++i) {
      events::Event& ev = ring[i % ring.size()];
      ev.ts_ns += 1000;
      events::formatEveJson(ev, batch);
      if (batch.size() >= (1 << 16)) {
        if (Status st = log->write(batch); !st) die(st.error().message);
        batch.clear();
      }
    }
    if (Status st = log->write(batch); !st) die(st.error().message);
    if (Status st = log->close(); !st) die(st.error().message);
    double dt = bench::wallSeconds() - t0, dc = bench::cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    std::printf(
        "  %-10s %8.2f M events/s per CPU-second (%.2f M/s wall)  %5.0f ns CPU/event %s (EVE JSON "
        "+ chain + write, one thread)\n",
        "writer", static_cast<double>(n) / dc / 1e6, static_cast<double>(n) / dt / 1e6,
        dc / static_cast<double>(n) * 1e9, splitText(u0, n).c_str());
    fs::remove_all(base + "/writer");
  }
  if (runs("pipeline")) {
    // One producer thread, the writer thread: formatting plus chaining.
    events::EventWriter writer;
    writer.addSink(openLog(base + "/pipeline"));
    events::EventQueue& q = writer.addQueue(1u << 16, 512);
    writer.start();
    double t0 = bench::wallSeconds();
    uint64_t refused = 0;
    for (uint64_t i = 0; i < n; ++i) {
      events::Event* slot;
      while (!(slot = q.acquire())) {
        ++refused;  // full: a worker would count a drop; the benchmark waits
        std::this_thread::yield();
      }
      bench::fillFlowEvent(*slot, i);
      q.commit();
    }
    writer.stop();
    double dt = bench::wallSeconds() - t0;
    std::printf(
        "  %-10s %8.2f M events/s  %7.0f ns/event  (queue -> EVE JSON -> chain -> file; the "
        "producer found the queue full %llu times)\n",
        "pipeline", static_cast<double>(writer.written()) / dt / 1e6,
        dt / static_cast<double>(writer.written()) * 1e9, static_cast<unsigned long long>(refused));
    if (writer.written() != n) die("the writer lost events");
  }
  fs::remove_all(base);
  return 0;
}
