#include "io/capture.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/strings.h"
#include "io/capture_internal.h"

namespace palisade::io {

Result<FILE*> openBuffered(const std::string& path, std::unique_ptr<char[]>& buffer) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return makeError(strCat(path, ": ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return makeError(strCat(path, ": is a directory"));
  }
  buffer = std::make_unique<char[]>(kReadBuffer);
  setvbuf(f, buffer.get(), _IOFBF, kReadBuffer);
  return f;
}

Result<std::unique_ptr<PacketReader>> openCapture(const std::string& path) {
  std::unique_ptr<char[]> buffer;
  Result<FILE*> opened = openBuffered(path, buffer);
  if (!opened) return opened.error();
  FILE* f = *opened;
  struct stat st {};
  const uint64_t size = fstat(fileno(f), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  uint8_t magic[4] = {};
  const size_t got = fread(magic, 1, 4, f);
  if (got == 4 && magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a) {
    rewind(f);
    return pcapngFromStream(f, size, std::move(buffer));
  }
  fclose(f);
  if (got < 4) return makeError(strCat(path, ": too short to be a capture file"));
  return openLibpcap(path);
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
