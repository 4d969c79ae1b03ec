// Decoder: frame bytes -> Packet view, with every length checked.
//
// Contract: never reads outside `frame`; never allocates or throws; a malformed
// frame sets Packet::error to the first problem found and counts it in stats()
// (layers decoded before the problem stay valid). Truncated captures (caplen
// below the wire length) are decoded as far as the bytes go and counted apart.
// One Decoder per worker thread: the counters are plain integers.
#pragma once

#include "packet/packet.h"

namespace palisade::pkt {

struct DecoderConfig {
  uint16_t vxlan_port = 4789;  // IANA; 8472 for older Linux defaults
};

class Decoder {
 public:
  explicit Decoder(DecoderConfig config = {}) : config_(config) {}

  // Decodes one frame. wire_len is the original length on the wire (>= frame size).
  // Returns true when the frame decoded without a malformation.
  bool decode(LinkType link, Bytes frame, uint32_t wire_len, Packet& pkt);

  // Decodes an inner Ethernet frame (VXLAN payload) into its own view.
  bool decodeInner(const Packet& outer, Packet& inner);

  const DecodeStats& stats() const { return stats_; }
  DecodeStats& stats() { return stats_; }

 private:
  bool fail(Packet& pkt, DecodeError e);
  bool ethernet(Packet& pkt, uint32_t off);
  bool afterEthertype(Packet& pkt, uint16_t type, uint32_t off);
  bool arp(Packet& pkt, uint32_t off);
  bool ipv4(Packet& pkt, uint32_t off);
  bool ipv6(Packet& pkt, uint32_t off);
  bool l4(Packet& pkt);
  bool tcp(Packet& pkt);
  bool tcpOptions(Packet& pkt, uint32_t off, uint32_t len);
  bool udp(Packet& pkt);
  bool icmp(Packet& pkt);
  bool icmpv6(Packet& pkt);
  bool dhcp(Packet& pkt);
  bool vxlan(Packet& pkt);

  DecoderConfig config_;
  DecodeStats stats_;
};

}  // namespace palisade::pkt
