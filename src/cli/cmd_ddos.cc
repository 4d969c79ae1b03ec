// palisade ddos -r PCAP: DDoS detection over a capture, with the policy's
// `ddos:` profiles or --protect prefixes; attack events to OUTDIR/eve.json.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/strings.h"
#include "core/time.h"
#include "ddos/config.h"
#include "ddos/detector.h"
#include "events/event.h"
#include "io/capture.h"
#include "packet/decoder.h"
#include "policy/loader.h"

namespace palisade::cli {

namespace {

struct DdosArgs {
  std::string pcap;
  std::string policy;
  std::vector<std::string> protect;
  std::string outdir;
  std::string mode;
  bool quiet = false;
};

std::string rate(double v, const char* unit) {
  char b[64];
  if (v >= 1e9)
    std::snprintf(b, sizeof b, "%.2f G%s", v / 1e9, unit);
  else if (v >= 1e6)
    std::snprintf(b, sizeof b, "%.2f M%s", v / 1e6, unit);
  else if (v >= 1e3)
    std::snprintf(b, sizeof b, "%.1f k%s", v / 1e3, unit);
  else
    std::snprintf(b, sizeof b, "%.0f %s", v, unit);
  return b;
}

void printAttack(const ddos::AttackInfo& a, TimeNs first_ts) {
  char when[40];
  when[formatTimeOfDay(a.start_ns, when)] = 0;
  std::string vectors;
  for (const auto& [v, n] : a.vectors)
    vectors += strCat(vectors.empty() ? "" : ", ", ddos::vectorName(v));
  std::printf("  #%llu %s %s %s (%s)\n", static_cast<unsigned long long>(a.id),
              a.target.toString().c_str(), ddos::toString(a.direction),
              std::string(ddos::vectorName(a.primary)).c_str(), vectors.c_str());
  std::printf(
      "     from %s (+%.1f s in the capture) for %.1f s%s, detected %.2f s after it began\n", when,
      static_cast<double>(a.start_ns - first_ts) / 1e9,
      static_cast<double>(a.end_ns - a.start_ns) / 1e9,
      a.cut_short ? " (still going when the capture ended)" : "",
      static_cast<double>(a.detected_ns - a.start_ns) / 1e9);
  std::printf(
      "     peak %s, %s; %llu packets, %llu dropped, %llu passed; protect '%s', profile '%s' "
      "(%s)\n",
      rate(a.peak_pps, "pps").c_str(), rate(a.peak_bps, "bit/s").c_str(),
      static_cast<unsigned long long>(a.packets), static_cast<unsigned long long>(a.dropped),
      static_cast<unsigned long long>(a.passed), a.protect.c_str(), a.profile.c_str(),
      ddos::toString(a.mode));
  std::printf("     sources: about %llu in its last second, entropy %.0f%%",
              static_cast<unsigned long long>(a.sources), a.entropy * 100);
  if (a.direction == ddos::Direction::Outbound)
    std::printf("; quarantine: %s", ddos::toString(a.quarantine));
  if (a.syn_ack_ratio >= 0) {
    std::printf("; handshakes completed for %.0f%% of SYNs", a.syn_ack_ratio * 100);
    if (a.syn_ack_baseline >= 0) std::printf(" (usually %.0f%%)", a.syn_ack_baseline * 100);
  }
  std::printf("\n");
  if (!a.top.empty()) {
    std::printf("     %s:",
                a.direction == ddos::Direction::Inbound ? "top sources" : "top victims");
    for (size_t i = 0; i < a.top.size() && i < 5; ++i)
      std::printf(" %s (%llu)", a.top[i].first.toString().c_str(),
                  static_cast<unsigned long long>(a.top[i].second));
    std::printf("\n");
  }
}

int runDdos(const DdosArgs& a) {
  ddos::DetectorConfig cfg;
  std::unique_ptr<ddos::Webhook> hook;
  if (!a.policy.empty()) {
    policy::LoadResult r = policy::loadPolicyFile(a.policy);
    if (!r.policy) {
      std::fprintf(stderr, "%s", r.diagnostics.format().c_str());
      std::fprintf(stderr, "palisade ddos: %s: the policy is invalid\n", a.policy.c_str());
      return kFindings;
    }
    cfg = ddos::configFromPolicy(*r.policy);
    auto started = ddos::startWebhook(*r.policy);
    if (!started) {
      std::fprintf(stderr, "palisade ddos: %s\n", started.error().message.c_str());
      return kFindings;
    }
    hook = std::move(*started);
  }
  const uint16_t fallback = static_cast<uint16_t>(cfg.profiles.size() - 1);  // "default"
  for (const std::string& text : a.protect) {
    auto pfx = Prefix::parse(text);
    if (!pfx) {
      std::fprintf(stderr, "palisade ddos: --protect %s: %s\n", text.c_str(),
                   pfx.error().message.c_str());
      return kUsage;
    }
    cfg.protect.push_back({*pfx, fallback, "--protect"});
  }
  if (cfg.protect.empty()) {
    std::fprintf(stderr,
                 "palisade ddos: nothing to protect: give --protect PREFIX or a --policy with a "
                 "ddos.protect section\n");
    return kUsage;
  }
  if (!a.mode.empty()) {
    ddos::Mode m = a.mode == "always-on"   ? ddos::Mode::AlwaysOn
                   : a.mode == "emergency" ? ddos::Mode::Emergency
                                           : ddos::Mode::OnDemand;
    for (ddos::Profile& p : cfg.profiles)
      p.mode = m;
  }

  auto reader = io::openCapture(a.pcap);
  if (!reader) {
    std::fprintf(stderr, "palisade ddos: %s\n", reader.error().message.c_str());
    return kCannotRead;
  }
  FILE* eve = nullptr;
  std::string eve_path;
  if (!a.outdir.empty() && !(eve = openEve(a.outdir, "w", "ddos", eve_path))) return kCannotRead;
  ddos::Detector det(cfg);
  bool write_failed = false;
  uint64_t events = 0;
  std::string line;
  det.setSink([&](const events::Event& e) {
    ++events;
    if (!eve && !hook) return;
    line.clear();
    events::formatEveJson(e, line);
    if (hook) hook->post(line);
    if (!eve) return;
    if (std::fwrite(line.data(), 1, line.size(), eve) != line.size()) write_failed = true;
  });

  pkt::Decoder dec;
  pkt::Packet p;
  io::RawPacket raw;
  uint64_t packets = 0, bytes = 0;
  TimeNs first = 0, last = 0;
  const TimeNs wall0 = monotonicNs();
  TimeNs next_progress = wall0 + 1'000'000'000;
  bool progress_shown = false;
  while ((*reader)->next(raw)) {
    ++packets;
    bytes += raw.wire_len;
    if (first == 0) first = raw.ts_ns;
    last = std::max(last, raw.ts_ns);
    dec.decode(raw.link, raw.data, raw.wire_len, p);
    det.process(p, raw.ts_ns);
    if (!a.quiet && (packets & 0xffff) == 0 && monotonicNs() > next_progress) {
      next_progress += 1'000'000'000;
      const uint64_t size = (*reader)->size();
      if (size)
        std::fprintf(stderr, "\r  %.0f%% of the capture, %llu attacks so far",
                     100.0 * static_cast<double>((*reader)->position()) / static_cast<double>(size),
                     static_cast<unsigned long long>(det.stats().attacks));
      progress_shown = true;
    }
  }
  det.finish(last);
  const double wall_s = static_cast<double>(monotonicNs() - wall0) / 1e9;
  if (progress_shown) std::fprintf(stderr, "\r%60s\r", "");
  if (eve && std::fclose(eve) != 0) write_failed = true;
  if (hook) {
    hook->close(10000);
    if (!a.quiet) std::printf("%s\n", hook->summary().c_str());
  }
  if (write_failed) {
    std::fprintf(stderr, "palisade ddos: writing %s failed\n", eve_path.c_str());
    return kCannotRead;
  }
  const ddos::DetectorStats& s = det.stats();
  if (!a.quiet) {
    std::printf(
        "capture: %llu packets, %.1f MB over %.1f s of capture time, read in %.2f s "
        "(%.2f Mpps)\n",
        static_cast<unsigned long long>(packets), static_cast<double>(bytes) / 1e6,
        static_cast<double>(last - first) / 1e9, wall_s,
        wall_s > 0 ? static_cast<double>(packets) / wall_s / 1e6 : 0.0);
    std::printf("protected: %zu prefixes; %llu packets to or from them, %llu addresses tracked",
                cfg.protect.size(), static_cast<unsigned long long>(s.watched),
                static_cast<unsigned long long>(s.targets));
    if (s.untracked)
      std::printf(", %llu packets of addresses past the table's %u",
                  static_cast<unsigned long long>(s.untracked), cfg.max_targets);
    if (s.handshakes)
      std::printf("; %llu TCP handshakes to them completed",
                  static_cast<unsigned long long>(s.handshakes));
    if (s.flash_crowds)
      std::printf("; %llu SYN surges taken for clients (their handshakes completed)",
                  static_cast<unsigned long long>(s.flash_crowds));
    std::printf("\n");
    std::printf("attacks: %llu; %llu packets the scrubbing path would drop",
                static_cast<unsigned long long>(s.attacks),
                static_cast<unsigned long long>(s.dropped));
    if (s.limited)
      std::printf(", %llu over the profiles' rate limits",
                  static_cast<unsigned long long>(s.limited));
    if (eve)
      std::printf("; %llu events in %s", static_cast<unsigned long long>(events), eve_path.c_str());
    std::printf("\n");
    for (const ddos::AttackInfo& at : det.attacks())
      printAttack(at, first);
  }
  if (const auto& err = (*reader)->error()) {
    std::fprintf(stderr, "palisade ddos: the capture ended early: %s\n", err->message.c_str());
    return kFindings;
  }
  return kOk;
}

}  // namespace

void registerDdos(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<DdosArgs>();
  CLI::App* cmd = app.add_subcommand(
      "ddos",
      "Detect DDoS attacks in a capture: floods, reflection and amplification, per protected "
      "address, with the policy's ddos profiles");
  cmd->add_option("-r,--read", args->pcap, "Capture file (pcap or pcapng)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--policy", args->policy,
                  "Policy whose ddos section gives the profiles and protected prefixes");
  cmd->add_option("--protect", args->protect,
                  "Protect this prefix with the default profile (repeatable; adds to the "
                  "policy's)");
  cmd->add_option("--mode", args->mode, "Override every profile's mode")
      ->check(CLI::IsMember({"on-demand", "always-on", "emergency"}));
  cmd->add_option("-l,--outdir", args->outdir, "Write the attack events to OUTDIR/eve.json");
  cmd->add_flag("-q,--quiet", args->quiet, "No summary and no progress");
  cmd->footer(
      "\nEach protected address is watched in both directions. Every 100 ms of capture time "
      "its last second, per vector class (syn, synack, ack_rst, udp, amplification, icmp, "
      "fragment, other), is compared with the profile's floor or, once learned, with its own "
      "baseline. Start, update and end events are EVE JSON (event_type ddos); the summary "
      "lists each attack with when it began and when it was detected.\n\nExit: 0 done, 1 the "
      "policy is invalid or the capture is corrupt, 2 bad usage, 3 an input could not be "
      "read.");
  cmd->callback([args, &ctx] { ctx.exit_code = runDdos(*args); });
}

}  // namespace palisade::cli
