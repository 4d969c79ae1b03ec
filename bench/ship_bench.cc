// Shipping over TLS, end to end on loopback in one process: a ChainLog of N
// events is shipped by a Shipper to a Collector (mutual TLS, RFC 5425
// framing, every record verified on arrival, stored and fdatasync'ed before
// it is acknowledged). Prints records/s and MB/s of wall time, and the CPU
// seconds both sides used together (the machine has 2 cores: sender and
// receiver each get about one).
//
// Usage: ship_bench --pki DIR [--events N]
//   DIR holds ca.pem, collector.test.{pem,key}, sender1.{pem,key}
//   (tests/integration/make_certs.sh DIR collector.test sender1 makes them).
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "core/strings.h"
#include "event_gen.h"
#include "events/chain_log.h"
#include "shipping/collector.h"
#include "shipping/shipper.h"

using namespace palisade;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string pki;
  uint64_t events = 300000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--pki" && i + 1 < argc) {
      pki = argv[++i];
    } else if (a == "--events" && i + 1 < argc) {
      events = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: ship_bench --pki DIR [--events N]\n");
      return 2;
    }
  }
  if (pki.empty()) {
    std::fprintf(stderr, "ship_bench: --pki DIR is required (tests/integration/make_certs.sh)\n");
    return 2;
  }
  const fs::path base = fs::temp_directory_path() / strCat("ship_bench.", std::to_string(getpid()));
  fs::create_directories(base);
  auto key = events::SigningKey::generate();
  if (!key) return 1;
  events::ChainLogOptions lo;
  lo.dir = (base / "log").string();
  auto log = events::ChainLog::open(lo, std::move(*key));
  if (!log) {
    std::fprintf(stderr, "ship_bench: %s\n", log.error().message.c_str());
    return 1;
  }
  std::string batch;
  events::Event e;
  for (uint64_t i = 0; i < events; ++i) {
    bench::fillFlowEvent(e, i);
    events::formatEveJson(e, batch);
    if (batch.size() > (64 << 10)) {
      if (!(*log)->write(batch)) return 1;
      batch.clear();
    }
  }
  if (!(*log)->write(batch) || !(*log)->close()) return 1;
  const uint64_t records = (*log)->records();
  uint64_t log_bytes = 0;
  for (const auto& entry : fs::directory_iterator(lo.dir))
    log_bytes += fs::file_size(entry.path());

  shipping::CollectorOptions co;
  co.listen_port = 0;
  co.tls = {strCat(pki, "/collector.test.pem"), strCat(pki, "/collector.test.key"),
            strCat(pki, "/ca.pem")};
  co.store = (base / "store").string();
  auto collector = shipping::Collector::create(std::move(co));
  if (!collector) {
    std::fprintf(stderr, "ship_bench: %s\n", collector.error().message.c_str());
    return 1;
  }
  std::atomic<bool> stop_collector{false}, stop_shipper{false};
  std::thread server([&] { (void)(*collector)->run(stop_collector); });

  shipping::ShipperOptions so;
  so.log_dir = lo.dir;
  so.host = "127.0.0.1";
  so.port = (*collector)->port();
  so.server_name = "collector.test";
  so.tls = {strCat(pki, "/sender1.pem"), strCat(pki, "/sender1.key"), strCat(pki, "/ca.pem")};
  so.follow = false;
  auto shipper = shipping::Shipper::create(so, [](const std::string&) {});
  if (!shipper) {
    std::fprintf(stderr, "ship_bench: %s\n", shipper.error().message.c_str());
    return 1;
  }
  const double w0 = bench::wallSeconds(), c0 = bench::cpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  Status st = (*shipper)->run(stop_shipper);
  const double w1 = bench::wallSeconds(), c1 = bench::cpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  stop_collector.store(true);
  server.join();
  const auto& cs = (*collector)->stats();
  const bool complete = st.ok() && (*shipper)->shippedSeq() == records &&
                        cs.records.load() == records && cs.alarms.load() <= 1;  // source_closed
  std::printf("ship_bench: %llu records, %.1f MB of log (%.0f bytes/record)\n",
              static_cast<unsigned long long>(records), static_cast<double>(log_bytes) / 1e6,
              static_cast<double>(log_bytes) / static_cast<double>(records));
  std::printf(
      "  shipped over mutual TLS, verified and stored: %.0f records/s, %.1f MB/s wall; "
      "%.2f CPU-s for both sides (%.0f records per CPU-second); %.1f MB on the wire\n",
      static_cast<double>(records) / (w1 - w0),
      static_cast<double>((*shipper)->stats().bytes.load()) / 1e6 / (w1 - w0), c1 - c0,
      static_cast<double>(records) / (c1 - c0),
      static_cast<double>((*shipper)->stats().bytes.load()) / 1e6);
  if (!complete) {
    std::fprintf(stderr, "ship_bench: incomplete: %llu acknowledged, %llu stored, %llu alarms\n",
                 static_cast<unsigned long long>((*shipper)->shippedSeq()),
                 static_cast<unsigned long long>(cs.records.load()),
                 static_cast<unsigned long long>(cs.alarms.load()));
  }
  fs::remove_all(base);
  return complete ? 0 : 1;
}
