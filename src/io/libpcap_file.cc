// Classic pcap through libpcap.
#include <pcap/pcap.h>

#include "core/strings.h"
#include "io/capture.h"
#include "io/capture_internal.h"

namespace palisade::io {
namespace {

class LibpcapReader final : public PacketReader {
 public:
  LibpcapReader(pcap_t* p, uint64_t size, std::unique_ptr<char[]> buffer)
      : buffer_(std::move(buffer)), pcap_(p) {
    size_ = size;
    link_ = static_cast<pkt::LinkType>(pcap_datalink(p));
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

Result<std::unique_ptr<PacketReader>> libpcapFromStream(BufferedFile file,
                                                        const std::string& path) {
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
  pcap_t* p = pcap_open_dead_with_tstamp_precision(static_cast<int>(link), 262144,
                                                   PCAP_TSTAMP_PRECISION_NANO);
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
