// The small application-layer parsers: DNS messages (the query names behind
// dns.query) and the TLS ClientHello (the server name behind tls.sni), plus
// the port-independent protocol detection that picks a connection's parser.
//
// All of them read untrusted bytes with every length checked and bounded
// work: a DNS name may follow at most 16 compression pointers and be at most
// 255 bytes; a TLS handshake is gathered across records up to 64 KiB.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::ids {

enum class AppProto : uint8_t { Unknown, Http, Dns, Tls, Failed };
std::string_view appProtoName(AppProto p);

// What the first bytes of one direction of a TCP connection say it is:
// Unknown while too few bytes have arrived to tell, Failed when it is none
// of the inspected protocols.
AppProto detectTcp(std::string_view first_bytes, bool to_server, uint16_t server_port);

struct DnsMessage {
  uint16_t id = 0;
  bool response = false;
  uint8_t opcode = 0, rcode = 0;
  std::vector<std::string> queries;  // dotted names, no trailing dot
  std::vector<uint16_t> qtypes;
};

// Parses a DNS message (over UDP, or one TCP-framed message without its
// length prefix). False when it is not one.
bool parseDns(std::string_view msg, DnsMessage& out);

// Gathers TLS records of one direction until the first handshake message is
// whole, then reads a ClientHello's server name.
class TlsHello {
 public:
  // Feeds stream bytes; returns true once the ClientHello has been parsed
  // (sni() is then final, possibly empty).
  bool feed(std::string_view data);
  bool done() const { return done_; }
  bool failed() const { return failed_; }
  const std::string& sni() const { return sni_; }
  uint16_t version() const { return version_; }

  static constexpr size_t kMaxHandshake = 64 << 10;

 private:
  void parseHello();
  std::string records_;    // unconsumed record bytes
  std::string handshake_;  // handshake payload gathered so far
  std::string sni_;
  uint16_t version_ = 0;
  bool done_ = false, failed_ = false;
};

// Follows one direction's TLS record headers to tell when encrypted
// application data flows (record type 23). Bytes that stop looking like
// records (a mid-stream pickup, SSLv2, not TLS after all) end the walk for
// good: such a direction is never taken as encrypted.
class TlsRecords {
 public:
  void feed(std::string_view data);
  bool appData() const { return app_data_; }
  bool failed() const { return failed_; }

 private:
  uint8_t head_[5] = {};
  uint8_t head_len_ = 0;
  uint32_t body_left_ = 0;  // bytes of the current record still to skip
  bool app_data_ = false, failed_ = false;
};

}  // namespace palisade::ids
