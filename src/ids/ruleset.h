// A set of Suricata rules loaded from files: the rules that parsed, and for
// each refused one where it was, its sid and the one-line reason. A refused
// rule never stops the load (as in Suricata); `palisade ids check-rules`
// prints the summary.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "ids/rule.h"

namespace palisade::ids {

struct Rejected {
  std::string file;
  size_t line = 0;       // of the rule's first line
  uint32_t sid = 0;      // 0 when it could not be read
  std::string reason;    // one line
  std::string category;  // the reason without its particulars, for counting
};

struct RuleSet {
  std::vector<Rule> rules;
  std::vector<Rejected> rejected;
  size_t files = 0;
  size_t commented = 0;  // rules commented out ("#alert ..."), not counted as either
  uint64_t digest = 0;   // of the files read, in order: their paths and bytes

  // Rejections by category, most frequent first.
  std::vector<std::pair<std::string, size_t>> rejectedByCategory() const;
};

struct LoadOptions {
  Vars vars = Vars::defaults();
  const ClassificationTable* classes = nullptr;
};

// Adds the rules of one file's text (lines joined by a trailing '\').
void addRules(RuleSet& set, std::string_view text, const std::string& file, const LoadOptions& opt);
// Reads a rules file; an error only when it cannot be read.
Status loadRuleFile(RuleSet& set, const std::string& path, const LoadOptions& opt);
// Drops all but the highest revision of each gid:sid, recording the others.
void dropDuplicates(RuleSet& set);

// The reason's category: "unsupported keyword 'xbits'", "protocol 'smtp' not
// inspected", "bad pcre", ...
std::string categoryOf(std::string_view reason);

}  // namespace palisade::ids
