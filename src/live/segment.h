// Software segmentation of TCP super-frames, as the kernel's GSO does.
//
// A VM's virtual NIC with TSO/GSO on (the default for veth, tap and virtio)
// hands the switch TCP frames of up to 64 KB, and GRO on a port coalesces
// arriving segments into such frames too. The pipeline takes them whole (one
// verdict, one NAT rewrite, one inspection); before such a frame leaves by a
// port whose MTU it exceeds, it is cut into segments that fit: each a copy of
// the Ethernet, IP and TCP headers with the sequence number advanced, the IP
// lengths (and IPv4 identification and checksum) set, FIN and PSH only on
// the last segment, CWR only on the first, and its own TCP checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/bytes.h"

namespace palisade::live {

// Cuts `frame` (Ethernet, IPv4 or IPv6 without extension headers, TCP) into
// frames of at most 14 + mtu bytes, appended to `out`. False (nothing
// appended) when it is not such a frame or its headers leave no room.
bool segmentTcp(Bytes frame, uint32_t mtu, std::vector<std::vector<std::byte>>& out);

}  // namespace palisade::live
