#include "pipeline/synproxy.h"

#include <algorithm>
#include <cstring>

#include "packet/checksum.h"

namespace palisade::pipeline::synproxy {
namespace {

// Changes to fields of one TCP header, with the checksum updated once at the
// end by the sum of every changed 16-bit word's old and new value (RFC 1624
// eqn. 3). Words are counted from the header's start, so a field at an odd
// offset (an option after one NOP) changes the words it straddles.
class Patch {
 public:
  explicit Patch(std::byte* tcp) : tcp_(tcp) {}
  void set32(uint32_t off, uint32_t v) {
    std::byte b[4];
    store32(b, v);
    set(off, b, 4);
  }
  void set16(uint32_t off, uint16_t v) {
    std::byte b[2];
    store16(b, v);
    set(off, b, 2);
  }
  void finish() {
    if (sum_ != 0) pkt::checksumAdjust(tcp_ + 16, sum_, false);
  }

 private:
  void set(uint32_t off, const std::byte* v, uint32_t n) {
    const uint32_t lo = off & ~1u, hi = (off + n + 1) & ~1u;
    std::byte old[8];
    std::memcpy(old, tcp_ + lo, hi - lo);
    std::memcpy(tcp_ + off, v, n);
    sum_ += pkt::checksumDelta(old, tcp_ + lo, hi - lo);
  }
  std::byte* tcp_;
  uint32_t sum_ = 0;
};

uint16_t shifted(uint16_t window, int shift) {
  if (shift >= 0)
    return static_cast<uint16_t>(std::min<uint32_t>(uint32_t{window} << shift, 65535));
  return static_cast<uint16_t>(window >> -shift);
}

}  // namespace

size_t write(std::vector<std::byte>& out, const Segment& s) {
  const bool v4 = s.src.isV4();
  const uint32_t ip_len = v4 ? 20 : 40;
  // The options as 32-bit words (every group here fills whole words), stored
  // big-endian and summed as two 16-bit halves each: a byte at a time, then
  // read back for the checksum, they were a third of this function's time.
  uint32_t opt[6];
  uint32_t words = 0;
  if (s.mss) opt[words++] = 0x02040000u | s.mss;
  if (s.timestamps) {
    opt[words++] = s.sack_permitted ? 0x0402080au : 0x0101080au;
    opt[words++] = s.tsval;
    opt[words++] = s.tsecr;
  } else if (s.sack_permitted) {
    opt[words++] = 0x01010402u;
  }
  if (s.wscale != 0xf) opt[words++] = 0x01030300u | s.wscale;
  const uint32_t tcp_len = 20 + 4 * words;
  const size_t l2 = s.l2.size();
  out.resize(l2 + ip_len + tcp_len);
  std::byte* f = out.data();
  std::memcpy(f, s.l2.data(), l2);
  if (s.swap_macs && l2 >= 12) {
    std::byte mac[6];
    std::memcpy(mac, f, 6);
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, mac, 6);
  }
  // The checksums are summed from the values as they are written, not read
  // back from the frame: loading eight bytes just stored as ones, twos and
  // fours defeats store forwarding, and that stall was most of their cost.
  const uint32_t addr_sum = pkt::pseudoHeaderSum(s.src, s.dst, 0, 0);  // the addresses alone
  std::byte* ip = f + l2;
  // Fixed sizes: a memset of a variable length is a `rep stos` here, whose
  // start-up cost was a sixth of this function's time.
  if (v4)
    std::memset(ip, 0, 20);
  else
    std::memset(ip, 0, 40);
  std::memset(ip + ip_len, 0, 20);  // the TCP header; its options are written whole below
  if (v4) {
    ip[0] = std::byte{0x45};
    store16(ip + 2, static_cast<uint16_t>(ip_len + tcp_len));
    store16(ip + 6, 0x4000);  // don't fragment
    ip[8] = std::byte{64};
    ip[9] = std::byte{pkt::ipproto::kTcp};
    std::memcpy(ip + 12, s.src.b.data() + 12, 4);
    std::memcpy(ip + 16, s.dst.b.data() + 12, 4);
    store16(ip + 10, pkt::checksumFinish(addr_sum + 0x4500 + ip_len + tcp_len + 0x4000 +
                                         (64u << 8 | pkt::ipproto::kTcp)));
  } else {
    ip[0] = std::byte{0x60};
    store16(ip + 4, static_cast<uint16_t>(tcp_len));
    ip[6] = std::byte{pkt::ipproto::kTcp};
    ip[7] = std::byte{64};
    std::memcpy(ip + 8, s.src.b.data(), 16);
    std::memcpy(ip + 24, s.dst.b.data(), 16);
  }
  std::byte* tcp = ip + ip_len;
  store16(tcp, s.sport);
  store16(tcp + 2, s.dport);
  store32(tcp + 4, s.seq);
  store32(tcp + 8, s.ack);
  tcp[12] = static_cast<std::byte>((tcp_len / 4) << 4);
  tcp[13] = static_cast<std::byte>(s.flags);
  store16(tcp + 14, s.window);
  uint32_t sum = addr_sum + pkt::ipproto::kTcp + tcp_len + s.sport + s.dport + (s.seq >> 16) +
                 (s.seq & 0xffff) + (s.ack >> 16) + (s.ack & 0xffff) + ((tcp_len / 4) << 12) +
                 s.flags + s.window;
  for (uint32_t i = 0; i < words; ++i) {
    store32(tcp + 20 + 4 * i, opt[i]);
    sum += (opt[i] >> 16) + (opt[i] & 0xffff);
  }
  store16(tcp + 16, pkt::checksumFinish(sum));
  return l2 + ip_len;
}

void settleWindows(Translation& t, uint8_t server_wscale) {
  // The SYN the server saw offered the client's scale exactly when the client
  // offered one; the SYN-ACK the client saw offered `offered_wscale` then.
  const bool client_scales = t.client_wscale != 0xf && t.offered_wscale != 0xf;
  const bool server_scales = client_scales && server_wscale != 0xff;
  const int server = server_scales ? std::min<int>(server_wscale, 14) : 0;
  const int client_view = client_scales ? std::min<int>(t.offered_wscale, 14) : 0;
  t.to_client_shift = static_cast<int8_t>(server - client_view);
  t.to_server_shift = client_scales && !server_scales ? std::min<uint8_t>(t.client_wscale, 14) : 0;
}

uint16_t toServerWindow(const Translation& t, uint16_t window) {
  return t.to_server_shift ? shifted(window, t.to_server_shift) : window;
}

void translate(std::span<std::byte> frame, const pkt::Packet& p, const Translation& t,
               bool to_server) {
  using namespace pkt::tcpflag;
  if (!p.has(pkt::kTcp) || p.l4_off + 20 > frame.size()) return;
  std::byte* tcp = frame.data() + p.l4_off;
  const uint32_t hlen = std::min<uint32_t>(static_cast<uint32_t>(tcp[12] >> 4) * 4,
                                           static_cast<uint32_t>(frame.size() - p.l4_off));
  Patch patch(tcp);
  if (t.state == Translation::State::Pending) {
    // The server refused the connection the client thinks is open: its RST
    // (sequence 0, answering a SYN) gets the number the client expects.
    if (!to_server && (p.tcp.flags & kRst)) {
      patch.set32(4, t.cookie_isn + 1);
      patch.finish();
    }
    return;
  }
  if (to_server) {
    if (p.tcp.flags & kAck) patch.set32(8, load32(tcp + 8) + t.seq_delta);
    if (t.to_server_shift) patch.set16(14, shifted(load16(tcp + 14), t.to_server_shift));
  } else {
    patch.set32(4, load32(tcp + 4) - t.seq_delta);
    if (t.to_client_shift && !(p.tcp.flags & kSyn))
      patch.set16(14, shifted(load16(tcp + 14), t.to_client_shift));
  }
  for (uint32_t o = 20; o < hlen;) {
    const auto kind = static_cast<uint8_t>(tcp[o]);
    if (kind == 0) break;
    if (kind == 1) {
      ++o;
      continue;
    }
    if (o + 1 >= hlen) break;
    const auto len = static_cast<uint8_t>(tcp[o + 1]);
    if (len < 2 || o + len > hlen) break;
    if (kind == 8 && len == 10 && t.timestamps) {
      if (to_server)
        patch.set32(o + 6, load32(tcp + o + 6) + t.ts_delta);  // TSecr: the server's clock
      else
        patch.set32(o + 2, load32(tcp + o + 2) - t.ts_delta);  // TSval: the proxy's clock
    } else if (kind == 5 && to_server) {
      // SACK blocks acknowledge the server's data: its sequence space.
      for (uint32_t b = o + 2; b + 8 <= o + len; b += 8) {
        patch.set32(b, load32(tcp + b) + t.seq_delta);
        patch.set32(b + 4, load32(tcp + b + 4) + t.seq_delta);
      }
    }
    o += len;
  }
  patch.finish();
}

}  // namespace palisade::pipeline::synproxy
