#include "events/event.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/json_writer.h"

namespace palisade::events {

namespace {
constexpr std::string_view kTypeNames[] = {
#define PALISADE_X(id, name) name,
    PALISADE_EVENT_TYPES(PALISADE_X)
#undef PALISADE_X
};
// formatEveJson's envelope bound counts on it.
static_assert(std::ranges::all_of(kTypeNames, [](std::string_view n) { return n.size() <= 24; }));
}  // namespace

std::string_view eventTypeName(EventType t) {
  return kTypeNames[static_cast<size_t>(t)];
}

JsonWriter& beginEve(JsonWriter& w, TimeNs ts, std::string_view event_type) {
  char buf[40];
  return w.beginObject()
      .field("timestamp", std::string_view(buf, formatRfc3339(ts, buf)))
      .field("event_type", event_type);
}

namespace {
// Appends to a stack buffer the envelope formatEveJson writes; every piece is
// bounded (see kEnvelopeMax), so no check is needed per piece.
struct Put {
  char* p;
  template <size_t N>
  void lit(const char (&s)[N]) {
    std::memcpy(p, s, N - 1);
    p += N - 1;
  }
  void str(std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void num(uint64_t v) { p = std::to_chars(p, p + 20, v).ptr; }
  void ip(const IpAddr& a) { p += formatIp(a, p); }
};
// timestamp 32, flow id 20, event type name 24, two addresses 45 each, two
// ports 5 each, proto 9, and the keys and quotes (under 120).
constexpr size_t kEnvelopeMax = 512;
}  // namespace

// The writer thread formats every event, so this is on the log's hot path:
// the envelope goes into a stack buffer with plain copies (its keys and
// values need no escaping: fixed names, numbers, addresses), then one append.
void formatEveJson(const Event& e, std::string& out) {
  char buf[kEnvelopeMax];
  Put w{buf};
  w.lit("{\"timestamp\":\"");
  w.p += formatRfc3339(e.ts_ns, w.p);
  w.lit("\"");
  if (e.flow_id) {
    w.lit(",\"flow_id\":");
    w.num(e.flow_id);
  }
  w.lit(",\"event_type\":\"");
  w.str(eventTypeName(e.type));
  w.lit("\"");
  if (e.has_tuple) {
    const bool ports = e.proto == 6 || e.proto == 17 || e.proto == 132;
    w.lit(",\"src_ip\":\"");
    w.ip(e.src_ip);
    w.lit("\"");
    if (ports) {
      w.lit(",\"src_port\":");
      w.num(e.src_port);
    }
    w.lit(",\"dest_ip\":\"");
    w.ip(e.dest_ip);
    w.lit("\"");
    if (ports) {
      w.lit(",\"dest_port\":");
      w.num(e.dest_port);
    }
    char pbuf[4];
    w.lit(",\"proto\":\"");
    w.str(ipProtoName(e.proto, pbuf));
    w.lit("\"");
  }
  const size_t head = static_cast<size_t>(w.p - buf);
  const size_t at = out.size();
  out.resize(at + head + (e.body.empty() ? 0 : 1 + e.body.size()) + 2);
  char* o = out.data() + at;
  std::memcpy(o, buf, head);
  o += head;
  if (!e.body.empty()) {
    *o++ = ',';
    std::memcpy(o, e.body.data(), e.body.size());
    o += e.body.size();
  }
  o[0] = '}';
  o[1] = '\n';
}

}  // namespace palisade::events
