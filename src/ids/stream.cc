#include "ids/stream.h"

#include <algorithm>
#include <cstring>

namespace palisade::ids {

namespace {
// A segment further ahead than this is not a hole waiting to fill but garbage
// (or an attack on the buffer): it is dropped.
constexpr int64_t kMaxAhead = 16 << 20;
}  // namespace

void TcpStream::start(uint32_t next_seq) {
  started_ = true;
  next0_ = next_seq;
  base_ = 0;
  buf_.clear();
  held_segments_.clear();
  held_ = 0;
}

int64_t TcpStream::offsetOf(uint32_t seq) const {
  const uint32_t expected = next0_ + static_cast<uint32_t>(end());
  const auto delta = static_cast<int32_t>(seq - expected);
  return static_cast<int64_t>(end()) + delta;
}

std::string_view TcpStream::since(uint64_t from) const {
  if (from < base_) from = base_;
  if (from >= end()) return {};
  return std::string_view(buf_).substr(from - base_);
}

void TcpStream::trim(size_t keep) {
  if (buf_.size() <= keep) return;
  const size_t n = buf_.size() - keep;
  buf_.erase(0, n);
  base_ += n;
}

void TcpStream::drain(StreamLimits limits, StreamCounters& c) {
  while (!held_segments_.empty()) {
    auto it = held_segments_.begin();
    if (it->first > end()) break;
    const uint64_t seg_end = it->first + it->second.size();
    if (seg_end > end()) {
      std::string_view tail = std::string_view(it->second).substr(end() - it->first);
      if (limits.depth && end() + tail.size() > limits.depth) {
        const size_t room = end() < limits.depth ? limits.depth - end() : 0;
        c.depth_dropped += tail.size() - room;
        tail = tail.substr(0, room);
      }
      buf_.append(tail);
    }
    held_ -= it->second.size();
    held_segments_.erase(it);
  }
}

bool TcpStream::skipHole(StreamCounters& c) {
  if (held_segments_.empty()) return false;
  const uint64_t first = held_segments_.begin()->first;
  if (first <= end()) return false;
  buf_.clear();
  base_ = first;
  gap_pending = true;
  ++c.gaps;
  drain({0, 0}, c);
  return true;
}

void TcpStream::add(uint32_t seq, Bytes data, StreamLimits limits, StreamCounters& c) {
  if (!started_ || data.empty()) return;
  ++c.segments;
  std::string_view d(reinterpret_cast<const char*>(data.data()), data.size());
  int64_t off = offsetOf(seq);
  const auto cur = static_cast<int64_t>(end());

  if (off < cur) {
    // Overlaps what is already placed: the placed bytes win. Compare what is
    // still in the window so a retransmission that changes data is counted.
    const int64_t seg_end = off + static_cast<int64_t>(d.size());
    const int64_t from = std::max<int64_t>(off, static_cast<int64_t>(base_));
    const int64_t to = std::min(seg_end, cur);
    for (int64_t i = from; i < to; ++i)
      if (buf_[static_cast<size_t>(i) - base_] != d[static_cast<size_t>(i - off)]) {
        ++c.overlap_diff;
        break;
      }
    if (seg_end <= cur) {
      ++c.retransmitted;
      return;
    }
    d.remove_prefix(static_cast<size_t>(cur - off));
    off = cur;
  }

  if (limits.depth) {
    const auto depth = static_cast<int64_t>(limits.depth);
    if (off >= depth) {
      c.depth_dropped += d.size();
      return;
    }
    if (off + static_cast<int64_t>(d.size()) > depth) {
      c.depth_dropped += static_cast<uint64_t>(off + static_cast<int64_t>(d.size()) - depth);
      d = d.substr(0, static_cast<size_t>(depth - off));
    }
  }
  c.bytes += d.size();

  if (off == cur) {
    buf_.append(d);
    drain(limits, c);
    return;
  }
  if (off - cur > kMaxAhead) {
    ++c.ooo_dropped;
    return;
  }
  if (held_ + d.size() > limits.out_of_order) {
    // Out of budget: give up on the hole, then place this segment afresh.
    if (skipHole(c)) {
      --c.segments;  // counted again by the call below
      c.bytes -= d.size();
      add(seq, data, limits, c);
      return;
    }
    ++c.ooo_dropped;
    return;
  }
  auto [it, inserted] = held_segments_.try_emplace(static_cast<uint64_t>(off), d);
  if (inserted) {
    held_ += d.size();
  } else if (d.size() > it->second.size()) {
    held_ += d.size() - it->second.size();
    it->second.append(d.substr(it->second.size()));
  }
}

}  // namespace palisade::ids
