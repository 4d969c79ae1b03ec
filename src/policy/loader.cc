#include "policy/loader.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <span>
#include <unordered_map>

#include "core/file.h"
#include "core/strings.h"
#include "policy/validate.h"

namespace palisade::policy {
namespace {

using Names = std::initializer_list<std::string_view>;

// The fields of one YAML map, checked against what that element allows.
class Fields {
 public:
  Fields(const YAML::Node& map, SourceLoc loc) : loc_(loc) {
    for (auto it = map.begin(); it != map.end(); ++it)
      entries_.push_back({it->first, it->second});
  }
  struct Entry {
    YAML::Node key, value;
  };
  const std::vector<Entry>& entries() const { return entries_; }
  YAML::Node get(std::string_view key) const {
    for (const Entry& e : entries_)
      if (e.key.IsScalar() && e.key.Scalar() == key) return e.value;
    return YAML::Node(YAML::NodeType::Undefined);
  }
  SourceLoc loc() const { return loc_; }

 private:
  SourceLoc loc_;
  std::vector<Entry> entries_;
};

class Loader {
 public:
  explicit Loader(Diagnostics& diag) : diag_(diag) {}

  void load(const YAML::Node& root, Policy& p);
  bool exhausted() const { return budget_reported_; }

 private:
  static SourceLoc locOf(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return {};
    return {static_cast<uint32_t>(m.line + 1), static_cast<uint32_t>(m.column + 1)};
  }

  // Counts visited nodes; past the budget everything else is skipped (alias bombs).
  bool spend() {
    if (++nodes_ <= kMaxPolicyNodes) return true;
    if (!budget_reported_) {
      diag_.error({}, strCat("policy expands to more than ", std::to_string(kMaxPolicyNodes),
                             " YAML nodes (aliases?); refusing to load it"));
      budget_reported_ = true;
    }
    return false;
  }

  std::optional<Fields> fields(const YAML::Node& n, std::string_view what, Names allowed,
                               Names required = {}) {
    return fields(n, what, std::span<const std::string_view>(allowed.begin(), allowed.size()),
                  std::span<const std::string_view>(required.begin(), required.size()));
  }
  std::optional<Fields> fields(const YAML::Node& n, std::string_view what,
                               std::span<const std::string_view> allowed,
                               std::span<const std::string_view> required);
  std::optional<std::string> scalar(const YAML::Node& n, std::string_view what);
  std::string name(const Fields& f, std::string_view what);
  template <class T>
  std::optional<T> integer(const YAML::Node& n, std::string_view what, int64_t lo, int64_t hi);
  std::optional<bool> boolean(const YAML::Node& n, std::string_view what);
  std::optional<Prefix> prefix(const YAML::Node& n, std::string_view what);
  std::optional<IpAddr> address(const YAML::Node& n, std::string_view what);
  std::optional<MacAddr> mac(const YAML::Node& n, std::string_view what);
  std::optional<PortRange> portRange(const YAML::Node& n, std::string_view what);
  Ref ref(const YAML::Node& n, std::string_view what);
  template <class E>
  std::optional<E> enumValue(const YAML::Node& n, std::string_view what,
                             std::initializer_list<std::pair<std::string_view, E>> values);

  // Calls f on each item of a list; a scalar counts as a one-item list, null as empty.
  template <class F>
  void each(const YAML::Node& n, std::string_view what, F&& f);

  // A list of prefixes; an explicitly empty list is an error (a missing one is
  // reported by the required-field check).
  std::vector<Prefix> prefixes(const YAML::Node& n, std::string_view what);
  void requireItems(const YAML::Node& n, std::string_view what, std::string_view item);
  std::vector<PortRange> ports(const YAML::Node& n, std::string_view what);
  std::vector<AddressRef> addresses(const YAML::Node& n, std::string_view what);

  void hosts(const YAML::Node& n, Policy& p);
  void conntrack(const YAML::Node& n, Policy& p);
  void capture(const YAML::Node& n, Policy& p);
  void ddos(const YAML::Node& n, Policy& p);
  void ids(const YAML::Node& n, Policy& p);
  std::optional<double> number(const YAML::Node& n, std::string_view what, double lo, double hi);
  // A duration (parseDuration's syntax) in [lo_ns, hi_ns] and a multiple of
  // unit_ns, in nanoseconds; otherwise an error "WHAT 'TEXT' must be MUST".
  std::optional<uint64_t> duration(const YAML::Node& n, std::string_view what, uint64_t lo_ns,
                                   uint64_t hi_ns, std::string_view must, uint64_t unit_ns = 1);
  void serviceTags(const YAML::Node& n, Policy& p);
  void infrastructure(const YAML::Node& n, Policy& p);
  void perimeter(const YAML::Node& n, Policy& p);
  void tenants(const YAML::Node& n, Policy& p);
  std::optional<SecurityRule> rule(const YAML::Node& n, std::string_view what);
  void tenant(const YAML::Node& n, Tenant& t);

  Diagnostics& diag_;
  size_t nodes_ = 0;
  bool budget_reported_ = false;
};

std::string listOf(std::span<const std::string_view> names) {
  return join(names, ", ");
}

std::optional<Fields> Loader::fields(const YAML::Node& n, std::string_view what,
                                     std::span<const std::string_view> allowed,
                                     std::span<const std::string_view> required) {
  if (!spend()) return std::nullopt;
  if (!n.IsMap()) {
    diag_.error(locOf(n), strCat(what, " must be a map of fields (", listOf(allowed), ")"));
    return std::nullopt;
  }
  Fields f(n, locOf(n));
  std::unordered_map<std::string, uint32_t> seen;
  for (const Fields::Entry& e : f.entries()) {
    if (!e.key.IsScalar()) {
      diag_.error(locOf(e.key), strCat("field names in ", what, " must be plain words"));
      continue;
    }
    const std::string& k = e.key.Scalar();
    if (auto [it, fresh] = seen.emplace(k, locOf(e.key).line); !fresh) {
      diag_.error(locOf(e.key), strCat("duplicate field '", printable(k), "' in ", what,
                                       " (first given on line ", std::to_string(it->second), ")"));
      continue;
    }
    bool known = false;
    for (std::string_view a : allowed)
      known |= (a == k);
    if (known) continue;
    const std::string_view guess = closestMatch(k, allowed);
    if (!guess.empty()) {
      diag_.error(locOf(e.key), strCat("unknown field '", printable(k), "' in ", what,
                                       "; did you mean '", guess, "'?"));
    } else {
      diag_.error(locOf(e.key), strCat("unknown field '", printable(k), "' in ", what,
                                       "; expected one of: ", listOf(allowed)));
    }
  }
  for (std::string_view r : required) {
    if (!f.get(r).IsDefined()) {
      diag_.error(f.loc(), strCat(what, " is missing required field '", r, "'"));
    }
  }
  return f;
}

std::optional<std::string> Loader::scalar(const YAML::Node& n, std::string_view what) {
  if (!spend()) return std::nullopt;
  if (!n.IsScalar()) {
    diag_.error(locOf(n), strCat(what, " must be a single value, not a ",
                                 n.IsSequence() ? "list"
                                 : n.IsMap()    ? "map"
                                                : "null"));
    return std::nullopt;
  }
  return n.Scalar();
}

std::string Loader::name(const Fields& f, std::string_view what) {
  const YAML::Node n = f.get("name");
  if (!n.IsDefined()) return {};
  auto s = scalar(n, strCat(what, " name"));
  if (!s) return {};
  bool ok = !s->empty() && s->size() <= 80;
  for (char c : *s) {
    ok &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-';
  }
  if (!ok) {
    diag_.error(locOf(n), strCat("bad ", what, " name '", printable(*s),
                                 "'; expected 1-80 letters, digits, '.', '_' or '-'"));
    return {};
  }
  return *s;
}

template <class T>
std::optional<T> Loader::integer(const YAML::Node& n, std::string_view what, int64_t lo,
                                 int64_t hi) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (s->empty() || ec != std::errc() || end != s->data() + s->size()) {
    diag_.error(locOf(n), strCat(what, " '", printable(*s), "' is not a whole number; expected ",
                                 std::to_string(lo), "-", std::to_string(hi)));
    return std::nullopt;
  }
  if (v < lo || v > hi) {
    diag_.error(locOf(n), strCat(what, " ", printable(*s), " out of range; expected ",
                                 std::to_string(lo), "-", std::to_string(hi)));
    return std::nullopt;
  }
  return static_cast<T>(v);
}

std::optional<bool> Loader::boolean(const YAML::Node& n, std::string_view what) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  if (*s == "true") return true;
  if (*s == "false") return false;
  diag_.error(locOf(n), strCat(what, " '", printable(*s), "' must be true or false"));
  return std::nullopt;
}

std::optional<Prefix> Loader::prefix(const YAML::Node& n, std::string_view what) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  auto r = Prefix::parse(*s);
  if (!r) {
    diag_.error(locOf(n),
                strCat("bad prefix '", printable(*s), "' in ", what, ": ", r.error().message));
    return std::nullopt;
  }
  return *r;
}

std::optional<IpAddr> Loader::address(const YAML::Node& n, std::string_view what) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  auto a = IpAddr::parse(*s);
  if (!a) {
    diag_.error(locOf(n), strCat("bad address '", printable(*s), "' in ", what,
                                 "; expected an IPv4 or IPv6 address"));
  }
  return a;
}

std::optional<MacAddr> Loader::mac(const YAML::Node& n, std::string_view what) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  auto m = MacAddr::parse(*s);
  if (!m) {
    diag_.error(locOf(n), strCat("bad MAC address '", printable(*s), "' in ", what,
                                 "; expected six hex pairs like 02:00:00:00:00:01"));
  }
  return m;
}

std::optional<PortRange> Loader::portRange(const YAML::Node& n, std::string_view what) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  if (*s == "*" || *s == "any") return PortRange{};
  const auto dash = s->find('-');
  auto parse = [&](std::string_view t, uint16_t& out) {
    int64_t v = -1;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 0 || v > 65535) {
      return false;
    }
    out = static_cast<uint16_t>(v);
    return true;
  };
  PortRange r;
  const std::string_view text(*s);
  const bool ok = dash == std::string::npos
                      ? parse(text, r.lo) && parse(text, r.hi)
                      : parse(text.substr(0, dash), r.lo) && parse(text.substr(dash + 1), r.hi);
  if (!ok) {
    diag_.error(locOf(n),
                strCat("port '", printable(*s), "' in ", what,
                       " out of range; expected 0-65535, a range like 8000-8080, or '*'"));
    return std::nullopt;
  }
  if (r.lo > r.hi) {
    diag_.error(locOf(n), strCat("port range '", printable(*s), "' in ", what,
                                 " is backwards; write the lower port first"));
    return std::nullopt;
  }
  return r;
}

Ref Loader::ref(const YAML::Node& n, std::string_view what) {
  if (!n.IsDefined()) return {};
  auto s = scalar(n, what);
  return s ? Ref{*s, locOf(n)} : Ref{};
}

template <class E>
std::optional<E> Loader::enumValue(const YAML::Node& n, std::string_view what,
                                   std::initializer_list<std::pair<std::string_view, E>> values) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  std::vector<std::string_view> names;
  for (const auto& [k, v] : values) {
    if (editDistance(k, *s) == 0) return v;  // case-insensitive
    names.push_back(k);
  }
  diag_.error(locOf(n),
              strCat("unknown ", what, " '", printable(*s), "'; expected ", join(names, ", ")));
  return std::nullopt;
}

template <class F>
void Loader::each(const YAML::Node& n, std::string_view what, F&& f) {
  if (!n.IsDefined() || n.IsNull()) return;
  if (n.IsScalar()) {
    f(n);
    return;
  }
  if (!n.IsSequence()) {
    diag_.error(locOf(n), strCat(what, " must be a list"));
    return;
  }
  for (const YAML::Node& item : n) {
    if (!spend() || diag_.saturated()) return;
    f(item);
  }
}

void Loader::requireItems(const YAML::Node& n, std::string_view what, std::string_view item) {
  if (n.IsDefined() && (n.IsNull() || (n.IsSequence() && n.size() == 0))) {
    diag_.error(locOf(n), strCat(what, " must list at least one ", item));
  }
}

std::vector<Prefix> Loader::prefixes(const YAML::Node& n, std::string_view what) {
  requireItems(n, what, "prefix");
  std::vector<Prefix> out;
  each(n, what, [&](const YAML::Node& item) {
    if (auto p = prefix(item, what)) out.push_back(*p);
  });
  return out;
}

std::vector<PortRange> Loader::ports(const YAML::Node& n, std::string_view what) {
  std::vector<PortRange> out;
  each(n, what, [&](const YAML::Node& item) {
    if (auto p = portRange(item, what)) out.push_back(*p);
  });
  for (const PortRange& r : out)
    if (r.any()) return {};  // '*' anywhere means any port
  return out;
}

std::vector<AddressRef> Loader::addresses(const YAML::Node& n, std::string_view what) {
  std::vector<AddressRef> out;
  bool any = false;
  each(n, what, [&](const YAML::Node& item) {
    auto s = scalar(item, what);
    if (!s) return;
    AddressRef a;
    a.loc = locOf(item);
    if (*s == "*" || *s == "any" || *s == "Any") {
      any = true;
      return;
    }
    const char c = s->empty() ? '\0' : (*s)[0];
    const bool looks_numeric = (c >= '0' && c <= '9') || s->find(':') != std::string::npos;
    if (looks_numeric) {
      auto p = prefix(item, what);
      if (!p) return;
      a.kind = AddressRef::Kind::Prefix;
      a.prefix = *p;
    } else {
      a.kind = AddressRef::Kind::Tag;
      a.tag = *s;
    }
    out.push_back(std::move(a));
  });
  if (any) return {};
  return out;
}

std::optional<SecurityRule> Loader::rule(const YAML::Node& n, std::string_view what) {
  auto f = fields(n, what,
                  {"name", "description", "priority", "direction", "access", "protocol", "source",
                   "source_ports", "destination", "destination_ports"},
                  {"name", "priority", "direction", "access"});
  if (!f) return std::nullopt;
  SecurityRule r;
  r.loc = f->loc();
  r.name = name(*f, what);
  if (auto d = f->get("description"); d.IsDefined())
    r.description = scalar(d, "description").value_or("");
  if (auto p = f->get("priority"); p.IsDefined()) {
    r.priority_loc = locOf(p);
    r.priority = integer<uint16_t>(p, "priority", 100, 4096).value_or(0);
  }
  if (auto d = f->get("direction"); d.IsDefined()) {
    r.direction =
        enumValue<Direction>(d, "direction",
                             {{"inbound", Direction::Inbound}, {"outbound", Direction::Outbound}})
            .value_or(Direction::Inbound);
  }
  if (auto a = f->get("access"); a.IsDefined()) {
    r.access = enumValue<Access>(a, "access", {{"allow", Access::Allow}, {"deny", Access::Deny}})
                   .value_or(Access::Deny);
  }
  if (auto p = f->get("protocol"); p.IsDefined()) {
    r.protocol = enumValue<Protocol>(p, "protocol",
                                     {{"any", Protocol::Any},
                                      {"*", Protocol::Any},
                                      {"tcp", Protocol::Tcp},
                                      {"udp", Protocol::Udp},
                                      {"icmp", Protocol::Icmp},
                                      {"icmpv6", Protocol::Icmpv6},
                                      {"esp", Protocol::Esp},
                                      {"ah", Protocol::Ah}})
                     .value_or(Protocol::Any);
  }
  r.sources = addresses(f->get("source"), "source");
  r.destinations = addresses(f->get("destination"), "destination");
  r.source_ports = ports(f->get("source_ports"), "source_ports");
  r.destination_ports = ports(f->get("destination_ports"), "destination_ports");
  return r;
}

void Loader::hosts(const YAML::Node& n, Policy& p) {
  each(n, "hosts", [&](const YAML::Node& item) {
    auto f = fields(item, "host", {"name", "underlay_ip", "snat_ports"}, {"name", "underlay_ip"});
    if (!f) return;
    Host h;
    h.loc = f->loc();
    h.name = name(*f, "host");
    if (auto u = f->get("underlay_ip"); u.IsDefined())
      h.underlay_ip = address(u, "underlay_ip").value_or(IpAddr{});
    if (auto s = f->get("snat_ports"); s.IsDefined()) {
      if (auto r = portRange(s, "snat_ports")) {
        if (r->lo < kSnatPorts.lo || uint32_t{r->hi} - r->lo + 1 < kMinSnatPorts) {
          diag_.error(locOf(s), strCat("snat_ports of host '", h.name, "' must be at least ",
                                       std::to_string(kMinSnatPorts), " ports within ",
                                       std::to_string(kSnatPorts.lo), "-65535"));
        } else {
          h.snat_ports = *r;
        }
      }
    }
    p.hosts.push_back(std::move(h));
  });
}

void Loader::conntrack(const YAML::Node& n, Policy& p) {
  auto f = fields(n, "conntrack",
                  {"capacity", "per_nic_limit", "tcp_tracking", "flow_log_interval",
                   "fragment_timeout", "fragment_datagrams", "fragments_held", "timeouts"});
  if (!f) return;
  ConntrackSettings& c = p.conntrack;
  c.loc = f->loc();
  // A table of 2^25 connections is the flow index's limit (src/flow/flow_table.h).
  if (auto v = f->get("capacity"); v.IsDefined())
    c.capacity = integer<uint32_t>(v, "capacity", 1, (1u << 25) - 1);
  if (auto v = f->get("per_nic_limit"); v.IsDefined())
    c.per_nic_limit = integer<uint32_t>(v, "per_nic_limit", 0, UINT32_MAX);
  if (auto v = f->get("tcp_tracking"); v.IsDefined()) {
    if (auto m = enumValue<bool>(v, "tcp_tracking", {{"strict", false}, {"loose", true}}))
      c.loose = *m;
  }
  if (auto v = f->get("flow_log_interval"); v.IsDefined())
    c.flow_log_interval = integer<uint32_t>(v, "flow_log_interval", 0, 86400);
  if (auto v = f->get("fragment_timeout"); v.IsDefined())
    c.fragment_timeout = integer<uint32_t>(v, "fragment_timeout", 1, 60);
  if (auto v = f->get("fragment_datagrams"); v.IsDefined())
    c.fragment_datagrams = integer<uint32_t>(v, "fragment_datagrams", 0, 1u << 20);
  if (auto v = f->get("fragments_held"); v.IsDefined())
    c.fragments_held = integer<uint32_t>(v, "fragments_held", 0, 1u << 16);
  if (auto t = f->get("timeouts"); t.IsDefined()) {
    const std::span<const std::string_view> names(ConntrackSettings::kTimeoutNames);
    auto tf = fields(t, "timeouts", names, {});
    if (!tf) return;
    // Up to 4,000,000 s (46 days): the table's millisecond clock wraps at 2^32 ms (49.7 days).
    for (std::string_view name : names)
      if (auto v = tf->get(name); v.IsDefined())
        if (auto secs = integer<uint32_t>(v, name, 1, 4'000'000))
          c.timeouts.emplace_back(std::string(name), *secs);
  }
}

void Loader::capture(const YAML::Node& n, Policy& p) {
  auto f = fields(n, "capture", {"file_size", "file_duration", "max_files", "snaplen", "rules"});
  if (!f) return;
  CaptureSettings& c = p.capture;
  c.loc = f->loc();
  if (auto v = f->get("file_size"); v.IsDefined()) {
    if (auto s = scalar(v, "file_size")) {
      auto r = parseSize(*s);
      if (!r || *r < 4096 || *r > (1ull << 40))
        diag_.error(locOf(v), strCat("file_size '", printable(*s),
                                     "' must be a size from 4K to 1T (e.g. 64M)"));
      else
        c.file_size = *r;
    }
  }
  if (auto v = f->get("file_duration"); v.IsDefined())
    if (auto r = duration(v, "file_duration", 1'000'000'000ull, 366 * 86400 * 1'000'000'000ull,
                          "a duration from 1s to 366d (e.g. 1h)"))
      c.file_seconds = *r / 1'000'000'000ull;
  if (auto v = f->get("max_files"); v.IsDefined())
    c.max_files = integer<uint32_t>(v, "max_files", 1, 100000);
  if (auto v = f->get("snaplen"); v.IsDefined())
    c.snaplen = integer<uint32_t>(v, "snaplen", 64, 262144);
  const YAML::Node rules = f->get("rules");
  if (!rules.IsDefined()) return;
  each(rules, "capture rules", [&](const YAML::Node& item) {
    auto rf = fields(item, "capture rule",
                     {"name", "tenant", "nic", "rule", "reason", "decision", "alert", "attack"},
                     {"name"});
    if (!rf) return;
    CaptureRule r;
    r.loc = rf->loc();
    r.name = name(*rf, "capture rule");
    auto text = [&](const char* key, std::string& out) {
      if (auto v = rf->get(key); v.IsDefined())
        if (auto s = scalar(v, key)) out = *s;
    };
    text("tenant", r.tenant);
    text("nic", r.nic);
    text("rule", r.rule);
    text("reason", r.reason);
    if (auto v = rf->get("decision"); v.IsDefined())
      if (auto d = enumValue<CaptureDecision>(v, "decision",
                                              {{"any", CaptureDecision::Any},
                                               {"allow", CaptureDecision::Allow},
                                               {"deny", CaptureDecision::Deny}}))
        r.decision = *d;
    text("attack", r.attack);  // vector names are checked where the capture starts
    if (auto v = rf->get("alert"); v.IsDefined()) {
      if (auto s = scalar(v, "alert")) {
        uint32_t sid = 0;
        const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), sid);
        if (*s == "any")
          r.alert = 0;
        else if (ec == std::errc() && end == s->data() + s->size() && sid > 0)
          r.alert = sid;
        else
          diag_.error(locOf(v), strCat("alert '", printable(*s),
                                       "' must be 'any' or a rule's sid (a positive number)"));
      }
    }
    if (r.reason.empty() && r.rule.empty() && r.nic.empty() && r.tenant.empty() &&
        r.attack.empty() && !r.alert && r.decision == CaptureDecision::Any)
      diag_.warning(r.loc, strCat("capture rule '", r.name,
                                  "' selects every packet (give tenant, nic, rule, reason or "
                                  "decision to narrow it)"));
    p.capture.rules.push_back(std::move(r));
  });
}

void Loader::ids(const YAML::Node& n, Policy& p) {
  auto f = fields(n, "ids",
                  {"mode", "rules", "classification", "settings", "inspect", "overload", "capacity",
                   "max_flows"},
                  {"rules"});
  if (!f) return;
  IdsSettings& d = p.ids;
  d.enabled = true;
  d.loc = f->loc();
  if (auto v = f->get("mode"); v.IsDefined())
    if (auto m = enumValue<IdsMode>(v, "mode", {{"ips", IdsMode::Ips}, {"ids", IdsMode::Ids}}))
      d.mode = *m;
  if (auto v = f->get("overload"); v.IsDefined())
    if (auto m = enumValue<IdsOverload>(
            v, "overload",
            {{"fail-open", IdsOverload::FailOpen}, {"fail-closed", IdsOverload::FailClosed}}))
      d.overload = *m;
  requireItems(f->get("rules"), "rules", "a rules file");
  each(f->get("rules"), "rules", [&](const YAML::Node& item) {
    if (auto s = scalar(item, "rules file")) {
      if (s->empty())
        diag_.error(locOf(item), "a rules file name must not be empty");
      else
        d.rules.push_back(*s);
    }
  });
  if (auto v = f->get("classification"); v.IsDefined())
    if (auto s = scalar(v, "classification")) d.classification = *s;
  if (auto v = f->get("settings"); v.IsDefined()) {
    if (!v.IsMap()) {
      diag_.error(locOf(v),
                  "settings must be a map of Suricata keys to values (stream.midstream: true)");
    } else {
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!spend()) return;
        auto key = scalar(it->first, "setting name");
        auto value = scalar(it->second, "setting value");
        if (key && value) d.settings.emplace_back(*key, *value);
      }
    }
  }
  if (auto v = f->get("inspect"); v.IsDefined()) {
    each(v, "inspect", [&](const YAML::Node& item) {
      auto sf = fields(item, "inspect entry", {"tenant", "nic"});
      if (!sf) return;
      IdsSelector sel;
      sel.loc = sf->loc();
      if (auto t = sf->get("tenant"); t.IsDefined())
        if (auto s = scalar(t, "tenant")) sel.tenant = *s;
      if (auto t = sf->get("nic"); t.IsDefined())
        if (auto s = scalar(t, "nic")) sel.nic = *s;
      if (sel.tenant.empty() == sel.nic.empty())
        diag_.error(sel.loc, "an inspect entry names a tenant or a nic (TENANT/NIC), one of them");
      else
        d.inspect.push_back(std::move(sel));
    });
  }
  if (auto v = f->get("capacity"); v.IsDefined())
    if (auto r = number(v, "capacity", 1e6, 1e12)) d.capacity = static_cast<uint64_t>(*r);
  if (auto v = f->get("max_flows"); v.IsDefined())
    d.max_flows = integer<uint32_t>(v, "max_flows", 1024, 1u << 24);
}

std::optional<double> Loader::number(const YAML::Node& n, std::string_view what, double lo,
                                     double hi) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  // Rates may carry an SI suffix: 10k, 2.5M, 1G.
  std::string text = *s;
  double scale = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        scale = 1e3;
        break;
      case 'M':
        scale = 1e6;
        break;
      case 'G':
        scale = 1e9;
        break;
      default:
        break;
    }
    if (scale != 1) text.pop_back();
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  v *= scale;
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !(v >= lo) ||
      !(v <= hi)) {
    auto fmt = [](double x) {
      char b[32];
      if (x >= 1e9)
        std::snprintf(b, sizeof b, "%gG", x / 1e9);
      else if (x >= 1e6)
        std::snprintf(b, sizeof b, "%gM", x / 1e6);
      else
        std::snprintf(b, sizeof b, "%g", x);
      return std::string(b);
    };
    diag_.error(locOf(n),
                strCat(what, " '", printable(*s), "' must be a number from ", fmt(lo), " to ",
                       fmt(hi), " (k, M and G multiply by a thousand, a million, a billion)"));
    return std::nullopt;
  }
  return v;
}

std::optional<uint64_t> Loader::duration(const YAML::Node& n, std::string_view what, uint64_t lo_ns,
                                         uint64_t hi_ns, std::string_view must, uint64_t unit_ns) {
  auto s = scalar(n, what);
  if (!s) return std::nullopt;
  auto r = parseDuration(*s);
  if (!r || *r < lo_ns || *r > hi_ns || *r % unit_ns != 0) {
    diag_.error(locOf(n), strCat(what, " '", printable(*s), "' must be ", must));
    return std::nullopt;
  }
  return *r;
}

void Loader::ddos(const YAML::Node& n, Policy& p) {
  auto f = fields(n, "ddos", {"profiles", "protect", "webhook"});
  if (!f) return;
  DdosSettings& d = p.ddos;
  d.loc = f->loc();
  if (auto w = f->get("webhook"); w.IsDefined()) {
    if (auto wf =
            fields(w, "webhook", {"url", "timeout", "retries", "ca", "cert", "key"}, {"url"})) {
      if (auto u = wf->get("url"); u.IsDefined()) {
        if (auto s = scalar(u, "url")) {
          const size_t scheme = s->starts_with("https://") ? 8 : s->starts_with("http://") ? 7 : 0;
          if (scheme == 0 || s->size() <= scheme || s->size() > 2000)
            diag_.error(locOf(u), strCat("webhook url '", printable(*s),
                                         "' must be http(s)://HOST[:PORT][/PATH]"));
          else
            d.webhook_url = *s;
        }
      }
      for (auto [key, out] : {std::pair{"ca", &d.webhook_ca}, std::pair{"cert", &d.webhook_cert},
                              std::pair{"key", &d.webhook_key}})
        if (auto v = wf->get(key); v.IsDefined())
          if (auto s = scalar(v, key)) *out = *s;
      if ((d.webhook_cert.empty() != d.webhook_key.empty()) ||
          (!d.webhook_url.starts_with("https://") &&
           !(d.webhook_ca.empty() && d.webhook_cert.empty() && d.webhook_key.empty())))
        diag_.error(wf->loc(),
                    "webhook ca, cert and key are for an https:// url, and cert and "
                    "key go together");
      if (auto t = wf->get("timeout"); t.IsDefined())
        if (auto r = duration(t, "timeout", 100'000'000ull, 600'000'000'000ull,
                              "a duration from 100ms to 600s (e.g. 5s)"))
          d.webhook_timeout_ms = static_cast<uint32_t>(*r / 1'000'000ull);
      if (auto r = wf->get("retries"); r.IsDefined())
        d.webhook_retries = integer<uint32_t>(r, "retries", 0, 20);
    }
  }
  each(f->get("profiles"), "ddos profiles", [&](const YAML::Node& item) {
    auto pf = fields(item, "ddos profile",
                     {"name", "mode", "thresholds", "sensitivity", "multiplier", "learning",
                      "end_after", "end_ratio", "update_interval", "quarantine", "quarantine_pps",
                      "limits", "syn_proxy", "syn_ack_ratio", "syn_ratio_min_pps"},
                     {"name"});
    if (!pf) return;
    DdosProfile pr;
    pr.loc = pf->loc();
    pr.name = name(*pf, "ddos profile");
    if (auto v = pf->get("mode"); v.IsDefined())
      if (auto m = enumValue<DdosMode>(v, "mode",
                                       {{"on-demand", DdosMode::OnDemand},
                                        {"always-on", DdosMode::AlwaysOn},
                                        {"emergency", DdosMode::Emergency}}))
        pr.mode = *m;
    if (auto v = pf->get("quarantine"); v.IsDefined())
      if (auto q = enumValue<DdosQuarantine>(v, "quarantine",
                                             {{"none", DdosQuarantine::None},
                                              {"rate-limit", DdosQuarantine::RateLimit},
                                              {"isolate", DdosQuarantine::Isolate}}))
        pr.quarantine = *q;
    auto seconds = [&](const char* key, std::optional<uint32_t>& out, uint64_t lo, uint64_t hi) {
      if (const YAML::Node v = pf->get(key); v.IsDefined())
        if (auto r = duration(v, key, lo * 1'000'000'000ull, hi * 1'000'000'000ull,
                              strCat("whole seconds from ", std::to_string(lo), "s to ",
                                     std::to_string(hi), "s (e.g. 30s, 5m)"),
                              1'000'000'000ull))
          out = static_cast<uint32_t>(*r / 1'000'000'000ull);
    };
    seconds("learning", pr.learning_s, 0, 86400);
    seconds("end_after", pr.end_after_s, 1, 3600);
    seconds("update_interval", pr.update_s, 1, 3600);
    if (auto v = pf->get("sensitivity"); v.IsDefined())
      pr.sensitivity = number(v, "sensitivity", 0, 100);
    if (auto v = pf->get("multiplier"); v.IsDefined())
      pr.multiplier = number(v, "multiplier", 1, 1000);
    if (auto v = pf->get("end_ratio"); v.IsDefined())
      pr.end_ratio = number(v, "end_ratio", 0.01, 1);
    if (auto v = pf->get("syn_ack_ratio"); v.IsDefined())
      pr.syn_ack_ratio = number(v, "syn_ack_ratio", 0, 1);
    if (auto v = pf->get("syn_ratio_min_pps"); v.IsDefined())
      pr.syn_ratio_min_pps = number(v, "syn_ratio_min_pps", 1, 1e9);
    if (auto v = pf->get("quarantine_pps"); v.IsDefined())
      pr.quarantine_pps = number(v, "quarantine_pps", 1, 1e9);
    if (auto sp = pf->get("syn_proxy"); sp.IsDefined()) {
      auto mode = [&](const YAML::Node& v) {
        if (auto m = enumValue<DdosSynProxy>(v, "syn_proxy mode",
                                             {{"off", DdosSynProxy::Off},
                                              {"on-attack", DdosSynProxy::OnAttack},
                                              {"always", DdosSynProxy::Always}}))
          pr.syn_proxy = *m;
      };
      if (sp.IsScalar()) {
        mode(sp);
      } else if (auto sf = fields(sp, "syn_proxy", {"mode", "mss", "wscale"})) {
        if (auto v = sf->get("mode"); v.IsDefined()) mode(v);
        if (auto v = sf->get("mss"); v.IsDefined())
          pr.proxy_mss = integer<uint16_t>(v, "mss", 536, 9000);
        if (auto v = sf->get("wscale"); v.IsDefined())
          if (auto w = integer<uint32_t>(v, "wscale", 0, 14))
            pr.proxy_wscale = static_cast<uint8_t>(*w);
      }
    }
    if (auto l = pf->get("limits"); l.IsDefined()) {
      if (auto lf =
              fields(l, "limits",
                     {"source_pps", "source_bps", "target_pps", "target_bps", "source_connections",
                      "source_half_open", "source_cps", "target_connections", "target_half_open",
                      "target_cps", "nic_pps", "nic_bps"})) {
        auto rate = [&](const char* key, std::optional<double>& out, double hi) {
          if (auto x = lf->get(key); x.IsDefined()) out = number(x, key, 0, hi);
        };
        rate("source_pps", pr.source_pps, 1e10);
        rate("source_bps", pr.source_bps, 1e13);
        rate("target_pps", pr.target_pps, 1e10);
        rate("target_bps", pr.target_bps, 1e13);
        rate("source_connections", pr.source_connections, 1e8);
        rate("source_half_open", pr.source_half_open, 1e8);
        rate("source_cps", pr.source_cps, 1e9);
        rate("target_connections", pr.target_connections, 1e8);
        rate("target_half_open", pr.target_half_open, 1e8);
        rate("target_cps", pr.target_cps, 1e9);
        rate("nic_pps", pr.nic_pps, 1e10);
        rate("nic_bps", pr.nic_bps, 1e13);
      }
    }
    if (auto t = pf->get("thresholds"); t.IsDefined()) {
      static constexpr std::string_view kClasses[] = {
          "syn", "synack", "ack_rst", "udp", "amplification", "icmp", "fragment", "other"};
      auto tf = fields(t, "thresholds", kClasses, {});
      if (tf) {
        for (std::string_view cls : kClasses) {
          const YAML::Node v = tf->get(cls);
          if (!v.IsDefined()) continue;
          auto cf = fields(v, strCat("threshold ", cls), {"pps", "bps"});
          if (!cf) continue;
          DdosThreshold th;
          th.vector_class = std::string(cls);
          th.loc = cf->loc();
          if (auto x = cf->get("pps"); x.IsDefined()) th.pps = number(x, "pps", 0, 1e10);
          if (auto x = cf->get("bps"); x.IsDefined()) th.bps = number(x, "bps", 0, 1e13);
          pr.thresholds.push_back(std::move(th));
        }
      }
    }
    d.profiles.push_back(std::move(pr));
  });
  each(f->get("protect"), "ddos protect", [&](const YAML::Node& item) {
    auto pf =
        fields(item, "ddos protect entry", {"name", "prefixes", "profile"}, {"name", "prefixes"});
    if (!pf) return;
    DdosProtect pr;
    pr.loc = pf->loc();
    pr.name = name(*pf, "ddos protect entry");
    pr.prefixes = prefixes(pf->get("prefixes"), "prefixes");
    if (auto v = pf->get("profile"); v.IsDefined()) pr.profile = ref(v, "profile");
    d.protect.push_back(std::move(pr));
  });
}

void Loader::serviceTags(const YAML::Node& n, Policy& p) {
  each(n, "service_tags", [&](const YAML::Node& item) {
    auto f = fields(item, "service tag", {"name", "prefixes"}, {"name", "prefixes"});
    if (!f) return;
    ServiceTag t;
    t.loc = f->loc();
    t.name = name(*f, "service tag");
    t.prefixes = prefixes(f->get("prefixes"), "prefixes");
    p.service_tags.push_back(std::move(t));
  });
}

void Loader::infrastructure(const YAML::Node& n, Policy& p) {
  auto f = fields(n, "infrastructure", {"segments", "endpoints"});
  if (!f) return;
  each(f->get("segments"), "segments", [&](const YAML::Node& item) {
    auto s = fields(item, "infrastructure segment", {"name", "kind", "prefixes"},
                    {"name", "kind", "prefixes"});
    if (!s) return;
    InfraSegment seg;
    seg.loc = s->loc();
    seg.name = name(*s, "infrastructure segment");
    if (auto k = s->get("kind"); k.IsDefined()) {
      seg.kind = enumValue<SegmentKind>(k, "segment kind",
                                        {{"management", SegmentKind::Management},
                                         {"storage", SegmentKind::Storage},
                                         {"migration", SegmentKind::Migration},
                                         {"fabric", SegmentKind::Fabric}})
                     .value_or(SegmentKind::Management);
    }
    seg.prefixes = prefixes(s->get("prefixes"), "prefixes");
    p.segments.push_back(std::move(seg));
  });
  each(f->get("endpoints"), "endpoints", [&](const YAML::Node& item) {
    auto e = fields(item, "infrastructure endpoint", {"name", "service", "ip", "protocol", "ports"},
                    {"name", "service", "ip", "protocol", "ports"});
    if (!e) return;
    InfraEndpoint ep;
    ep.loc = e->loc();
    ep.name = name(*e, "infrastructure endpoint");
    if (auto s = e->get("service"); s.IsDefined()) {
      ep.service = enumValue<InfraService>(s, "service",
                                           {{"dns", InfraService::Dns},
                                            {"metadata", InfraService::Metadata},
                                            {"ntp", InfraService::Ntp},
                                            {"health_probe", InfraService::HealthProbe},
                                            {"other", InfraService::Other}})
                       .value_or(InfraService::Other);
    }
    if (auto a = e->get("ip"); a.IsDefined()) ep.ip = address(a, "ip").value_or(IpAddr{});
    if (auto pr = e->get("protocol"); pr.IsDefined()) {
      ep.protocol =
          enumValue<Protocol>(pr, "protocol", {{"tcp", Protocol::Tcp}, {"udp", Protocol::Udp}})
              .value_or(Protocol::Udp);
    }
    ep.ports = ports(e->get("ports"), "ports");
    p.infra_endpoints.push_back(std::move(ep));
  });
}

void Loader::perimeter(const YAML::Node& n, Policy& p) {
  auto f = fields(n, "perimeter", {"rules"});
  if (!f) return;
  each(f->get("rules"), "perimeter rules", [&](const YAML::Node& item) {
    if (auto r = rule(item, "perimeter rule")) p.perimeter.push_back(std::move(*r));
  });
}

void Loader::tenants(const YAML::Node& n, Policy& p) {
  each(n, "tenants", [&](const YAML::Node& item) {
    Tenant t;
    tenant(item, t);
    if (!t.name.empty()) p.tenants.push_back(std::move(t));
  });
}

void Loader::tenant(const YAML::Node& n, Tenant& t) {
  auto f =
      fields(n, "tenant", {"name", "vnets", "deployments", "nics", "endpoints", "security_groups"},
             {"name"});
  if (!f) return;
  t.loc = f->loc();
  t.name = name(*f, "tenant");

  each(f->get("vnets"), "vnets", [&](const YAML::Node& item) {
    auto v =
        fields(item, "vnet", {"name", "vni", "address_space", "subnets", "peerings", "dns_servers"},
               {"name", "vni", "address_space"});
    if (!v) return;
    VNet vn;
    vn.loc = v->loc();
    vn.name = name(*v, "vnet");
    if (auto x = v->get("vni"); x.IsDefined()) {
      vn.vni_loc = locOf(x);
      vn.vni = integer<uint32_t>(x, "vni", 1, 16777215).value_or(0);
    }
    vn.address_space = prefixes(v->get("address_space"), "address_space");
    each(v->get("dns_servers"), "dns_servers", [&](const YAML::Node& d) {
      if (auto a = address(d, "dns_servers")) vn.dns_servers.push_back(*a);
    });
    each(v->get("peerings"), "peerings", [&](const YAML::Node& d) {
      if (Ref r = ref(d, "peering"); !r.empty()) vn.peerings.push_back(std::move(r));
    });
    each(v->get("subnets"), "subnets", [&](const YAML::Node& s) {
      auto sf = fields(s, "subnet", {"name", "prefixes", "security_group"}, {"name", "prefixes"});
      if (!sf) return;
      Subnet sn;
      sn.loc = sf->loc();
      sn.name = name(*sf, "subnet");
      sn.prefixes = prefixes(sf->get("prefixes"), "prefixes");
      sn.security_group = ref(sf->get("security_group"), "security_group");
      vn.subnets.push_back(std::move(sn));
    });
    t.vnets.push_back(std::move(vn));
  });

  each(f->get("deployments"), "deployments", [&](const YAML::Node& item) {
    auto d = fields(item, "deployment", {"name", "vip", "vnet"}, {"name", "vip"});
    if (!d) return;
    Deployment dep;
    dep.loc = d->loc();
    dep.name = name(*d, "deployment");
    requireItems(d->get("vip"), "vip", "address");
    each(d->get("vip"), "vip", [&](const YAML::Node& a) {
      if (auto ip = address(a, "vip")) {
        dep.vips.push_back(*ip);
        dep.vip_locs.push_back(locOf(a));
      }
    });
    dep.vnet = ref(d->get("vnet"), "vnet");
    t.deployments.push_back(std::move(dep));
  });

  each(f->get("nics"), "nics", [&](const YAML::Node& item) {
    auto nf = fields(item, "nic",
                     {"name", "mac", "ips", "subnet", "deployment", "host", "security_group",
                      "allowed_address_pairs"},
                     {"name", "mac", "ips", "subnet"});
    if (!nf) return;
    Nic nic;
    nic.loc = nf->loc();
    nic.name = name(*nf, "nic");
    if (auto m = nf->get("mac"); m.IsDefined()) {
      if (auto parsed = mac(m, "mac")) {
        nic.mac = *parsed;
        nic.mac_loc = locOf(m);  // set only when the MAC loaded: validation checks those
      }
    }
    requireItems(nf->get("ips"), "ips", "address");
    each(nf->get("ips"), "ips", [&](const YAML::Node& a) {
      if (auto ip = address(a, "ips")) {
        nic.ips.push_back(*ip);
        nic.ip_locs.push_back(locOf(a));
      }
    });
    nic.subnet = ref(nf->get("subnet"), "subnet");
    nic.deployment = ref(nf->get("deployment"), "deployment");
    nic.host = ref(nf->get("host"), "host");
    nic.security_group = ref(nf->get("security_group"), "security_group");
    each(nf->get("allowed_address_pairs"), "allowed_address_pairs", [&](const YAML::Node& a) {
      auto af = fields(a, "allowed address pair", {"prefix", "mac"}, {"prefix"});
      if (!af) return;
      AddressPair pair;
      pair.loc = af->loc();
      if (auto x = af->get("prefix"); x.IsDefined()) {
        pair.prefix = prefix(x, "allowed address pair").value_or(Prefix{});
      }
      if (auto x = af->get("mac"); x.IsDefined()) pair.mac = mac(x, "allowed address pair");
      nic.allowed_address_pairs.push_back(pair);
    });
    t.nics.push_back(std::move(nic));
  });

  each(f->get("endpoints"), "endpoints", [&](const YAML::Node& item) {
    auto ef = fields(item, "endpoint",
                     {"name", "deployment", "protocol", "public_port", "nic", "private_port",
                      "management", "acl"},
                     {"name", "deployment", "protocol", "public_port", "nic", "private_port"});
    if (!ef) return;
    Endpoint ep;
    ep.loc = ef->loc();
    ep.name = name(*ef, "endpoint");
    ep.deployment = ref(ef->get("deployment"), "deployment");
    ep.nic = ref(ef->get("nic"), "nic");
    if (auto x = ef->get("protocol"); x.IsDefined()) {
      ep.protocol = enumValue<Protocol>(x, "endpoint protocol",
                                        {{"tcp", Protocol::Tcp}, {"udp", Protocol::Udp}})
                        .value_or(Protocol::Tcp);
    }
    if (auto x = ef->get("public_port"); x.IsDefined()) {
      ep.public_port_loc = locOf(x);
      if (x.IsScalar() && x.Scalar() == "random") {
        ep.random_public_port = true;
      } else {
        ep.public_port = integer<uint16_t>(x, "public_port", 1, 65535).value_or(0);
      }
    }
    if (auto x = ef->get("private_port"); x.IsDefined()) {
      ep.private_port = integer<uint16_t>(x, "private_port", 1, 65535).value_or(0);
    }
    if (auto x = ef->get("management"); x.IsDefined()) {
      ep.management = boolean(x, "management").value_or(false);
    }
    each(ef->get("acl"), "acl", [&](const YAML::Node& a) {
      auto af = fields(a, "ACL rule", {"order", "action", "remote", "description"},
                       {"order", "action", "remote"});
      if (!af) return;
      AclRule r;
      r.loc = af->loc();
      if (auto x = af->get("order"); x.IsDefined()) {
        r.order = integer<uint32_t>(x, "order", 0, 65535).value_or(0);
      }
      if (auto x = af->get("action"); x.IsDefined()) {
        r.action = enumValue<AclAction>(x, "ACL action",
                                        {{"permit", AclAction::Permit}, {"deny", AclAction::Deny}})
                       .value_or(AclAction::Deny);
      }
      if (auto x = af->get("remote"); x.IsDefined()) {
        r.remote = prefix(x, "ACL remote").value_or(Prefix{});
      }
      if (auto x = af->get("description"); x.IsDefined()) {
        r.description = scalar(x, "description").value_or("");
      }
      ep.acl.push_back(std::move(r));
    });
    t.endpoints.push_back(std::move(ep));
  });

  each(f->get("security_groups"), "security_groups", [&](const YAML::Node& item) {
    auto gf = fields(item, "security group", {"name", "rules"}, {"name"});
    if (!gf) return;
    SecurityGroup g;
    g.loc = gf->loc();
    g.name = name(*gf, "security group");
    each(gf->get("rules"), "rules", [&](const YAML::Node& r) {
      if (auto sr = rule(r, "security rule")) g.rules.push_back(std::move(*sr));
    });
    t.security_groups.push_back(std::move(g));
  });
}

// Top-level sections. A later capability adds its section with one line here.
struct Section {
  std::string_view key;
  void (Loader::*parse)(const YAML::Node&, Policy&);
};

void Loader::load(const YAML::Node& root, Policy& p) {
  static const Section kSections[] = {
      {"conntrack", &Loader::conntrack},
      {"hosts", &Loader::hosts},
      {"capture", &Loader::capture},
      {"ddos", &Loader::ddos},
      {"ids", &Loader::ids},
      {"service_tags", &Loader::serviceTags},
      {"infrastructure", &Loader::infrastructure},
      {"perimeter", &Loader::perimeter},
      {"tenants", &Loader::tenants},
  };
  static const std::vector<std::string_view> kTopLevel = [] {
    std::vector<std::string_view> keys{"version"};
    for (const Section& s : kSections)
      keys.push_back(s.key);
    return keys;
  }();
  static constexpr std::string_view kRequired[] = {"version"};
  auto f = fields(root, "policy", kTopLevel, kRequired);
  if (!f) return;
  if (auto v = f->get("version"); v.IsDefined()) {
    p.version = integer<uint32_t>(v, "version", 1, 1).value_or(0);
  }
  for (const Section& s : kSections) {
    if (YAML::Node n = f->get(s.key); n.IsDefined() && !n.IsNull()) (this->*s.parse)(n, p);
  }
}

}  // namespace

LoadResult loadPolicyText(std::string_view text, const std::string& name) {
  LoadResult result{std::nullopt, Diagnostics(name)};
  Diagnostics& diag = result.diagnostics;
  if (text.size() > kMaxPolicyBytes) {
    diag.error({}, strCat("policy is larger than ", std::to_string(kMaxPolicyBytes >> 20), " MiB"));
    return result;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    const SourceLoc loc = e.mark.is_null() ? SourceLoc{}
                                           : SourceLoc{static_cast<uint32_t>(e.mark.line + 1),
                                                       static_cast<uint32_t>(e.mark.column + 1)};
    diag.error(loc, strCat("YAML syntax: ", e.msg));
    return result;
  }
  if (!root.IsDefined() || root.IsNull()) {
    diag.error({}, "policy is empty; expected a map with at least 'version: 1'");
    return result;
  }
  Policy p;
  p.source = name;
  try {
    Loader loader(diag);
    loader.load(root, p);
    if (loader.exhausted()) return result;  // a truncated model is not worth validating
  } catch (const YAML::Exception& e) {
    diag.error({}, strCat("YAML structure: ", e.msg));
    return result;
  }
  // Validate even after field errors, so one run shows every problem; the
  // checks skip values that failed to load rather than report them twice.
  validatePolicy(p, diag);
  if (!diag.hasErrors()) result.policy = std::move(p);
  return result;
}

LoadResult loadPolicyFile(const std::string& path) {
  auto text = readFile(path, 256 << 20);
  if (!text) {
    LoadResult r{std::nullopt, Diagnostics(path)};
    r.diagnostics.error({}, text.error().message);
    return r;
  }
  return loadPolicyText(*text, path);
}

}  // namespace palisade::policy
