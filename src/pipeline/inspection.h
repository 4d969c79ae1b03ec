// The policy's `ids:` section made ready for the data plane: its rules files
// read, parsed and compiled into what each worker's engine is built from
// (Pipeline, "inline inspection").
#pragma once

#include <string>

#include "core/result.h"
#include "pipeline/compiled.h"

namespace palisade::pipeline {

// Loads the `ids:` section's rules (files relative to the policy file's
// directory) into cp.ids_rules, with their digest: an error when a file
// cannot be read, a setting is wrong or no rule loads. HOME_NET defaults to
// the VNets' address spaces. Nothing to do without an `ids:` section.
Status loadIdsRules(CompiledPolicy& cp, const std::string& policy_path);

}  // namespace palisade::pipeline
