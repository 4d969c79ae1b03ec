// Events: what every capability emits (flow logs, alerts, drops, DDoS, audit).
//
// An Event is a preallocated slot: fixed EVE fields plus `body`, the
// type-specific members already serialised as JSON ("tenant":"a","alert":{...}),
// written with JsonWriter into a string whose capacity was reserved up front, so
// emitting does not allocate in the common case.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/json_writer.h"
#include "core/net.h"
#include "core/time.h"

namespace palisade::events {

#define PALISADE_EVENT_TYPES(X) \
  X(Flow, "flow")               \
  X(Alert, "alert")             \
  X(Drop, "drop")               \
  X(Ddos, "ddos")               \
  X(Anomaly, "anomaly")         \
  X(Audit, "audit")             \
  X(Stats, "stats")

enum class EventType : uint8_t {
#define PALISADE_X(id, name) id,
  PALISADE_EVENT_TYPES(PALISADE_X)
#undef PALISADE_X
};

std::string_view eventTypeName(EventType t);

struct Event {
  TimeNs ts_ns = 0;
  uint64_t flow_id = 0;  // 0: not tied to a flow
  EventType type = EventType::Flow;
  bool has_tuple = false;
  IpAddr src_ip, dest_ip;
  uint16_t src_port = 0, dest_port = 0;
  uint8_t proto = 0;
  std::string body;  // JSON object members, without the braces

  void setTuple(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport,
                uint8_t protocol) {
    has_tuple = true;
    src_ip = src;
    src_port = sport;
    dest_ip = dst;
    dest_port = dport;
    proto = protocol;
  }

  void clear() {
    flow_id = 0;
    has_tuple = false;
    src_port = dest_port = 0;
    proto = 0;
    body.clear();
  }
};

// Appends one EVE JSON line (with '\n') for e.
void formatEveJson(const Event& e, std::string& out);
// Opens an EVE object: {"timestamp":"<RFC 3339, UTC, microseconds>","event_type":"<type>"
// (for events made outside the data plane: log records, collector alarms).
JsonWriter& beginEve(JsonWriter& w, TimeNs ts, std::string_view event_type);

}  // namespace palisade::events
