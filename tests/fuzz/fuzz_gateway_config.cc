// A gateway configuration file from anyone: must load or be refused with
// diagnostics, never crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::gateway;
  GatewayLoad l = parseGatewayConfig(std::string_view(reinterpret_cast<const char*>(data), size),
                                     "fuzz.yaml", "/nonexistent");
  if (l.config.has_value() == l.diagnostics.hasErrors()) std::abort();
  if (l.config) {
    for (const Route& r : l.config->routes)
      if (r.upstream >= l.config->upstreams.size()) std::abort();
  }
  return 0;
}
