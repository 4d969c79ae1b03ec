#include "io/capture.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/strings.h"
#include "io/capture_internal.h"

namespace palisade::io {

Result<BufferedFile> openBuffered(const std::string& path) {
  BufferedFile file;
  file.f = fopen(path.c_str(), "rb");
  if (!file.f) return makeError(strCat(path, ": ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fileno(file.f), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      fclose(file.f);
      return makeError(strCat(path, ": is a directory"));
    }
    file.size = static_cast<uint64_t>(st.st_size);
  }
  file.buffer = std::make_unique<char[]>(kReadBuffer);
  setvbuf(file.f, file.buffer.get(), _IOFBF, kReadBuffer);
  return file;
}

Result<std::unique_ptr<PacketReader>> openCapture(const std::string& path) {
  Result<BufferedFile> opened = openBuffered(path);
  if (!opened) return opened.error();
  BufferedFile& file = *opened;
  uint8_t magic[4] = {};
  const size_t got = fread(magic, 1, 4, file.f);
  if (got < 4) {
    fclose(file.f);
    return makeError(strCat(path, ": too short to be a capture file"));
  }
  rewind(file.f);
  if (magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a)
    return pcapngFromStream(std::move(file));
  return libpcapFromStream(std::move(file), path);
}

CaptureFormat formatForPath(std::string_view path) {
  return path.ends_with(".pcapng") ? CaptureFormat::Pcapng : CaptureFormat::Pcap;
}

Result<std::unique_ptr<PacketWriter>> createCapture(const std::string& path, CaptureFormat format,
                                                    std::vector<InterfaceInfo> interfaces) {
  if (format == CaptureFormat::Pcapng) return createPcapng(path, std::move(interfaces));
  return createLibpcap(path, interfaces);
}

Status CaptureBuffer::load(PacketReader& reader, size_t max_packets) {
  RawPacket p;
  while (size() < max_packets && reader.next(p))
    add(p);
  if (reader.error()) return *reader.error();
  return {};
}

void CaptureBuffer::add(const RawPacket& p) {
  const Meta m{arena_.size(), static_cast<uint32_t>(p.data.size()),
               p.wire_len,    p.interface_id,
               p.link,        p.ts_ns};
  arena_.insert(arena_.end(), p.data.begin(), p.data.end());
  meta_.push_back(m);
}

RawPacket CaptureBuffer::operator[](size_t i) const {
  const Meta& m = meta_[i];
  RawPacket p;
  p.data = Bytes(arena_.data() + m.off, m.len);
  p.wire_len = m.wire_len;
  p.interface_id = m.interface_id;
  p.link = m.link;
  p.ts_ns = m.ts_ns;
  return p;
}

}  // namespace palisade::io
