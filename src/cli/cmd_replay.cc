// palisade replay: run the data-plane pipeline over a capture and summarise, per
// layer and per drop reason, what passed and what was dropped.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "capture/recorder.h"
#include "cli/command.h"
#include "cli/log_options.h"
#include "cli/policy_input.h"
#include "core/strings.h"
#include "ddos/config.h"
#include "events/writer.h"
#include "io/capture.h"
#include "io/replay.h"
#include "pipeline/pipeline.h"
#include "pipeline/report.h"

namespace palisade::cli {
namespace {

struct ReplayArgs {
  std::string policy, pcap, out_pcap, events, host, capture_dir;
  bool json = false, reevaluate = false, capture_speed = false, quiet = false;
  TcpTracking tracking;
  LogArgs log;
  // Given on the command line, they override the policy's `conntrack:` values.
  std::optional<uint32_t> flow_log_interval, capacity, per_nic_limit;
  uint16_t vxlan_port = 4789;
  uint32_t burst = pipeline::Pipeline::kBurst;
  uint64_t seed = 0;
};

void printSummary(const pipeline::Pipeline& pl, const ReplayArgs& a, double secs) {
  const pipeline::Stats& s = pl.stats();
  std::printf("palisade replay: %llu packets (%llu bytes) from %s through %s\n",
              static_cast<unsigned long long>(s.packets), static_cast<unsigned long long>(s.bytes),
              a.pcap.c_str(), a.policy.c_str());
  std::printf(
      "  forwarded %llu, dropped %llu, answered by the switch %llu (ARP %llu, DHCP %llu, "
      "ND %llu)\n",
      static_cast<unsigned long long>(s.forwarded), static_cast<unsigned long long>(s.dropped),
      static_cast<unsigned long long>(s.answered), static_cast<unsigned long long>(s.arp_answered),
      static_cast<unsigned long long>(s.dhcp_answered),
      static_cast<unsigned long long>(s.nd_answered));
  if (!a.host.empty())
    std::printf("  on host %s: %llu packets from other hosts by VXLAN, %llu sent to them\n",
                a.host.c_str(), static_cast<unsigned long long>(s.vxlan_decapsulated),
                static_cast<unsigned long long>(s.vxlan_encapsulated));
  std::printf(
      "  flows: %llu created, %llu packets on established flows, %llu first packets "
      "evaluated, %.2f s\n",
      static_cast<unsigned long long>(s.flows_created),
      static_cast<unsigned long long>(s.flow_hits), static_cast<unsigned long long>(s.flow_misses),
      secs);
  if (s.fragments_forwarded || s.fragments_held)
    std::printf(
        "  fragments: %llu non-first IP fragments followed their datagram's first (%llu "
        "held for it: they came before it)\n",
        static_cast<unsigned long long>(s.fragments_forwarded),
        static_cast<unsigned long long>(s.fragments_held));
  if (s.ddos_attacks || s.ddos_targets || s.syn_cookies_sent || s.syn_cookies_invalid)
    std::printf(
        "  DDoS stage: %llu attack(s); SYN proxy: %llu cookies sent, %llu valid, %llu invalid, "
        "%llu connections completed; %llu NIC quarantine(s)\n",
        static_cast<unsigned long long>(s.ddos_attacks),
        static_cast<unsigned long long>(s.syn_cookies_sent),
        static_cast<unsigned long long>(s.syn_cookies_valid),
        static_cast<unsigned long long>(s.syn_cookies_invalid),
        static_cast<unsigned long long>(s.syn_proxied),
        static_cast<unsigned long long>(s.quarantines));
  if (const ids::EngineStats* is = pl.idsStats())
    std::printf(
        "  IDS (%s): %llu packets inspected, %llu passed uninspected under overload, %llu "
        "alert(s), %llu flow(s) dropped; %llu rules\n",
        pl.policy().model->ids.mode == policy::IdsMode::Ips ? "IPS" : "IDS, alerts only",
        static_cast<unsigned long long>(s.ids_inspected),
        static_cast<unsigned long long>(s.ids_bypassed),
        static_cast<unsigned long long>(s.ids_alerts),
        static_cast<unsigned long long>(s.ids_flows_dropped),
        static_cast<unsigned long long>(is->rules_ip_only + is->rules_packet + is->rules_stream +
                                        is->rules_tx));
  std::fputs(pipeline::layerTables(s).c_str(), stdout);
}

void run(const ReplayArgs& a, Context& ctx) {
  auto policy = loadCompiled(a.policy, "replay", ctx);
  if (!policy || !checkHost(*policy, a.host, "replay", ctx)) return;
  auto reader = io::openCapture(a.pcap);
  if (!reader) {
    std::fprintf(stderr, "palisade replay: %s\n", reader.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  IngressPorts ingress;

  std::unique_ptr<io::PacketWriter> out;
  if (!a.out_pcap.empty()) {
    std::vector<io::InterfaceInfo> ifaces;
    for (const pipeline::PortInfo& p : policy->ports) {
      io::InterfaceInfo i;
      i.name = p.name;
      ifaces.push_back(i);
    }
    auto w = io::createCapture(a.out_pcap, io::CaptureFormat::Pcapng, ifaces);
    if (!w) {
      std::fprintf(stderr, "palisade replay: %s\n", w.error().message.c_str());
      ctx.exit_code = kCannotRead;
      return;
    }
    out = std::move(*w);
  }

  std::unique_ptr<capture::Recorder> recorder;
  const size_t capture_rules = policy->model->capture.rules.size();
  if (!a.capture_dir.empty()) {
    auto r = capture::Recorder::create(policy, a.capture_dir);
    if (!r) {
      std::fprintf(stderr, "palisade replay: %s\n", r.error().message.c_str());
      ctx.exit_code =
          r.error().message.find(": capture rule '") != std::string::npos ? kFindings : kCannotRead;
      return;
    }
    recorder = std::move(*r);
    if (capture_rules == 0)
      std::fprintf(stderr, "palisade replay: --capture-dir: the policy has no capture rules\n");
  } else if (capture_rules > 0 && !a.quiet && !a.json) {
    std::fprintf(stderr,
                 "palisade replay: the policy's %zu capture rule(s) record nothing without "
                 "--capture-dir\n",
                 capture_rules);
  }

  events::EventWriter writer;
  events::EventQueue* queue = nullptr;
  if (!a.events.empty()) {
    auto sink = events::FileSink::open(a.events);
    if (!sink) {
      std::fprintf(stderr, "palisade replay: %s\n", sink.error().message.c_str());
      ctx.exit_code = kCannotRead;
      return;
    }
    writer.addSink(std::move(*sink));
  }
  if (a.log.enabled()) {
    auto log = a.log.openFor(a.host, "replay", ctx);
    if (!log) return;
    writer.addSink(std::move(log));
  }
  // Attack events to the policy's webhook too.
  auto started = ddos::startWebhook(*policy->model);
  if (!started) {
    std::fprintf(stderr, "palisade replay: %s\n", started.error().message.c_str());
    ctx.exit_code = kFindings;
    return;
  }
  std::unique_ptr<ddos::Webhook> hook = std::move(*started);
  if (hook) writer.addSink(std::make_unique<ddos::WebhookSink>(*hook));
  if (!a.events.empty() || a.log.enabled() || hook) {
    queue = &writer.addQueue(1u << 16);
    writer.start();
  }

  // The policy's conntrack settings, then what the command line says.
  pipeline::Config cfg = pipeline::withPolicySettings({}, *policy->model);
  if (a.capacity) cfg.conntrack.capacity = *a.capacity;
  if (a.per_nic_limit) cfg.conntrack.per_nic_limit = *a.per_nic_limit;
  a.tracking.apply(cfg);
  if (a.flow_log_interval) cfg.flow_log_interval_s = *a.flow_log_interval;
  cfg.conntrack.seed = a.seed;
  cfg.reevaluate_on_change = a.reevaluate;
  cfg.decoder.vxlan_port = a.vxlan_port;
  cfg.host = a.host;
  pipeline::Pipeline pl(policy, cfg, queue);

  io::ReplayOptions ropt;
  ropt.capture_speed = a.capture_speed;
  if (a.quiet || a.json) ropt.progress = io::ReplayOptions::Progress::Never;
  Status write_status;
  TimeNs last_ts = 0, last_tick = 0;
  uint64_t n = 0;
  // Packets go through the pipeline in bursts; the reader reuses its buffer, so
  // each frame is copied into the burst's own first.
  const size_t burst = a.burst;
  std::vector<std::vector<std::byte>> frames(burst);
  std::vector<pipeline::Pipeline::Input> inputs;
  inputs.reserve(burst);
  std::array<pipeline::Verdict, pipeline::Pipeline::kBurst> verdicts;
  // What left each port: the forwarded frame, and an IPS reject's answer.
  auto emit = [&](uint16_t in_port, Bytes frame_in, uint32_t wire_len, TimeNs ts, TimeNs out_ts,
                  const pipeline::Verdict& v) {
    if (recorder) recorder->offer(pl, in_port, frame_in, wire_len, ts, v);
    for (const auto& [frame, port] : {std::pair{v.frame, v.out_port}, {v.reply, v.reply_port}}) {
      if (!out || !write_status || frame.empty()) continue;
      io::RawPacket o;
      o.data = frame;
      o.ts_ns = out_ts;
      o.wire_len = static_cast<uint32_t>(frame.size());
      o.interface_id = port;
      o.link = pkt::LinkType::Ethernet;
      write_status = out->write(o);
    }
  };
  auto flush = [&] {
    const size_t done = pl.processBurst(inputs, verdicts);
    const std::span<const pipeline::Pipeline::Released> released = pl.released();
    size_t next = 0;
    for (size_t i = 0; i < done; ++i) {
      const pipeline::Pipeline::Input& in = inputs[i];
      emit(in.in_port, in.frame, in.wire_len, in.ts, in.ts, verdicts[i]);
      // Fragments that waited for their first leave right after it (at its time).
      for (; next < released.size() && released[next].after == i; ++next) {
        const pipeline::Pipeline::Released& r = released[next];
        emit(r.in_port, r.frame, r.wire_len, r.ts, in.ts, r.verdict);
      }
    }
    n += done;
    // Idle expiry and continue records every 64 packets; bursts end there, so
    // every burst size ticks between the same two packets. After a minute or
    // more of capture time with no tick (a sparse capture), the whole table is
    // swept, as the live switch's timer would have done meanwhile: flows end
    // (and their records carry their bytes) near when they went idle.
    if (done > 0 && (n & 63) == 0) {
      const TimeNs now = inputs[done - 1].ts;
      const bool idle_gap = now > last_tick + 60ull * 1000000000ull;
      pl.tick(now, idle_gap ? pl.flows().capacity() : 256);
      last_tick = now;
    }
    inputs.clear();
  };
  auto result = io::replay(**reader, ropt, [&](const io::RawPacket& raw) {
    const uint16_t port = ingress.portOf(**reader, raw, pl);
    std::vector<std::byte>& f = frames[inputs.size()];
    f.assign(raw.data.begin(), raw.data.end());
    inputs.push_back({raw.link, Bytes(f.data(), f.size()), raw.wire_len, port, raw.ts_ns});
    last_ts = raw.ts_ns;
    if (inputs.size() == burst || ((n + inputs.size()) & 63) == 0) flush();
  });
  flush();
  pl.finish(last_ts);
  if (out) {
    const Status st = out->close();
    if (write_status && !st) write_status = st;
  }
  if (queue) writer.stop();
  if (hook) {
    hook->close(10000);
    if (!a.quiet && !a.json) std::fprintf(stderr, "palisade replay: %s\n", hook->summary().c_str());
  }
  Status capture_status;
  if (recorder) capture_status = recorder->close();
  const double secs = result ? static_cast<double>(result->wall_ns) / 1e9 : 0.0;
  if (a.json) {
    nlohmann::json j = pipeline::statsJson(pl.stats(), pl.flows().size());
    if (queue) j["events"] = {{"written", writer.written()}, {"dropped", writer.dropped()}};
    if (recorder) {
      j["capture"] = nlohmann::json::array();
      for (const capture::RuleStats& st : recorder->stats())
        j["capture"].push_back({{"rule", st.name},
                                {"packets", st.packets},
                                {"bytes", st.bytes},
                                {"files", st.files},
                                {"deleted", st.deleted},
                                {"dropped", st.dropped}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else if (!a.quiet) {
    printSummary(pl, a, secs);
    if (queue) {
      std::vector<std::string> to;
      if (!a.events.empty()) to.push_back(a.events);
      if (a.log.enabled()) to.push_back(strCat(a.log.dir, " (hash-chained, signed)"));
      std::printf("\n  flow-log events: %llu written to %s, %llu dropped (queue full)\n",
                  static_cast<unsigned long long>(writer.written()), join(to, " and ").c_str(),
                  static_cast<unsigned long long>(writer.dropped()));
    }
    if (recorder) {
      std::printf("\n  capture to %s:\n", a.capture_dir.c_str());
      for (const capture::RuleStats& st : recorder->stats())
        std::printf(
            "    %-24s %8llu packets, %llu file(s)%s%s\n", st.name.c_str(),
            static_cast<unsigned long long>(st.packets), static_cast<unsigned long long>(st.files),
            st.deleted ? strCat(", ", std::to_string(st.deleted), " old deleted").c_str() : "",
            st.dropped ? strCat(", ", std::to_string(st.dropped), " NOT written").c_str() : "");
    }
  }
  if (!result) {
    std::fprintf(stderr, "palisade replay: %s: %s (the packets before it were replayed)\n",
                 a.pcap.c_str(), result.error().message.c_str());
    ctx.exit_code = kFindings;
    return;
  }
  if (!write_status) {
    std::fprintf(stderr, "palisade replay: %s\n", write_status.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  if (!capture_status) {
    std::fprintf(stderr, "palisade replay: capture: %s\n", capture_status.error().message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  if (recorder)
    for (const capture::RuleStats& st : recorder->stats())
      if (st.dropped) {
        std::fprintf(stderr, "palisade replay: capture rule '%s': %llu packets not written: %s\n",
                     st.name.c_str(), static_cast<unsigned long long>(st.dropped),
                     st.last_error.c_str());
        ctx.exit_code = kCannotRead;
        return;
      }
  if (auto e = writer.sinkError()) {
    std::fprintf(stderr, "palisade replay: events: %s\n", e->message.c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  ctx.exit_code = kOk;
}

}  // namespace

void registerReplay(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "replay", "Run the data-plane pipeline over a capture and summarise per layer and reason");
  cmd->footer(
      "The ingress port of each packet is its pcapng interface name ('uplink' or\n"
      "'tenant/nic'), else the NIC that owns its source MAC, else the uplink.\n"
      "--out-pcap writes what leaves each port (rewritten by NAT, plus the switch's\n"
      "ARP/DHCP answers) as pcapng with one interface per port.\n"
      "Exit status: 0 done, 1 invalid policy or corrupt capture, 3 unreadable input.");
  auto a = std::make_shared<ReplayArgs>();
  cmd->add_option("-p,--policy", a->policy, "Policy file (YAML)")->required();
  cmd->add_option("-r,--pcap", a->pcap, "Capture to replay (pcap or pcapng)")->required();
  cmd->add_option("-w,--out-pcap", a->out_pcap, "Write forwarded and answered frames here");
  cmd->add_option("-e,--events", a->events, "Append EVE JSON flow-log records here ('-' stdout)");
  cmd->add_option("--capture-dir", a->capture_dir,
                  "Record what the policy's capture rules select here: DIR/RULE/*.pcapng, "
                  "rotated and bounded by the policy's capture settings");
  a->log.addFlags(cmd);
  cmd->add_option("--flow-log-interval", a->flow_log_interval,
                  "Seconds between 'continue' records of a flow (0: begin/end only; default: the "
                  "policy's conntrack.flow_log_interval, else 60)");
  cmd->add_option(
      "--conntrack-capacity", a->capacity,
      "Connections tracked at most (default: the policy's conntrack.capacity, else 1048576)");
  cmd->add_option(
      "--per-nic-limit", a->per_nic_limit,
      "Connections per NIC, 0: no limit (default: the policy's conntrack.per_nic_limit, else 0)");
  a->tracking.addFlags(cmd);
  cmd->add_option("--host", a->host,
                  "The policy host the switch runs on: NICs of other hosts are reached by VXLAN "
                  "over the uplink and their traffic arrives that way (default: every NIC local)");
  cmd->add_option("--vxlan-port", a->vxlan_port, "UDP port of VXLAN")->capture_default_str();
  cmd->add_flag("--capture-speed", a->capture_speed, "Pace packets by their timestamps");
  cmd->add_option("--burst", a->burst,
                  "Packets processed together, their flow lookups overlapped (1: one by one; "
                  "the verdicts are the same)")
      ->check(CLI::Range(1, static_cast<int>(pipeline::Pipeline::kBurst)))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed,
                  "Fix the hash seeds (SNAT port choice, VXLAN source ports, flow ids) so runs "
                  "are reproducible byte for byte (0: random per run, the safe default against "
                  "crafted keys)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the summary as JSON");
  cmd->add_flag("-q,--quiet", a->quiet, "Print nothing but errors");
  cmd->callback([a, &ctx] { run(*a, ctx); });
}

}  // namespace palisade::cli
