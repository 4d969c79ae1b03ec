// Address and port sets of a Suricata rule header.
//
//   any   1.2.3.4   192.0.2.0/24   2001:db8::/32   $HOME_NET   !x   [a, b, ...]
//   any   80   1024:   :1023   80:90   !80   [80, 443]   $HTTP_PORTS
//
// A set is kept as sorted, disjoint, inclusive ranges, so lists, negation and
// negation inside lists ("[10.0.0.0/8, !10.1.0.0/16]", "![$HOME_NET, 192.0.2.1]")
// are exact set algebra: a list is the union of its positive members minus its
// negated ones; "!x" alone is the complement of x. IPv4 addresses live in the
// IPv4-mapped part of the 128-bit space (as IpAddr keeps them), so "!$HOME_NET"
// with an IPv4 HOME_NET also matches every IPv6 address, as in Suricata.
//
// Variables ($NAME) come from a Vars table, each defined by the same syntax;
// a definition may use other variables (EXTERNAL_NET: "!$HOME_NET"). Hostile
// input is bounded: nesting depth, variable depth (a loop is an error), text
// length, and the number of ranges.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/net.h"
#include "core/result.h"

namespace palisade::ids {

struct IpRange {
  IpAddr lo, hi;  // inclusive
};

class IpSet {
 public:
  static IpSet any();
  bool isAny() const;
  bool empty() const { return ranges_.empty(); }
  bool contains(const IpAddr& a) const;
  const std::vector<IpRange>& ranges() const { return ranges_; }

  IpSet complement() const;
  IpSet unite(const IpSet& o) const;
  IpSet minus(const IpSet& o) const;

  void add(IpRange r);  // then normalize()
  void normalize();

 private:
  std::vector<IpRange> ranges_;
};

struct PortRange {
  uint16_t lo = 0, hi = 65535;
};

class PortSet {
 public:
  static PortSet any();
  bool isAny() const;
  bool empty() const { return ranges_.empty(); }
  bool contains(uint16_t p) const;
  const std::vector<PortRange>& ranges() const { return ranges_; }

  PortSet complement() const;
  PortSet unite(const PortSet& o) const;
  PortSet minus(const PortSet& o) const;

  void add(PortRange r);
  void normalize();

 private:
  std::vector<PortRange> ranges_;
};

// Address and port variables (suricata.yaml's vars.address-groups and
// vars.port-groups), as text; resolved when a rule uses them.
struct Vars {
  std::map<std::string, std::string, std::less<>> address;
  std::map<std::string, std::string, std::less<>> port;

  // Suricata's defaults (suricata.yaml): HOME_NET the RFC 1918 networks,
  // EXTERNAL_NET !$HOME_NET, the server groups $HOME_NET, HTTP_PORTS 80 and
  // the rest.
  static Vars defaults();
  // "address-groups.HOME_NET=[192.0.2.0/24]" or "port-groups.HTTP_PORTS=80"
  // (a leading "vars." is allowed); checks the value parses.
  Status set(std::string_view assignment);
};

Result<IpSet> parseAddressSet(std::string_view text, const Vars& vars);
Result<PortSet> parsePortSet(std::string_view text, const Vars& vars);

}  // namespace palisade::ids
