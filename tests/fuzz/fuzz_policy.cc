// Policy loader fuzzer: any text yields a policy or diagnostics, never a crash,
// and a loaded policy always has no errors; lint never fails on what loaded.
#include <cstdlib>
#include <string_view>

#include "policy/describe.h"
#include "policy/lint.h"
#include "policy/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::policy;
  LoadResult r =
      loadPolicyText(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  if (r.policy.has_value() == r.diagnostics.hasErrors()) abort();
  if (r.policy) {
    (void)describePolicy(*r.policy);
    lintPolicy(*r.policy, r.diagnostics);
    if (r.diagnostics.hasErrors()) abort();
  }
  (void)r.diagnostics.format();
  return 0;
}
