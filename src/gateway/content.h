// Content checks on request bodies before they reach an API: JSON and XML
// documents are validated in one pass, without building a tree, against
// per-route bounds (the "JSON/XML threat protection" of API gateways). An XML
// document type declaration is refused outright: it is how external entities
// (XXE) and entity expansion ("billion laughs") get in.
#pragma once

#include <cstdint>
#include <string_view>

namespace palisade::gateway {

struct JsonLimits {
  uint32_t max_depth = 32;      // nested objects and arrays
  uint32_t max_keys = 10000;    // object members in the whole document
  uint32_t max_string = 65536;  // bytes of one string (key or value), escapes counted raw
  uint32_t max_number = 256;    // characters of one number (big-number parsers spin on more)
  uint64_t max_size = 1 << 20;  // document bytes
};

struct XmlLimits {
  uint32_t max_depth = 32;       // nested elements
  uint32_t max_attributes = 64;  // attributes of one element
  uint32_t max_nodes = 10000;    // elements in the whole document
  uint64_t max_size = 1 << 20;   // document bytes
};

// The outcome: ok, or the status to answer with and why (static text).
struct ContentVerdict {
  bool ok = true;
  int status = 0;
  std::string_view reason;
};

ContentVerdict checkJson(std::string_view doc, const JsonLimits& limits);
ContentVerdict checkXml(std::string_view doc, const XmlLimits& limits);

enum class BodyType : uint8_t { Other, Json, Xml };
// What a body is for the checks: its Content-Type (application/json, */*+json,
// application/xml, text/xml, */*+xml), or XML whatever the label says when it
// opens with an XML declaration, or is markup with a DOCTYPE or ENTITY
// declaration in its first 64 KiB, since an upstream XML parser
// may not look at the label.
BodyType bodyType(std::string_view content_type, std::string_view body);

}  // namespace palisade::gateway
