// A rules file from anyone: Suricata rule text, with variables and a
// classification table. Loading must never crash, hang or grow without bound;
// every refused rule has a one-line reason, and every loaded rule's sets are
// well formed (sorted, disjoint ranges) and its matches consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ids/ruleset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::ids;
  static const ClassificationTable classes = *ClassificationTable::parse(
      "config classification: trojan-activity,A Network Trojan was detected,1\n"
      "config classification: misc-activity,Misc activity,3\n");
  std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadOptions opt;
  opt.classes = &classes;
  opt.vars.address["LOOP"] = "[$LOOP2, 192.0.2.1]";
  opt.vars.address["LOOP2"] = "!$LOOP";
  RuleSet set;
  addRules(set, text, "fuzz.rules", opt);
  dropDuplicates(set);
  for (const Rejected& r : set.rejected)
    if (r.reason.empty() || r.reason.find('\n') != std::string::npos) std::abort();
  for (const Rule& r : set.rules) {
    if (r.sid == 0) std::abort();
    for (const IpSet* s : {&r.src, &r.dst}) {
      const auto& v = s->ranges();
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i].hi < v[i].lo) std::abort();
        if (i > 0 && !(v[i - 1].hi < v[i].lo)) std::abort();
      }
    }
    for (const Match& m : r.matches) {
      if (m.kind == Match::Kind::Content && m.content.bytes.empty()) std::abort();
      if (m.kind == Match::Kind::Pcre && !m.pcre.code) std::abort();
    }
  }
  (void)ClassificationTable::parse(text);
  return 0;
}
