// palisade run: the switch on live interfaces (AF_PACKET); palisade stats and
// palisade reload talk to a running one over its control socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "cli/command.h"
#include "cli/log_options.h"
#include "cli/policy_input.h"
#include "core/strings.h"
#include "ddos/config.h"
#include "live/engine.h"
#include "report/report.h"

namespace palisade::cli {
namespace {

constexpr const char* kDefaultControl = "/run/palisade.sock";

struct RunArgs {
  std::string policy, uplink, host, control = kDefaultControl, metrics, events;
  std::vector<std::string> uplink_addresses, gateways;  // at most one per address family
  std::vector<std::string> ports;
  std::string report_dir, report_every = "month", capture_dir;
  bool report_pdf = false;
  unsigned workers = 0;
  bool passive = false, reevaluate = false, keep_privileges = false;
  TcpTracking tracking;
  LogArgs log;
  uint16_t vxlan_port = 4789;
};

// For start and every reload: the policy's problems travel in the error.
Result<std::shared_ptr<const pipeline::CompiledPolicy>> loadPolicy(const std::string& path,
                                                                   uint32_t generation) {
  std::string diagnostics;
  auto r = compilePolicyFile(path, generation, &diagnostics);
  if (r || diagnostics.empty()) return r;
  while (!diagnostics.empty() && diagnostics.back() == '\n')
    diagnostics.pop_back();
  return Error{strCat(r.error().message, ":\n", diagnostics)};
}

void run(const RunArgs& a, Context& ctx) {
  live::EngineConfig cfg;
  cfg.policy_path = a.policy;
  cfg.uplink = a.uplink;
  cfg.workers = a.workers ? a.workers : std::max(1u, std::thread::hardware_concurrency());
  cfg.passive = a.passive;
  cfg.control_path = a.control;
  cfg.metrics = a.metrics;
  cfg.events_path = a.events;
  cfg.capture_dir = a.capture_dir;
  cfg.drop_privileges = !a.keep_privileges;
  for (const std::string& p : a.ports) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      std::fprintf(stderr, "palisade run: --port %s: expected TENANT/NIC=INTERFACE\n", p.c_str());
      ctx.exit_code = kUsage;
      return;
    }
    cfg.ports.push_back({p.substr(0, eq), p.substr(eq + 1)});
  }
  for (const std::string& ua : a.uplink_addresses) {
    auto pfx = Prefix::parseNetworkOf(ua);
    if (!pfx) {
      std::fprintf(stderr, "palisade run: --uplink-address: %s\n", pfx.error().message.c_str());
      ctx.exit_code = kUsage;
      return;
    }
    live::UplinkFamily& fam = cfg.uplink_l2.of(pfx->isV4());
    if (fam.address) {
      std::fprintf(stderr,
                   "palisade run: --uplink-address %s: a second %s address (one per family)\n",
                   ua.c_str(), pfx->isV4() ? "IPv4" : "IPv6");
      ctx.exit_code = kUsage;
      return;
    }
    fam.subnet = *pfx;
    fam.address = IpAddr::parse(ua.substr(0, ua.find('/')));
  }
  for (const std::string& g : a.gateways) {
    const std::optional<IpAddr> gw = IpAddr::parse(g);
    if (!gw || gw->isUnspecified() || gw->isMulticast()) {
      std::fprintf(stderr, "palisade run: --gateway %s: not a unicast IP address\n", g.c_str());
      ctx.exit_code = kUsage;
      return;
    }
    live::UplinkFamily& fam = cfg.uplink_l2.of(gw->isV4());
    if (fam.gateway) {
      std::fprintf(stderr, "palisade run: --gateway %s: a second %s gateway (one per family)\n",
                   g.c_str(), gw->isV4() ? "IPv4" : "IPv6");
      ctx.exit_code = kUsage;
      return;
    }
    fam.gateway = gw;
  }
  cfg.load = loadPolicy;
  cfg.settings = [a](const policy::Policy& p) {
    pipeline::Config c = pipeline::withPolicySettings({}, p);
    a.tracking.apply(c);
    c.reevaluate_on_change = a.reevaluate;
    c.decoder.vxlan_port = a.vxlan_port;
    c.host = a.host;
    return c;
  };
  // The host must name one of the policy's (checked once, with the list).
  if (!a.host.empty()) {
    auto pol = loadPolicy(a.policy, 1);
    if (pol && !checkHost(**pol, a.host, "run", ctx)) return;
    // If the host exists, the policy without the underlay address is the
    // uplink's own address unless --uplink-address says otherwise.
    if (pol) {
      const IpAddr& underlay = (*pol)->hosts[(*pol)->hostByName(a.host)].underlay_ip;
      live::UplinkFamily& fam = cfg.uplink_l2.of(underlay.isV4());
      if (!fam.address) fam.address = underlay;
    }
  }

  std::unique_ptr<report::ReportScheduler> reports;
  if (!a.report_dir.empty()) {
    if (!a.log.enabled()) {
      std::fprintf(stderr, "palisade run: --report-dir reads the log: give --log-dir too\n");
      ctx.exit_code = kUsage;
      return;
    }
    report::ReportScheduler::Config rc;
    rc.inputs = {a.log.dir};
    rc.dir = a.report_dir;
    rc.every = a.report_every == "day" ? report::Every::Day : report::Every::Month;
    rc.pdf = a.report_pdf;
    reports = std::make_unique<report::ReportScheduler>(std::move(rc));
  }
  if (a.log.enabled()) {
    auto log = a.log.openFor(a.host, "run", ctx);
    if (!log) return;
    cfg.sinks.push_back(std::move(log));
  }
  // Attack events to the policy's webhook too (as the policy says at start).
  std::unique_ptr<ddos::Webhook> hook;
  if (auto pol = loadPolicy(a.policy, 1)) {
    auto started = ddos::startWebhook(*(*pol)->model);
    if (!started) {
      std::fprintf(stderr, "palisade run: %s\n", started.error().message.c_str());
      ctx.exit_code = kFindings;
      return;
    }
    hook = std::move(*started);
    if (hook) cfg.sinks.push_back(std::make_unique<ddos::WebhookSink>(*hook));
  }
  const unsigned workers = cfg.workers;
  const bool drop_privileges = cfg.drop_privileges;
  live::Engine engine(std::move(cfg));
  if (Status st = engine.start(); !st) {
    std::fprintf(stderr, "palisade run: %s\n", st.error().message.c_str());
    const std::string& m = st.error().message;
    ctx.exit_code = m.find("invalid") != std::string::npos ? kFindings
                    : m.find("--") == 0                    ? kUsage
                                                           : kCannotRead;
    return;
  }
  std::fprintf(stderr,
               "palisade run: switching %zu port(s) with %u worker(s)%s; control socket %s%s%s; "
               "%s\n",
               engine.portNames().size(), workers, a.passive ? " (passive)" : "", a.control.c_str(),
               a.metrics.empty() ? "" : ", metrics http://",
               a.metrics.empty() ? "" : (a.metrics + "/metrics").c_str(),
               drop_privileges ? "capabilities dropped" : "capabilities kept");
  if (reports) reports->start();
  Status ran = engine.run();
  if (reports) reports->stop();
  if (hook) {
    hook->close(5000);
    std::fprintf(stderr, "palisade run: %s\n", hook->summary().c_str());
  }
  if (Status st = std::move(ran); !st) {
    std::fprintf(stderr, "palisade run: %s\n", st.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  std::fputs(engine.statsText().c_str(), stdout);
  ctx.exit_code = kOk;
}

// Sends one command to a running switch and prints the answer.
int control(const std::string& path, const std::string& command, const char* cmd) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof sa.sun_path) {
    std::fprintf(stderr, "palisade %s: %s: cannot open a unix socket\n", cmd, path.c_str());
    if (fd >= 0) close(fd);
    return kCannotRead;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::fprintf(stderr, "palisade %s: %s: %s (is 'palisade run' running with this --control?)\n",
                 cmd, path.c_str(), std::strerror(errno));
    close(fd);
    return kCannotRead;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string line = command + "\n";
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "palisade %s: %s: %s\n", cmd, path.c_str(), std::strerror(errno));
    close(fd);
    return kCannotRead;
  }
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<size_t>(n));
  close(fd);
  if (answer.rfind("error ", 0) == 0) {
    std::fprintf(stderr, "palisade %s: %s", cmd, answer.c_str() + 6);
    return kFindings;
  }
  if (answer.rfind("ok ", 0) == 0) answer.erase(0, 3);
  std::fputs(answer.c_str(), stdout);
  return answer.empty() ? kCannotRead : kOk;
}

}  // namespace

void registerRun(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "run", "Be the switch: forward between live interfaces through the layered pipeline");
  cmd->footer(
      "Each --port plugs a policy NIC into an interface (a VM's tap or veth); --uplink\n"
      "carries Internet, on-premises and VXLAN traffic. Needs CAP_NET_RAW (root) to open\n"
      "the ports; every capability is dropped once they are open. Turn off GRO/TSO/GSO on\n"
      "the ports ('ethtool -K IF gro off tso off gso off'): frames larger than the MTU\n"
      "are dropped and counted (oversize).\n"
      "SIGHUP or 'palisade reload' reloads the policy; SIGINT/SIGTERM stop cleanly and\n"
      "print the final statistics.\n"
      "Exit status: 0 stopped cleanly, 1 invalid policy, 2 usage error, 3 an interface or\n"
      "socket could not be opened.");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("-p,--policy", a->policy, "Policy file (YAML)")->required();
  cmd->add_option("--port", a->ports, "TENANT/NIC=INTERFACE: a NIC of the policy and its interface")
      ->required();
  cmd->add_option("--uplink", a->uplink, "The uplink interface")->required();
  cmd->add_option("--host", a->host,
                  "The policy host this switch is: NICs of other hosts are reached by VXLAN");
  cmd->add_option("--uplink-address", a->uplink_addresses,
                  "ADDRESS/LEN: the switch's address and subnet on the uplink, one per address "
                  "family (ARP requests and neighbour solicitations come from it; default: the "
                  "host's underlay address, and for IPv6 the uplink MAC's link-local address)");
  cmd->add_option("--gateway", a->gateways,
                  "Next hop on the uplink for destinations not learnt and outside the uplink "
                  "subnet, one per address family (IPv6 default: the router advertising itself)");
  cmd->add_option("-w,--workers", a->workers,
                  "Worker threads (default: one per CPU); both directions of a flow meet on one");
  cmd->add_flag("--passive", a->passive, "Inspect only (a mirror port): never send anything");
  cmd->add_option("--control", a->control, "Control socket for 'palisade stats' and 'reload'")
      ->capture_default_str();
  cmd->add_option("--metrics", a->metrics,
                  "Serve Prometheus metrics on this loopback ADDRESS:PORT (e.g. 127.0.0.1:9469)");
  cmd->add_option("-e,--events", a->events, "Append EVE JSON flow-log records here ('-' stdout)");
  a->log.addFlags(cmd);
  a->tracking.addFlags(cmd);
  cmd->add_flag("--reevaluate", a->reevaluate,
                "On reload, established flows the new policy denies are dropped (default: kept)");
  cmd->add_option("--vxlan-port", a->vxlan_port, "UDP port of VXLAN")->capture_default_str();
  cmd->add_option("--capture-dir", a->capture_dir,
                  "Record what the policy's capture rules select here: DIR/RULE/*.pcapng, "
                  "rotated and bounded by the policy's capture settings (per worker)");
  cmd->add_option("--report-dir", a->report_dir,
                  "Write scheduled reports of the log (--log-dir) here: at start and each "
                  "period after, the last complete period's, when not there yet");
  cmd->add_option("--report-every", a->report_every, "Report period: month or day")
      ->check(CLI::IsMember({"month", "day"}))
      ->capture_default_str();
  cmd->add_flag("--report-pdf", a->report_pdf, "Scheduled reports in PDF too (needs Chromium)");
  cmd->add_flag("--keep-privileges", a->keep_privileges,
                "Do not drop capabilities after opening the ports (debugging only)");
  cmd->callback([a, &ctx] { run(*a, ctx); });

  auto* stats = app.add_subcommand("stats", "Statistics of a running 'palisade run'");
  auto sa = std::make_shared<std::pair<std::string, bool>>(kDefaultControl, false);
  stats->add_option("--control", sa->first, "Its control socket")->capture_default_str();
  stats->add_flag("--json", sa->second, "As JSON");
  stats->footer("Per port, per layer and per drop reason. Exit status: 0 ok, 3 not reachable.");
  stats->callback([sa, &ctx] {
    ctx.exit_code = control(sa->first, sa->second ? "stats json" : "stats", "stats");
  });

  auto* reload = app.add_subcommand("reload", "Reload the policy of a running 'palisade run'");
  auto ra = std::make_shared<std::string>(kDefaultControl);
  reload->add_option("--control", *ra, "Its control socket")->capture_default_str();
  reload->footer(
      "The running switch rereads its policy file; established flows stay unless it runs\n"
      "with --reevaluate. Exit status: 0 reloaded, 1 refused (the old policy stays), 3 not\n"
      "reachable.");
  reload->callback([ra, &ctx] { ctx.exit_code = control(*ra, "reload", "reload"); });
}

}  // namespace palisade::cli
