// JsonWriter: appends compact JSON to a caller-owned std::string.
//
// Used for events on their way out of the data plane: when the string has been
// reserved, writing does not allocate. It does not validate nesting; callers
// write well-formed sequences (open/close pairs are checked in tests).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/net.h"

namespace palisade {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(std::string_view k);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(uint64_t v);
  JsonWriter& value(int64_t v);
  JsonWriter& value(uint32_t v) { return value(uint64_t{v}); }
  JsonWriter& value(int v) { return value(int64_t{v}); }
  JsonWriter& value(bool b);
  JsonWriter& value(const IpAddr& a);
  JsonWriter& null();

  // Appends already-serialised JSON as the next value.
  JsonWriter& raw(std::string_view json);

  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

  static void appendEscaped(std::string& out, std::string_view s);

 private:
  void separate();
  std::string& out_;
  bool need_comma_ = false;
};

}  // namespace palisade
