// acl_compare: Palisade's TupleMerge classifier beside DPDK's rte_acl on the
// same rule sets and the same lookups, in one run.
//
// For each rule set (the benchmarks' random 10K set, and 10K entries in the
// shape of DASH groups: 100 rules x 100 prefixes) it writes the rules and the
// lookups in ClassBench form, classifies them with Palisade, runs Debian's
// `dpdk-test-acl` on the same files (no hugepages, one lcore), and prints
// build time, lookups per second, memory, the ratios, and whether both chose
// the same rule for every lookup. Exit 1 if any lookup disagrees.
//
// rte_acl is a multi-bit trie compiled into a DFA, classifying a burst at a
// time with SIMD; Palisade classifies one key at a time, as the new-connection
// path does. dpdk-test-acl does not time its build, so only Palisade's is shown.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "classify/classifier.h"
#include "core/strings.h"
#include "rulegen.h"

extern char** environ;

using namespace palisade;

namespace {

size_t g_mem_mb = 8192;  // EAL memory without hugepages (-m)

// dpdk-test-acl could not run at all here (EAL start-up): not a disagreement.
bool g_dpdk_unavailable = false;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint32_t v4(const IpAddr& a) {
  return a.v4Value();
}

// ClassBench rule lines, in priority order: dpdk-test-acl gives the first line
// the highest priority, so line i is the rule with the i-th lowest priority.
bool writeRules(const std::string& path, const std::vector<classify::Entry>& rules) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  for (const auto& e : rules) {
    const uint32_t s = v4(e.src), d = v4(e.dst);
    std::fprintf(f, "@%u.%u.%u.%u/%u %u.%u.%u.%u/%u %u : %u %u : %u %s\n", s >> 24, (s >> 16) & 255,
                 (s >> 8) & 255, s & 255, e.src_len - 96u, d >> 24, (d >> 16) & 255, (d >> 8) & 255,
                 d & 255, e.dst_len - 96u, e.sport_lo, e.sport_hi, e.dport_lo, e.dport_hi,
                 e.proto == classify::kProtoAny ? "0/0x00"
                                                : strCat(std::to_string(e.proto), "/0xff").c_str());
  }
  return std::fclose(f) == 0;
}

bool writeTraces(const std::string& path, const std::vector<classify::Key>& keys) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  for (const auto& k : keys)
    std::fprintf(f, "0x%08x 0x%08x %u %u %u\n", v4(k.src), v4(k.dst), k.sport, k.dport, k.proto);
  return std::fclose(f) == 0;
}

// Runs argv, stdout and stderr to `out`; returns the exit status (-1 if it
// could not start).
int run(const std::vector<std::string>& args, const std::string& out) {
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct DpdkFigures {
  bool ok = false;
  double cycles_per_pkt = 0, pkts_per_sec = 0;
  double scalar_cycles_per_pkt = 0, scalar_pkts_per_sec = 0;
  double build_seconds = 0;  // estimated: wall time with the rules minus with one rule
  uint64_t runtime_bytes = 0;
  std::string alg;
  std::vector<uint32_t> results;  // per lookup: rule line (0-based) or UINT32_MAX
};

const char* algName(const std::string& number) {
  static const char* kNames[] = {"default", "scalar",  "sse",       "avx2",
                                 "neon",    "altivec", "avx512x16", "avx512x32"};
  const int n = std::atoi(number.c_str());
  return n >= 0 && n < 8 ? kNames[n] : "unknown";
}

std::vector<std::string> dpdkArgs(const std::string& dpdk, const std::string& rules,
                                  const std::string& traces, size_t n_rules, size_t n_traces,
                                  int verbose, int iters, const char* alg) {
  std::vector<std::string> args = {dpdk,
                                   "--no-huge",
                                   "--no-pci",
                                   "--no-shconf",
                                   "-m",
                                   "8192",
                                   "-l",
                                   "0",
                                   "--log-level=lib.acl:debug",
                                   "--",
                                   strCat("--rulesf=", rules),
                                   strCat("--tracef=", traces),
                                   strCat("--rulenum=", std::to_string(n_rules)),
                                   strCat("--tracenum=", std::to_string(n_traces)),
                                   strCat("--verbose=", std::to_string(verbose)),
                                   strCat("--iter=", std::to_string(iters))};
  if (alg) args.push_back(strCat("--alg=", alg));
  return args;
}

// One timed run of dpdk-test-acl (results not printed); false if it failed.
bool timedRun(const std::string& dpdk, const std::string& dir, const std::string& name,
              size_t n_rules, size_t n_traces, int iters, const char* alg, DpdkFigures& fig,
              double& cycles, double& rate) {
  const std::string log = strCat(dir, "/", name, ".dpdk-", alg ? alg : "default", ".log");
  const int rc = run(dpdkArgs(dpdk, strCat(dir, "/", name, ".rules"),
                              strCat(dir, "/", name, ".trace"), n_rules, n_traces, 1, iters, alg),
                     log);
  if (rc != 0) {
    std::fprintf(stderr, "acl_compare: %s exited with %d; see %s\n", dpdk.c_str(), rc, log.c_str());
    return false;
  }
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (const auto p = line.find("total: "); p != std::string::npos && !fig.runtime_bytes)
      fig.runtime_bytes = std::strtoull(line.c_str() + p + 7, nullptr, 10);
    if (line.rfind("  alg=", 0) == 0 && !alg) fig.alg = algName(line.substr(6));
    if (line.find("search_ip5tuples  @lcore") != std::string::npos) {
      const auto c = line.find(" cycles/pkt");
      const auto s = line.rfind(", ", c);
      if (c != std::string::npos && s != std::string::npos)
        cycles = std::strtod(line.c_str() + s + 2, nullptr);
      const auto q = line.find(" pkt/sec");
      const auto t = line.rfind(", ", q);
      if (q != std::string::npos && t != std::string::npos)
        rate = std::strtod(line.c_str() + t + 2, nullptr);
    }
  }
  return rate > 0;
}

// dpdk-test-acl does not time rte_acl_build: estimate it as the best of three
// wall times with the whole rule set minus the best of three with one rule
// (EAL start-up and the rest are the same in both).
double estimateBuild(const std::string& dpdk, const std::string& dir, const std::string& name,
                     size_t n_rules) {
  const std::string rules = strCat(dir, "/", name, ".rules");
  const std::string one = strCat(dir, "/", name, ".one-rule");
  {
    std::ifstream in(rules);
    std::string first;
    std::getline(in, first);
    std::ofstream out(one);
    out << first << "\n";
  }
  auto best = [&](const std::string& file, size_t n) {
    double b = 1e9;
    for (int i = 0; i < 3; ++i) {
      const double t0 = now();
      if (run(dpdkArgs(dpdk, file, strCat(dir, "/", name, ".trace"), n, 1, 1, 1, nullptr),
              strCat(dir, "/", name, ".dpdk-build.log")) != 0)
        return -1.0;
      b = std::min(b, now() - t0);
    }
    return b;
  };
  // -1: it cannot run here at all; -2: it runs, but not on these rules.
  const double single = best(one, 1);
  if (single < 0) return -1;
  const double all = best(rules, n_rules);
  return all < 0 ? -2 : std::max(0.0, all - single);
}

DpdkFigures runDpdk(const std::string& dpdk, const std::string& dir, const std::string& name,
                    size_t n_rules, size_t n_traces, int iters) {
  DpdkFigures fig;
  fig.build_seconds = estimateBuild(dpdk, dir, name, n_rules);
  if (fig.build_seconds == -1) {
    g_dpdk_unavailable = true;  // not even a one-rule run worked
    return fig;
  }
  if (fig.build_seconds < 0) {
    std::fprintf(stderr, "acl_compare: %s failed on %s.rules; see %s/%s.dpdk-build.log\n",
                 dpdk.c_str(), name.c_str(), dir.c_str(), name.c_str());
    return fig;
  }
  if (!timedRun(dpdk, dir, name, n_rules, n_traces, iters, nullptr, fig, fig.cycles_per_pkt,
                fig.pkts_per_sec) ||
      !timedRun(dpdk, dir, name, n_rules, n_traces, iters, "scalar", fig, fig.scalar_cycles_per_pkt,
                fig.scalar_pkts_per_sec)) {
    return fig;
  }
  // Results run: one line per lookup.
  const std::string results = strCat(dir, "/", name, ".dpdk-results.log");
  std::string line;
  const int rc = run(dpdkArgs(dpdk, strCat(dir, "/", name, ".rules"),
                              strCat(dir, "/", name, ".trace"), n_rules, n_traces, 2, 1, nullptr),
                     results);
  if (rc != 0) {
    std::fprintf(stderr, "acl_compare: %s exited with %d; see %s\n", dpdk.c_str(), rc,
                 results.c_str());
    return fig;
  }
  std::ifstream rin(results);
  fig.results.assign(n_traces, UINT32_MAX - 1);  // "not reported"
  while (std::getline(rin, line)) {
    unsigned long idx = 0, cat = 0, res = 0;
    if (std::sscanf(line.c_str(), "ipv4_5tuple: %lu, category: %lu, result: %lu", &idx, &cat,
                    &res) == 3 &&
        cat == 0 && idx >= 1 && idx <= n_traces) {
      fig.results[idx - 1] = static_cast<uint32_t>(res);
    }
  }
  fig.ok = fig.pkts_per_sec > 0;
  return fig;
}

bool compareSet(const std::string& dpdk, const std::string& dir, const std::string& name,
                std::vector<classify::Entry> rules, size_t n_traces, int iters) {
  // Entries in priority order; a rule's line in the file is its index here.
  std::stable_sort(rules.begin(), rules.end(),
                   [](const auto& a, const auto& b) { return a.priority < b.priority; });
  for (uint32_t i = 0; i < rules.size(); ++i) {
    rules[i].priority = i;
    rules[i].id = i;
  }
  const std::vector<classify::Key> keys = bench::keysFor(rules, n_traces, 99);
  if (!writeRules(strCat(dir, "/", name, ".rules"), rules) ||
      !writeTraces(strCat(dir, "/", name, ".trace"), keys)) {
    std::fprintf(stderr, "acl_compare: cannot write rule and trace files in %s\n", dir.c_str());
    return false;
  }
  classify::Classifier c;
  const double t0 = now();
  for (const auto& e : rules)
    c.add(e);
  const double build = now() - t0;
  std::vector<uint32_t> ours(keys.size());
  uint64_t hits = 0;
  const double t1 = now();
  for (int r = 0; r < iters; ++r) {
    for (size_t i = 0; i < keys.size(); ++i) {
      const auto m = c.classify(keys[i]);
      ours[i] = m ? m->id : UINT32_MAX;
      hits += m.has_value();
    }
  }
  const double per = (now() - t1) / (static_cast<double>(iters) * keys.size());
  // One-rule update in place: erase a rule and add it back.
  const double t2 = now();
  for (uint32_t i = 0; i < 1000; ++i) {
    const auto& e = rules[(i * 7919u) % rules.size()];
    c.erase(e.id);
    c.add(e);
  }
  const double update = (now() - t2) / 1000;
  std::printf("%s: %zu rules, %zu lookups x %d (%.0f%% match a rule)\n", name.c_str(), rules.size(),
              keys.size(), iters, 100.0 * hits / (static_cast<double>(iters) * keys.size()));
  std::printf(
      "  palisade TupleMerge : build %.1f ms, one-rule update %.1f us, %zu tables, %.2f MiB, "
      "%.0f ns/lookup, %.2f M lookups/s\n",
      build * 1e3, update * 1e6, c.tableCount(), c.memoryBytes() / 1048576.0, per * 1e9,
      1e-6 / per);
  const DpdkFigures d = runDpdk(dpdk, dir, name, rules.size(), keys.size(), iters);
  if (!d.ok) return false;
  std::printf(
      "  DPDK rte_acl        : build ~%.0f ms (whole trie, also for a one-rule change), "
      "%.2f MiB runtime; %s %.0f cycles/lookup, %.2f M lookups/s; "
      "scalar %.0f cycles/lookup, %.2f M lookups/s (bursts of 256)\n",
      d.build_seconds * 1e3, d.runtime_bytes / 1048576.0, d.alg.c_str(), d.cycles_per_pkt,
      d.pkts_per_sec / 1e6, d.scalar_cycles_per_pkt, d.scalar_pkts_per_sec / 1e6);
  std::printf(
      "  ratio: rte_acl classifies %.2fx as many lookups/s (%.2fx scalar); Palisade uses "
      "%.2fx its memory\n",
      d.pkts_per_sec * per, d.scalar_pkts_per_sec * per,
      d.runtime_bytes ? c.memoryBytes() / double(d.runtime_bytes) : 0.0);
  size_t same = 0, first_bad = SIZE_MAX;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (d.results[i] == ours[i]) {
      ++same;
    } else if (first_bad == SIZE_MAX) {
      first_bad = i;
    }
  }
  std::printf("  agreement: %zu of %zu lookups chose the same rule\n", same, keys.size());
  if (first_bad != SIZE_MAX) {
    std::fprintf(stderr,
                 "acl_compare: %s: lookup %zu (line %zu of %s.trace): Palisade chose %d, "
                 "rte_acl chose %d\n",
                 name.c_str(), first_bad, first_bad + 1, name.c_str(),
                 static_cast<int>(ours[first_bad]), static_cast<int>(d.results[first_bad]));
    return false;
  }
  return true;
}

void usage(FILE* f) {
  std::fputs(
      "usage: acl_compare [--rules N] [--traces N] [--iter N] [--dpdk PATH] [--mem MB] [--dir "
      "DIR]\n"
      "Classifies the same rule sets with Palisade's TupleMerge and DPDK's rte_acl\n"
      "(dpdk-test-acl, Debian package dpdk-dev) and prints both, the ratios, and\n"
      "whether every lookup chose the same rule. Defaults: 10000 rules, 100000\n"
      "lookups, 10 iterations, files in a new directory under /tmp (removed\n"
      "afterwards unless something failed).\n"
      "--mem is the EAL memory without hugepages (default 8192 MB, mostly untouched).\n"
      "Exit: 0 agree, 1 a lookup disagrees or dpdk-test-acl failed on the rules,\n"
      "2 usage, 77 dpdk-test-acl is not installed or cannot start here.\n",
      f);
}

}  // namespace

int main(int argc, char** argv) {
  size_t n_rules = 10000, n_traces = 100000;
  int iters = 10;
  std::string dpdk = "dpdk-test-acl", dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--rules" && has) {
      n_rules = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--traces" && has) {
      n_traces = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--iter" && has) {
      iters = std::atoi(argv[++i]);
    } else if (a == "--dpdk" && has) {
      dpdk = argv[++i];
    } else if (a == "--mem" && has) {
      g_mem_mb = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--dir" && has) {
      dir = argv[++i];
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (n_rules < 100 || n_rules > 1000000 || n_traces < 1 || n_traces > 10000000 || iters < 1 ||
      g_mem_mb < 64) {
    std::fprintf(stderr,
                 "acl_compare: --rules 100..1000000, --traces 1..10000000, --iter >= 1, "
                 "--mem >= 64\n");
    return 2;
  }
  if (dpdk.find('/') == std::string::npos) {
    bool found = false;
    const char* env = std::getenv("PATH");
    const std::string path = env ? env : "/usr/bin";
    for (size_t b = 0; b <= path.size() && !found;) {
      size_t e = path.find(':', b);
      if (e == std::string::npos) e = path.size();
      found = access(strCat(path.substr(b, e - b), "/", dpdk).c_str(), X_OK) == 0;
      b = e + 1;
    }
    if (!found) {
      std::printf("SKIP: %s not found (Debian package dpdk-dev)\n", dpdk.c_str());
      return 77;
    }
  }
  const bool own_dir = dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/palisade-acl-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("acl_compare: mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  std::printf("rule and trace files: %s\n", dir.c_str());
  bool ok = compareSet(dpdk, dir, "random", bench::randomRuleSet(n_rules), n_traces, iters);
  if (g_dpdk_unavailable) {
    std::printf("SKIP: %s cannot run on this machine (EAL start-up failed; its log is in %s)\n",
                dpdk.c_str(), dir.c_str());
    return 77;
  }
  ok = compareSet(dpdk, dir, "dash", bench::dashRuleSet(n_rules / 100, 100), n_traces, iters) && ok;
  if (ok && own_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else if (!ok) {
    std::fprintf(stderr, "acl_compare: files kept in %s\n", dir.c_str());
  }
  return ok ? 0 : 1;
}
