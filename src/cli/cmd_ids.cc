// palisade ids: the IDS/IPS engine for Suricata-language rules.
//   -r PCAP -S RULES -l DIR  detection over a capture, alerts to DIR/eve.json
//   -i IFACE -S RULES -l DIR  the same, passively on a mirror port
//   check-rules              load rule files and say what loaded and what was refused, why
//   verify DIR               run suricata-verify cases and score them
#include <sys/resource.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/ids_run.h"
#include "core/strings.h"
#include "ids/offline.h"
#include "ids/ruleset.h"

namespace palisade::cli {
namespace {

struct CheckArgs {
  std::vector<std::string> inputs, sets;
  std::string classification;
  bool list = false, json = false, strict = false, no_classification = false;
};

// Files named on the command line, and the *.rules files of directories, sorted.
std::vector<std::string> ruleFiles(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      out.push_back(in);
      continue;
    }
    std::vector<std::string> here;
    for (const auto& e : fs::directory_iterator(in, ec))
      if (e.path().extension() == ".rules") here.push_back(e.path().string());
    std::sort(here.begin(), here.end());
    out.insert(out.end(), here.begin(), here.end());
  }
  return out;
}

long maxRssKb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

void runCheck(const CheckArgs& a, Context& ctx) {
  ids::LoadOptions opt;
  for (const std::string& s : a.sets) {
    if (Status st = opt.vars.set(s); !st) {
      std::fprintf(stderr, "palisade ids check-rules: --set %s\n", st.error().message.c_str());
      ctx.exit_code = kUsage;
      return;
    }
  }
  const std::vector<std::string> files = ruleFiles(a.inputs);
  if (files.empty()) {
    std::fprintf(stderr, "palisade ids check-rules: no .rules files in %s\n",
                 join(a.inputs, ", ").c_str());
    ctx.exit_code = kCannotRead;
    return;
  }
  // classification.config: as given, else beside the first rules file.
  std::string class_path = a.classification;
  if (class_path.empty() && !a.no_classification) {
    const auto beside =
        std::filesystem::path(files.front()).parent_path() / "classification.config";
    if (std::filesystem::exists(beside)) class_path = beside.string();
  }
  ids::ClassificationTable classes;
  if (!class_path.empty()) {
    auto t = ids::ClassificationTable::load(class_path);
    if (!t) {
      std::fprintf(stderr, "palisade ids check-rules: %s\n", t.error().message.c_str());
      ctx.exit_code = kCannotRead;
      return;
    }
    classes = std::move(*t);
    opt.classes = &classes;
  }
  const long rss0 = maxRssKb();
  const auto t0 = std::chrono::steady_clock::now();
  ids::RuleSet set;
  for (const std::string& f : files) {
    if (Status st = ids::loadRuleFile(set, f, opt); !st) {
      std::fprintf(stderr, "palisade ids check-rules: %s\n", st.error().message.c_str());
      ctx.exit_code = kCannotRead;
      return;
    }
  }
  ids::dropDuplicates(set);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const long rss_kb = maxRssKb() - rss0;
  const auto by_reason = set.rejectedByCategory();

  if (a.json) {
    nlohmann::json j;
    j["files"] = set.files;
    j["loaded"] = set.rules.size();
    j["rejected"] = set.rejected.size();
    j["commented_out"] = set.commented;
    j["load_ms"] = ms;
    j["rss_growth_kb"] = rss_kb;
    j["classification"] = class_path;
    nlohmann::json reasons = nlohmann::json::array();
    for (const auto& [cat, n] : by_reason)
      reasons.push_back({{"reason", cat}, {"rules", n}});
    j["rejected_by_reason"] = reasons;
    if (a.list) {
      nlohmann::json list = nlohmann::json::array();
      for (const ids::Rejected& r : set.rejected)
        list.push_back({{"file", r.file}, {"line", r.line}, {"sid", r.sid}, {"reason", r.reason}});
      j["rejected_rules"] = list;
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    if (a.list) {
      for (const ids::Rejected& r : set.rejected) {
        if (r.file.empty())
          std::printf("sid %u: %s\n", r.sid, r.reason.c_str());
        else
          std::printf("%s:%zu: sid %u: %s\n", r.file.c_str(), r.line, r.sid, r.reason.c_str());
      }
      if (!set.rejected.empty()) std::printf("\n");
    }
    const size_t total = set.rules.size() + set.rejected.size();
    std::printf(
        "%zu rule file(s): %zu of %zu rules loaded (%.1f%%), %zu refused", set.files,
        set.rules.size(), total,
        total ? 100.0 * static_cast<double>(set.rules.size()) / static_cast<double>(total) : 0.0,
        set.rejected.size());
    if (set.commented) std::printf("; %zu commented out", set.commented);
    std::printf("\nloaded in %.0f ms, %.1f MB of memory%s%s\n", ms,
                static_cast<double>(rss_kb) / 1024.0,
                class_path.empty() ? "; no classification.config (priorities default to 3)"
                                   : "; classes from ",
                class_path.c_str());
    if (!by_reason.empty()) {
      std::printf("\nrefused, by reason (--list-rejected names each rule):\n");
      for (const auto& [cat, n] : by_reason)
        std::printf("  %7zu  %s\n", n, cat.c_str());
    }
  }
  ctx.exit_code = (set.rules.empty() || (a.strict && !set.rejected.empty())) ? kFindings : kOk;
}

}  // namespace

void registerIds(CLI::App& app, Context& ctx) {
  auto* ids = app.add_subcommand("ids", "IDS/IPS with Suricata-language rules");
  ids->require_subcommand(0, 1);
  ids->footer(
      "Without a subcommand: run the rules over a capture, as suricata -r does.\n"
      "  palisade ids -r traffic.pcap -S local.rules -l out/ --set stream.midstream=true\n"
      "writes out/eve.json (EVE alert, tagged-packet, http, dns, tls and flow events) and\n"
      "prints a summary.\n"
      "With -i IFACE the frames of a mirror port are inspected as they arrive (root;\n"
      "Ctrl-C or --duration stops it) and events are appended to eve.json as they come.\n"
      "--set takes Suricata's keys: stream.midstream, stream.inline,\n"
      "stream.reassembly.depth, app-layer.protocols.tls.encryption-handling\n"
      "(default: encrypted TLS payload is not inspected; bypass; full), "
      "vars.address-groups.NAME, vars.port-groups.NAME.\n"
      "Exit status: 0 done, 1 the capture is corrupt (packets before the damage were\n"
      "inspected), 2 bad arguments, 3 an input unreadable.");
  auto run = std::make_shared<IdsRunArgs>();
  ids->add_option("-r,--read", run->pcap, "Capture to inspect (pcap or pcapng)");
  ids->add_option("-i,--interface", run->iface,
                  "Inspect an interface passively (a mirror port), until Ctrl-C");
  ids->add_option("--duration", run->duration_s, "With -i: stop after this many seconds");
  ids->add_option("-S,--rules", run->rules, "Rule files (repeatable)");
  ids->add_option("-l,--log-dir", run->outdir, "Directory for eve.json (default .)");
  ids->add_option("--set", run->sets, "Suricata setting KEY=VALUE (repeatable)");
  ids->add_option("--classification", run->classification,
                  "classification.config (default: beside the first rules file)");
  ids->add_option("--profile-rules", run->profile_rules,
                  "Print the N rules evaluated most often (the prefilter's weak spots)");
  ids->add_flag("--simulate-ips", run->simulate_ips,
                "With -r: run as an inline IPS would (drop and reject rules drop the packet and "
                "the rest of its flow; alerts say 'blocked')");
  ids->add_option("--eve-types", run->eve_types,
                  "EVE event types to write, comma-separated: alert (always), http, dns, tls, "
                  "flow")
      ->capture_default_str();
  ids->add_flag("-q,--quiet", run->quiet, "No summary");
  ids->callback([ids, run, &ctx] {
    if (!ids->get_subcommands().empty()) return;
    if (run->pcap.empty() == run->iface.empty() || run->rules.empty()) {
      std::fprintf(stderr,
                   "palisade ids: give -r PCAP or -i IFACE, and -S RULES, or a subcommand (see "
                   "--help)\n");
      ctx.exit_code = kUsage;
      return;
    }
    if (run->simulate_ips && !run->iface.empty()) {
      std::fprintf(stderr,
                   "palisade ids: --simulate-ips is for -r: a mirror port (-i) sees copies and "
                   "cannot drop (inline IPS: the policy's ids section in 'palisade run')\n");
      ctx.exit_code = kUsage;
      return;
    }
    if (auto t = ids::parseEveTypes(run->eve_types); !t) {
      std::fprintf(stderr, "palisade ids: --eve-types: %s\n", t.error().message.c_str());
      ctx.exit_code = kUsage;
      return;
    } else {
      run->eve_type_bits = *t;
    }
    ctx.exit_code = run->iface.empty() ? runIds(*run) : runIdsLive(*run);
  });

  auto* v = ids->add_subcommand("verify", "Run suricata-verify cases and score their alert checks");
  v->footer(
      "DIR holds suricata-verify cases (folders with test.yaml), or is one case. Each\n"
      "case's capture is inspected with its rules, its suricata.yaml settings and its\n"
      "--set arguments; every check on alert events (count of alerts matching the\n"
      "check's fields) must hold. Checks on tagged packets are reported, not scored;\n"
      "checks on other event types are skipped.\n"
      "Prints PASS or FAIL per case, then 'N passed, N failed'.\n"
      "Exit status: 0 all passed, 1 some failed, 3 no cases found.");
  auto va = std::make_shared<IdsVerifyArgs>();
  v->add_option("dir", va->dir, "suricata-verify tests folder, or one case")->required();
  v->add_option("--filter", va->filter, "Only cases whose path contains this");
  v->add_flag("--verbose", va->verbose, "Print each case's alerts");
  v->add_flag("-q,--quiet", va->quiet, "Print failures and the total only");
  v->callback([va, &ctx] { ctx.exit_code = runVerify(*va); });
  auto* c = ids->add_subcommand("check-rules",
                                "Load rule files; summarise loaded and refused rules by reason");
  c->footer(
      "RULES are .rules files or directories of them. A rule the engine cannot inspect\n"
      "(an unsupported keyword, protocol or buffer) or that is malformed is refused\n"
      "with a one-line reason and loading goes on. classification.config is read from\n"
      "--classification or beside the first rules file; a classtype not in it refuses\n"
      "the rule. Examples:\n"
      "  palisade ids check-rules /etc/suricata/rules\n"
      "  palisade ids check-rules local.rules --set address-groups.HOME_NET=[192.0.2.0/24]\n"
      "Exit status: 0 rules loaded (1 with --strict when any was refused), 1 none loaded,\n"
      "2 bad arguments, 3 a file unreadable.");
  auto a = std::make_shared<CheckArgs>();
  c->add_option("rules", a->inputs, "Rule files and directories")->required();
  c->add_option("--classification", a->classification, "classification.config to use");
  c->add_flag("--no-classification", a->no_classification,
              "Do not look for classification.config beside the rules");
  c->add_option("--set", a->sets,
                "Set a variable: address-groups.NAME=VALUE or port-groups.NAME=VALUE");
  c->add_flag("--list-rejected", a->list, "Print each refused rule: file:line: sid: reason");
  c->add_flag("--json", a->json, "Print the summary as JSON");
  c->add_flag("--strict", a->strict, "Exit 1 when any rule is refused");
  c->callback([a, &ctx] { runCheck(*a, ctx); });
}

}  // namespace palisade::cli
