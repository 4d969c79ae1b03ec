// Reading fields of JSON that an attacker may have written (log records):
// never throws, never inserts, and a field of the wrong type reads as absent.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace palisade::events::jf {

inline const nlohmann::json* field(const nlohmann::json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

inline const nlohmann::json& object(const nlohmann::json& o, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const nlohmann::json* f = field(o, key);
  return f && f->is_object() ? *f : kEmpty;
}

inline const nlohmann::json& array(const nlohmann::json& o, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const nlohmann::json* f = field(o, key);
  return f && f->is_array() ? *f : kEmpty;
}

inline bool has(const nlohmann::json& o, const char* key) {
  return field(o, key) != nullptr;
}

inline std::string str(const nlohmann::json& o, const char* key, std::string def = {}) {
  const nlohmann::json* f = field(o, key);
  return f && f->is_string() ? f->get<std::string>() : def;
}

inline uint64_t u64(const nlohmann::json& o, const char* key, uint64_t def = 0) {
  const nlohmann::json* f = field(o, key);
  return f && f->is_number_unsigned() ? f->get<uint64_t>() : def;
}

inline bool boolean(const nlohmann::json& o, const char* key, bool def = false) {
  const nlohmann::json* f = field(o, key);
  return f && f->is_boolean() ? f->get<bool>() : def;
}

}  // namespace palisade::events::jf
