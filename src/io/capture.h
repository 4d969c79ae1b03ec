// Capture files: reading and writing pcap and pcapng.
//
// Classic pcap goes through libpcap (nanosecond precision requested, so
// microsecond files are scaled up and nanosecond files kept). pcapng is parsed
// and written here because libpcap 1.10 neither reports a packet's interface id
// nor writes pcapng; both matter to Palisade (ingress port in replay, capture
// metadata). Readers never trust the file: every block length is checked, a
// corrupt file ends with a precise error after the packets read so far.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "core/time.h"
#include "packet/packet.h"

namespace palisade::io {

struct InterfaceInfo {
  pkt::LinkType link = pkt::LinkType::Ethernet;
  uint32_t snaplen = 262144;
  std::string name;
  std::string description;
};

// One packet as stored: the bytes stay valid until the reader's next call.
struct RawPacket {
  Bytes data;
  TimeNs ts_ns = 0;
  uint32_t wire_len = 0;
  uint32_t interface_id = 0;
  pkt::LinkType link = pkt::LinkType::Ethernet;
  std::string_view comment;  // pcapng opt_comment; empty when none
};

enum class CaptureFormat : uint8_t { Pcap, Pcapng };

class PacketReader {
 public:
  virtual ~PacketReader() = default;
  // The next packet, or false at the end of the file or on an error (see error()).
  virtual bool next(RawPacket& out) = 0;
  // Set when reading stopped because the file is corrupt or unreadable.
  const std::optional<Error>& error() const { return error_; }
  virtual uint64_t position() const = 0;   // bytes consumed so far
  uint64_t size() const { return size_; }  // file size; 0 when unknown (a pipe)
  virtual CaptureFormat format() const = 0;
  const std::vector<InterfaceInfo>& interfaces() const { return interfaces_; }

 protected:
  std::optional<Error> error_;
  uint64_t size_ = 0;
  std::vector<InterfaceInfo> interfaces_;
};

// Opens a pcap or pcapng file, by its magic number (not its name).
Result<std::unique_ptr<PacketReader>> openCapture(const std::string& path);
// Reads pcapng from an already-open stream (used by the fuzzer); takes ownership.
std::unique_ptr<PacketReader> pcapngFromStream(FILE* f, uint64_t size);
// Reads classic pcap (microsecond or nanosecond, either byte order) from an
// already-open stream (used by the fuzzer); takes ownership. Other magic
// numbers are an error here (openCapture hands them to libpcap).
Result<std::unique_ptr<PacketReader>> pcapFromStream(FILE* f, uint64_t size);

class PacketWriter {
 public:
  virtual ~PacketWriter() = default;
  virtual Status write(const RawPacket& p) = 0;
  virtual Status close() = 0;
};

// Creates a capture file. For pcap all interfaces must share one link type.
// The pcapng writer records interface names, nanosecond resolution and comments.
Result<std::unique_ptr<PacketWriter>> createCapture(const std::string& path, CaptureFormat format,
                                                    std::vector<InterfaceInfo> interfaces);
// pcapng when the name ends in .pcapng, pcap otherwise.
CaptureFormat formatForPath(std::string_view path);

// Whole capture held in memory, for benchmarks and tests: one arena, no per-packet allocation.
class CaptureBuffer {
 public:
  Status load(PacketReader& reader, size_t max_packets = SIZE_MAX);
  void add(const RawPacket& p);
  size_t size() const { return meta_.size(); }
  RawPacket operator[](size_t i) const;
  uint64_t bytes() const { return arena_.size(); }

 private:
  struct Meta {
    uint64_t off;
    uint32_t len, wire_len, interface_id;
    pkt::LinkType link;
    TimeNs ts_ns;
  };
  std::vector<std::byte> arena_;
  std::vector<Meta> meta_;
};

}  // namespace palisade::io
