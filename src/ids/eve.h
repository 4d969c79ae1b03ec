// EVE JSON for IDS alerts, in the shape Suricata writes to eve.json, so the
// tools that read Suricata's alerts (jq filters, SIEM parsers, the
// suricata-verify checks) read Palisade's:
//
//   {"timestamp":"2024-04-01T10:00:00.000000+0000","flow_id":1,"pcap_cnt":3,
//    "event_type":"alert","src_ip":"192.0.2.1","src_port":51000,
//    "dest_ip":"198.51.100.2","dest_port":80,"proto":"TCP","app_proto":"http",
//    "alert":{"action":"allowed","gid":1,"signature_id":2100498,"rev":7,
//             "signature":"...","category":"...","severity":2},
//    "http":{"hostname":"...","url":"...","http_method":"GET",...}}
#pragma once

#include <string>

#include "core/json_writer.h"
#include "ids/engine.h"

namespace palisade::ids {

// Appends one alert line (with its newline). `classes` gives the category's
// description; without it the classtype name is used.
void appendAlertJson(std::string& out, const AlertInfo& a, const ClassificationTable* classes);
// The members after the envelope (direction, app_proto, alert, http, dns,
// tls), into an object `w` has open: what the data plane's alert events carry
// after its own envelope.
void writeAlertMembers(JsonWriter& w, const AlertInfo& a, const ClassificationTable* classes);

// Appends one http, dns, tls or flow event (with its newline), in the shape
// of Suricata's eve.json (dns in its version 2 format).
void appendEventJson(std::string& out, const AppEvent& e);

// Appends one packet event for a tagged packet, as Suricata's eve "packet"
// type: the frame in base64 under "packet", its link type under "packet_info".
void appendPacketJson(std::string& out, const TaggedPacket& t, uint32_t linktype);

}  // namespace palisade::ids
