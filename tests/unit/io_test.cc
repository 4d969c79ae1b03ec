#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "io/capture.h"
#include "io/replay.h"
#include "packet/builder.h"

namespace palisade::io {
namespace {

std::string tempPath(const char* suffix) {
  char tmpl[] = "/tmp/palisade-io-XXXXXX";
  const int fd = mkstemp(tmpl);
  close(fd);
  unlink(tmpl);
  return std::string(tmpl) + suffix;
}

std::vector<std::byte> frame(uint16_t port) {
  return pkt::PacketBuilder()
      .eth(*MacAddr::parse("02:00:00:00:00:01"), *MacAddr::parse("02:00:00:00:00:02"))
      .ipv4(*IpAddr::parse("198.51.100.1"), *IpAddr::parse("203.0.113.10"))
      .udp(port, 53)
      .payload("query")
      .build();
}

TEST(Capture, PcapRoundTripKeepsNanoseconds) {
  const std::string path = tempPath(".pcap");
  auto w = createCapture(path, CaptureFormat::Pcap, {{}});
  ASSERT_TRUE(w) << w.error().message;
  const auto f = frame(1000);
  RawPacket p;
  p.data = Bytes(f);
  p.wire_len = static_cast<uint32_t>(f.size());
  p.ts_ns = 1795341845123456789ull;
  ASSERT_TRUE((*w)->write(p));
  ASSERT_TRUE((*w)->close());

  auto r = openCapture(path);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)->format(), CaptureFormat::Pcap);
  RawPacket got;
  ASSERT_TRUE((*r)->next(got));
  EXPECT_EQ(got.ts_ns, p.ts_ns);
  EXPECT_EQ(got.wire_len, p.wire_len);
  ASSERT_EQ(got.data.size(), f.size());
  EXPECT_TRUE(std::equal(f.begin(), f.end(), got.data.begin()));
  EXPECT_FALSE((*r)->next(got));
  EXPECT_FALSE((*r)->error());
  unlink(path.c_str());
}

TEST(Capture, PcapngRoundTripKeepsInterfacesAndComments) {
  const std::string path = tempPath(".pcapng");
  auto w = createCapture(path, CaptureFormat::Pcapng,
                         {{pkt::LinkType::Ethernet, 262144, "uplink", "to the Internet"},
                          {pkt::LinkType::Ethernet, 262144, "web1", ""},
                          {pkt::LinkType::Raw, 65535, "tun0", ""}});
  ASSERT_TRUE(w) << w.error().message;
  const auto f1 = frame(1), f2 = frame(2);
  const auto raw_ip = pkt::PacketBuilder()
                          .ipv4(*IpAddr::parse("192.0.2.1"), *IpAddr::parse("192.0.2.2"))
                          .udp(1, 2)
                          .build();
  RawPacket a{Bytes(f1), 1000000000123ull,        static_cast<uint32_t>(f1.size()),
              1,         pkt::LinkType::Ethernet, "first"};
  RawPacket b{Bytes(f2), 1000000000456ull, 1500, 0, pkt::LinkType::Ethernet, {}};
  RawPacket c{Bytes(raw_ip),
              1000000000789ull,
              static_cast<uint32_t>(raw_ip.size()),
              2,
              pkt::LinkType::Raw,
              {}};
  ASSERT_TRUE((*w)->write(a));
  ASSERT_TRUE((*w)->write(b));
  ASSERT_TRUE((*w)->write(c));
  RawPacket bad = a;
  bad.interface_id = 7;
  EXPECT_FALSE((*w)->write(bad));
  ASSERT_TRUE((*w)->close());

  auto r = openCapture(path);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)->format(), CaptureFormat::Pcapng);
  RawPacket got;
  ASSERT_TRUE((*r)->next(got));
  ASSERT_EQ((*r)->interfaces().size(), 3u);
  EXPECT_EQ((*r)->interfaces()[0].name, "uplink");
  EXPECT_EQ((*r)->interfaces()[0].description, "to the Internet");
  EXPECT_EQ(got.interface_id, 1u);
  EXPECT_EQ(got.ts_ns, a.ts_ns);
  EXPECT_EQ(got.comment, "first");
  ASSERT_TRUE((*r)->next(got));
  EXPECT_EQ(got.interface_id, 0u);
  EXPECT_EQ(got.wire_len, 1500u);
  EXPECT_EQ(got.ts_ns, b.ts_ns);
  ASSERT_TRUE((*r)->next(got));
  EXPECT_EQ(got.interface_id, 2u);
  EXPECT_EQ(got.link, pkt::LinkType::Raw);
  EXPECT_FALSE((*r)->next(got));
  EXPECT_FALSE((*r)->error());
  unlink(path.c_str());
}

TEST(Capture, MixedLinkTypesNeedPcapng) {
  const std::string path = tempPath(".pcap");
  auto w = createCapture(
      path, CaptureFormat::Pcap,
      {{pkt::LinkType::Ethernet, 65535, "", ""}, {pkt::LinkType::Raw, 65535, "", ""}});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message, "pcap holds one link type; use pcapng for mixed links");
}

// A pcapng cut short keeps every packet before the damage and names the byte.
TEST(Capture, CorruptPcapngReportsWhereAndKeepsEarlierPackets) {
  const std::string path = tempPath(".pcapng");
  {
    auto w = createCapture(path, CaptureFormat::Pcapng, {{}});
    ASSERT_TRUE(w);
    const auto f = frame(9);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*w)->write({Bytes(f),
                               uint64_t(i),
                               static_cast<uint32_t>(f.size()),
                               0,
                               pkt::LinkType::Ethernet,
                               {}}));
    }
    ASSERT_TRUE((*w)->close());
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 10));
  }
  auto r = openCapture(path);
  ASSERT_TRUE(r);
  RawPacket got;
  int n = 0;
  while ((*r)->next(got))
    ++n;
  EXPECT_EQ(n, 2);
  ASSERT_TRUE((*r)->error());
  EXPECT_NE((*r)->error()->message.find("corrupt pcapng at byte"), std::string::npos);
  EXPECT_NE((*r)->error()->message.find("file ends inside a block"), std::string::npos);

  // A trailer that disagrees with the header is caught too.
  bytes[bytes.size() - 4] = 0x7f;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto r2 = openCapture(path);
  ASSERT_TRUE(r2);
  n = 0;
  while ((*r2)->next(got))
    ++n;
  EXPECT_EQ(n, 2);
  ASSERT_TRUE((*r2)->error());
  EXPECT_NE((*r2)->error()->message.find("block trailer length differs"), std::string::npos);
  unlink(path.c_str());
}

// Builds a little-endian pcapng: SHB, one Ethernet IDB with the given
// if_tsoffset (seconds), one EPB with timestamp ts (microseconds).
std::string pcapngWithOffset(int64_t offset_sec, uint64_t ts) {
  std::string out;
  auto u16 = [&](uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  u32(0x0A0D0D0A), u32(28), u32(0x1A2B3C4D), u16(1), u16(0), u64(~uint64_t{0}), u32(28);
  u32(1), u32(36), u16(1), u16(0), u32(65535);
  u16(14), u16(8), u64(static_cast<uint64_t>(offset_sec)), u32(0), u32(36);
  const auto f = frame(9);
  const auto padded = static_cast<uint32_t>((f.size() + 3) & ~size_t{3});
  u32(6), u32(32 + padded), u32(0), u32(static_cast<uint32_t>(ts >> 32)),
      u32(static_cast<uint32_t>(ts)), u32(static_cast<uint32_t>(f.size())),
      u32(static_cast<uint32_t>(f.size()));
  out.append(reinterpret_cast<const char*>(f.data()), f.size());
  out.append(padded - f.size(), '\0');
  u32(32 + padded);
  return out;
}

// if_tsoffset moves timestamps; one that pushes them outside 64-bit
// nanoseconds is a precise error, not an overflow (found by fuzz_pcapng).
TEST(Capture, PcapngTimestampOffsetIsAppliedAndBounded) {
  const std::string path = tempPath(".pcapng");
  struct Case {
    int64_t offset;
    uint64_t ts;
    bool ok;
    uint64_t ns;
  };
  for (const Case c :
       {Case{1000, 2500000, true, 1002500000000ull}, Case{-1, 1500000, true, 500000000ull},
        Case{-2, 1500000, false, 0}, Case{8390891583112956238ll, 0, false, 0},
        Case{0, ~uint64_t{0}, false, 0}}) {  // 2^64 us > 2^64 ns
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << pcapngWithOffset(c.offset, c.ts);
    }
    auto r = openCapture(path);
    ASSERT_TRUE(r);
    RawPacket got;
    EXPECT_EQ((*r)->next(got), c.ok) << c.offset;
    if (c.ok) {
      EXPECT_EQ(got.ts_ns, c.ns);
    } else {
      ASSERT_TRUE((*r)->error());
      EXPECT_NE((*r)->error()->message.find("packet timestamp out of range"), std::string::npos)
          << (*r)->error()->message;
    }
  }
  unlink(path.c_str());
}

TEST(Capture, OpenErrorsArePrecise) {
  auto missing = openCapture("/nonexistent/x.pcap");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "/nonexistent/x.pcap: No such file or directory");
  auto dir = openCapture("/tmp");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().message, "/tmp: is a directory");
  const std::string path = tempPath(".pcap");
  { std::ofstream(path) << "ab"; }
  auto tiny = openCapture(path);
  ASSERT_FALSE(tiny);
  EXPECT_NE(tiny.error().message.find("too short to be a capture file"), std::string::npos);
  // Neither magic: libpcap's complaint, after the path.
  { std::ofstream(path) << "not a capture file at all"; }
  auto text = openCapture(path);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message.rfind(path + ": ", 0), 0u) << text.error().message;
  unlink(path.c_str());
}

// A classic pcap file written byte by byte: `nano` and `big` choose the magic
// and the byte order; `extra` record bytes (the modified format's 8) per packet.
struct PcapBytes {
  bool nano = false, big = false;
  uint32_t magic = 0, link = 1, extra = 0;
  std::string out;
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out += static_cast<char>(big ? v >> (24 - 8 * i) : v >> (8 * i));
  }
  void u16(uint16_t v) {
    for (int i = 0; i < 2; ++i)
      out += static_cast<char>(big ? v >> (8 - 8 * i) : v >> (8 * i));
  }
  PcapBytes& header() {
    u32(magic ? magic : nano ? 0xa1b23c4d : 0xa1b2c3d4);
    u16(2);
    u16(4);
    u32(0);
    u32(0);
    u32(65535);
    u32(link);
    return *this;
  }
  PcapBytes& record(uint32_t sec, uint32_t frac, std::string_view data, uint32_t wire) {
    u32(sec);
    u32(frac);
    u32(static_cast<uint32_t>(data.size()));
    u32(wire);
    out.append(extra, '\0');
    out += data;
    return *this;
  }
  std::string save() const {
    const std::string path = tempPath(".pcap");
    std::ofstream(path, std::ios::binary) << out;
    return path;
  }
};

// The four common forms read alike: timestamps in their unit, the captured
// and wire lengths, the file's LINKTYPE_ (101, raw IP, stays 101, as pcapng
// gives it), and the position at the end is the file's size.
TEST(Capture, PcapInEitherByteOrderAndTimeUnitReadsAlike) {
  const std::string a = "first packet", b(3000, 'x');
  for (bool nano : {false, true})
    for (bool big : {false, true}) {
      PcapBytes f;
      f.nano = nano;
      f.big = big;
      f.link = 101;
      f.header()
          .record(1700000000, nano ? 123456789 : 123456, a, 60)
          .record(1700000001, 0, b, 3000);
      const std::string path = f.save();
      auto r = openCapture(path);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ((*r)->format(), CaptureFormat::Pcap);
      ASSERT_EQ((*r)->interfaces().size(), 1u);
      EXPECT_EQ((*r)->interfaces()[0].link, pkt::LinkType::Raw);
      EXPECT_EQ((*r)->interfaces()[0].snaplen, 65535u);
      RawPacket p;
      ASSERT_TRUE((*r)->next(p)) << nano << big;
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.data.data()), p.data.size()), a);
      EXPECT_EQ(p.wire_len, 60u);
      EXPECT_EQ(p.ts_ns, 1700000000ull * 1000000000ull + (nano ? 123456789u : 123456000u));
      EXPECT_EQ(p.link, pkt::LinkType::Raw);
      ASSERT_TRUE((*r)->next(p));
      EXPECT_EQ(p.data.size(), b.size());
      EXPECT_FALSE((*r)->next(p));
      EXPECT_FALSE((*r)->error());
      EXPECT_EQ((*r)->position(), f.out.size());
      unlink(path.c_str());
    }
}

// Raw IP packets (LINKTYPE_RAW) go to a pcap file and come back as such.
TEST(Capture, RawIpPcapRoundTrips) {
  const std::string path = tempPath(".pcap");
  auto w = createCapture(path, CaptureFormat::Pcap, {{pkt::LinkType::Raw, 65535, "", ""}});
  ASSERT_TRUE(w) << w.error().message;
  const std::vector<std::byte> ip(28, std::byte{0x45});
  RawPacket p;
  p.data = Bytes(ip);
  p.wire_len = 28;
  p.link = pkt::LinkType::Raw;
  ASSERT_TRUE((*w)->write(p));
  ASSERT_TRUE((*w)->close());
  auto r = openCapture(path);
  ASSERT_TRUE(r) << r.error().message;
  RawPacket got;
  ASSERT_TRUE((*r)->next(got));
  EXPECT_EQ(got.link, pkt::LinkType::Raw);
  EXPECT_EQ(got.data.size(), 28u);
  unlink(path.c_str());
}

// A file cut inside a record, or a record longer than any packet, stops with
// an error that says where; the packets before it were read.
TEST(Capture, CorruptPcapSaysWhereAndKeepsEarlierPackets) {
  PcapBytes f;
  f.header().record(1, 0, "one", 3).record(2, 0, "two", 3);
  const size_t second = 24 + 16 + 3;
  struct Case {
    std::string bytes, why;
  } cases[] = {
      {f.out.substr(0, f.out.size() - 1), "the file ends inside a packet"},
      {f.out.substr(0, second + 10), "the file ends inside a packet record's header"},
      {f.out.substr(0, second + 8) + std::string("\x00\x00\x10\x00", 4) + f.out.substr(second + 12),
       "a packet record of 1048576 bytes, more than the largest allowed (262144)"},
  };
  for (const Case& c : cases) {
    PcapBytes g;
    g.out = c.bytes;
    const std::string path = g.save();
    auto r = openCapture(path);
    ASSERT_TRUE(r) << r.error().message;
    RawPacket p;
    ASSERT_TRUE((*r)->next(p));
    EXPECT_EQ(p.data.size(), 3u);
    EXPECT_FALSE((*r)->next(p));
    ASSERT_TRUE((*r)->error()) << c.why;
    EXPECT_EQ((*r)->error()->message,
              "corrupt pcap at byte " + std::to_string(second) + ": " + c.why);
    unlink(path.c_str());
  }
  // A header from a later version of the format.
  PcapBytes v;
  v.header();
  v.out[4] = 3;
  const std::string path = v.save();
  auto r = openCapture(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, path + ": pcap version 3 is not supported (only 2)");
  unlink(path.c_str());
}

// Another magic number (here the modified format with 24-byte record
// headers) is libpcap's to read; raw IP comes back as LINKTYPE_RAW there too.
TEST(Capture, RarePcapFormsGoToLibpcap) {
  PcapBytes f;
  f.magic = 0xa1b2cd34;
  f.extra = 8;
  f.link = 101;
  f.header().record(5, 250000, "modified", 8);
  const std::string path = f.save();
  auto r = openCapture(path);
  ASSERT_TRUE(r) << r.error().message;
  RawPacket p;
  ASSERT_TRUE((*r)->next(p));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.data.data()), p.data.size()), "modified");
  EXPECT_EQ(p.ts_ns, 5250000000ull);
  EXPECT_EQ(p.link, pkt::LinkType::Raw);
  EXPECT_EQ((*r)->interfaces()[0].link, pkt::LinkType::Raw);
  EXPECT_FALSE((*r)->next(p));
  EXPECT_FALSE((*r)->error());
  unlink(path.c_str());
}

// Files several times the 1 MiB read buffer come back whole and in order in
// both formats (each refill of the buffer lands between or inside packets).
TEST(Capture, LargeFilesReadBackAcrossBufferRefills) {
  for (CaptureFormat format : {CaptureFormat::Pcap, CaptureFormat::Pcapng}) {
    const std::string path = tempPath(format == CaptureFormat::Pcap ? ".pcap" : ".pcapng");
    auto w = createCapture(path, format, {{}});
    ASSERT_TRUE(w) << w.error().message;
    constexpr uint32_t kPackets = 4000;
    for (uint32_t i = 0; i < kPackets; ++i) {
      std::vector<std::byte> f(600 + i % 900, std::byte{0x5a});  // odd sizes, about 4 MB in all
      f[20] = static_cast<std::byte>(i & 0xff);
      f[21] = static_cast<std::byte>(i >> 8);
      RawPacket p;
      p.data = Bytes(f);
      p.wire_len = static_cast<uint32_t>(f.size());
      p.ts_ns = 1000000000ull * i;
      ASSERT_TRUE((*w)->write(p));
    }
    ASSERT_TRUE((*w)->close());
    auto r = openCapture(path);
    ASSERT_TRUE(r) << r.error().message;
    RawPacket got;
    uint32_t n = 0;
    while ((*r)->next(got)) {
      ASSERT_EQ(got.data.size(), 600 + n % 900) << n;
      ASSERT_EQ(static_cast<uint32_t>(got.data[20]) | static_cast<uint32_t>(got.data[21]) << 8, n);
      ASSERT_EQ(got.ts_ns, 1000000000ull * n);
      ++n;
    }
    EXPECT_EQ(n, kPackets);
    EXPECT_FALSE((*r)->error());
    EXPECT_EQ((*r)->position(), (*r)->size());
    unlink(path.c_str());
  }
}

TEST(Replay, CaptureSpeedPacesAndSummaryCounts) {
  const std::string path = tempPath(".pcapng");
  {
    auto w = createCapture(path, CaptureFormat::Pcapng, {{}});
    ASSERT_TRUE(w);
    const auto f = frame(9);
    for (int i = 0; i < 5; ++i) {
      // 20 ms apart: 80 ms of capture time.
      ASSERT_TRUE((*w)->write({Bytes(f),
                               5000000000ull + uint64_t(i) * 20000000ull,
                               static_cast<uint32_t>(f.size()),
                               0,
                               pkt::LinkType::Ethernet,
                               {}}));
    }
    ASSERT_TRUE((*w)->close());
  }
  for (bool paced : {false, true}) {
    auto r = openCapture(path);
    ASSERT_TRUE(r);
    ReplayOptions opt;
    opt.capture_speed = paced;
    opt.progress = ReplayOptions::Progress::Never;
    int seen = 0;
    auto s = replay(**r, opt, [&](const RawPacket&) { ++seen; });
    ASSERT_TRUE(s);
    EXPECT_EQ(seen, 5);
    EXPECT_EQ(s->packets, 5u);
    EXPECT_EQ(s->last_ts - s->first_ts, 80000000ull);
    if (paced) {
      EXPECT_GE(s->wall_ns, 75000000ull);  // pacing sleeps: a lower bound that cannot flake
    }
  }
  unlink(path.c_str());
}

TEST(CaptureBuffer, HoldsPacketsInOneArena) {
  CaptureBuffer buf;
  const auto f1 = frame(1), f2 = frame(2);
  buf.add({Bytes(f1), 1, 100, 0, pkt::LinkType::Ethernet, {}});
  buf.add({Bytes(f2), 2, 200, 3, pkt::LinkType::Raw, {}});
  ASSERT_EQ(buf.size(), 2u);
  EXPECT_EQ(buf.bytes(), f1.size() + f2.size());
  EXPECT_EQ(buf[1].interface_id, 3u);
  EXPECT_EQ(buf[1].wire_len, 200u);
  EXPECT_EQ(buf[1].link, pkt::LinkType::Raw);
  EXPECT_TRUE(std::equal(f2.begin(), f2.end(), buf[1].data.begin()));
}

}  // namespace
}  // namespace palisade::io
