// palisade ids -r PCAP -S RULES -l OUTDIR: detection over a capture, and
// palisade ids verify DIR: the suricata-verify runner.
#include "cli/ids_run.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <poll.h>

#include <linux/filter.h>
#include <atomic>
#include <csignal>

#include "core/strings.h"
#include "core/time.h"
#include "ids/eve.h"
#include "ids/offline.h"
#include "live/packet_socket.h"
#include "packet/decoder.h"

namespace palisade::cli {

namespace fs = std::filesystem;

namespace {

bool g_progress_shown = false;

void printProgress(uint64_t done, uint64_t total) {
  g_progress_shown = true;
  if (total)
    std::fprintf(stderr, "\r  %.0f%% of the capture",
                 100.0 * static_cast<double>(done) / static_cast<double>(total));
  else
    std::fprintf(stderr, "\r  %llu MB read", static_cast<unsigned long long>(done >> 20));
}

}  // namespace

int runIds(const IdsRunArgs& a) {
  {
    // A bad setting is a usage error, found before anything is read.
    ids::EngineConfig cfg;
    ids::Vars vars = ids::Vars::defaults();
    for (const std::string& s : a.sets) {
      if (Status st = ids::applySetting(cfg, vars, s); !st) {
        std::fprintf(stderr, "palisade ids: %s\n", st.error().message.c_str());
        return kUsage;
      }
    }
  }
  std::string eve_path;
  FILE* eve = openEve(a.outdir, "w", "ids", eve_path);
  if (!eve) return kCannotRead;
  ids::OfflineInput in;
  in.pcap = a.pcap;
  in.rule_files = a.rules;
  in.sets = a.sets;
  in.profile_rules = a.profile_rules;
  in.simulate_ips = a.simulate_ips;
  in.eve_types = a.eve_type_bits;
  in.classification = a.classification;
  if (in.classification.empty() && !a.rules.empty()) {
    const auto beside = fs::path(a.rules.front()).parent_path() / "classification.config";
    if (fs::exists(beside)) in.classification = beside.string();
  }
  if (a.progress) in.progress = printProgress;
  bool write_failed = false;
  auto r = ids::runOffline(in, [&](std::string_view line) {
    if (std::fwrite(line.data(), 1, line.size(), eve) != line.size()) write_failed = true;
  });
  if (std::fclose(eve) != 0) write_failed = true;
  if (g_progress_shown) std::fprintf(stderr, "\r%40s\r", "");
  if (!r) {
    std::fprintf(stderr, "palisade ids: %s\n", r.error().message.c_str());
    return kCannotRead;
  }
  if (write_failed) {
    std::fprintf(stderr, "palisade ids: writing %s failed\n", eve_path.c_str());
    return kCannotRead;
  }
  const ids::OfflineResult& res = *r;
  const ids::EngineStats& s = res.stats;
  if (!a.quiet) {
    std::printf("rules: %zu loaded, %zu refused (palisade ids check-rules names them), %.0f ms\n",
                res.rules.rules.size(), res.rules.rejected.size(), res.load_ms);
    std::printf(
        "  %llu ip-only, %llu packet, %llu stream, %llu transaction; %llu fast patterns "
        "(%.1f MB of Hyperscan databases), %llu pcre JIT-compiled, built in %.0f ms\n",
        static_cast<unsigned long long>(s.rules_ip_only),
        static_cast<unsigned long long>(s.rules_packet),
        static_cast<unsigned long long>(s.rules_stream),
        static_cast<unsigned long long>(s.rules_tx),
        static_cast<unsigned long long>(s.prefilter_patterns),
        static_cast<double>(s.prefilter_bytes) / 1e6, static_cast<unsigned long long>(s.pcre_jit),
        res.build_ms);
    if (!s.prefilter_error.empty())
      std::printf("  prefilter: %s; those rules run on every buffer\n", s.prefilter_error.c_str());
    const double secs = res.run_ms / 1000.0;
    std::printf("capture: %llu packets, %.1f MB in %.2f s (%.2f Gbit/s, %.3f Mpps)\n",
                static_cast<unsigned long long>(res.packets), static_cast<double>(res.bytes) / 1e6,
                secs, secs > 0 ? static_cast<double>(res.bytes) * 8 / secs / 1e9 : 0.0,
                secs > 0 ? static_cast<double>(res.packets) / secs / 1e6 : 0.0);
    const double np = res.packets ? static_cast<double>(res.packets) : 1.0;
    std::printf(
        "prefilter: %.1f candidate rules evaluated per packet (%.1f packet, %.1f stream, "
        "%.1f transaction)\n",
        static_cast<double>(s.candidates) / np, static_cast<double>(s.candidates_packet) / np,
        static_cast<double>(s.candidates_stream) / np, static_cast<double>(s.candidates_tx) / np);
    std::printf("  bytes scanned: %.1f MB packets, %.1f MB streams, %.1f MB app-layer buffers\n",
                static_cast<double>(s.scanned_packet) / 1e6,
                static_cast<double>(s.scanned_stream) / 1e6,
                static_cast<double>(s.scanned_tx) / 1e6);
    std::printf(
        "flows: %llu (%llu TCP sessions, %llu picked up mid-stream); app: %llu http, %llu "
        "dns, %llu tls (%llu went encrypted: payload not inspected, as "
        "app-layer.protocols.tls.encryption-handling says)\n",
        static_cast<unsigned long long>(s.flows), static_cast<unsigned long long>(s.tcp_sessions),
        static_cast<unsigned long long>(s.tcp_midstream),
        static_cast<unsigned long long>(s.app_http), static_cast<unsigned long long>(s.app_dns),
        static_cast<unsigned long long>(s.app_tls),
        static_cast<unsigned long long>(s.tls_encrypted));
    if (s.defrag.fragments) {
      const pkt::ReassemblyStats& d = s.defrag;
      std::printf(
          "defrag: %llu fragments, %llu datagrams reassembled and inspected whole; %llu "
          "overlapping (first copy kept); given up: %llu incomplete, %llu inconsistent, %llu with "
          "too many fragments; refused: %llu over the memory cap, %llu with the table full\n",
          static_cast<unsigned long long>(d.fragments),
          static_cast<unsigned long long>(d.reassembled),
          static_cast<unsigned long long>(d.overlaps), static_cast<unsigned long long>(d.timeouts),
          static_cast<unsigned long long>(d.inconsistent),
          static_cast<unsigned long long>(d.too_many),
          static_cast<unsigned long long>(d.memcap_drops),
          static_cast<unsigned long long>(d.table_full));
    }
    std::printf("alerts: %llu written to %s (%llu suppressed by thresholds)",
                static_cast<unsigned long long>(s.alerts), eve_path.c_str(),
                static_cast<unsigned long long>(s.suppressed));
    if (s.tagged_packets)
      std::printf("; %llu tagged packets", static_cast<unsigned long long>(s.tagged_packets));
    std::printf("\n");
    if (a.simulate_ips)
      std::printf(
          "IPS (simulated): %llu packets dropped by a rule, %llu flows stopped, %llu later "
          "packets of those flows dropped\n",
          static_cast<unsigned long long>(s.dropped_packets),
          static_cast<unsigned long long>(s.dropped_flows),
          static_cast<unsigned long long>(s.dropped_flow_packets));
  }
  if (!res.profile.empty()) {
    std::printf("\nmost evaluated rules (evaluated, matched, sid, msg):\n");
    for (const auto& p : res.profile)
      std::printf("  %10llu %8llu  %u  %s\n", static_cast<unsigned long long>(p.evaluated),
                  static_cast<unsigned long long>(p.matched), p.rule->sid, p.rule->msg.c_str());
  }
  if (!res.read_error.empty()) {
    std::fprintf(stderr, "palisade ids: the capture ended early: %s\n", res.read_error.c_str());
    return kFindings;
  }
  return kOk;
}

namespace {

std::atomic<bool> g_stop{false};

void onStop(int) {
  g_stop.store(true);
}

}  // namespace

int runIdsLive(const IdsRunArgs& a) {
  ids::OfflineInput in;
  in.rule_files = a.rules;
  in.sets = a.sets;
  in.classification = a.classification;
  if (in.classification.empty() && !a.rules.empty()) {
    const auto beside = fs::path(a.rules.front()).parent_path() / "classification.config";
    if (fs::exists(beside)) in.classification = beside.string();
  }
  ids::PreparedRules prep;
  if (Status st = ids::prepareRules(in, prep); !st) {
    const bool setting = st.error().message.starts_with("--set");
    std::fprintf(stderr, "palisade ids: %s\n", st.error().message.c_str());
    return setting ? kUsage : kCannotRead;
  }
  auto info = live::interfaceInfo(a.iface);
  if (!info) {
    std::fprintf(stderr, "palisade ids: %s\n", info.error().message.c_str());
    return kCannotRead;
  }
  // One socket, one worker: the fanout program sends every frame to it.
  const sock_filter all_to_zero[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  const auto group = static_cast<uint16_t>(0x8000 | (getpid() & 0x7fff));
  auto sock = live::PacketSocket::open(*info, {}, group, all_to_zero);
  if (!sock) {
    std::fprintf(stderr, "palisade ids: %s\n", sock.error().message.c_str());
    return kCannotRead;
  }
  std::string eve_path;
  FILE* eve = openEve(a.outdir, "a", "ids", eve_path);
  if (!eve) return kCannotRead;
  const ids::ClassificationTable* classes = prep.has_classes ? &prep.classes : nullptr;
  uint64_t alerts = 0;
  bool write_failed = false;
  std::string line;
  ids::Engine engine(prep.rules.rules, prep.cfg, [&](const ids::AlertInfo& al) {
    line.clear();
    ids::appendAlertJson(line, al, classes);
    ++alerts;
    if (std::fwrite(line.data(), 1, line.size(), eve) != line.size()) write_failed = true;
  });
  engine.setTagSink([&](const ids::TaggedPacket& t) {
    line.clear();
    ids::appendPacketJson(line, t, static_cast<uint32_t>(pkt::LinkType::Ethernet));
    if (std::fwrite(line.data(), 1, line.size(), eve) != line.size()) write_failed = true;
  });
  if (const uint32_t types = a.eve_type_bits; types != 0) {
    engine.setEventSink([&, types](const ids::AppEvent& e) {
      if (!(types & (1u << static_cast<uint32_t>(e.kind)))) return;
      line.clear();
      ids::appendEventJson(line, e);
      if (std::fwrite(line.data(), 1, line.size(), eve) != line.size()) write_failed = true;
    });
  }
  struct sigaction sa {};
  sa.sa_handler = onStop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  if (!a.quiet)
    std::fprintf(stderr, "palisade ids: %zu rules on %s (passive), alerts to %s; Ctrl-C stops\n",
                 prep.rules.rules.size(), a.iface.c_str(), eve_path.c_str());
  pkt::Decoder decoder;
  pkt::Packet p;
  uint64_t packets = 0, bytes = 0, drops = 0;
  const TimeNs start = monotonicNs();
  const TimeNs limit = a.duration_s > 0 ? static_cast<TimeNs>(a.duration_s * 1e9) : 0;
  while (!g_stop.load() && !(limit && monotonicNs() - start >= limit)) {
    pollfd pfd{sock->fd(), POLLIN, 0};
    ::poll(&pfd, 1, 100);
    size_t n;
    do {
      n = sock->receive(256, [&](live::RxFrame& f) {
        ++packets;
        bytes += f.wire_len;
        decoder.decode(pkt::LinkType::Ethernet, f.data, f.wire_len, p);
        engine.packet(p, wallClockNs(), packets);
      });
      if (n) sock->release();
    } while (n);
    std::fflush(eve);
    drops += sock->kernelDrops();
  }
  engine.finish();
  if (std::fclose(eve) != 0) write_failed = true;
  if (!a.quiet) {
    const auto& s = engine.stats();
    std::printf(
        "%s: %llu packets, %.1f MB, %llu dropped by the kernel (ring full); %llu flows, "
        "%llu http, %llu dns, %llu tls; %llu alerts to %s\n",
        a.iface.c_str(), static_cast<unsigned long long>(packets), static_cast<double>(bytes) / 1e6,
        static_cast<unsigned long long>(drops), static_cast<unsigned long long>(s.flows),
        static_cast<unsigned long long>(s.app_http), static_cast<unsigned long long>(s.app_dns),
        static_cast<unsigned long long>(s.app_tls), static_cast<unsigned long long>(alerts),
        eve_path.c_str());
  }
  if (write_failed) {
    std::fprintf(stderr, "palisade ids: writing %s failed\n", eve_path.c_str());
    return kCannotRead;
  }
  return kOk;
}

namespace {

// A dotted path into an EVE event ("alert.signature_id", "flow.exception_policy[0].target").
const nlohmann::json* lookup(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* cur = &j;
  std::string_view rest = path;
  while (!rest.empty()) {
    const size_t dot = rest.find('.');
    std::string_view part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    std::optional<size_t> index;
    if (const size_t br = part.find('['); br != std::string_view::npos && part.back() == ']') {
      index = std::strtoul(std::string(part.substr(br + 1)).c_str(), nullptr, 10);
      part = part.substr(0, br);
    }
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(std::string(part));
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (index) {
      if (!cur->is_array() || *index >= cur->size()) return nullptr;
      cur = &(*cur)[*index];
    }
  }
  return cur;
}

bool sameValue(const nlohmann::json& have, const YAML::Node& want) {
  const std::string w = want.as<std::string>();
  if (have.is_string()) return have.get<std::string>() == w;
  if (have.is_number_integer() || have.is_number_unsigned()) {
    char* end = nullptr;
    const long long v = std::strtoll(w.c_str(), &end, 0);
    return end && *end == '\0' && have.get<long long>() == v;
  }
  if (have.is_boolean()) return (w == "true") == have.get<bool>();
  return have.dump() == w;
}

struct CaseResult {
  bool ran = false, passed = false;
  std::vector<std::string> failures, notes;
  size_t checked = 0, skipped = 0;
  std::string error;
};

std::vector<std::string> filesWithExt(const fs::path& dir, std::string_view ext) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ext) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Settings of the case's own suricata.yaml that change detection.
void settingsFromYaml(const fs::path& yaml, std::vector<std::string>& sets) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml.string());
  } catch (const std::exception&) {
    return;
  }
  if (!root.IsMap()) return;
  for (const char* group : {"address-groups", "port-groups"}) {
    const YAML::Node g = root["vars"][group];
    if (!g.IsMap()) continue;
    for (const auto& kv : g)
      sets.push_back(strCat("vars.", group, ".", kv.first.as<std::string>(), "=",
                            kv.second.as<std::string>()));
  }
  // A map at each step: subscripting a scalar throws. reset() rebinds (an
  // assignment would write into the document).
  YAML::Node tls = root["app-layer"];
  for (const char* step : {"protocols", "tls"})
    tls.reset(tls.IsMap() ? tls[step] : YAML::Node());
  if (tls.IsMap())
    for (const char* key : {"encryption-handling", "encrypt-handling"})
      if (tls[key].IsScalar())
        sets.push_back(
            strCat("app-layer.protocols.tls.encryption-handling=", tls[key].as<std::string>()));
  const YAML::Node stream = root["stream"];
  if (stream.IsMap()) {
    if (stream["midstream"])
      sets.push_back(strCat("stream.midstream=", stream["midstream"].as<std::string>()));
    if (stream["inline"])
      sets.push_back(strCat("stream.inline=", stream["inline"].as<std::string>()));
    if (stream["reassembly"].IsMap() && stream["reassembly"]["depth"])
      sets.push_back(
          strCat("stream.reassembly.depth=", stream["reassembly"]["depth"].as<std::string>()));
  }
}

CaseResult runCase(const fs::path& dir, bool verbose) {
  CaseResult cr;
  YAML::Node test;
  try {
    test = YAML::LoadFile((dir / "test.yaml").string());
  } catch (const std::exception& e) {
    cr.error = strCat("test.yaml: ", e.what());
    return cr;
  }
  ids::OfflineInput in;
  if (test["pcap"] && test["pcap"].IsScalar()) {
    in.pcap = (dir / test["pcap"].as<std::string>()).lexically_normal().string();
  } else {
    auto pcaps = filesWithExt(dir, ".pcap");
    auto ng = filesWithExt(dir, ".pcapng");
    pcaps.insert(pcaps.end(), ng.begin(), ng.end());
    if (pcaps.size() != 1) {
      cr.error =
          strCat("expected one capture in the case folder, found ", std::to_string(pcaps.size()));
      return cr;
    }
    in.pcap = pcaps.front();
  }
  in.rule_files = filesWithExt(dir, ".rules");
  if (fs::exists(dir / "suricata.yaml")) settingsFromYaml(dir / "suricata.yaml", in.sets);
  if (const YAML::Node args = test["args"]; args.IsSequence()) {
    for (const auto& n : args) {
      std::istringstream words(n.as<std::string>());
      std::string w;
      bool next_is_set = false;
      while (words >> w) {
        if (next_is_set) {
          in.sets.push_back(w);
          next_is_set = false;
        } else if (w == "--set") {
          next_is_set = true;
        }
        // -k none (checksums are not validated), --runmode: nothing to do.
      }
    }
  }
  std::vector<nlohmann::json> events;
  auto r = ids::runOffline(in, [&](std::string_view line) {
    events.push_back(nlohmann::json::parse(line, nullptr, false));
  });
  if (!r) {
    cr.error = r.error().message;
    return cr;
  }
  cr.ran = true;
  for (const ids::Rejected& rej : r->rules.rejected)
    cr.failures.push_back(strCat("rule refused: ", rej.reason));

  const YAML::Node checks = test["checks"];
  size_t index = 0;
  for (const auto& check : checks) {
    ++index;
    const YAML::Node f = check["filter"];
    if (!f) {
      ++cr.skipped;  // shell and other checks: not about alerts
      continue;
    }
    const YAML::Node match = f["match"];
    bool about_alerts = false;
    if (match.IsMap()) {
      if (match["event_type"])
        about_alerts = match["event_type"].as<std::string>() == "alert";
      else
        for (const auto& kv : match)
          about_alerts |= kv.first.as<std::string>().starts_with("alert.");
    }
    const bool about_packets =
        match.IsMap() && match["event_type"] && match["event_type"].as<std::string>() == "packet";
    if (!about_alerts && !about_packets) {
      ++cr.skipped;
      continue;
    }
    ++cr.checked;
    const long long want = f["count"] ? f["count"].as<long long>() : -1;
    long long got = 0;
    const std::string type = about_packets ? "packet" : "alert";
    for (const nlohmann::json& e : events) {
      bool ok = e.value("event_type", "") == type;
      for (const auto& kv : match) {
        const std::string key = kv.first.as<std::string>();
        if (key == "event_type") continue;
        const nlohmann::json* v = lookup(e, key);
        if (!v || !sameValue(*v, kv.second)) {
          ok = false;
          break;
        }
      }
      got += ok;
    }
    if (about_packets) {
      // Tagged packets: reported, not scored (the suite is scored on alerts).
      if (want >= 0 && got != want)
        cr.notes.push_back(strCat("packet check ", std::to_string(index), ": expected ",
                                  std::to_string(want), ", got ", std::to_string(got),
                                  " (not scored)"));
      continue;
    }
    if (want >= 0 && got != want) {
      std::string what;
      for (const auto& kv : match) {
        const std::string key = kv.first.as<std::string>();
        if (key == "event_type") continue;
        what += strCat(what.empty() ? "" : " ", key, "=", kv.second.as<std::string>());
      }
      cr.failures.push_back(strCat("check ", std::to_string(index), " (",
                                   what.empty() ? "all alerts" : what, "): expected ",
                                   std::to_string(want), ", got ", std::to_string(got)));
    }
  }
  cr.passed = cr.failures.empty();
  if (verbose)
    for (const nlohmann::json& e : events)
      std::printf("    %s\n", e.dump().c_str());
  return cr;
}

}  // namespace

int runVerify(const IdsVerifyArgs& a) {
  std::vector<fs::path> cases;
  std::error_code ec;
  if (!fs::is_directory(a.dir, ec)) {
    std::fprintf(stderr, "palisade ids verify: %s is not a directory\n", a.dir.c_str());
    return kCannotRead;
  }
  if (fs::exists(fs::path(a.dir) / "test.yaml")) {
    cases.push_back(a.dir);
  } else {
    for (auto it = fs::recursive_directory_iterator(a.dir, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file() && it->path().filename() == "test.yaml")
        cases.push_back(it->path().parent_path());
    }
  }
  std::sort(cases.begin(), cases.end());
  size_t passed = 0, failed = 0;
  for (const fs::path& c : cases) {
    const std::string name = fs::relative(c, a.dir, ec).string();
    if (!a.filter.empty() && name.find(a.filter) == std::string::npos) continue;
    const CaseResult r = runCase(c, a.verbose);
    if (r.passed) {
      ++passed;
      if (!a.quiet) std::printf("PASS  %s (%zu checks)\n", name.c_str(), r.checked);
      if (!a.quiet)
        for (const std::string& n : r.notes)
          std::printf("      %s\n", n.c_str());
      continue;
    }
    ++failed;
    std::printf("FAIL  %s\n", name.c_str());
    if (!r.error.empty()) std::printf("      %s\n", r.error.c_str());
    for (const std::string& f : r.failures)
      std::printf("      %s\n", f.c_str());
  }
  std::printf("%zu passed, %zu failed\n", passed, failed);
  if (passed + failed == 0) return kCannotRead;
  return failed ? kFindings : kOk;
}

}  // namespace palisade::cli
