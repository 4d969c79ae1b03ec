// IP reassembly: IPv4 and IPv6 datagrams cut into fragments by the tests
// (as a router would) and put back together in any order; overlaps
// resolved first-wins; inconsistent, oversized, late and excess fragments
// given up with their memory.
#include "packet/reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "packet/builder.h"
#include "packet/checksum.h"
#include "packet/decoder.h"

namespace palisade::pkt {
namespace {

const MacAddr kA{{2, 0, 0, 0, 0, 1}}, kB{{2, 0, 0, 0, 0, 2}};
IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}
constexpr TimeNs kSec = 1000000000ull;

std::string body(size_t n) {
  std::string s(n, 0);
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

// A UDP datagram from 192.0.2.4 (or 2001:db8::4) carrying `payload`.
std::vector<std::byte> whole(bool v6, const std::string& payload) {
  PacketBuilder b;
  b.eth(kA, kB);
  if (v6)
    b.ipv6(ip("2001:db8::4"), ip("2001:db8::7"));
  else
    b.ipv4(ip("192.0.2.4"), ip("198.51.100.7"));
  return b.udp(5000, 53).payload(payload).build();
}

void put16(std::vector<std::byte>& f, size_t at, size_t v) {
  f[at] = static_cast<std::byte>(v >> 8);
  f[at + 1] = static_cast<std::byte>(v & 0xff);
}

class ReassemblyTest : public ::testing::Test {
 protected:
  // Offers one fragment; true when it completed a datagram (decoded into done_).
  bool offer(const std::vector<std::byte>& f, TimeNs now = kSec) {
    Packet p;
    EXPECT_TRUE(dec_.decode(LinkType::Ethernet, f, static_cast<uint32_t>(f.size()), p));
    EXPECT_TRUE(p.has(kFragment));
    const auto out = r_.add(p, now);
    if (out.empty()) return false;
    got_.assign(out.begin(), out.end());
    EXPECT_TRUE(dec_.decode(LinkType::Ethernet, got_, static_cast<uint32_t>(got_.size()), done_));
    return true;
  }
  bool udpChecksumOk() {
    const Bytes l4(got_.data() + done_.l4_off, done_.l3_end - done_.l4_off);
    const uint32_t sum =
        pseudoHeaderSum(done_.src, done_.dst, 17, static_cast<uint32_t>(l4.size()));
    return checksumFinish(checksumPartial(l4, sum)) == 0;
  }
  std::string payload() const {
    return std::string(reinterpret_cast<const char*>(got_.data()) + done_.payload_off,
                       done_.payload_len);
  }
  Decoder dec_;
  Reassembler r_;
  std::vector<std::byte> got_;
  Packet done_;
};

TEST_F(ReassemblyTest, Ipv4OutOfOrderIsWholeAgain) {
  const std::string data = body(3000);
  const auto full = whole(false, data);
  auto frags = fragmentFrame(full, {1480, 2960}, 0x1234);
  EXPECT_FALSE(offer(frags[2]));
  EXPECT_FALSE(offer(frags[0]));
  EXPECT_EQ(r_.pending(), 1u);
  ASSERT_TRUE(offer(frags[1]));
  EXPECT_FALSE(done_.has(kFragment));
  EXPECT_TRUE(done_.has(kUdp));
  EXPECT_EQ(done_.dport, 53);
  EXPECT_EQ(payload(), data);
  // Byte for byte the datagram that was cut, but for the id the fragments
  // carried (and so the header checksum, which is right).
  ASSERT_EQ(got_.size(), full.size());
  EXPECT_TRUE(std::equal(got_.begin() + 34, got_.end(), full.begin() + 34));
  EXPECT_EQ(internetChecksum(Bytes(got_.data() + 14, 20)), 0);
  EXPECT_EQ(done_.frag.id, 0x1234u);
  EXPECT_TRUE(udpChecksumOk());
  EXPECT_EQ(r_.pending(), 0u);
  EXPECT_EQ(r_.bytesHeld(), 0u);
  EXPECT_EQ(r_.stats().reassembled, 1u);
}

TEST_F(ReassemblyTest, Ipv6WithoutItsFragmentHeader) {
  const std::string data = body(4000);
  const auto full = whole(true, data);
  auto frags = fragmentFrame(full, {1232, 2464, 3696}, 0xabcdef01);
  EXPECT_FALSE(offer(frags[3]));
  EXPECT_FALSE(offer(frags[1]));
  EXPECT_FALSE(offer(frags[0]));
  ASSERT_TRUE(offer(frags[2]));
  EXPECT_FALSE(done_.has(kFragment));
  EXPECT_EQ(done_.proto, 17);
  EXPECT_EQ(done_.ipv6_ext_count, 0);
  EXPECT_EQ(payload(), data);
  EXPECT_EQ(got_, full);
  EXPECT_TRUE(udpChecksumOk());
}

// Two datagrams with the same id from different sources stay apart.
TEST_F(ReassemblyTest, DatagramsAreKeyedBySourceAndId) {
  const std::string d1 = body(2000), d2 = std::string(2000, 'z');
  auto a = fragmentFrame(whole(false, d1), {1000}, 0x1234);
  auto b_full = whole(false, d2);
  b_full[14 + 15] = std::byte{9};  // source 192.0.2.9
  put16(b_full, 14 + 10, 0);
  put16(b_full, 14 + 10, internetChecksum(Bytes(b_full.data() + 14, 20)));
  auto b = fragmentFrame(b_full, {1000}, 0x1234);
  EXPECT_FALSE(offer(a[0]));
  EXPECT_FALSE(offer(b[1]));
  ASSERT_TRUE(offer(a[1]));
  EXPECT_EQ(payload(), d1);
  ASSERT_TRUE(offer(b[0]));
  EXPECT_EQ(payload(), d2);
}

// An overlapping fragment with other bytes does not rewrite what arrived
// first (an IDS evasion: a later copy that differs).
TEST_F(ReassemblyTest, OverlapsAreFirstWins) {
  const std::string data = body(2400);
  const auto full = whole(false, data);
  auto frags = fragmentFrame(full, {800, 1600}, 0x1234);
  // A forged middle fragment covering 800..1600 with other bytes, sent after
  // the genuine one.
  auto forged = frags[1];
  for (size_t i = 34; i < forged.size(); ++i)
    forged[i] = std::byte{'X'};
  EXPECT_FALSE(offer(frags[1]));
  EXPECT_FALSE(offer(forged));
  EXPECT_FALSE(offer(frags[0]));
  ASSERT_TRUE(offer(frags[2]));
  EXPECT_EQ(payload(), data);
  EXPECT_EQ(r_.stats().overlaps, 1u);
  // Partly overlapping pieces fill only the gaps.
  auto g = fragmentFrame(full, {400, 1200, 1600}, 0x55);
  auto wide = fragmentFrame(full, {800}, 0x55);  // 0..800 (more) and 800..end
  EXPECT_FALSE(offer(g[1]));                     // 400..1200
  EXPECT_FALSE(offer(wide[0]));                  // 0..800: only 0..400 is new
  EXPECT_FALSE(offer(g[2]));                     // 1200..1600
  ASSERT_TRUE(offer(g[3]));                      // 1600..end
  EXPECT_EQ(payload(), data);
}

TEST_F(ReassemblyTest, InconsistentEndsAreGivenUp) {
  const auto full = whole(false, body(2400));
  auto frags = fragmentFrame(full, {800, 1600}, 0x1234);
  EXPECT_FALSE(offer(frags[1]));
  EXPECT_FALSE(offer(frags[2]));  // the end: 2408 (UDP header included)
  // A "more" fragment past the end.
  auto past = fragmentFrame(whole(false, body(4000)), {2400, 3200}, 0x1234)[1];
  EXPECT_FALSE(offer(past));
  EXPECT_EQ(r_.stats().inconsistent, 1u);
  EXPECT_EQ(r_.pending(), 0u);
  EXPECT_EQ(r_.bytesHeld(), 0u);
  // A second end that differs.
  EXPECT_FALSE(offer(frags[2]));
  auto other_end = fragmentFrame(whole(false, body(3000)), {2400}, 0x1234)[1];
  EXPECT_FALSE(offer(other_end));
  EXPECT_EQ(r_.stats().inconsistent, 2u);
  EXPECT_EQ(r_.pending(), 0u);
}

TEST_F(ReassemblyTest, IncompleteDatagramsTimeOut) {
  const auto frags = fragmentFrame(whole(false, body(2400)), {800, 1600}, 0x1234);
  EXPECT_FALSE(offer(frags[0], kSec));
  EXPECT_FALSE(offer(frags[1], 2 * kSec));
  EXPECT_GT(r_.bytesHeld(), 0u);
  // The last fragment, past the 60 s timeout: the datagram was given up.
  EXPECT_FALSE(offer(frags[2], 62 * kSec));
  EXPECT_EQ(r_.stats().timeouts, 1u);
  EXPECT_EQ(r_.stats().reassembled, 0u);
  r_.expire(200 * kSec);
  EXPECT_EQ(r_.pending(), 0u);
  EXPECT_EQ(r_.bytesHeld(), 0u);
  // A clock that steps back (merged captures) gives nothing up early.
  const auto more = fragmentFrame(whole(false, body(2400)), {800}, 0x99);
  EXPECT_FALSE(offer(more[0], 300 * kSec));
  EXPECT_FALSE(offer(fragmentFrame(whole(false, body(2400)), {800}, 0x98)[0], 299 * kSec));
  EXPECT_EQ(r_.pending(), 2u);
  EXPECT_TRUE(offer(more[1], 299 * kSec));
  EXPECT_EQ(r_.stats().timeouts, 2u);  // the two given up above, no more
}

TEST_F(ReassemblyTest, MemoryTableAndFragmentCountAreBounded) {
  r_ = Reassembler({.memcap = 2000, .timeout = 60 * kSec, .max_datagrams = 2, .max_fragments = 4});
  const auto frags = fragmentFrame(whole(false, body(2400)), {800, 1600}, 0x1234);
  EXPECT_FALSE(offer(frags[0]));
  EXPECT_FALSE(offer(frags[1]));
  EXPECT_FALSE(offer(frags[2]));  // 3 x ~800 + the head: over 2000
  EXPECT_EQ(r_.stats().memcap_drops, 1u);
  EXPECT_LE(r_.bytesHeld(), 2000u);
  // Two datagrams at most.
  r_ = Reassembler(
      {.memcap = 1 << 20, .timeout = 60 * kSec, .max_datagrams = 2, .max_fragments = 4});
  for (uint32_t id = 1; id <= 3; ++id)
    EXPECT_FALSE(offer(fragmentFrame(whole(false, body(2400)), {800}, id)[0]));
  EXPECT_EQ(r_.stats().table_full, 1u);
  EXPECT_EQ(r_.pending(), 2u);
  // Tiny fragments past max_fragments give the datagram up.
  r_ = Reassembler(
      {.memcap = 1 << 20, .timeout = 60 * kSec, .max_datagrams = 2, .max_fragments = 4});
  const auto tiny = fragmentFrame(whole(false, body(200)), {8, 16, 24, 32, 40}, 0x1234);
  for (size_t i = 0; i < 5; ++i)
    EXPECT_FALSE(offer(tiny[i]));
  EXPECT_EQ(r_.stats().too_many, 1u);
  EXPECT_EQ(r_.pending(), 0u);
}

}  // namespace
}  // namespace palisade::pkt
