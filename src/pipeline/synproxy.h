// The SYN proxy's packet work: the segments it writes and the translation of
// a proxied connection's segments (the pipeline decides when; see
// docs/architecture.md, "SYN proxy").
//
//   client            Palisade                     server
//     SYN  ------->   answers with a cookie
//          <-------   SYN-ACK (seq = cookie, no state kept)
//     ACK  ------->   cookie valid: a SYN with the client's ISN and options
//                     (MSS, window scale, SACK, ECN from the cookie; its
//                     timestamp)  ------------------------->
//                                         <----------------  SYN-ACK
//                     ACK (completes the server's handshake) ---->
//     data <------>   translated both ways  <------------->  data
//
// The client saw the cookie as the server's initial sequence number and the
// proxy's timestamp clock; the server has its own. Client to server, the
// acknowledgment number and SACK blocks are raised by the sequence offset and
// the echoed timestamp by the timestamp offset; server to client, the sequence
// number and TSval are lowered by them. When the two sides disagree on window
// scaling (the proxy offered the client `wscale` before it knew the
// server's), window fields are rescaled. Everything else passes as it is.
// Rewrites update checksums incrementally (RFC 1624).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/bytes.h"
#include "core/net.h"
#include "packet/checksum.h"
#include "packet/packet.h"

namespace palisade::pipeline::synproxy {

// A TCP segment to write: `l2` is copied in front (its MACs swapped when
// `swap_macs`), then an IPv4 or IPv6 header (by the addresses' family), then
// TCP with the options asked for, every length and checksum filled in.
struct Segment {
  Bytes l2;
  bool swap_macs = false;
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint16_t mss = 0;      // 0: no MSS option
  uint8_t wscale = 0xf;  // 0xf: no window scale option
  bool sack_permitted = false;
  bool timestamps = false;
  uint32_t tsval = 0, tsecr = 0;
};
// Replaces `out` with the segment's frame (no allocation once `out` has room);
// returns where its TCP header starts.
size_t write(std::vector<std::byte>& out, const Segment& s);
// ORs `bits` into the sequence number of the TCP header at `tcp` in `frame`,
// the checksum updated to match (a SYN cookie's MAC, computed after the
// SYN-ACK was written).
inline void orSequence(std::span<std::byte> frame, size_t tcp, uint32_t bits) {
  std::byte* seq = frame.data() + tcp + 4;
  std::byte was[4];
  std::memcpy(was, seq, 4);
  store32(seq, load32(was) | bits);
  pkt::checksumAdjust(seq + 12, pkt::checksumDelta(was, seq, 4), false);
}

// A proxied connection's translation, kept beside its flow.
struct Translation {
  enum class State : uint8_t { Pending, Open };
  State state = State::Pending;
  bool timestamps = false;       // the client's (then: both sides') segments carry them
  uint8_t client_wscale = 0xf;   // the client's window scale (the cookie's); 0xf: none
  uint8_t offered_wscale = 0xf;  // what the proxy's SYN-ACK offered it; 0xf: none
  int8_t to_client_shift = 0;    // server to client window: << when positive, >> when negative
  uint8_t to_server_shift = 0;   // client to server window: <<
  uint16_t client_window = 0;    // the window field of the client's ACK
  uint32_t cookie_isn = 0;       // the SYN-ACK's sequence number: the client's server ISN
  uint32_t seq_delta = 0;        // the server's ISN - cookie_isn
  uint32_t ts_delta = 0;         // the server's TSval - the proxy's, at the handshake
  uint32_t proxy_tsval = 0;      // the proxy TSval the client echoed
  uint32_t client_tsval = 0;     // the client's TSval in that ACK
  uint32_t serverIsn() const { return cookie_isn + seq_delta; }
};
static_assert(sizeof(Translation) == 28);

// Window translation once the server's SYN-ACK says whether it scales too
// (`server_wscale`; 0xff: it does not).
void settleWindows(Translation& t, uint8_t server_wscale);

// The client's window field as the server reads it.
uint16_t toServerWindow(const Translation& t, uint16_t window);

// Rewrites the TCP segment `p` describes inside `frame` (a writable copy of
// p.frame, at the same offsets) for the other side: `to_server` (client to
// server: ack, SACK blocks, TSecr, window) or to the client (seq, TSval,
// window). Pending connections translate nothing but a server's RST, whose
// sequence number becomes the one the client expects.
void translate(std::span<std::byte> frame, const pkt::Packet& p, const Translation& t,
               bool to_server);

}  // namespace palisade::pipeline::synproxy
