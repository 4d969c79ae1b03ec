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
inline constexpr size_t kMaxPolicyNodes = 4u * 1024 * 1024;

struct LoadResult {
  std::optional<Policy> policy;  // set when there were no errors
  Diagnostics diagnostics;
};

LoadResult loadPolicyFile(const std::string& path);
// `name` is used in diagnostics in place of a file name.
LoadResult loadPolicyText(std::string_view text, const std::string& name);

}  // namespace palisade::policy
