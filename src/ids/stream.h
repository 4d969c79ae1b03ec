// TCP reassembly of one direction of a connection.
//
// Segments are placed by sequence number relative to the direction's initial
// sequence number, so reordering, retransmission and overlap are resolved
// before anything inspects the bytes: data already placed wins over a later
// segment that overlaps it (the "first" policy; a retransmission that tries
// to change bytes already seen is counted and ignored, which is what defeats
// the classic overlap evasions). Memory is bounded three ways: the depth
// (bytes of the stream inspected at all; 0 = no limit), the out-of-order
// budget (bytes held waiting for a hole to fill; past it the hole is skipped
// and counted as a gap) and the inspection window the caller trims to.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/bytes.h"

namespace palisade::ids {

struct StreamLimits {
  uint64_t depth = 1u << 20;         // stream.reassembly.depth; 0: unlimited
  uint32_t out_of_order = 1u << 18;  // bytes held past a hole
};

struct StreamCounters {
  uint64_t segments = 0, bytes = 0;
  uint64_t retransmitted = 0;  // segments wholly at or before the in-order end
  uint64_t overlap_diff = 0;   // overlapping bytes that differed from what was kept
  uint64_t gaps = 0;           // holes skipped (out-of-order budget or the end)
  uint64_t depth_dropped = 0;  // bytes past the depth
  uint64_t ooo_dropped = 0;    // segments too far ahead to hold
};

class TcpStream {
 public:
  // Starts the direction: `next_seq` is the sequence number of its first data
  // byte (ISN + 1 after a SYN, or the first segment's seq when picked up mid-stream).
  void start(uint32_t next_seq);
  bool started() const { return started_; }

  // Places a segment. New in-order bytes are appended to the window.
  void add(uint32_t seq, Bytes data, StreamLimits limits, StreamCounters& c);
  // Skips to the first held segment when there is a hole (the connection ended
  // or the caller gave up waiting); counted as a gap. True when it skipped.
  bool skipHole(StreamCounters& c);

  // Stream offsets: the window holds [windowStart(), end()).
  uint64_t end() const { return base_ + buf_.size(); }
  uint64_t windowStart() const { return base_; }
  std::string_view window() const { return buf_; }
  // Bytes from stream offset `from` (clamped to the window) to the end.
  std::string_view since(uint64_t from) const;
  // Keeps only the last `keep` bytes of the window.
  void trim(size_t keep);
  // Set after a gap until the caller clears it (app-layer parsers resynchronise).
  bool gap_pending = false;
  // The sequence number of stream offset 0.
  uint32_t isn() const { return next0_; }
  size_t heldBytes() const { return held_; }
  // The stream offset of a sequence number (negative: before the start).
  int64_t offsetOf(uint32_t seq) const;

 private:
  void drain(StreamLimits limits, StreamCounters& c);

  bool started_ = false;
  uint32_t next0_ = 0;  // sequence number of offset 0
  uint64_t base_ = 0;   // stream offset of buf_[0]
  std::string buf_;
  std::map<uint64_t, std::string> held_segments_;  // out of order, by offset
  size_t held_ = 0;
};

}  // namespace palisade::ids
