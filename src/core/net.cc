#include "core/net.h"

#include "core/strings.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace palisade {
namespace {
constexpr uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddr maskTo(const IpAddr& a, int bits128) {
  IpAddr m = a;
  for (int i = 0; i < 16; ++i) {
    int keep = bits128 - i * 8;
    if (keep >= 8) continue;
    m.b[i] = keep <= 0 ? 0 : static_cast<uint8_t>(m.b[i] & (0xff << (8 - keep)));
  }
  return m;
}
}  // namespace

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  std::memcpy(a.b.data(), kV4Mapped, 12);
  a.b[12] = static_cast<uint8_t>(host_order >> 24);
  a.b[13] = static_cast<uint8_t>(host_order >> 16);
  a.b[14] = static_cast<uint8_t>(host_order >> 8);
  a.b[15] = static_cast<uint8_t>(host_order);
  return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t raw[16];
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, raw) != 1) return std::nullopt;
    return v4(raw);
  }
  if (inet_pton(AF_INET6, buf, raw) != 1) return std::nullopt;
  return v6(raw);
}

bool IpAddr::isUnspecified() const {
  if (isV4()) return v4Value() == 0;
  for (uint8_t x : b)
    if (x) return false;
  return true;
}

bool IpAddr::isMulticast() const {
  return isV4() ? (b[12] & 0xf0) == 0xe0 : b[0] == 0xff;
}

bool IpAddr::isLinkLocal() const {
  return isV4() ? b[12] == 169 && b[13] == 254 : b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

namespace {
// Dotted quad of 4 bytes; returns the end.
char* formatV4(const uint8_t* p, char* out) {
  for (int i = 0; i < 4; ++i) {
    unsigned v = p[i];
    if (v >= 100) {
      *out++ = static_cast<char>('0' + v / 100);
      v %= 100;
      *out++ = static_cast<char>('0' + v / 10);
    } else if (v >= 10) {
      *out++ = static_cast<char>('0' + v / 10);
    }
    *out++ = static_cast<char>('0' + v % 10);
    if (i < 3) *out++ = '.';
  }
  return out;
}
}  // namespace

// Events format two addresses each, so this is on the log's hot path; glibc's
// inet_ntop goes through sprintf. The output is inet_ntop's exactly (RFC 5952:
// lower case, no leading zeros, the first longest run of two or more zero
// groups as "::"; ::ffff:a.b.c.d and ::a.b.c.d dotted), which the unit tests
// check against inet_ntop itself.
std::string_view ipProtoName(uint8_t proto, char (&buf)[4]) {
  switch (proto) {
    case 1:
      return "ICMP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 58:
      return "IPv6-ICMP";
    case 132:
      return "SCTP";
    default: {
      auto r = std::to_chars(buf, buf + sizeof buf, proto);
      return {buf, static_cast<size_t>(r.ptr - buf)};
    }
  }
}

size_t formatIp(const IpAddr& a, char* buf) {
  const uint8_t* p = a.b.data();
  if (a.isV4()) return static_cast<size_t>(formatV4(p + 12, buf) - buf);
  uint16_t w[8];
  for (int i = 0; i < 8; ++i)
    w[i] = static_cast<uint16_t>(p[2 * i] << 8 | p[2 * i + 1]);
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (w[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && w[j] == 0)
      ++j;
    if (j - i > best_len) best = i, best_len = j - i;
    i = j;
  }
  if (best_len < 2) best = -1;
  static constexpr char kHex[] = "0123456789abcdef";
  char* out = buf;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      *out++ = ':';
      if (best + best_len == 8) *out++ = ':';
      i += best_len - 1;
      continue;
    }
    if (i > 0) *out++ = ':';
    if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
      return static_cast<size_t>(formatV4(p + 12, out) - buf);
    const unsigned v = w[i];
    bool lead = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned d = (v >> shift) & 15;
      if (lead && d == 0 && shift > 0) continue;
      lead = false;
      *out++ = kHex[d];
    }
  }
  return static_cast<size_t>(out - buf);
}

std::string IpAddr::toString() const {
  char buf[INET6_ADDRSTRLEN];
  return std::string(buf, formatIp(*this, buf));
}

namespace {
// ADDRESS[/LEN]; with clear_host_bits the network of ADDRESS, else an error
// when ADDRESS has bits past LEN.
Result<Prefix> parsePrefix(std::string_view text, bool clear_host_bits) {
  const auto slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  auto addr = IpAddr::parse(addr_text);
  if (!addr) {
    return makeError(strCat("'", addr_text, "' is not an IPv4 or IPv6 address"));
  }
  const int max_len = addr->isV4() ? 32 : 128;
  int len = max_len;
  if (slash != std::string_view::npos) {
    const std::string_view len_text = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (len_text.empty() || ec != std::errc() || end != len_text.data() + len_text.size() ||
        len < 0 || len > max_len) {
      return makeError(strCat("prefix length '", len_text, "' must be 0-", std::to_string(max_len),
                              " for ", addr->isV4() ? "IPv4" : "IPv6"));
    }
  }
  Prefix p{*addr, static_cast<uint8_t>(len)};
  const IpAddr net = maskTo(*addr, p.bits128());
  if (net != *addr) {
    Prefix want{net, p.len};
    if (clear_host_bits) return want;
    return makeError(strCat("host bits are set in '", text, "'; the network is ", want.toString()));
  }
  return p;
}
}  // namespace

Result<Prefix> Prefix::parse(std::string_view text) {
  return parsePrefix(text, false);
}
Result<Prefix> Prefix::parseNetworkOf(std::string_view text) {
  return parsePrefix(text, true);
}

bool Prefix::contains(const Prefix& p) const {
  return p.isV4() == isV4() && p.len >= len && contains(p.addr);
}

bool Prefix::overlaps(const Prefix& p) const {
  return contains(p) || p.contains(*this);
}

std::string Prefix::toString() const {
  return strCat(addr.toString(), "/", std::to_string(len));
}

std::optional<MacAddr> MacAddr::parse(std::string_view t) {
  if (t.size() != 17) return std::nullopt;
  MacAddr m;
  const char sep = t[2];
  if (sep != ':' && sep != '-') return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && t[static_cast<size_t>(i * 3 - 1)] != sep) return std::nullopt;
    const char* s = t.data() + i * 3;
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s, s + 2, v, 16);
    if (ec != std::errc() || end != s + 2) return std::nullopt;
    m.b[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
  }
  return m;
}

bool MacAddr::isBroadcast() const {
  for (uint8_t x : b)
    if (x != 0xff) return false;
  return true;
}

bool MacAddr::isZero() const {
  for (uint8_t x : b)
    if (x) return false;
  return true;
}

size_t formatMac(const MacAddr& m, char* buf) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 6; ++i) {
    buf[i * 3] = kHex[m.b[static_cast<size_t>(i)] >> 4];
    buf[i * 3 + 1] = kHex[m.b[static_cast<size_t>(i)] & 15];
    if (i < 5) buf[i * 3 + 2] = ':';
  }
  return 17;
}

std::string MacAddr::toString() const {
  char buf[18];
  return std::string(buf, formatMac(*this, buf));
}

}  // namespace palisade
