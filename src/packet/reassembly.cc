#include "packet/reassembly.h"

#include <algorithm>
#include <cstring>

#include "core/hash.h"
#include "packet/checksum.h"

namespace palisade::pkt {

size_t Reassembler::KeyHash::operator()(const Key& k) const {
  return hashBytes(k.src.b.data(), 16,
                   hashBytes(k.dst.b.data(), 16, uint64_t{k.id} << 8 | k.proto));
}

void Reassembler::drop(std::unordered_map<Key, Datagram, KeyHash>::iterator it) {
  held_ -= it->second.bytes + it->second.head.size();
  table_.erase(it);
}

void Reassembler::expire(TimeNs now) {
  last_expiry_ = now;
  for (auto it = table_.begin(); it != table_.end();) {
    auto next = std::next(it);
    // A capture's clock may step back a little: only what is truly old goes.
    if (now >= it->second.first_seen && now - it->second.first_seen >= limits_.timeout) {
      ++stats_.timeouts;
      drop(it);
    }
    it = next;
  }
}

// Adds the parts of [offset, offset + data.size()) that no piece holds yet
// (first wins). False when the datagram would hold too many pieces.
bool Reassembler::insert(Datagram& d, uint32_t offset, std::span<const std::byte> data) {
  const uint32_t end = offset + static_cast<uint32_t>(data.size());
  bool overlapped = false;
  std::vector<Piece> gaps;
  uint32_t at = offset;
  for (const Piece& p : d.pieces) {
    const uint32_t p_end = p.offset + static_cast<uint32_t>(p.data.size());
    if (p_end <= at) continue;
    if (p.offset >= end) break;
    if (p.offset > at)
      gaps.push_back({at, {data.begin() + (at - offset), data.begin() + (p.offset - offset)}});
    overlapped = true;
    at = std::max(at, p_end);
    if (at >= end) break;
  }
  if (at < end) gaps.push_back({at, {data.begin() + (at - offset), data.end()}});
  if (overlapped) ++stats_.overlaps;
  if (d.pieces.size() + gaps.size() > limits_.max_fragments) return false;
  for (Piece& g : gaps) {
    d.bytes += static_cast<uint32_t>(g.data.size());
    held_ += g.data.size();
    d.pieces.push_back(std::move(g));
  }
  std::sort(d.pieces.begin(), d.pieces.end(),
            [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
  return true;
}

std::span<const std::byte> Reassembler::add(const Packet& p, TimeNs now) {
  if (now >= last_expiry_ + 1000000000ull) expire(now);
  if (!p.has(kFragment) || p.frag.data_off == 0 || p.frag.data_off > p.l3_end) return {};
  ++stats_.fragments;
  const bool v6 = p.has(kIpv6);
  const Key key{p.src, p.dst, p.frag.id, v6 ? uint8_t{0} : p.proto};
  const std::span<const std::byte> data =
      p.frame.subspan(p.frag.data_off, p.l3_end - p.frag.data_off);
  const uint32_t offset = p.frag.offset;
  const uint32_t end = offset + static_cast<uint32_t>(data.size());
  auto it = table_.find(key);
  const size_t head_size = offset == 0 ? p.frag.data_off - (v6 ? 8 : 0) : 0;
  if (held_ + data.size() + head_size > limits_.memcap) {
    ++stats_.memcap_drops;
    return {};
  }
  if (it == table_.end()) {
    if (table_.size() >= limits_.max_datagrams) {
      ++stats_.table_full;
      return {};
    }
    it = table_.emplace(key, Datagram{}).first;
    it->second.first_seen = now;
    it->second.v6 = v6;
  }
  Datagram& d = it->second;
  // The end: set by the fragment without "more"; nothing may lie past it.
  if (!p.frag.more) {
    if ((d.have_end && d.end != end) ||
        (!d.pieces.empty() && d.pieces.back().offset + d.pieces.back().data.size() > end)) {
      ++stats_.inconsistent;
      drop(it);
      return {};
    }
    d.have_end = true;
    d.end = end;
  } else if (d.have_end && end > d.end) {
    ++stats_.inconsistent;
    drop(it);
    return {};
  }
  if (offset == 0 && !d.have_head) {
    d.have_head = true;
    const uint32_t head_end = v6 ? p.frag.data_off - 8 : p.frag.data_off;
    d.head.assign(p.frame.begin(), p.frame.begin() + head_end);
    d.l3_off = p.l3_off;
    held_ += d.head.size();
    if (v6) {
      d.nh_at = p.frag.nh_at;
      d.next = static_cast<uint8_t>(p.frame[p.frag.data_off - 8]);
    }
  }
  if (!insert(d, offset, data)) {
    ++stats_.too_many;
    drop(it);
    return {};
  }
  if (!d.have_head || !d.have_end || d.bytes != d.end) return {};
  // Whole: its IP datagram must fit a 16-bit length.
  const size_t ip_header = d.head.size() - d.l3_off - (v6 ? 40 : 0);
  if (ip_header + d.end > 65535) {
    ++stats_.inconsistent;
    drop(it);
    return {};
  }
  build(d);
  ++stats_.reassembled;
  drop(it);
  return out_;
}

void Reassembler::build(const Datagram& d) {
  out_.assign(d.head.begin(), d.head.end());
  for (const Piece& p : d.pieces)
    out_.insert(out_.end(), p.data.begin(), p.data.end());
  auto* ip = reinterpret_cast<uint8_t*>(out_.data()) + d.l3_off;
  const size_t ip_len = out_.size() - d.l3_off;
  auto put16 = [](uint8_t* at, size_t v) {
    at[0] = static_cast<uint8_t>(v >> 8);
    at[1] = static_cast<uint8_t>(v);
  };
  if (d.v6) {
    out_[d.nh_at] = static_cast<std::byte>(d.next);  // the fragment header is gone
    put16(ip + 4, ip_len - 40);
    return;
  }
  put16(ip + 2, ip_len);
  put16(ip + 6, 0);  // flags and fragment offset: a whole datagram
  put16(ip + 10, 0);
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  put16(ip + 10, internetChecksum(Bytes(out_.data() + d.l3_off, ihl)));
}

}  // namespace palisade::pkt
