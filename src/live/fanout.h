// Which worker a packet belongs to, as a classic BPF program the kernel runs
// for PACKET_FANOUT_CBPF, so both directions of every flow land on one worker
// even when NAT changes one side of the tuple.
//
// The kernel's own PACKET_FANOUT_HASH is symmetric over the tuple as it is on
// the wire, but a DNAT'd flow is (client, VIP) on the uplink and (NIC, client)
// on the NIC's port, and a SNAT'd one (NIC, server) and (server, VIP). What the
// two sides share is the address that is not ours: the remote one. So:
//
//   NIC port:  destination in the NIC's VNet (or a peered one): src ^ dst
//              (east-west, never translated); else the destination (remote).
//   uplink:    VXLAN to the switch's port: inner src ^ inner dst (east-west
//              between hosts); else the source (remote).
//   non-IP:    worker 0 (ARP; the per-NIC ARP cap stays exact).
//
// Every flow of one remote address shares a worker, so each worker's SNAT port
// allocation cannot collide with another's. IPv4 and IPv6; addresses only, so
// fragments follow their flow. Offsets are relative to the network header
// (SKF_NET_OFF), whatever the link layer.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/bytes.h"
#include "core/net.h"

namespace palisade::live {

enum class PortRole : uint8_t { Nic, Uplink };

// The program for one port. `private_space`: the NIC's VNet address space and
// its peers' (Nic role); `vxlan_port`: the UDP port of VXLAN (Uplink role).
std::vector<sock_filter> fanoutProgram(PortRole role, std::span<const Prefix> private_space,
                                       uint16_t vxlan_port);

// Runs a program as the kernel does for a fanout socket, over an Ethernet
// frame (untagged: the ethertype at bytes 12-13 is what the kernel reports as
// the protocol). For tests; returns the 32-bit value the kernel takes `% workers` of.
uint32_t runFanoutProgram(std::span<const sock_filter> prog, Bytes frame);

}  // namespace palisade::live
