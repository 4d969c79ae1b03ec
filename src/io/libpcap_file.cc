// Classic pcap. The four common forms (microsecond or nanosecond timestamps,
// either byte order) are read here, straight out of a buffer the file is read
// into in large blocks: through libpcap each packet cost a copy out of the
// stdio buffer and two locked fread calls (reading was 5% of `palisade ids
// -r`'s packet phase, half of it the kernel's copy, which remains). The
// link type is the file's LINKTYPE_ value, as pcapng gives it (libpcap turns
// LINKTYPE_RAW, 101, into this host's DLT_RAW, 12, which the decoder does not
// take). Any other magic (the rare modified formats) goes to libpcap, which
// reads them or names what is wrong. Packets are written through libpcap.
#include <pcap/pcap.h>

#include <cstring>

#include "core/bytes.h"
#include "core/strings.h"
#include "io/capture.h"
#include "io/capture_internal.h"

namespace palisade::io {
namespace {

constexpr uint32_t kMagicMicro = 0xa1b2c3d4, kMagicNano = 0xa1b23c4d;

// libpcap speaks this host's DLT_ values; files and pkt::LinkType hold
// LINKTYPE_ values. They differ, for the link types the decoder takes, in
// raw IP only (LINKTYPE_RAW 101 is DLT_RAW, 12 on Linux).
int dltOf(pkt::LinkType link) {
  return link == pkt::LinkType::Raw ? DLT_RAW : static_cast<int>(link);
}
pkt::LinkType linkOfDlt(int dlt) {
  return dlt == DLT_RAW ? pkt::LinkType::Raw : static_cast<pkt::LinkType>(dlt);
}
// libpcap's bound on a record (MAXIMUM_SNAPLEN): a larger length is corruption.
constexpr uint32_t kMaxRecord = 262144;

class PcapReader final : public PacketReader {
 public:
  PcapReader(FILE* f, uint64_t size, std::unique_ptr<char[]> stdio_buffer)
      : stdio_buffer_(std::move(stdio_buffer)), f_(f), buf_(2 * kReadBuffer) {
    size_ = size;
  }
  ~PcapReader() override {
    if (f_) fclose(f_);
  }

  // Reads and checks the file header; false (with error()) when it is not one.
  bool open(bool& foreign) {
    foreign = false;
    if (!fill(24)) {
      error_ = Error{strCat("not a pcap file: it ends inside the 24-byte file header")};
      return false;
    }
    const std::byte* h = buf_.data() + pos_;
    const uint32_t magic = load32le(h);
    if (magic == kMagicMicro || magic == kMagicNano) {
      swap_ = false;
    } else if (magic == __builtin_bswap32(kMagicMicro) || magic == __builtin_bswap32(kMagicNano)) {
      swap_ = true;
    } else {
      foreign = true;
      return false;
    }
    nano_ = (swap_ ? __builtin_bswap32(magic) : magic) == kMagicNano;
    const uint16_t major = u16(h + 4);
    if (major != 2) {
      error_ = Error{strCat("pcap version ", std::to_string(major), " is not supported (only 2)")};
      return false;
    }
    const uint32_t snaplen = u32(h + 16);
    // The low 26 bits are the LINKTYPE_ value; the high ones say whether frames carry an FCS.
    const uint32_t link = u32(h + 20) & 0x03ffffff;
    link_ = static_cast<pkt::LinkType>(link);
    interfaces_.push_back({link_, snaplen, "", ""});
    pos_ += 24;
    consumed_ = 24;
    return true;
  }

  bool next(RawPacket& out) override {
    if (error_) return false;
    if (!fill(16)) {
      if (len_ > pos_) fail("the file ends inside a packet record's header");
      return false;
    }
    const std::byte* h = buf_.data() + pos_;
    const uint32_t sec = u32(h), frac = u32(h + 4), caplen = u32(h + 8), wire = u32(h + 12);
    if (caplen > kMaxRecord)
      return fail(strCat("a packet record of ", std::to_string(caplen),
                         " bytes, more than the largest allowed (", std::to_string(kMaxRecord),
                         ")"));
    if (!fill(16 + size_t{caplen})) return fail("the file ends inside a packet");
    out.data = Bytes(buf_.data() + pos_ + 16, caplen);
    out.wire_len = wire;
    out.ts_ns =
        static_cast<TimeNs>(sec) * 1000000000ull + static_cast<TimeNs>(frac) * (nano_ ? 1u : 1000u);
    out.interface_id = 0;
    out.link = link_;
    out.comment = {};
    pos_ += 16 + size_t{caplen};
    consumed_ += 16 + uint64_t{caplen};
    return true;
  }

  uint64_t position() const override { return consumed_; }
  CaptureFormat format() const override { return CaptureFormat::Pcap; }
  // Gives up the stream (not closed) and its stdio buffer.
  std::unique_ptr<char[]> release() {
    f_ = nullptr;
    return std::move(stdio_buffer_);
  }

 private:
  uint32_t u32(const std::byte* p) const { return swap_ ? load32(p) : load32le(p); }
  uint16_t u16(const std::byte* p) const { return swap_ ? load16(p) : load16le(p); }

  bool fail(std::string_view why) {
    error_ = Error{strCat("corrupt pcap at byte ", std::to_string(consumed_), ": ", why)};
    return false;
  }

  // Makes `n` bytes from pos_ available in buf_ (n <= the buffer); false at
  // the end of the file (or on a read error) before that many.
  bool fill(size_t n) {
    if (len_ - pos_ >= n) return true;
    if (pos_ > 0) {  // what is left moves to the front; the buffer refills behind it
      std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
      len_ -= pos_;
      pos_ = 0;
    }
    while (len_ < n && !eof_) {
      // Whole multiples of the stdio buffer's size, which stdio reads
      // straight into buf_ rather than through its own buffer.
      const size_t room = buf_.size() - len_;
      const size_t want = room >= kReadBuffer ? room - room % kReadBuffer : room;
      const size_t got = fread(buf_.data() + len_, 1, want, f_);
      len_ += got;
      if (got == 0) {
        eof_ = true;
        if (ferror(f_)) error_ = Error{strCat("read error after byte ", std::to_string(consumed_))};
      }
    }
    return len_ - pos_ >= n;
  }

  std::unique_ptr<char[]> stdio_buffer_;  // the stream's own buffer: freed after fclose
  FILE* f_;
  std::vector<std::byte> buf_;
  size_t pos_ = 0, len_ = 0;  // buf_[pos_, len_) is read and not yet handed out
  uint64_t consumed_ = 0;     // file bytes read and handed out (the header's included)
  bool eof_ = false, swap_ = false, nano_ = false;
  pkt::LinkType link_ = pkt::LinkType::Ethernet;
};

class LibpcapReader final : public PacketReader {
 public:
  LibpcapReader(pcap_t* p, uint64_t size, std::unique_ptr<char[]> buffer)
      : buffer_(std::move(buffer)), pcap_(p) {
    size_ = size;
    link_ = linkOfDlt(pcap_datalink(p));
    interfaces_.push_back({link_, static_cast<uint32_t>(pcap_snapshot(p)), "", ""});
  }
  ~LibpcapReader() override { pcap_close(pcap_); }

  bool next(RawPacket& out) override {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(pcap_, &hdr, &data);
    if (rc == 1) {
      out.data = asBytes(data, hdr->caplen);
      out.wire_len = hdr->len;
      // Opened with nanosecond precision: tv_usec carries nanoseconds.
      out.ts_ns = static_cast<TimeNs>(hdr->ts.tv_sec) * 1000000000ull +
                  static_cast<TimeNs>(hdr->ts.tv_usec);
      out.interface_id = 0;
      out.link = link_;
      out.comment = {};
      return true;
    }
    if (rc == PCAP_ERROR) error_ = Error{strCat("corrupt pcap: ", pcap_geterr(pcap_))};
    return false;
  }

  uint64_t position() const override {
    FILE* f = pcap_file(pcap_);
    const long pos = f ? ftell(f) : -1;
    return pos < 0 ? 0 : static_cast<uint64_t>(pos);
  }
  CaptureFormat format() const override { return CaptureFormat::Pcap; }

 private:
  std::unique_ptr<char[]> buffer_;  // the stream's stdio buffer: freed after pcap_close
  pcap_t* pcap_;
  pkt::LinkType link_;
};

class LibpcapWriter final : public PacketWriter {
 public:
  LibpcapWriter(pcap_t* p, pcap_dumper_t* d, pkt::LinkType link)
      : pcap_(p), dump_(d), link_(link) {}
  ~LibpcapWriter() override { (void)close(); }

  Status write(const RawPacket& p) override {
    if (!dump_) return makeError("capture file already closed");
    if (p.link != link_) {
      return makeError(strCat("pcap holds one link type; packet has ",
                              std::to_string(static_cast<uint32_t>(p.link)), ", file has ",
                              std::to_string(static_cast<uint32_t>(link_)),
                              " (write pcapng for mixed links)"));
    }
    pcap_pkthdr hdr{};
    hdr.ts.tv_sec = static_cast<time_t>(p.ts_ns / 1000000000ull);
    hdr.ts.tv_usec = static_cast<suseconds_t>(p.ts_ns % 1000000000ull);  // nanosecond file
    hdr.caplen = static_cast<bpf_u_int32>(p.data.size());
    hdr.len = p.wire_len < p.data.size() ? hdr.caplen : p.wire_len;
    pcap_dump(reinterpret_cast<u_char*>(dump_), &hdr,
              reinterpret_cast<const u_char*>(p.data.data()));
    return {};
  }

  Status close() override {
    if (!dump_) return {};
    const bool flushed = pcap_dump_flush(dump_) == 0;
    pcap_dump_close(dump_);
    pcap_close(pcap_);
    dump_ = nullptr;
    if (!flushed) return makeError("could not flush the capture file");
    return {};
  }

 private:
  pcap_t* pcap_;
  pcap_dumper_t* dump_;
  pkt::LinkType link_;
};

}  // namespace

Result<std::unique_ptr<PacketReader>> pcapFromStream(FILE* f, uint64_t size) {
  auto r = std::make_unique<PcapReader>(f, size, nullptr);
  bool foreign = false;
  if (!r->open(foreign)) {
    if (foreign) return makeError("not a pcap file: unknown magic number");
    return *r->error();
  }
  return std::unique_ptr<PacketReader>(std::move(r));
}

Result<std::unique_ptr<PacketReader>> libpcapFromStream(BufferedFile file,
                                                        const std::string& path) {
  {
    FILE* f = file.f;
    auto r = std::make_unique<PcapReader>(f, file.size, std::move(file.buffer));
    bool foreign = false;
    if (r->open(foreign)) return std::unique_ptr<PacketReader>(std::move(r));
    if (!foreign) return makeError(strCat(path, ": ", r->error()->message));
    // Not one of the common forms: libpcap reads it, from the start, or says
    // what is wrong. The reader gives the stream and its buffer back.
    file.buffer = r->release();
    rewind(f);
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // On success the handle owns the stream (pcap_close closes it); on failure
  // libpcap leaves it to us.
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(file.f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) {
    fclose(file.f);
    return makeError(strCat(path, ": ", errbuf));
  }
  return std::unique_ptr<PacketReader>(new LibpcapReader(p, file.size, std::move(file.buffer)));
}

Result<std::unique_ptr<PacketWriter>> createLibpcap(const std::string& path,
                                                    const std::vector<InterfaceInfo>& interfaces) {
  const pkt::LinkType link = interfaces.empty() ? pkt::LinkType::Ethernet : interfaces[0].link;
  for (const auto& i : interfaces) {
    if (i.link != link) return makeError("pcap holds one link type; use pcapng for mixed links");
  }
  pcap_t* p = pcap_open_dead_with_tstamp_precision(dltOf(link), 262144, PCAP_TSTAMP_PRECISION_NANO);
  if (!p) return makeError("libpcap could not create a capture handle");
  pcap_dumper_t* d = pcap_dump_open(p, path.c_str());
  if (!d) {
    Error e{strCat(path, ": ", pcap_geterr(p))};
    pcap_close(p);
    return e;
  }
  return std::unique_ptr<PacketWriter>(new LibpcapWriter(p, d, link));
}

}  // namespace palisade::io
