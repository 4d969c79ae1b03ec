// One-line, tcpdump-style summaries of decoded packets (palisade decode, trace).
#pragma once

#include <string>

#include "packet/packet.h"

namespace palisade::pkt {

// Appends the summary of pkt (and, for VXLAN, of `inner` when given) to out.
// Example: "02:00:5e:00:00:01 > 02:00:00:0a:00:04, IP 198.51.100.7.5555 >
//           203.0.113.10.443: Flags [S], seq 1000, win 64240, options [mss 1460], length 0"
void appendSummary(std::string& out, const Packet& pkt, const Packet* inner = nullptr);

}  // namespace palisade::pkt
