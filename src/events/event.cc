#include "events/event.h"

#include <charconv>

#include "core/json_writer.h"

namespace palisade::events {

std::string_view eventTypeName(EventType t) {
  static constexpr std::string_view kNames[] = {
#define PALISADE_X(id, name) name,
      PALISADE_EVENT_TYPES(PALISADE_X)
#undef PALISADE_X
  };
  return kNames[static_cast<size_t>(t)];
}

std::string_view protoName(uint8_t proto, char (&buf)[4]) {
  switch (proto) {
    case 1:
      return "ICMP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 58:
      return "IPv6-ICMP";
    case 132:
      return "SCTP";
    default: {
      auto r = std::to_chars(buf, buf + sizeof buf, proto);
      return {buf, static_cast<size_t>(r.ptr - buf)};
    }
  }
}

JsonWriter& beginEve(JsonWriter& w, TimeNs ts, std::string_view event_type) {
  char buf[40];
  return w.beginObject()
      .field("timestamp", std::string_view(buf, formatRfc3339(ts, buf)))
      .field("event_type", event_type);
}

void formatEveJson(const Event& e, std::string& out) {
  JsonWriter w(out);
  w.beginObject();
  char ts[40];
  w.field("timestamp", std::string_view(ts, formatRfc3339(e.ts_ns, ts)));
  if (e.flow_id) w.field("flow_id", e.flow_id);
  w.field("event_type", eventTypeName(e.type));
  if (e.has_tuple) {
    char pbuf[4];
    w.field("src_ip", e.src_ip);
    if (e.proto == 6 || e.proto == 17 || e.proto == 132) w.field("src_port", uint32_t{e.src_port});
    w.field("dest_ip", e.dest_ip);
    if (e.proto == 6 || e.proto == 17 || e.proto == 132)
      w.field("dest_port", uint32_t{e.dest_port});
    w.field("proto", protoName(e.proto, pbuf));
  }
  if (!e.body.empty()) w.raw(e.body);
  w.endObject();
  out += '\n';
}

}  // namespace palisade::events
