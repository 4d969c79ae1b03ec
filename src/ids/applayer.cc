#include "ids/applayer.h"

#include <algorithm>

#include <cstring>

namespace palisade::ids {

namespace {

uint16_t be16(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) |
                               static_cast<uint8_t>(s[at + 1]));
}

constexpr std::string_view kMethods[] = {
    "GET ",     "POST ",  "HEAD ",  "PUT ",      "DELETE ",    "OPTIONS ",
    "CONNECT ", "TRACE ", "PATCH ", "PROPFIND ", "PROPPATCH ", "MKCOL ",
    "COPY ",    "MOVE ",  "LOCK ",  "UNLOCK ",   "SEARCH ",    "REPORT ",
};

// Reads a possibly compressed name at `off`; `end` receives the offset after
// the name in the message (not after a pointer's target).
bool readName(std::string_view msg, size_t off, std::string& name, size_t& end) {
  name.clear();
  bool jumped = false;
  int jumps = 0;
  while (true) {
    if (off >= msg.size()) return false;
    const auto len = static_cast<uint8_t>(msg[off]);
    if (len == 0) {
      if (!jumped) end = off + 1;
      return true;
    }
    if ((len & 0xc0) == 0xc0) {
      if (off + 1 >= msg.size() || ++jumps > 16) return false;
      if (!jumped) end = off + 2;
      jumped = true;
      off = static_cast<size_t>(be16(msg, off) & 0x3fff);
      continue;
    }
    if ((len & 0xc0) != 0) return false;
    if (off + 1 + len > msg.size()) return false;
    if (!name.empty()) name += '.';
    name.append(msg.substr(off + 1, len));
    if (name.size() > 255) return false;
    off += 1 + len;
  }
}

}  // namespace

std::string_view appProtoName(AppProto p) {
  switch (p) {
    case AppProto::Http:
      return "http";
    case AppProto::Dns:
      return "dns";
    case AppProto::Tls:
      return "tls";
    case AppProto::Failed:
      return "failed";
    case AppProto::Unknown:
      break;
  }
  return "";
}

AppProto detectTcp(std::string_view b, bool to_server, uint16_t server_port) {
  if (b.empty()) return AppProto::Unknown;
  // TLS: a handshake record of SSL 3.0 .. TLS 1.3.
  if (b[0] == 0x16) {
    if (b.size() < 3) return AppProto::Unknown;
    return (b[1] == 0x03 && static_cast<uint8_t>(b[2]) <= 0x04) ? AppProto::Tls : AppProto::Failed;
  }
  if (to_server) {
    bool maybe = false;
    for (std::string_view m : kMethods) {
      const size_t n = std::min(m.size(), b.size());
      if (b.substr(0, n) == m.substr(0, n)) {
        if (b.size() >= m.size()) return AppProto::Http;
        maybe = true;
      }
    }
    if (maybe) return AppProto::Unknown;
  } else {
    constexpr std::string_view kResp = "HTTP/1.";
    const size_t n = std::min(kResp.size(), b.size());
    if (b.substr(0, n) == kResp.substr(0, n))
      return b.size() >= kResp.size() ? AppProto::Http : AppProto::Unknown;
  }
  if (server_port == 53) {
    if (b.size() < 2 + 12) return AppProto::Unknown;
    DnsMessage m;
    const size_t len = be16(b, 0);
    if (len >= 12 && b.size() >= 2 + len && parseDns(b.substr(2, len), m)) return AppProto::Dns;
    if (len >= 12 && b.size() < 2 + len) return AppProto::Dns;  // a message still arriving
  }
  return AppProto::Failed;
}

bool parseDns(std::string_view msg, DnsMessage& out) {
  out = {};
  if (msg.size() < 12) return false;
  out.id = be16(msg, 0);
  const uint16_t flags = be16(msg, 2);
  out.response = (flags & 0x8000) != 0;
  out.opcode = static_cast<uint8_t>((flags >> 11) & 0x0f);
  out.rcode = static_cast<uint8_t>(flags & 0x0f);
  const uint16_t qd = be16(msg, 4);
  if (qd > 16) return false;
  size_t off = 12;
  for (uint16_t i = 0; i < qd; ++i) {
    std::string name;
    size_t end = 0;
    if (!readName(msg, off, name, end) || end + 4 > msg.size()) return false;
    out.queries.push_back(std::move(name));
    out.qtypes.push_back(be16(msg, end));
    off = end + 4;
  }
  return true;
}

bool TlsHello::feed(std::string_view data) {
  if (done_ || failed_) return done_;
  if (records_.size() + data.size() > kMaxHandshake + 5) {
    failed_ = true;
    return false;
  }
  records_.append(data);
  size_t pos = 0;
  while (records_.size() - pos >= 5) {
    const auto type = static_cast<uint8_t>(records_[pos]);
    const uint16_t len = be16(records_, pos + 3);
    if (type != 22 || records_[pos + 1] != 0x03 || len == 0 || len > 18432) {
      failed_ = true;
      return false;
    }
    if (records_.size() - pos < 5u + len) break;
    handshake_.append(records_, pos + 5, len);
    pos += 5u + len;
    if (handshake_.size() >= 4) {
      const size_t hs_len = (static_cast<uint8_t>(handshake_[1]) << 16) |
                            (static_cast<uint8_t>(handshake_[2]) << 8) |
                            static_cast<uint8_t>(handshake_[3]);
      if (hs_len > kMaxHandshake) {
        failed_ = true;
        return false;
      }
      if (handshake_.size() >= 4 + hs_len) {
        parseHello();
        done_ = true;
        records_.clear();
        handshake_.clear();
        return true;
      }
    }
  }
  records_.erase(0, pos);
  return false;
}

void TlsHello::parseHello() {
  std::string_view h = handshake_;
  if (h.empty() || h[0] != 1) return;  // not a ClientHello
  h.remove_prefix(4);
  if (h.size() < 34) return;
  version_ = be16(h, 0);
  size_t off = 34;
  if (off >= h.size()) return;
  off += 1 + static_cast<uint8_t>(h[off]);  // session id
  if (off + 2 > h.size()) return;
  off += 2 + be16(h, off);  // cipher suites
  if (off >= h.size()) return;
  off += 1 + static_cast<uint8_t>(h[off]);  // compression methods
  if (off + 2 > h.size()) return;
  const size_t ext_end = std::min(h.size(), off + 2 + be16(h, off));
  off += 2;
  while (off + 4 <= ext_end) {
    const uint16_t type = be16(h, off);
    const uint16_t len = be16(h, off + 2);
    off += 4;
    if (off + len > ext_end) return;
    if (type == 0 && len >= 5) {  // server_name: list, then type 0 host_name
      const std::string_view e = h.substr(off, len);
      const uint16_t name_len = be16(e, 3);
      if (e[2] == 0 && 5u + name_len <= e.size()) sni_.assign(e.substr(5, name_len));
      return;
    }
    off += len;
  }
}

void TlsRecords::feed(std::string_view data) {
  while (!data.empty() && !failed_ && !app_data_) {
    if (body_left_ > 0) {
      const size_t skip = std::min<size_t>(body_left_, data.size());
      body_left_ -= static_cast<uint32_t>(skip);
      data.remove_prefix(skip);
      continue;
    }
    head_[head_len_++] = static_cast<uint8_t>(data.front());
    data.remove_prefix(1);
    if (head_len_ < 5) continue;
    head_len_ = 0;
    // Change cipher spec, alert, handshake, application data, heartbeat;
    // SSL 3.0 to TLS 1.3 record versions (3.1 for 1.3's records).
    const uint8_t type = head_[0];
    if (type < 20 || type > 24 || head_[1] != 3 || head_[2] > 4) {
      failed_ = true;
      return;
    }
    if (type == 23) app_data_ = true;
    body_left_ = static_cast<uint32_t>(head_[3]) << 8 | head_[4];
  }
}

}  // namespace palisade::ids
