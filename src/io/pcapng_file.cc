// pcapng (draft-ietf-opsawg-pcapng) blocks: SHB, IDB, EPB, SPB and the obsolete
// PB are read; every other block is skipped by its length. Sections in either
// byte order are accepted. Limits: a block is at most kMaxBlock bytes (as in
// libpcap), at most kMaxInterfaces interfaces per section.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/strings.h"
#include "io/capture.h"
#include "io/capture_internal.h"

namespace palisade::io {
namespace {

constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 1, kPb = 2, kSpb = 3, kEpb = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint32_t kMaxBlock = 16u * 1024 * 1024;
constexpr size_t kMaxInterfaces = 65536;

struct IfaceTime {
  uint64_t units_per_sec = 1000000;  // default resolution: microseconds
  int64_t offset_sec = 0;
};

class PcapngReader final : public PacketReader {
 public:
  PcapngReader(FILE* f, uint64_t size, std::unique_ptr<char[]> buffer)
      : buffer_(std::move(buffer)), f_(f) {
    size_ = size;
  }
  ~PcapngReader() override {
    if (f_) fclose(f_);
  }

  bool next(RawPacket& out) override {
    while (!error_) {
      uint32_t type = 0;
      if (!readBlock(type)) return false;
      if (type == kShb) continue;  // handled in readBlock
      if (!seen_shb_) return fail("file does not start with a section header block");
      if (type == kIdb) {
        if (!parseIdb()) return false;
        continue;
      }
      if (type == kEpb || type == kSpb || type == kPb) return parsePacket(type, out);
      // Name resolution, statistics, decryption secrets, custom: not needed here.
    }
    return false;
  }

  uint64_t position() const override { return pos_; }
  CaptureFormat format() const override { return CaptureFormat::Pcapng; }

 private:
  bool fail(std::string_view why) {
    error_ = Error{strCat("corrupt pcapng at byte ", std::to_string(block_start_), ": ", why)};
    return false;
  }

  uint32_t u32(const std::byte* p) const { return swap_ ? load32(p) : load32le(p); }
  uint16_t u16(const std::byte* p) const { return swap_ ? load16(p) : load16le(p); }

  // Reads one whole block into body_ (the bytes between the two length fields).
  bool readBlock(uint32_t& type) {
    block_start_ = pos_;
    std::byte head[8];
    const size_t got = fread(head, 1, 8, f_);
    if (got == 0 && feof(f_)) return false;  // clean end of file
    if (got != 8) return fail("file ends inside a block header");
    pos_ += 8;
    const uint32_t raw_type = load32le(head);  // the SHB type reads the same either way
    if (raw_type == kShb) {
      // The byte order is only known after reading the magic that follows.
      std::byte magic[4];
      if (fread(magic, 1, 4, f_) != 4) return fail("file ends inside a section header");
      pos_ += 4;
      if (load32le(magic) == kByteOrderMagic)
        swap_ = false;
      else if (load32(magic) == kByteOrderMagic)
        swap_ = true;
      else
        return fail("section header has no valid byte-order magic");
      seen_shb_ = true;
      ifaces_.clear();
      interfaces_.clear();
      const uint32_t len = u32(head + 4);
      if (len < 28 || len % 4 != 0 || len > kMaxBlock) return fail("bad section header length");
      if (!readBody(len - 12, len)) return false;
      type = kShb;
      return true;
    }
    if (!seen_shb_) return fail("file does not start with a section header block");
    type = u32(head);
    const uint32_t len = u32(head + 4);
    if (len < 12 || len % 4 != 0) return fail("block length is not a multiple of 4 of at least 12");
    if (len > kMaxBlock) return fail("block longer than 16 MiB");
    if (!readBody(len - 8, len)) return false;
    return true;
  }

  // Reads the rest of a block: `n` bytes ending in the trailing length, which
  // must repeat the leading total length.
  bool readBody(uint32_t n, uint32_t total) {
    body_.resize(n);
    if (fread(body_.data(), 1, n, f_) != n) return fail("file ends inside a block");
    pos_ += n;
    if (u32(body_.data() + n - 4) != total) return fail("block trailer length differs");
    body_.resize(n - 4);
    return true;
  }

  bool parseIdb() {
    if (body_.size() < 8) return fail("interface description block too short");
    if (ifaces_.size() >= kMaxInterfaces) return fail("more than 65536 interfaces in a section");
    InterfaceInfo info;
    info.link = static_cast<pkt::LinkType>(u16(body_.data()));
    info.snaplen = u32(body_.data() + 4);
    IfaceTime t;
    if (!walkOptions(8, [&](uint16_t code, Bytes v) {
          if (code == 2) info.name.assign(reinterpret_cast<const char*>(v.data()), v.size());
          if (code == 3) info.description.assign(reinterpret_cast<const char*>(v.data()), v.size());
          if (code == 9 && v.size() == 1) {
            const uint8_t r = load8(v.data());
            const uint8_t exp = r & 0x7f;
            if ((r & 0x80) ? exp > 63 : exp > 19) return false;
            uint64_t units = 1;
            for (uint8_t i = 0; i < exp; ++i)
              units *= (r & 0x80) ? 2 : 10;
            t.units_per_sec = units;
          }
          if (code == 14 && v.size() == 8) {
            const uint64_t lo = u32(v.data()), hi = u32(v.data() + 4);
            t.offset_sec = static_cast<int64_t>(swap_ ? (lo << 32 | hi) : (hi << 32 | lo));
          }
          return true;
        })) {
      return fail("interface description has a bad option");
    }
    ifaces_.push_back(t);
    interfaces_.push_back(std::move(info));
    return true;
  }

  bool parsePacket(uint32_t type, RawPacket& out) {
    const std::byte* b = body_.data();
    const size_t n = body_.size();
    uint32_t iface = 0, caplen = 0, wire = 0;
    uint64_t ts = 0;
    size_t data_off = 0;
    if (type == kEpb || type == kPb) {
      // Same layout; the obsolete PB has a 16-bit interface id and a drops count.
      if (n < 20) return fail("packet block too short");
      iface = type == kEpb ? u32(b) : u16(b);
      ts = (uint64_t{u32(b + 4)} << 32) | u32(b + 8);
      caplen = u32(b + 12);
      wire = u32(b + 16);
      data_off = 20;
    } else {  // simple packet block: interface 0, no timestamp
      if (n < 4) return fail("simple packet block too short");
      wire = u32(b);
      caplen = static_cast<uint32_t>(std::min<size_t>(wire, n - 4));
      if (!ifaces_.empty() && interfaces_[0].snaplen != 0) {
        caplen = std::min(caplen, interfaces_[0].snaplen);
      }
      data_off = 4;
    }
    if (iface >= ifaces_.size()) {
      return fail(strCat("packet names interface ", std::to_string(iface), " but only ",
                         std::to_string(ifaces_.size()), " are described"));
    }
    if (caplen > n - data_off) return fail("captured length runs past the block");
    const IfaceTime& t = ifaces_[iface];
    // Every term fits a signed 128-bit value: seconds below 2^64 and an
    // if_tsoffset below 2^63, each times 10^9. The sum must land in TimeNs.
    const auto secs = static_cast<__int128>(ts / t.units_per_sec);
    const auto frac = static_cast<__int128>(ts % t.units_per_sec);
    const __int128 ns = secs * 1000000000 + frac * 1000000000 / t.units_per_sec +
                        static_cast<__int128>(t.offset_sec) * 1000000000;
    if (ns < 0 || ns > static_cast<__int128>(std::numeric_limits<TimeNs>::max())) {
      return fail(strCat("packet timestamp out of range (interface ", std::to_string(iface),
                         " has if_tsoffset ", std::to_string(t.offset_sec), " s)"));
    }
    out.data = Bytes(b + data_off, caplen);
    out.wire_len = wire;
    out.ts_ns = static_cast<TimeNs>(ns);
    out.interface_id = iface;
    out.link = interfaces_[iface].link;
    out.comment = {};
    if (type == kEpb) {
      const size_t opt_off = data_off + ((caplen + 3u) & ~3u);
      if (opt_off <= n) {
        walkOptions(opt_off, [&](uint16_t code, Bytes v) {
          if (code == 1) out.comment = {reinterpret_cast<const char*>(v.data()), v.size()};
          return true;
        });
      }
    }
    return true;
  }

  // Walks the TLV options from off to the end of body_. Returns false when the
  // callback rejects a value or an option runs past the block.
  template <class F>
  bool walkOptions(size_t off, F&& f) {
    const size_t n = body_.size();
    while (off + 4 <= n) {
      const uint16_t code = u16(body_.data() + off);
      const uint16_t len = u16(body_.data() + off + 2);
      if (code == 0) return true;  // opt_endofopt
      if (off + 4 + len > n) return false;
      if (!f(code, Bytes(body_.data() + off + 4, len))) return false;
      off += 4 + ((len + 3u) & ~3u);
    }
    return true;
  }

  std::unique_ptr<char[]> buffer_;  // f_'s stdio buffer: declared first, freed after f_ closes
  FILE* f_;
  uint64_t pos_ = 0;
  uint64_t block_start_ = 0;
  bool swap_ = false;
  bool seen_shb_ = false;
  std::vector<std::byte> body_;
  std::vector<IfaceTime> ifaces_;
};

class PcapngWriter final : public PacketWriter {
 public:
  PcapngWriter(FILE* f, std::vector<InterfaceInfo> interfaces)
      : f_(f), interfaces_(std::move(interfaces)) {}
  ~PcapngWriter() override { (void)close(); }

  Status start() {
    // Section header: byte-order magic, version 1.0, section length unknown.
    std::vector<uint8_t> body;
    put32(body, kByteOrderMagic);
    put16(body, 1);
    put16(body, 0);
    put32(body, 0xffffffff);
    put32(body, 0xffffffff);
    option(body, 4, "palisade " PALISADE_VERSION);  // shb_userappl
    endOptions(body);
    if (!block(kShb, body)) return ioError();
    for (const InterfaceInfo& i : interfaces_) {
      body.clear();
      put16(body, static_cast<uint16_t>(i.link));
      put16(body, 0);
      put32(body, i.snaplen);
      if (!i.name.empty()) option(body, 2, i.name);
      if (!i.description.empty()) option(body, 3, i.description);
      option(body, 9, std::string_view("\x09", 1));  // if_tsresol: nanoseconds
      endOptions(body);
      if (!block(kIdb, body)) return ioError();
    }
    return {};
  }

  Status write(const RawPacket& p) override {
    if (!f_) return makeError("capture file already closed");
    if (p.interface_id >= interfaces_.size()) {
      return makeError(strCat("packet names interface ", std::to_string(p.interface_id),
                              " but the file describes ", std::to_string(interfaces_.size())));
    }
    if (p.data.size() > kMaxBlock - 64) return makeError("packet larger than a pcapng block");
    body_.clear();
    put32(body_, p.interface_id);
    put32(body_, static_cast<uint32_t>(p.ts_ns >> 32));
    put32(body_, static_cast<uint32_t>(p.ts_ns));
    put32(body_, static_cast<uint32_t>(p.data.size()));
    put32(body_, p.wire_len < p.data.size() ? static_cast<uint32_t>(p.data.size()) : p.wire_len);
    putRaw(body_, p.data.data(), p.data.size());
    while (body_.size() % 4)
      body_.push_back(0);
    if (!p.comment.empty()) {
      option(body_, 1, p.comment);
      endOptions(body_);
    }
    if (!block(kEpb, body_)) return ioError();
    return {};
  }

  Status close() override {
    if (!f_) return {};
    const bool ok = fflush(f_) == 0 && !ferror(f_);
    fclose(f_);
    f_ = nullptr;
    if (!ok) return ioError();
    return {};
  }

 private:
  static Error ioError() { return Error{strCat("write failed: ", std::strerror(errno))}; }
  // Written in host byte order, as pcapng allows (the magic tells readers which).
  static void put16(std::vector<uint8_t>& b, uint16_t v) { putRaw(b, &v, 2); }
  static void put32(std::vector<uint8_t>& b, uint32_t v) { putRaw(b, &v, 4); }
  static void putRaw(std::vector<uint8_t>& b, const void* p, size_t n) {
    const size_t at = b.size();
    b.resize(at + n);
    std::memcpy(b.data() + at, p, n);
  }
  static void option(std::vector<uint8_t>& b, uint16_t code, std::string_view v) {
    const size_t len = std::min<size_t>(v.size(), 0xfff0);
    put16(b, code);
    put16(b, static_cast<uint16_t>(len));
    putRaw(b, v.data(), len);
    while (b.size() % 4)
      b.push_back(0);
  }
  static void endOptions(std::vector<uint8_t>& b) { put32(b, 0); }

  bool block(uint32_t type, const std::vector<uint8_t>& body) {
    const auto total = static_cast<uint32_t>(body.size() + 12);
    return fwrite(&type, 4, 1, f_) == 1 && fwrite(&total, 4, 1, f_) == 1 &&
           fwrite(body.data(), 1, body.size(), f_) == body.size() && fwrite(&total, 4, 1, f_) == 1;
  }

  FILE* f_;
  std::vector<InterfaceInfo> interfaces_;
  std::vector<uint8_t> body_;
};

}  // namespace

Result<std::unique_ptr<PacketWriter>> createPcapng(const std::string& path,
                                                   std::vector<InterfaceInfo> interfaces) {
  if (interfaces.empty()) interfaces.push_back({});
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) return makeError(strCat(path, ": ", std::strerror(errno)));
  auto w = std::make_unique<PcapngWriter>(f, std::move(interfaces));
  if (Status s = w->start(); !s) return s.error();
  return std::unique_ptr<PacketWriter>(std::move(w));
}

std::unique_ptr<PacketReader> pcapngFromStream(FILE* f, uint64_t size) {
  return std::make_unique<PcapngReader>(f, size, nullptr);
}

std::unique_ptr<PacketReader> pcapngFromStream(BufferedFile file) {
  return std::make_unique<PcapngReader>(file.f, file.size, std::move(file.buffer));
}

}  // namespace palisade::io
