// Addresses and prefixes shared by every module.
//
// IpAddr holds IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) so that
// flow keys, tables and events have one 16-byte layout for both families.
// Prefix keeps the length in the family's own terms (0-32 for IPv4).
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/result.h"

namespace palisade {

struct IpAddr {
  std::array<uint8_t, 16> b{};
  // Bytes 8-11 of an IPv4-mapped address (00 00 ff ff), as this host loads them.
  static constexpr uint32_t kV4MappedMid =
      std::endian::native == std::endian::little ? 0xffff0000u : 0x0000ffffu;

  static IpAddr v4(uint32_t host_order);
  // 4 bytes. Inline, composed as two words: built from byte stores and
  // returned (read back as words), it stalled on store forwarding.
  static IpAddr v4(const uint8_t* network_order) {
    uint32_t a;
    std::memcpy(&a, network_order, 4);
    const uint64_t w[2] = {0, std::endian::native == std::endian::little
                                  ? uint64_t{a} << 32 | kV4MappedMid
                                  : uint64_t{kV4MappedMid} << 32 | a};
    IpAddr r;
    std::memcpy(r.b.data(), w, 16);
    return r;
  }
  static IpAddr v6(const uint8_t* network_order) {  // 16 bytes
    IpAddr r;
    std::memcpy(r.b.data(), network_order, 16);
    return r;
  }
  static std::optional<IpAddr> parse(std::string_view text);

  // ::ffff:0:0/96. Inline: asked several times per packet.
  bool isV4() const {
    uint64_t lo;
    uint32_t mid;
    std::memcpy(&lo, b.data(), 8);
    std::memcpy(&mid, b.data() + 8, 4);
    return lo == 0 && mid == kV4MappedMid;
  }
  // Host order; only meaningful when isV4(). Inline: asked per packet.
  uint32_t v4Value() const {
    uint32_t v;
    std::memcpy(&v, b.data() + 12, 4);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
    return v;
  }
  bool isUnspecified() const;
  bool isMulticast() const;
  bool isLinkLocal() const;  // 169.254.0.0/16, fe80::/10
  std::string toString() const;

  // Two 64-bit compares (the defaulted one called memcmp, per lookup).
  friend bool operator==(const IpAddr& x, const IpAddr& y) {
    uint64_t a[2], c[2];
    std::memcpy(a, x.b.data(), 16);
    std::memcpy(c, y.b.data(), 16);
    return ((a[0] ^ c[0]) | (a[1] ^ c[1])) == 0;
  }
  // Numeric order (as the bytes read big-endian), on two 64-bit words: the
  // defaulted one called memcmp, once per step of a range set's binary search.
  friend std::strong_ordering operator<=>(const IpAddr& x, const IpAddr& y) {
    const uint64_t xh = x.word(0), yh = y.word(0);
    if (xh != yh) return xh <=> yh;
    return x.word(1) <=> y.word(1);
  }

 private:
  friend struct Prefix;
  uint64_t word(int i) const {  // bytes 8i..8i+7 as a big-endian number
    uint64_t w;
    std::memcpy(&w, b.data() + 8 * i, 8);
    if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
    return w;
  }
};
static_assert(std::has_unique_object_representations_v<IpAddr>);

struct Prefix {
  IpAddr addr;
  uint8_t len = 0;  // in the family's own bits: 0-32 for IPv4, 0-128 for IPv6

  // Parses "a.b.c.d/n", "x::y/n" or a bare address (host prefix). Host bits set
  // below the length are an error that names the network address meant.
  static Result<Prefix> parse(std::string_view text);
  // An interface's ADDRESS/LEN (as `ip addr` writes it): the network it is on.
  static Result<Prefix> parseNetworkOf(std::string_view text);
  static Prefix host(const IpAddr& a) { return {a, static_cast<uint8_t>(a.isV4() ? 32 : 128)}; }

  bool isV4() const { return addr.isV4(); }
  uint8_t bits128() const { return static_cast<uint8_t>(isV4() ? len + 96 : len); }
  // Inline, on two 64-bit words: ACLs and protected prefixes ask it per
  // packet (a byte at a time it was a loop of sixteen).
  bool contains(const IpAddr& a) const {
    if (a.isV4() != isV4()) return false;
    const unsigned bits = bits128();
    const uint64_t m0 = bits >= 64 ? ~uint64_t{0} : bits == 0 ? 0 : ~uint64_t{0} << (64 - bits);
    const uint64_t m1 = bits <= 64 ? 0 : bits >= 128 ? ~uint64_t{0} : ~uint64_t{0} << (128 - bits);
    return (a.word(0) & m0) == addr.word(0) && (a.word(1) & m1) == addr.word(1);
  }
  bool contains(const Prefix& p) const;  // p is inside this prefix
  bool overlaps(const Prefix& p) const;
  std::string toString() const;

  friend bool operator==(const Prefix&, const Prefix&) = default;
};

struct MacAddr {
  std::array<uint8_t, 6> b{};

  static MacAddr from(const uint8_t* p) {  // inline: twice per decoded frame
    MacAddr m;
    std::memcpy(m.b.data(), p, 6);
    return m;
  }
  static std::optional<MacAddr> parse(std::string_view text);  // aa:bb:cc:dd:ee:ff or aa-bb-...
  bool isBroadcast() const;
  bool isMulticast() const { return (b[0] & 1) != 0; }
  bool isZero() const;
  std::string toString() const;

  friend bool operator==(const MacAddr&, const MacAddr&) = default;
  friend auto operator<=>(const MacAddr&, const MacAddr&) = default;
};
static_assert(std::has_unique_object_representations_v<MacAddr>);

// Formats into a caller buffer without allocating (for the hot summary paths).
// Returns the number of characters written (no terminator). buf needs 46 bytes.
size_t formatIp(const IpAddr& a, char* buf);
// An IP protocol's name as EVE writes it ("TCP", "UDP", "ICMP", "IPv6-ICMP",
// "SCTP"), else its number, written into buf.
std::string_view ipProtoName(uint8_t proto, char (&buf)[4]);
// buf needs 18 bytes.
size_t formatMac(const MacAddr& m, char* buf);

}  // namespace palisade
