// Between the capture-format implementations; not part of the module's interface.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "io/capture.h"

namespace palisade::io {

// Capture files are read through a 1 MiB stdio buffer: the default (the file
// system's block, 4 KiB) costs a read(2) every few packets, 6% of a run of
// `palisade ids -r` over a large capture.
inline constexpr size_t kReadBuffer = 1 << 20;

// A capture file opened for reading with a kReadBuffer stdio buffer, which
// must outlive the stream.
struct BufferedFile {
  FILE* f = nullptr;
  uint64_t size = 0;  // 0 when unknown
  std::unique_ptr<char[]> buffer;
};
// Refuses a directory; the error names the path.
Result<BufferedFile> openBuffered(const std::string& path);

// Classic pcap through libpcap, from the file's start; takes ownership
// (closes the stream on failure too).
Result<std::unique_ptr<PacketReader>> libpcapFromStream(BufferedFile file, const std::string& path);
// pcapngFromStream, the reader also keeping the stream's buffer.
std::unique_ptr<PacketReader> pcapngFromStream(BufferedFile file);
Result<std::unique_ptr<PacketWriter>> createLibpcap(const std::string& path,
                                                    const std::vector<InterfaceInfo>& interfaces);
Result<std::unique_ptr<PacketWriter>> createPcapng(const std::string& path,
                                                   std::vector<InterfaceInfo> interfaces);

}  // namespace palisade::io
