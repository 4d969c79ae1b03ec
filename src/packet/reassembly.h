// IP reassembly: fragments of IPv4 and IPv6 datagrams back into whole
// datagrams, in bounded memory.
//
// A datagram is keyed as RFC 791 and RFC 8200 say (source, destination,
// identification, and for IPv4 the protocol). Overlapping data is resolved
// first-wins (what arrived first stays; the later copy of those bytes is
// discarded and counted), so a retransmitted or forged overlap cannot
// rewrite bytes already seen. A datagram is given up, and its memory freed,
// when it is inconsistent (data past its last fragment's end, two different
// ends, more than 65,535 bytes), has too many fragments, or is not complete
// within the timeout. New fragments are refused, counted, while the bytes
// held would pass the memory cap or the table of datagrams is full.
//
// The whole datagram comes back as a frame of the link type the fragments
// came in: the first fragment's link-layer header and IP header (IPv4 with
// its fragment fields cleared, length and checksum set; IPv6 without its
// fragment header, the header before it naming what followed it, payload
// length set), then every byte of the payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/net.h"
#include "core/time.h"
#include "packet/packet.h"

namespace palisade::pkt {

struct ReassemblyLimits {
  size_t memcap = size_t{32} << 20;        // bytes held across every datagram
  TimeNs timeout = 60ull * 1000000000ull;  // from a datagram's first fragment
  size_t max_datagrams = 65536;            // being reassembled at once
  size_t max_fragments = 256;              // kept of one datagram
};

struct ReassemblyStats {
  uint64_t fragments = 0;     // offered
  uint64_t reassembled = 0;   // datagrams completed
  uint64_t overlaps = 0;      // fragments that overlapped data already held
  uint64_t timeouts = 0;      // datagrams given up incomplete
  uint64_t inconsistent = 0;  // datagrams given up: bad ends, too large
  uint64_t too_many = 0;      // datagrams given up: too many fragments
  uint64_t memcap_drops = 0;  // fragments refused: memory cap
  uint64_t table_full = 0;    // fragments refused: too many datagrams
};

class Reassembler {
 public:
  explicit Reassembler(ReassemblyLimits limits = {}) : limits_(limits) {}

  // A decoded fragment (p has kFragment). When it completes its datagram,
  // returns the whole datagram as a frame of p.link (valid until the next
  // call); otherwise an empty span. `now` also expires old datagrams.
  std::span<const std::byte> add(const Packet& p, TimeNs now);
  // Gives up every datagram older than the timeout.
  void expire(TimeNs now);

  const ReassemblyStats& stats() const { return stats_; }
  size_t pending() const { return table_.size(); }
  size_t bytesHeld() const { return held_; }

 private:
  struct Key {
    IpAddr src, dst;
    uint32_t id = 0;
    uint8_t proto = 0;  // IPv4 only (IPv6 identifies by addresses and id)
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Piece {
    uint32_t offset;
    std::vector<std::byte> data;
  };
  struct Datagram {
    TimeNs first_seen = 0;
    std::vector<std::byte> head;  // link + IP header of the offset-0 fragment
    uint32_t l3_off = 0;          // where the IP header starts in `head`
    uint32_t nh_at = 0;           // IPv6: the next-header byte to patch, in `head`
    uint8_t next = 0;             // IPv6: what followed the fragment header
    bool v6 = false, have_head = false, have_end = false;
    uint32_t end = 0;           // the last fragment's end, once seen
    uint32_t bytes = 0;         // payload bytes held
    std::vector<Piece> pieces;  // sorted by offset, disjoint
  };
  void drop(std::unordered_map<Key, Datagram, KeyHash>::iterator it);
  bool insert(Datagram& d, uint32_t offset, std::span<const std::byte> data);
  void build(const Datagram& d);

  ReassemblyLimits limits_;
  ReassemblyStats stats_;
  std::unordered_map<Key, Datagram, KeyHash> table_;
  size_t held_ = 0;  // bytes: pieces and heads
  TimeNs last_expiry_ = 0;
  std::vector<std::byte> out_;
};

}  // namespace palisade::pkt
