#include "ddos/vectors.h"

#include <array>

namespace palisade::ddos {
namespace {

constexpr std::string_view kVectorNames[] = {
#define PALISADE_X(id, name, ...) name,
    PALISADE_DDOS_VECTORS(PALISADE_X)
#undef PALISADE_X
};

constexpr std::string_view kClassNames[] = {
#define PALISADE_X(id, name) name,
    PALISADE_DDOS_CLASSES(PALISADE_X)
#undef PALISADE_X
};

// Source port -> vector, built once from the vector list.
const std::array<Vector, 65536>& portTable() {
  static const std::array<Vector, 65536> table = [] {
    std::array<Vector, 65536> t;
    t.fill(Vector::None);
#define PALISADE_X(id, name, cls, ...) \
  for (unsigned port : {__VA_ARGS__})  \
    if (port != 0) t[port] = Vector::id;
    PALISADE_DDOS_VECTORS(PALISADE_X)
#undef PALISADE_X
    return t;
  }();
  return table;
}

}  // namespace

std::string_view vectorName(Vector v) {
  return v == Vector::None ? std::string_view("none") : kVectorNames[static_cast<size_t>(v)];
}

std::string_view className(VectorClass c) {
  return kClassNames[static_cast<size_t>(c)];
}

Vector amplificationVector(uint16_t source_port) {
  return portTable()[source_port];
}

}  // namespace palisade::ddos
