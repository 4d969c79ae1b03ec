// Loading a policy: YAML text -> Policy, with every problem reported.
//
// loadPolicy parses, checks each field's shape (unknown fields with a "did you
// mean", wrong types, bad prefixes, ports and enums) and then validates the
// whole (references, overlaps, duplicates; see validate.h). The result holds a
// Policy only when there were no errors; diagnostics() has every finding either
// way. Bounded: files over kMaxPolicyBytes and documents that expand past
// kMaxPolicyNodes (YAML alias bombs) are refused with an error.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/diagnostics.h"
#include "policy/model.h"

namespace palisade::policy {

inline constexpr size_t kMaxPolicyBytes = 64u * 1024 * 1024;
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
// A fuzz build (ASan, UBSan, coverage) walks YAML nodes about twenty times
// slower: an alias bomb at the full budget took 10 s there (0.4 s in a
// release build), the fuzzer's timeout. The same refusal, at a smaller size.
inline constexpr size_t kMaxPolicyNodes = 256u * 1024;
#else
inline constexpr size_t kMaxPolicyNodes = 4u * 1024 * 1024;
#endif

struct LoadResult {
  std::optional<Policy> policy;  // set when there were no errors
  Diagnostics diagnostics;
};

LoadResult loadPolicyFile(const std::string& path);
// `name` is used in diagnostics in place of a file name.
LoadResult loadPolicyText(std::string_view text, const std::string& name);

}  // namespace palisade::policy
