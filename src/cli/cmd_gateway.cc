// palisade gateway: the API security gateway (src/gateway, docs/gateway.md).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/log_options.h"
#include "core/strings.h"
#include "events/crypto.h"
#include "gateway/config.h"
#include "gateway/crs_tests.h"
#include "gateway/server.h"
#include "gateway/waf.h"

namespace palisade::cli {
namespace {

struct GatewayArgs {
  std::string config, events, host, crs_test;
  int paranoia = 4, threshold = 5;
  bool check = false, hash_key = false, verbose = false;
  LogArgs log;
};

void printSummary(const gateway::GatewayConfig& c) {
  for (const gateway::Listener& l : c.listeners)
    std::printf(
        "  listener %s: %s\n", l.address.c_str(),
        l.health                                         ? "health (plaintext: /healthz, /metrics)"
        : l.client_cert == gateway::ClientCert::Required ? "TLS, client certificate required"
        : l.client_cert == gateway::ClientCert::Optional ? "TLS, client certificate optional"
                                                         : "TLS");
  for (const gateway::Upstream& u : c.upstreams)
    std::printf("  upstream %s: %zu host(s), pool %u\n", u.name.c_str(), u.hosts.size(), u.pool);
  for (const gateway::Route& r : c.routes) {
    std::string auth;
    for (gateway::AuthMethod a : r.auth)
      auth += strCat(auth.empty() ? "" : "|", a == gateway::AuthMethod::ApiKey ? "api_key"
                                              : a == gateway::AuthMethod::Jwt  ? "jwt"
                                                                               : "mtls");
    const std::string waf =
        r.waf.mode == gateway::WafMode::Off
            ? std::string()
            : strCat(", WAF ", r.waf.mode == gateway::WafMode::Blocking ? "blocking" : "detection",
                     " at paranoia ", std::to_string(r.waf.paranoia));
    std::printf("  route %s: %s%s -> %s, auth %s%s%s%s\n", r.name.c_str(),
                r.host.empty() ? "*" : r.host.c_str(), r.path.c_str(),
                c.upstreams[r.upstream].name.c_str(), auth.empty() ? "none" : auth.c_str(),
                r.per_client.rate > 0 || r.per_ip.rate > 0 ? ", rate-limited" : "",
                r.json || r.xml ? ", content checks" : "", waf.c_str());
  }
}

// The CRS regression tests against the WAF engine; exit 1 when any fails.
void runCrsTests(const GatewayArgs& a, Context& ctx) {
  gateway::WafSetup setup;
  setup.paranoia_levels = {a.paranoia};
  setup.anomaly_threshold = a.threshold;
  auto waf = gateway::makeModSecurityEngine(setup);
  if (!waf) {
    std::fprintf(stderr, "palisade gateway --crs-test: %s\n", waf.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  if (!std::filesystem::is_directory(a.crs_test)) {
    std::fprintf(stderr, "palisade gateway --crs-test: %s is not a directory\n",
                 a.crs_test.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  std::fprintf(stderr, "palisade gateway: %s\n", (*waf)->describe().c_str());
  const bool tty = isatty(STDERR_FILENO) != 0;
  auto progress = [tty](size_t done, size_t total) {
    if (tty) std::fprintf(stderr, "\r%zu/%zu files", done, total);
  };
  const gateway::CrsTestResult r = gateway::runCrsTests(a.crs_test, **waf, a.paranoia, progress);
  if (tty) std::fprintf(stderr, "\n");
  if (a.verbose)
    for (const std::string& f : r.failures)
      std::printf("FAIL %s\n", f.c_str());
  const size_t total = r.passed + r.failed;
  std::printf("%zu passed, %zu failed (%.1f%%), %zu skipped, %zu files, paranoia %d\n", r.passed,
              r.failed,
              total ? 100.0 * static_cast<double>(r.passed) / static_cast<double>(total) : 0.0,
              r.skipped, r.files, a.paranoia);
  if (r.failed > 0) ctx.exit_code = kFindings;
}

void runGateway(GatewayArgs& a, Context& ctx) {
  if (!a.crs_test.empty()) {
    runCrsTests(a, ctx);
    return;
  }
  if (a.hash_key) {
    // The key comes on stdin, so it is not left in shell history or ps output.
    std::string key;
    std::getline(std::cin, key);
    if (!key.empty() && key.back() == '\r') key.pop_back();
    if (key.empty()) {
      std::fprintf(stderr, "palisade gateway --hash-key: give the API key on standard input\n");
      ctx.exit_code = kUsage;
      return;
    }
    events::Sha256 sha;
    std::printf("%s\n", events::toHex(sha(key)).c_str());
    return;
  }
  if (a.config.empty()) {
    std::fprintf(stderr, "palisade gateway: --config is required\n");
    ctx.exit_code = kUsage;
    return;
  }
  gateway::GatewayLoad load = gateway::loadGatewayConfig(a.config);
  if (!load.config) {
    std::fputs(load.diagnostics.format().c_str(), stderr);
    std::fprintf(stderr, "palisade gateway: %s: %zu error(s)\n", a.config.c_str(),
                 load.diagnostics.errorCount());
    ctx.exit_code = load.diagnostics.list().size() == 1 &&
                            load.diagnostics.list()[0].message.starts_with("cannot open")
                        ? kCannotRead
                        : kFindings;
    return;
  }
  if (a.check) {
    std::printf("%s: valid gateway configuration\n", a.config.c_str());
    printSummary(*load.config);
    return;
  }

  // Signals are taken by this thread alone (sigtimedwait below); the workers
  // inherit the mask. A closed client socket must not kill the process.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto writer = std::make_unique<events::EventWriter>();
  bool have_events = false;
  if (!a.events.empty()) {
    auto sink = events::FileSink::open(a.events);
    if (!sink) {
      std::fprintf(stderr, "palisade gateway: %s\n", sink.error().message.c_str());
      ctx.exit_code = kCannotRead;
      return;
    }
    writer->addSink(std::move(*sink));
    have_events = true;
  }
  if (a.log.enabled()) {
    auto log = a.log.openFor(a.host, "gateway", ctx);
    if (!log) return;
    writer->addSink(std::move(log));
    have_events = true;
  }
  gateway::Gateway gw(std::move(*load.config), have_events ? writer.get() : nullptr);
  if (Status st = gw.start(); !st) {
    std::fprintf(stderr, "palisade gateway: %s\n", st.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  if (have_events) writer->start();
  const std::vector<std::string> bound = gw.boundAddresses();
  for (size_t i = 0; i < bound.size(); ++i)
    std::printf("palisade gateway: listening on %s://%s%s\n",
                gw.config().listeners[i].health ? "http" : "https", bound[i].c_str(),
                gw.config().listeners[i].health ? " (health: /healthz, /metrics)" : "");
  if (const std::string waf = gw.wafDescription(); !waf.empty())
    std::printf("palisade gateway: WAF: %s\n", waf.c_str());
  std::printf(
      "palisade gateway: %zu route(s), %u worker(s); SIGHUP re-reads revoked_file and jwt keys; "
      "SIGINT or SIGTERM stops\n",
      gw.config().routes.size(), gw.config().workers);
  std::fflush(stdout);

  for (;;) {
    timespec one_second{1, 0};
    const int sig = sigtimedwait(&set, nullptr, &one_second);
    if (sig == SIGINT || sig == SIGTERM) break;
    const std::string msg = gw.reloadFiles(sig == SIGHUP);
    if (!msg.empty()) {
      std::printf("palisade gateway: %s\n", msg.c_str());
      std::fflush(stdout);
    }
  }
  std::printf("palisade gateway: stopping (requests in flight get up to 5 s)\n");
  std::fflush(stdout);
  gw.stop();
  if (have_events) {
    writer->stop();
    if (writer->dropped() > 0)
      std::fprintf(stderr, "palisade gateway: %llu audit events dropped (queue full)\n",
                   static_cast<unsigned long long>(writer->dropped()));
  }
}

}  // namespace

void registerGateway(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GatewayArgs>();
  CLI::App* cmd = app.add_subcommand(
      "gateway",
      "Run the API security gateway: a TLS reverse proxy with routes, authentication,\n"
      "limits and content checks, one audit event per request (docs/gateway.md)");
  cmd->add_option("-c,--config", a->config, "Gateway configuration (YAML)");
  cmd->add_flag("--check", a->check, "Only check the configuration, print what it sets up, exit");
  cmd->add_flag("--hash-key", a->hash_key,
                "Read an API key on standard input and print its sha256 for credentials.api_keys");
  cmd->add_option("-e,--events", a->events, "Append EVE JSON audit events here ('-' stdout)");
  cmd->add_option("--crs-test", a->crs_test,
                  "Run the OWASP CRS regression tests in DIR (FTW YAML) against the WAF, print "
                  "'N passed, N failed'");
  cmd->add_option("--paranoia", a->paranoia, "--crs-test: CRS paranoia level (1-4)")
      ->check(CLI::Range(1, 4));
  cmd->add_option("--threshold", a->threshold, "--crs-test: inbound anomaly score that blocks")
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("-v,--verbose", a->verbose, "--crs-test: list each failing test and why");
  cmd->add_option("--host", a->host, "Host name recorded in the tamper-evident log's file records");
  a->log.addFlags(cmd);
  cmd->callback([a, &ctx] { runGateway(*a, ctx); });
}

}  // namespace palisade::cli
