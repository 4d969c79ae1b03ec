// Header rewrites for NAT and forwarding, with incremental checksum updates
// (RFC 1624) so a rewrite costs the same whatever the packet's size.
#pragma once

#include <cstddef>
#include <span>

#include "core/net.h"
#include "packet/packet.h"

namespace palisade::pipeline {

// Rewrites the source (or destination) address and port of the IP packet that
// `p` describes inside `frame` (a writable copy of p.frame). For ICMP echo the
// "port" is the echo identifier. Address family must match the packet's.
void rewriteEndpoint(std::span<std::byte> frame, const pkt::Packet& p, bool source,
                     const IpAddr& addr, uint16_t port);

// Sets the Ethernet source and destination of `frame` (when it has an Ethernet header).
void setMacs(std::span<std::byte> frame, const pkt::Packet& p, const MacAddr& src,
             const MacAddr& dst);

}  // namespace palisade::pipeline
