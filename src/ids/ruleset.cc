#include "ids/ruleset.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "core/hash.h"
#include "core/strings.h"

namespace palisade::ids {
namespace {

constexpr size_t kMaxRuleText = 64 * 1024;

// The sid of a rule text that did not parse, when it can be found.
uint32_t sidOf(std::string_view text) {
  for (size_t at = text.find("sid"); at != std::string_view::npos; at = text.find("sid", at + 3)) {
    if (at > 0 && text[at - 1] != ';' && text[at - 1] != ' ' && text[at - 1] != '(') continue;
    std::string_view rest = trim(text.substr(at + 3));
    if (rest.empty() || rest.front() != ':') continue;
    rest = trim(rest.substr(1));
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec == std::errc()) return v;
  }
  return 0;
}

// "#alert tcp ..." and "# alert ...": a rule switched off, not a comment.
bool commentedRule(std::string_view line) {
  line = trim(line.substr(1));
  for (std::string_view a : {"alert ", "drop ", "reject ", "pass "})
    if (line.starts_with(a) && line.find('(') != std::string_view::npos) return true;
  return false;
}

}  // namespace

std::string categoryOf(std::string_view reason) {
  constexpr std::string_view kUnsupported = ": unsupported keyword";
  constexpr std::string_view kNotInspected = ": this buffer is not inspected";
  if (reason.ends_with(kUnsupported))
    return strCat("unsupported keyword '", reason.substr(0, reason.size() - kUnsupported.size()),
                  "'");
  if (reason.ends_with(kNotInspected))
    return strCat("buffer '", reason.substr(0, reason.size() - kNotInspected.size()),
                  "' not inspected");
  if (reason.starts_with("protocol '")) {
    const size_t end = reason.find('\'', 10);
    if (end != std::string_view::npos) return strCat(reason.substr(0, end + 1), " not inspected");
  }
  if (reason.starts_with("duplicate ")) return "duplicate sid";
  const size_t colon = reason.find(':');
  if (colon != std::string_view::npos && colon < 40 &&
      reason.substr(0, colon).find(' ') == std::string_view::npos)
    return strCat("bad ", reason.substr(0, colon));
  if (reason.starts_with("source ") || reason.starts_with("destination ") ||
      reason.starts_with("the header") || reason.starts_with("action ") ||
      reason.starts_with("direction "))
    return "bad header";
  return std::string(reason.substr(0, std::min<size_t>(reason.size(), 60)));
}

std::vector<std::pair<std::string, size_t>> RuleSet::rejectedByCategory() const {
  std::map<std::string, size_t> counts;
  for (const Rejected& r : rejected)
    ++counts[r.category];
  std::vector<std::pair<std::string, size_t>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

void addRules(RuleSet& set, std::string_view text, const std::string& file,
              const LoadOptions& opt) {
  std::string pending;
  size_t pending_line = 0, line_no = 0;
  bool too_long = false;
  auto finish = [&] {
    if (pending.empty() && !too_long) return;
    if (too_long) {
      set.rejected.push_back({file, pending_line, sidOf(pending), "rule longer than 64 KiB",
                              "rule longer than 64 KiB"});
    } else if (auto r = parseRule(pending, opt.vars, opt.classes)) {
      set.rules.push_back(std::move(*r));
    } else {
      set.rejected.push_back(
          {file, pending_line, sidOf(pending), r.error().message, categoryOf(r.error().message)});
    }
    pending.clear();
    too_long = false;
  };
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    std::string_view t = trim(line);
    if (pending.empty() && !too_long) {
      if (t.empty()) continue;
      if (t.front() == '#') {
        if (commentedRule(t)) ++set.commented;
        continue;
      }
      pending_line = line_no;
    }
    const bool continues = !t.empty() && t.back() == '\\';
    if (continues) t.remove_suffix(1);
    if (pending.size() + t.size() > kMaxRuleText) {
      too_long = true;
    } else if (!too_long) {
      pending.append(t);
    }
    if (!continues) finish();
  }
  finish();
}

Status loadRuleFile(RuleSet& set, const std::string& path, const LoadOptions& opt) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(errnoText(path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return makeError(errnoText(path));
  ++set.files;
  const std::string text = ss.str();
  set.digest = hashBytes(text.data(), text.size(), hashBytes(path.data(), path.size(), set.digest));
  addRules(set, text, path, opt);
  return {};
}

void dropDuplicates(RuleSet& set) {
  // The newest revision wins (as when an updated rule is appended); equal
  // revisions keep the first loaded.
  std::map<std::pair<uint32_t, uint32_t>, size_t> best;
  for (size_t i = 0; i < set.rules.size(); ++i) {
    const Rule& r = set.rules[i];
    auto [it, fresh] = best.emplace(std::make_pair(r.gid, r.sid), i);
    if (!fresh && set.rules[it->second].rev < r.rev) it->second = i;
  }
  if (best.size() == set.rules.size()) return;
  std::vector<bool> keep(set.rules.size(), false);
  for (const auto& [key, i] : best)
    keep[i] = true;
  std::vector<Rule> kept;
  kept.reserve(best.size());
  for (size_t i = 0; i < set.rules.size(); ++i) {
    if (keep[i]) {
      kept.push_back(std::move(set.rules[i]));
      continue;
    }
    const Rule& r = set.rules[i];
    set.rejected.push_back(
        {"", 0, r.sid,
         strCat("duplicate sid ", std::to_string(r.gid), ":", std::to_string(r.sid), " (rev ",
                std::to_string(r.rev), "; a higher or earlier revision is kept)"),
         "duplicate sid"});
  }
  set.rules = std::move(kept);
}

}  // namespace palisade::ids
