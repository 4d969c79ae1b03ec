// palisade log ship | palisade collector: the tamper-evident log leaves the
// host over TLS (shipping/shipper.h) and arrives at a central receiver that
// checks every source's chain (shipping/collector.h).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/log_options.h"
#include "core/strings.h"
#include "shipping/collector.h"
#include "shipping/shipper.h"

namespace palisade::cli {
namespace {

std::atomic<bool> g_stop{false};

void onStopSignal(int) {
  g_stop.store(true);
}

// SIGINT/SIGTERM stop cleanly; a peer that goes away mid-write is an error, not a SIGPIPE.
void installSignals() {
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

Result<int> parseFacility(const std::string& s) {
  static const char* kNames[] = {"kern",   "user",   "mail",   "daemon", "auth",     "syslog",
                                 "lpr",    "news",   "uucp",   "cron",   "authpriv", "ftp",
                                 "ntp",    "audit",  "alert",  "clock",  "local0",   "local1",
                                 "local2", "local3", "local4", "local5", "local6",   "local7"};
  for (int i = 0; i < 24; ++i) {
    if (s == kNames[i]) return i;
  }
  return makeError(strCat("--facility: '", s, "' is not a syslog facility (local0-local7, ",
                          "auth, authpriv, daemon, audit, ...)"));
}

struct TlsArgs {
  std::string cert, key, ca;
  void addFlags(CLI::App* cmd, const char* whose) {
    cmd->add_option("--cert", cert, strCat(whose, " certificate (PEM, with its chain)"))
        ->required();
    cmd->add_option("--key", key, strCat(whose, " private key (PEM, mode 600)"))->required();
    cmd->add_option("--ca", ca, "CA bundle the peer's certificate must chain to (PEM)")->required();
  }
  shipping::TlsFiles files() const { return {cert, key, ca}; }
};

struct ShipArgs {
  std::string dir, to, server_name, state, facility = "local0", hostname, deadline;
  TlsArgs tls;
  bool no_acks = false, once = false;
  uint64_t window = 4096;
};

int ship(const ShipArgs& a) {
  installSignals();
  auto hp = shipping::parseHostPort(a.to);
  if (!hp) {
    std::fprintf(stderr, "palisade log ship: --to: %s\n", hp.error().message.c_str());
    return kUsage;
  }
  auto facility = parseFacility(a.facility);
  if (!facility) {
    std::fprintf(stderr, "palisade log ship: %s\n", facility.error().message.c_str());
    return kUsage;
  }
  TimeNs deadline = 0;
  if (!a.deadline.empty()) {
    auto d = parseDuration(a.deadline);
    if (!d) {
      std::fprintf(stderr, "palisade log ship: --deadline: %s\n", d.error().message.c_str());
      return kUsage;
    }
    deadline = monotonicNs() + *d;
  }
  shipping::ShipperOptions o;
  o.log_dir = a.dir;
  o.host = hp->first;
  o.port = hp->second;
  o.server_name = a.server_name;
  o.tls = a.tls.files();
  o.state_file = a.state;
  o.acks = !a.no_acks;
  o.facility = *facility;
  o.hostname = a.hostname;
  o.window = a.window;
  o.follow = !a.once;
  auto shipper = shipping::Shipper::create(std::move(o), [](const std::string& m) {
    std::fprintf(stderr, "palisade log ship: %s\n", m.c_str());
  });
  if (!shipper) {
    std::fprintf(stderr, "palisade log ship: %s\n", shipper.error().message.c_str());
    return kCannotRead;
  }
  shipping::Shipper& s = **shipper;
  std::atomic<bool> stop{false}, finished{false};
  Status result;
  std::thread worker([&] {
    result = s.run(stop);
    finished.store(true);
  });
  // Progress every 10 s while records move; the deadline and signals stop the worker.
  TimeNs last_report = monotonicNs();
  uint64_t last_records = 0;
  bool timed_out = false;
  while (!finished.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_stop.load()) stop.store(true);
    if (deadline && monotonicNs() > deadline && !stop.load()) {
      timed_out = true;
      stop.store(true);
    }
    if (monotonicNs() - last_report > 10'000'000'000ull) {
      last_report = monotonicNs();
      const uint64_t n = s.stats().records.load();
      if (n != last_records) {
        std::fprintf(stderr, "palisade log ship: %llu records sent, acknowledged up to %llu\n",
                     static_cast<unsigned long long>(n),
                     static_cast<unsigned long long>(s.shippedSeq()));
        last_records = n;
      }
    }
  }
  worker.join();
  const auto& st = s.stats();
  std::printf(
      "shipped %llu records (%llu bytes) from %s to %s; acknowledged up to record %llu; "
      "%llu connections, %llu failed attempts, %llu lines skipped\n",
      static_cast<unsigned long long>(st.records.load()),
      static_cast<unsigned long long>(st.bytes.load()), a.dir.c_str(), a.to.c_str(),
      static_cast<unsigned long long>(s.shippedSeq()),
      static_cast<unsigned long long>(st.connects.load()),
      static_cast<unsigned long long>(st.connect_failures.load()),
      static_cast<unsigned long long>(st.skipped_lines.load()));
  if (!result) {
    std::fprintf(stderr, "palisade log ship: %s\n", result.error().message.c_str());
    return kCannotRead;
  }
  if (timed_out) {
    std::fprintf(stderr, "palisade log ship: --deadline passed before everything was shipped\n");
    return kCannotRead;
  }
  return kOk;
}

struct CollectorArgs {
  std::string listen = "127.0.0.1:6514", store, default_heartbeat, max_message = "256K";
  std::vector<std::string> pubkeys;
  TlsArgs tls;
  size_t max_connections = 256;
};

int collector(const CollectorArgs& a) {
  installSignals();
  auto hp = shipping::parseHostPort(a.listen, true);
  if (!hp) {
    std::fprintf(stderr, "palisade collector: --listen: %s\n", hp.error().message.c_str());
    return kUsage;
  }
  shipping::CollectorOptions o;
  o.listen_host = hp->first;
  o.listen_port = hp->second;
  o.tls = a.tls.files();
  o.store = a.store;
  o.max_connections = a.max_connections;
  auto frame = parseSize(a.max_message);
  if (!frame || *frame < 1024 || *frame > (64u << 20)) {
    std::fprintf(stderr, "palisade collector: --max-message: want 1K to 64M\n");
    return kUsage;
  }
  o.max_frame = *frame;
  if (!a.default_heartbeat.empty()) {
    auto d = parseDuration(a.default_heartbeat);
    if (!d) {
      std::fprintf(stderr, "palisade collector: --default-heartbeat: %s\n",
                   d.error().message.c_str());
      return kUsage;
    }
    o.default_heartbeat_ns = *d;
  }
  for (const std::string& p : a.pubkeys) {
    auto k = events::SigningKey::loadPublic(p);
    if (!k) {
      std::fprintf(stderr, "palisade collector: %s\n", k.error().message.c_str());
      return kCannotRead;
    }
    o.keys.push_back(std::move(*k));
  }
  auto c = shipping::Collector::create(std::move(o));
  if (!c) {
    std::fprintf(stderr, "palisade collector: %s\n", c.error().message.c_str());
    return kCannotRead;
  }
  std::printf("palisade collector: listening on %s:%u, storing in %s\n", hp->first.c_str(),
              (*c)->port(), a.store.c_str());
  std::fflush(stdout);
  Status st = (*c)->run(g_stop);
  const auto& s = (*c)->stats();
  std::printf(
      "palisade collector: stopped; %llu connections (%llu refused in the handshake), %llu "
      "records stored, %llu resent duplicates dropped, %llu other syslog messages, %llu "
      "malformed, %llu alarms, %llu connections superseded by a newer one of their source\n",
      static_cast<unsigned long long>(s.connections.load()),
      static_cast<unsigned long long>(s.handshake_failures.load()),
      static_cast<unsigned long long>(s.records.load()),
      static_cast<unsigned long long>(s.duplicates.load()),
      static_cast<unsigned long long>(s.syslog_messages.load()),
      static_cast<unsigned long long>(s.malformed.load()),
      static_cast<unsigned long long>(s.alarms.load()),
      static_cast<unsigned long long>(s.superseded.load()));
  if (!st) {
    std::fprintf(stderr, "palisade collector: %s\n", st.error().message.c_str());
    return kInternal;
  }
  return kOk;
}

}  // namespace

void registerShip(CLI::App& app, Context& ctx) {
  CLI::App* log = app.get_subcommand("log");
  auto* sh = log->add_subcommand(
      "ship", "Send a log's records to a collector: RFC 5424 syslog over mutual TLS (RFC 5425)");
  auto sa = std::make_shared<ShipArgs>();
  sh->add_option("dir", sa->dir, "The log directory ('palisade run --log-dir')")->required();
  sh->add_option("--to", sa->to, "Collector HOST:PORT (6514 is syslog over TLS)")->required();
  sa->tls.addFlags(sh, "Our (client)");
  sh->add_option("--server-name", sa->server_name,
                 "Name (or IP) the collector's certificate must carry (default: the --to host)");
  sh->add_option("--state", sa->state,
                 "Where the last acknowledged record is kept (default: DIR/ship-HOST-PORT.state)");
  sh->add_flag("--no-acks", sa->no_acks,
               "The receiver is plain syslog (rsyslog): no acknowledgements; records in flight "
               "when a connection breaks can be lost");
  sh->add_flag("--once", sa->once, "Exit once every record is shipped (default: follow the log)");
  sh->add_option("--deadline", sa->deadline, "With --once: give up after this long (exit 3)");
  sh->add_option("--facility", sa->facility, "Syslog facility")->capture_default_str();
  sh->add_option("--hostname", sa->hostname, "Syslog HOSTNAME (default: this host's name)");
  sh->add_option("--window", sa->window, "Records sent ahead of the collector's acknowledgement")
      ->capture_default_str();
  sh->footer(
      "The log directory is the spool: while the collector is away records wait there, and\n"
      "they are sent in order when it returns. A Palisade collector acknowledges what it has\n"
      "stored and drops resent records, so restarts of either side lose and duplicate nothing.");
  sh->callback([sa, &ctx] { ctx.exit_code = ship(*sa); });

  auto* co = app.add_subcommand(
      "collector", "Central log receiver: mutual TLS syslog, per-source chain checks, alarms");
  auto ca = std::make_shared<CollectorArgs>();
  co->add_option("--listen", ca->listen, "ADDR:PORT to listen on (port 0: any)")
      ->capture_default_str();
  co->add_option("--store", ca->store, "Directory for what arrives (one folder per source)")
      ->required();
  ca->tls.addFlags(co, "Our (server)");
  co->add_option("--pubkey", ca->pubkeys,
                 "Sources' public keys ('palisade log keygen'): their checkpoints are verified");
  co->add_option("--default-heartbeat", ca->default_heartbeat,
                 "Heartbeat for sources that announce none (feed_stopped after twice this)");
  co->add_option("--max-connections", ca->max_connections, "Refuse connections beyond this")
      ->capture_default_str();
  co->add_option("--max-message", ca->max_message, "Longest syslog message accepted")
      ->capture_default_str();
  co->footer(
      "Clients must present a certificate that chains to --ca. Palisade records are stored in\n"
      "STORE/PEER/LOG_ID/ ('palisade log verify' checks them), other syslog messages in\n"
      "STORE/PEER/syslog.log. Alarms (feed_stopped, chain_break, store_failed) go to\n"
      "STORE/alarms.jsonl as EVE JSON and to stderr. SIGINT/SIGTERM stop it cleanly.");
  co->callback([ca, &ctx] { ctx.exit_code = collector(*ca); });
}

}  // namespace palisade::cli
