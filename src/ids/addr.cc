#include "ids/addr.h"

#include <algorithm>
#include <charconv>

#include "core/strings.h"

namespace palisade::ids {
namespace {

constexpr size_t kMaxText = 64 * 1024;  // one address or port expression
constexpr int kMaxDepth = 16;           // brackets and variables together
constexpr size_t kMaxRanges = 1 << 16;  // per set

IpAddr minAddr() {
  return IpAddr{};
}
IpAddr maxAddr() {
  IpAddr a;
  a.b.fill(0xff);
  return a;
}
// a + 1 and a - 1 in the 128-bit space (callers never pass max / min).
IpAddr next(IpAddr a) {
  for (int i = 15; i >= 0; --i)
    if (++a.b[i] != 0) break;
  return a;
}
IpAddr prev(IpAddr a) {
  for (int i = 15; i >= 0; --i)
    if (a.b[i]-- != 0) break;
  return a;
}

// Ranges sorted by lo, overlapping or adjacent ones merged.
template <class R, class Adjacent>
void normalizeRanges(std::vector<R>& v, Adjacent adjacent) {
  std::sort(v.begin(), v.end(), [](const R& a, const R& b) { return a.lo < b.lo; });
  size_t out = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (out > 0 && (v[i].lo <= v[out - 1].hi || adjacent(v[out - 1].hi, v[i].lo))) {
      v[out - 1].hi = std::max(v[out - 1].hi, v[i].hi);
    } else {
      v[out++] = v[i];
    }
  }
  v.resize(out);
}

// The parser of both kinds of set: the grammar is the same, only the atoms differ.
template <class Set>
class SetParser {
 public:
  using AtomFn = Result<Set> (*)(std::string_view);
  SetParser(const std::map<std::string, std::string, std::less<>>& vars, AtomFn atom,
            const char* what)
      : vars_(vars), atom_(atom), what_(what) {}

  Result<Set> parse(std::string_view text, int depth) {
    if (depth > kMaxDepth)
      return makeError(strCat(what_, " nested deeper than ", std::to_string(kMaxDepth),
                              " levels (brackets and variables)"));
    if (text.size() > kMaxText) return makeError(strCat(what_, " longer than 64 KiB"));
    text = trim(text);
    if (text.empty()) return makeError(strCat("empty ", what_));
    if (text.front() == '!') {
      auto inner = parse(text.substr(1), depth + 1);
      if (!inner) return inner;
      return inner->complement();
    }
    if (text.front() == '[') {
      if (text.back() != ']') return makeError(strCat("'", text, "': '[' without its ']'"));
      return parseList(text.substr(1, text.size() - 2), depth + 1);
    }
    if (text.front() == '$') {
      const std::string_view name = text.substr(1);
      auto it = vars_.find(name);
      if (it == vars_.end()) return makeError(strCat("undefined variable $", name));
      // Each variable is resolved once per expression ("[$A,$A,...]" stays
      // linear), and one that uses itself is an error, not a deep recursion.
      if (auto m = memo_.find(name); m != memo_.end()) return m->second;
      if (std::find(resolving_.begin(), resolving_.end(), name) != resolving_.end())
        return makeError(strCat("variable $", name, " is defined through itself"));
      resolving_.push_back(name);
      auto r = parse(it->second, depth + 1);
      resolving_.pop_back();
      if (!r) return makeError(strCat("$", name, ": ", r.error().message));
      memo_.emplace(std::string(name), *r);
      return r;
    }
    if (text == "any") return Set::any();
    return atom_(text);
  }

 private:
  // Members at this bracket level, split on commas outside inner brackets.
  Result<Set> parseList(std::string_view body, int depth) {
    Set plus, minus;
    bool any_plus = false;
    int level = 0;
    size_t start = 0;
    for (size_t i = 0; i <= body.size(); ++i) {
      const char c = i < body.size() ? body[i] : ',';
      if (c == '[') ++level;
      if (c == ']' && --level < 0) return makeError(strCat("'", body, "': unbalanced ']'"));
      if (c != ',' || level != 0) continue;
      std::string_view item = trim(body.substr(start, i - start));
      start = i + 1;
      if (item.empty()) return makeError(strCat("empty member in ", what_, " list [", body, "]"));
      const bool negated = item.front() == '!';
      auto r = parse(negated ? item.substr(1) : item, depth);
      if (!r) return r;
      if (negated) {
        minus = minus.unite(*r);
      } else {
        plus = plus.unite(*r);
        any_plus = true;
      }
      if (plus.ranges().size() + minus.ranges().size() > kMaxRanges)
        return makeError(strCat(what_, " list has more than 65536 ranges"));
    }
    if (level != 0) return makeError(strCat("'", body, "': '[' without its ']'"));
    // Only negations: everything but them (Suricata's "[!a, !b]").
    Set base = any_plus ? plus : Set::any();
    Set out = base.minus(minus);
    if (out.empty())
      return makeError(strCat(what_, " list [", body, "] matches nothing (all of it is negated)"));
    return out;
  }

  const std::map<std::string, std::string, std::less<>>& vars_;
  AtomFn atom_;
  const char* what_;
  std::map<std::string, Set, std::less<>> memo_;
  std::vector<std::string_view> resolving_;
};

Result<IpSet> addressAtom(std::string_view text) {
  std::string_view addr_text = text, len_text;
  if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr_text = text.substr(0, slash);
    len_text = text.substr(slash + 1);
  }
  auto addr = IpAddr::parse(addr_text);
  if (!addr) return makeError(strCat("'", text, "' is not an address, network, $VARIABLE or any"));
  const int max_len = addr->isV4() ? 32 : 128;
  int len = max_len;
  if (!len_text.empty() || text.find('/') != std::string_view::npos) {
    if (addr->isV4() && len_text.find('.') != std::string_view::npos) {
      // A dotted netmask: 255.255.255.0.
      auto mask = IpAddr::parse(len_text);
      if (!mask || !mask->isV4()) return makeError(strCat("'", text, "': bad netmask"));
      const uint32_t m = mask->v4Value();
      len = __builtin_popcount(m);
      if (m != (len == 0 ? 0u : ~0u << (32 - len)))
        return makeError(strCat("'", text, "': the netmask is not contiguous"));
    } else {
      auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
      if (len_text.empty() || ec != std::errc() || end != len_text.data() + len_text.size() ||
          len < 0 || len > max_len)
        return makeError(strCat("'", text, "': prefix length must be 0-", std::to_string(max_len)));
    }
  }
  // The network (host bits cleared, as Suricata does) to its last address.
  const int bits = addr->isV4() ? len + 96 : len;
  IpAddr lo = *addr, hi = *addr;
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(bits - 8 * i, 0, 8);
    const auto mask = static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
    lo.b[i] = static_cast<uint8_t>(lo.b[i] & mask);
    hi.b[i] = static_cast<uint8_t>(hi.b[i] | ~mask);
  }
  IpSet s;
  s.add({lo, hi});
  return s;
}

Result<uint16_t> portNumber(std::string_view text, std::string_view whole) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > 65535)
    return makeError(strCat("'", whole, "' is not a port, range, $VARIABLE or any"));
  return static_cast<uint16_t>(v);
}

Result<PortSet> portAtom(std::string_view text) {
  PortRange r;
  if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    const std::string_view a = trim(text.substr(0, colon)), b = trim(text.substr(colon + 1));
    if (a.empty() && b.empty()) return makeError(strCat("'", text, "': a range needs a bound"));
    if (!a.empty()) {
      auto lo = portNumber(a, text);
      if (!lo) return lo.error();
      r.lo = *lo;
    }
    if (!b.empty()) {
      auto hi = portNumber(b, text);
      if (!hi) return hi.error();
      r.hi = *hi;
    }
    if (r.lo > r.hi) return makeError(strCat("'", text, "': the range is backwards"));
  } else {
    auto p = portNumber(text, text);
    if (!p) return p.error();
    r.lo = r.hi = *p;
  }
  PortSet s;
  s.add(r);
  return s;
}

}  // namespace

// --- IpSet --------------------------------------------------------------------

IpSet IpSet::any() {
  IpSet s;
  s.ranges_.push_back({minAddr(), maxAddr()});
  return s;
}
bool IpSet::isAny() const {
  return ranges_.size() == 1 && ranges_[0].lo == minAddr() && ranges_[0].hi == maxAddr();
}
bool IpSet::contains(const IpAddr& a) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), a,
                             [](const IpAddr& x, const IpRange& r) { return x < r.lo; });
  return it != ranges_.begin() && a <= std::prev(it)->hi;
}
void IpSet::add(IpRange r) {
  ranges_.push_back(r);
}
void IpSet::normalize() {
  normalizeRanges(ranges_, [](const IpAddr& hi, const IpAddr& lo) {
    return hi != maxAddr() && next(hi) == lo;
  });
}
IpSet IpSet::complement() const {
  IpSet out;
  IpAddr from = minAddr();
  bool open = true;  // `from` is still to be covered
  for (const IpRange& r : ranges_) {
    if (r.lo > from) out.ranges_.push_back({from, prev(r.lo)});
    if (r.hi == maxAddr()) {
      open = false;
      break;
    }
    from = next(r.hi);
  }
  if (open) out.ranges_.push_back({from, maxAddr()});
  return out;
}
IpSet IpSet::unite(const IpSet& o) const {
  IpSet out = *this;
  out.ranges_.insert(out.ranges_.end(), o.ranges_.begin(), o.ranges_.end());
  out.normalize();
  return out;
}
IpSet IpSet::minus(const IpSet& o) const {
  // a \ b = complement(complement(a) ∪ b)
  return complement().unite(o).complement();
}

// --- PortSet ------------------------------------------------------------------

PortSet PortSet::any() {
  PortSet s;
  s.ranges_.push_back({0, 65535});
  return s;
}
bool PortSet::isAny() const {
  return ranges_.size() == 1 && ranges_[0].lo == 0 && ranges_[0].hi == 65535;
}
bool PortSet::contains(uint16_t p) const {
  for (const PortRange& r : ranges_) {
    if (p < r.lo) return false;
    if (p <= r.hi) return true;
  }
  return false;
}
void PortSet::add(PortRange r) {
  ranges_.push_back(r);
}
void PortSet::normalize() {
  normalizeRanges(ranges_, [](uint16_t hi, uint16_t lo) { return hi != 65535 && hi + 1 == lo; });
}
PortSet PortSet::complement() const {
  PortSet out;
  uint32_t from = 0;
  for (const PortRange& r : ranges_) {
    if (r.lo > from)
      out.ranges_.push_back({static_cast<uint16_t>(from), static_cast<uint16_t>(r.lo - 1)});
    from = uint32_t{r.hi} + 1;
  }
  if (from <= 65535) out.ranges_.push_back({static_cast<uint16_t>(from), 65535});
  return out;
}
PortSet PortSet::unite(const PortSet& o) const {
  PortSet out = *this;
  out.ranges_.insert(out.ranges_.end(), o.ranges_.begin(), o.ranges_.end());
  out.normalize();
  return out;
}
PortSet PortSet::minus(const PortSet& o) const {
  return complement().unite(o).complement();
}

// --- variables and entry points -------------------------------------------------

Vars Vars::defaults() {
  Vars v;
  v.address = {
      {"HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"},
      {"EXTERNAL_NET", "!$HOME_NET"},
      {"HTTP_SERVERS", "$HOME_NET"},
      {"SMTP_SERVERS", "$HOME_NET"},
      {"SQL_SERVERS", "$HOME_NET"},
      {"DNS_SERVERS", "$HOME_NET"},
      {"TELNET_SERVERS", "$HOME_NET"},
      {"AIM_SERVERS", "$EXTERNAL_NET"},
      {"DC_SERVERS", "$HOME_NET"},
      {"DNP3_SERVER", "$HOME_NET"},
      {"DNP3_CLIENT", "$HOME_NET"},
      {"MODBUS_CLIENT", "$HOME_NET"},
      {"MODBUS_SERVER", "$HOME_NET"},
      {"ENIP_CLIENT", "$HOME_NET"},
      {"ENIP_SERVER", "$HOME_NET"},
  };
  v.port = {
      {"HTTP_PORTS", "80"},
      {"SHELLCODE_PORTS", "!80"},
      {"ORACLE_PORTS", "1521"},
      {"SSH_PORTS", "22"},
      {"DNP3_PORTS", "20000"},
      {"MODBUS_PORTS", "502"},
      {"FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"},
      {"FTP_PORTS", "21"},
      {"GENEVE_PORTS", "6081"},
      {"VXLAN_PORTS", "4789"},
      {"TEREDO_PORTS", "3544"},
  };
  return v;
}

Status Vars::set(std::string_view assignment) {
  std::string_view a = assignment;
  if (a.starts_with("vars.")) a.remove_prefix(5);
  const size_t eq = a.find('=');
  if (eq == std::string_view::npos)
    return makeError(
        strCat("'", assignment, "': expected address-groups.NAME=VALUE or port-groups.NAME=VALUE"));
  const std::string_view key = a.substr(0, eq), value = trim(a.substr(eq + 1));
  const bool is_addr = key.starts_with("address-groups.");
  const bool is_port = key.starts_with("port-groups.");
  if (!is_addr && !is_port)
    return makeError(
        strCat("'", assignment, "': expected address-groups.NAME=VALUE or port-groups.NAME=VALUE"));
  const std::string_view name = key.substr(key.find('.') + 1);
  if (name.empty()) return makeError(strCat("'", assignment, "': no variable name"));
  auto& table = is_addr ? address : port;
  const auto old = table.find(name);
  const std::string saved = old == table.end() ? std::string() : old->second;
  table[std::string(name)] = std::string(value);
  Status st;
  if (is_addr) {
    if (auto r = parseAddressSet(value, *this); !r) st = r.error();
  } else if (auto r = parsePortSet(value, *this); !r) {
    st = r.error();
  }
  if (!st) {
    if (old == table.end())
      table.erase(std::string(name));
    else
      table[std::string(name)] = saved;
    return makeError(strCat(key, ": ", st.error().message));
  }
  return {};
}

Result<IpSet> parseAddressSet(std::string_view text, const Vars& vars) {
  return SetParser<IpSet>(vars.address, addressAtom, "address").parse(text, 0);
}

Result<PortSet> parsePortSet(std::string_view text, const Vars& vars) {
  return SetParser<PortSet>(vars.port, portAtom, "port").parse(text, 0);
}

}  // namespace palisade::ids
