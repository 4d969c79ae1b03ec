#include "packet/decode_stats.h"

namespace palisade::pkt {
namespace {
constexpr std::string_view kProtoNames[] = {
#define PALISADE_X(id, name) name,
    PALISADE_DECODE_PROTOCOLS(PALISADE_X)
#undef PALISADE_X
};
constexpr std::string_view kErrorNames[] = {"none",
#define PALISADE_X(id, name, text) name,
                                            PALISADE_DECODE_ERRORS(PALISADE_X)
#undef PALISADE_X
};
constexpr std::string_view kErrorTexts[] = {"no error",
#define PALISADE_X(id, name, text) text,
                                            PALISADE_DECODE_ERRORS(PALISADE_X)
#undef PALISADE_X
};
}  // namespace

std::string_view protoName(Proto p) {
  return kProtoNames[static_cast<size_t>(p)];
}
std::string_view errorName(DecodeError e) {
  return kErrorNames[static_cast<size_t>(e)];
}
std::string_view errorText(DecodeError e) {
  return kErrorTexts[static_cast<size_t>(e)];
}

void DecodeStats::merge(const DecodeStats& o) {
  packets += o.packets;
  bytes += o.bytes;
  malformed += o.malformed;
  truncated_captures += o.truncated_captures;
  for (size_t i = 0; i < protocols.size(); ++i)
    protocols[i] += o.protocols[i];
  for (size_t i = 0; i < errors.size(); ++i)
    errors[i] += o.errors[i];
}

}  // namespace palisade::pkt
