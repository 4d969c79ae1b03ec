// PacketSocket: one AF_PACKET socket on one interface, with a TPACKET_V3
// receive ring (blocks of frames the kernel fills and hands over whole) and
// plain send() for transmission. Each worker opens one per port, all joined to
// the port's fanout group, whose classic BPF program (live/fanout.h) picks the
// worker of each packet.
//
// The interface is put in promiscuous mode for the socket's lifetime (frames
// to the gateway MAC and to VIPs are not the interface's own) and the socket
// ignores its own transmissions (PACKET_IGNORE_OUTGOING).
//
// Threading: a socket belongs to the worker that polls it.
#pragma once

#include <linux/filter.h>
#include <linux/if_packet.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/net.h"
#include "core/result.h"

namespace palisade::live {

struct RingConfig {
  uint32_t block_size = 1u << 18;  // bytes; a power of two, a multiple of the page size
  uint32_t blocks = 8;
  uint32_t frame_size = 2048;  // the kernel's nominal slot; frames are packed in a block
  uint32_t retire_ms = 2;      // a partly filled block is handed over after this
};

// What the kernel says about the interface, read before opening a socket.
struct InterfaceInfo {
  std::string name;
  int index = 0;
  MacAddr mac;
  uint32_t mtu = 1500;
};
Result<InterfaceInfo> interfaceInfo(const std::string& name);

struct RxFrame {
  std::span<std::byte> data;  // writable: the ring's own bytes, valid until the block is released
  uint32_t wire_len = 0;      // tp_len: larger than data when the ring truncated the frame
  uint32_t status = 0;        // tp_status (TP_STATUS_CSUMNOTREADY, TP_STATUS_VLAN_VALID, ...)
  uint16_t vlan_tci = 0;      // when TP_STATUS_VLAN_VALID: the tag the NIC took off
};

class PacketSocket {
 public:
  // Opens, binds to `iface`, maps the ring and joins fanout group `group` with
  // `program` (PACKET_FANOUT_CBPF). Errors name the interface and the step.
  static Result<PacketSocket> open(const InterfaceInfo& iface, const RingConfig& ring,
                                   uint16_t group, std::span<const sock_filter> program);
  PacketSocket() = default;
  PacketSocket(PacketSocket&& o) noexcept { *this = std::move(o); }
  PacketSocket& operator=(PacketSocket&& o) noexcept;
  ~PacketSocket();

  int fd() const { return fd_; }

  // Calls each(RxFrame&) for up to `max` frames of the block the kernel has
  // handed over (never more than one block per call), or returns 0 when it
  // has handed over none. The frames stay valid until release().
  template <class F>
  size_t receive(size_t max, F&& each);
  // After each receive() that returned frames: gives the block back to the
  // kernel once all of its frames were read.
  void release();

  // Sends one frame. A full socket buffer or a vanished interface is an
  // error the caller counts; nothing blocks.
  Status send(Bytes frame);

  // Replaces the fanout program (after a policy reload changes address spaces).
  Status setProgram(std::span<const sock_filter> program);

  uint64_t kernelDrops();  // PACKET_STATISTICS tp_drops since the last call

  // How far behind the reader is: the blocks the kernel has handed over and
  // not had back (the one being read included), of blocks().
  uint32_t backlog() const {
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg_.blocks; ++i) {
      const auto* bd = reinterpret_cast<const tpacket_block_desc*>(
          ring_ + size_t{(block_ + i) % cfg_.blocks} * cfg_.block_size);
      if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0)
        break;
      ++n;
    }
    return n;
  }
  uint32_t blocks() const { return cfg_.blocks; }

 private:
  int fd_ = -1;
  std::byte* ring_ = nullptr;
  size_t ring_len_ = 0;
  RingConfig cfg_;
  uint32_t block_ = 0;     // the block being read
  uint32_t in_block_ = 0;  // frames of it already read
  std::byte* next_ = nullptr;
};

template <class F>
size_t PacketSocket::receive(size_t max, F&& each) {
  for (;;) {
    auto* bd = reinterpret_cast<tpacket_block_desc*>(ring_ + size_t{block_} * cfg_.block_size);
    if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0)
      return 0;
    const uint32_t count = bd->hdr.bh1.num_pkts;
    if (count == 0) {  // nothing in it: give it straight back
      release();
      continue;
    }
    if (in_block_ == 0) next_ = reinterpret_cast<std::byte*>(bd) + bd->hdr.bh1.offset_to_first_pkt;
    size_t n = 0;
    while (in_block_ < count && n < max) {
      auto* h = reinterpret_cast<tpacket3_hdr*>(next_);
      RxFrame f;
      f.data = std::span<std::byte>(next_ + h->tp_mac, h->tp_snaplen);
      f.wire_len = h->tp_len;
      f.status = h->tp_status;
      f.vlan_tci = static_cast<uint16_t>(h->hv1.tp_vlan_tci);
      each(f);
      ++n;
      ++in_block_;
      next_ += h->tp_next_offset;
    }
    return n;
  }
}

}  // namespace palisade::live
