#include "gateway/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <functional>
#include <set>

#include "core/file.h"
#include "core/strings.h"
#include "events/crypto.h"
#include "shipping/tls.h"

namespace palisade::gateway {
namespace {

using policy::Diagnostics;
using policy::SourceLoc;
using Names = std::initializer_list<std::string_view>;

constexpr size_t kMaxNodes = 200000;  // alias bombs stop here

class Reader {
 public:
  Reader(Diagnostics& d, std::string base_dir) : d_(d), base_(std::move(base_dir)) {}

  static SourceLoc loc(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return {};
    return {static_cast<uint32_t>(m.line + 1), static_cast<uint32_t>(m.column + 1)};
  }
  void error(const YAML::Node& n, std::string msg) { d_.error(loc(n), std::move(msg)); }

  bool spend() {
    if (++nodes_ <= kMaxNodes) return true;
    if (!exhausted_) d_.error({}, "configuration expands to too many YAML nodes (aliases?)");
    exhausted_ = true;
    return false;
  }

  // A map whose keys are all in `allowed` and which has every `required` key.
  bool map(const YAML::Node& n, std::string_view what, Names allowed, Names required = {}) {
    if (!spend()) return false;
    if (!n.IsMap()) {
      error(n, strCat(what, " must be a map of fields"));
      return false;
    }
    std::set<std::string> seen;
    const std::vector<std::string_view> names(allowed.begin(), allowed.end());
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!spend()) return false;
      if (!it->first.IsScalar()) {
        error(it->first, strCat("field names in ", what, " must be plain words"));
        continue;
      }
      const std::string& key = it->first.Scalar();
      if (!seen.insert(key).second)
        error(it->first, strCat(what, ": field '", key, "' given twice"));
      bool known = false;
      for (std::string_view a : names)
        known = known || a == key;
      if (!known) {
        const std::string_view near = closestMatch(key, names);
        error(it->first, strCat(what, ": unknown field '", printable(key), "'",
                                near.empty() ? "" : strCat(" (did you mean '", near, "'?)")));
      }
    }
    for (std::string_view r : required)
      if (!seen.count(std::string(r))) error(n, strCat(what, ": missing field '", r, "'"));
    return true;
  }

  std::optional<std::string> str(const YAML::Node& n, std::string_view what) {
    if (!spend()) return std::nullopt;
    if (!n.IsScalar() || n.Scalar().empty()) {
      error(n, strCat(what, " must be a non-empty string"));
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<uint64_t> integer(const YAML::Node& n, std::string_view what, uint64_t lo,
                                  uint64_t hi) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    uint64_t v = 0;
    auto r = std::from_chars(s->data(), s->data() + s->size(), v);
    if (r.ec != std::errc() || r.ptr != s->data() + s->size() || v < lo || v > hi) {
      error(n, strCat(what, " '", printable(*s), "' must be a whole number from ",
                      std::to_string(lo), " to ", std::to_string(hi)));
      return std::nullopt;
    }
    return v;
  }

  std::optional<uint64_t> size(const YAML::Node& n, std::string_view what, uint64_t lo,
                               uint64_t hi) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    auto r = parseSize(*s);
    if (!r || *r < lo || *r > hi) {
      error(n, strCat(what, " '", printable(*s), "' must be a size from ", std::to_string(lo),
                      " to ", std::to_string(hi), " bytes (e.g. 64K, 1M)"));
      return std::nullopt;
    }
    return *r;
  }

  std::optional<TimeNs> duration(const YAML::Node& n, std::string_view what, TimeNs lo, TimeNs hi) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    auto r = parseDuration(*s);
    if (!r || *r < lo || *r > hi) {
      error(n, strCat(what, " '", printable(*s), "' must be a duration from ",
                      std::to_string(lo / 1'000'000), "ms to ", std::to_string(hi / 1'000'000'000),
                      "s (e.g. 500ms, 10s)"));
      return std::nullopt;
    }
    return *r;
  }

  std::optional<bool> boolean(const YAML::Node& n, std::string_view what) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "yes") return true;
    if (*s == "false" || *s == "no") return false;
    error(n, strCat(what, " must be true or false"));
    return std::nullopt;
  }

  // map[key], when present and valid, into `field` (an error otherwise).
  template <class T>
  void integerField(const YAML::Node& map, const char* key, T& field, uint64_t lo, uint64_t hi) {
    if (const YAML::Node v = map[key])
      if (auto x = integer(v, key, lo, hi)) field = static_cast<T>(*x);
  }
  template <class T>
  void sizeField(const YAML::Node& map, const char* key, T& field, uint64_t lo, uint64_t hi) {
    if (const YAML::Node v = map[key])
      if (auto x = size(v, key, lo, hi)) field = static_cast<T>(*x);
  }
  void durationField(const YAML::Node& map, const char* key, TimeNs& field, TimeNs lo, TimeNs hi) {
    if (const YAML::Node v = map[key])
      if (auto x = duration(v, key, lo, hi)) field = *x;
  }

  // A list of scalars (a single scalar counts as a list of one).
  std::vector<std::string> strings(const YAML::Node& n, std::string_view what) {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      if (auto s = str(n, what)) out.push_back(*s);
    } else if (n.IsSequence()) {
      for (const YAML::Node& item : n) {
        if (!spend()) break;
        if (auto s = str(item, what)) out.push_back(*s);
      }
    } else {
      error(n, strCat(what, " must be a list"));
    }
    return out;
  }

  template <class F>
  void each(const YAML::Node& n, std::string_view what, F&& f) {
    if (!n.IsSequence()) {
      error(n, strCat(what, " must be a list"));
      return;
    }
    for (const YAML::Node& item : n) {
      if (!spend()) return;
      f(item);
    }
  }

  std::string path(const std::string& p) const {
    if (p.empty() || p.front() == '/' || base_.empty()) return p;
    return strCat(base_, "/", p);
  }

 private:
  Diagnostics& d_;
  std::string base_;
  size_t nodes_ = 0;
  bool exhausted_ = false;
};

void readListener(Reader& r, const YAML::Node& n, GatewayConfig& c) {
  if (!r.map(n, "listener", {"address", "health", "cert", "key", "client_ca", "client_cert"},
             {"address"}))
    return;
  Listener l;
  if (auto a = r.str(n["address"], "listener address")) {
    auto hp = shipping::parseHostPort(*a, /*allow_port_zero=*/true);  // 0: any free port
    if (!hp) {
      r.error(n["address"], strCat("listener address: ", hp.error().message));
    } else {
      l.address = *a;
      l.host = hp->first;
      l.port = hp->second;
    }
  }
  if (n["health"]) l.health = r.boolean(n["health"], "health").value_or(false);
  if (n["cert"]) l.cert = r.path(r.str(n["cert"], "cert").value_or(""));
  if (n["key"]) l.key = r.path(r.str(n["key"], "key").value_or(""));
  if (n["client_ca"]) l.client_ca = r.path(r.str(n["client_ca"], "client_ca").value_or(""));
  if (n["client_cert"]) {
    const std::string v = r.str(n["client_cert"], "client_cert").value_or("");
    if (v == "optional")
      l.client_cert = ClientCert::Optional;
    else if (v == "required")
      l.client_cert = ClientCert::Required;
    else if (v == "none")
      l.client_cert = ClientCert::None;
    else
      r.error(n["client_cert"], "client_cert must be none, optional or required");
  } else if (!l.client_ca.empty()) {
    l.client_cert = ClientCert::Optional;
  }
  if (l.health) {
    if (!l.cert.empty() || !l.key.empty() || !l.client_ca.empty())
      r.error(n, strCat("listener ", l.address,
                        ": a health port is plaintext; it takes no cert, "
                        "key or client_ca"));
  } else if (l.cert.empty() || l.key.empty()) {
    r.error(n, strCat("listener ", l.address,
                      ": needs cert and key (TLS); a plaintext listener is only allowed as a "
                      "health port (health: true), which serves /healthz and /metrics only"));
  }
  if (l.client_cert != ClientCert::None && l.client_ca.empty())
    r.error(n, strCat("listener ", l.address, ": client_cert needs client_ca"));
  c.listeners.push_back(std::move(l));
}

void readUpstream(Reader& r, const YAML::Node& n, GatewayConfig& c) {
  if (!r.map(n, "upstream", {"name", "hosts", "pool", "retries", "health_check", "outlier"},
             {"name", "hosts"}))
    return;
  Upstream u;
  u.name = r.str(n["name"], "upstream name").value_or("");
  for (const std::string& h : r.strings(n["hosts"], "upstream host")) {
    auto hp = shipping::parseHostPort(h);
    if (!hp) {
      r.error(n["hosts"], strCat("upstream ", u.name, ": ", hp.error().message));
      continue;
    }
    u.hosts.push_back({hp->first, hp->second, h});
  }
  if (u.hosts.empty()) r.error(n, strCat("upstream ", u.name, ": needs at least one host"));
  r.integerField(n, "pool", u.pool, 0, 4096);
  constexpr TimeNs kMs = 1'000'000ull, kHour = 3600'000'000'000ull;
  auto percent = [&](const YAML::Node& v, const char* what, double fallback) {
    auto s = r.str(v, what);
    if (!s) return fallback;
    std::string_view t = *s;
    if (t.ends_with("%")) t.remove_suffix(1);
    double x = -1;
    auto res = std::from_chars(t.data(), t.data() + t.size(), x);
    if (res.ec != std::errc() || res.ptr != t.data() + t.size() || x < 0 || x > 100) {
      r.error(v, strCat(what, " '", printable(*s), "' must be a percentage from 0% to 100%"));
      return fallback;
    }
    return x / 100;
  };
  if (const YAML::Node rt = n["retries"]) {
    if (r.map(rt, "retries", {"attempts", "backoff", "budget", "min_retries"})) {
      RetryPolicy& p = u.retries;
      r.integerField(rt, "attempts", p.attempts, 0, 10);
      r.durationField(rt, "backoff", p.backoff, kMs, 60'000 * kMs);
      if (rt["budget"]) p.budget = percent(rt["budget"], "budget", p.budget);
      r.integerField(rt, "min_retries", p.min_retries, 0, 1000);
    }
  }
  if (const YAML::Node h = n["health_check"]) {
    if (r.map(h, "health_check", {"path", "interval", "timeout", "healthy", "unhealthy"},
              {"path"})) {
      HealthCheck& p = u.health;
      p.path = r.str(h["path"], "path").value_or("");
      if (!p.path.empty() && p.path.front() != '/')
        r.error(h["path"], strCat("upstream ", u.name, ": health_check path must start with '/'"));
      for (char ch : p.path)
        if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
          r.error(h["path"],
                  strCat("upstream ", u.name, ": health_check path has a space or control byte"));
      r.durationField(h, "interval", p.interval, 100 * kMs, kHour);
      r.durationField(h, "timeout", p.timeout, 10 * kMs, 60'000 * kMs);
      r.integerField(h, "healthy", p.healthy, 1, 100);
      r.integerField(h, "unhealthy", p.unhealthy, 1, 100);
      if (p.timeout >= p.interval)
        r.error(h,
                strCat("upstream ", u.name, ": health_check timeout must be under its interval"));
    }
  }
  if (const YAML::Node o = n["outlier"]) {
    if (o.IsScalar() && o.Scalar() == "off") {
      u.outlier.failures = 0;
    } else if (r.map(o, "outlier", {"failures", "ejection", "max_ejected"})) {
      OutlierPolicy& p = u.outlier;
      r.integerField(o, "failures", p.failures, 1, 1000);
      r.durationField(o, "ejection", p.ejection, 100 * kMs, kHour);
      if (o["max_ejected"]) p.max_ejected = percent(o["max_ejected"], "max_ejected", p.max_ejected);
    }
  }
  for (const Upstream& o : c.upstreams)
    if (o.name == u.name) r.error(n, strCat("upstream '", u.name, "' is defined twice"));
  c.upstreams.push_back(std::move(u));
}

void readCredentials(Reader& r, const YAML::Node& n, GatewayConfig& c) {
  if (!r.map(n, "credentials",
             {"api_key_header", "api_keys", "certificates", "revoked", "revoked_file", "jwt"}))
    return;
  Credentials& cr = c.credentials;
  if (n["api_key_header"]) {
    cr.api_key_header = r.str(n["api_key_header"], "api_key_header").value_or("x-api-key");
    for (char& ch : cr.api_key_header)
      ch = asciiLower(ch);
  }
  std::set<std::string> ids;
  if (n["api_keys"]) {
    r.each(n["api_keys"], "api_keys", [&](const YAML::Node& k) {
      if (!r.map(k, "api key", {"id", "sha256", "roles"}, {"id", "sha256"})) return;
      ApiKey key;
      key.id = r.str(k["id"], "api key id").value_or("");
      if (auto h = r.str(k["sha256"], "sha256")) {
        if (!events::fromHex(*h, key.sha256.data(), key.sha256.size()))
          r.error(k["sha256"],
                  strCat("api key ", key.id,
                         ": sha256 must be 64 hex digits (palisade gateway --hash-key)"));
      }
      if (k["roles"]) key.roles = r.strings(k["roles"], "role");
      if (!ids.insert(key.id).second)
        r.error(k, strCat("identity '", key.id, "' is defined twice"));
      cr.api_keys.push_back(std::move(key));
    });
  }
  if (n["certificates"]) {
    r.each(n["certificates"], "certificates", [&](const YAML::Node& k) {
      if (!r.map(k, "certificate", {"subject", "roles"}, {"subject"})) return;
      CertIdentity ci;
      ci.subject = r.str(k["subject"], "subject").value_or("");
      if (k["roles"]) ci.roles = r.strings(k["roles"], "role");
      if (!ids.insert(ci.subject).second)
        r.error(k, strCat("identity '", ci.subject, "' is defined twice"));
      cr.certificates.push_back(std::move(ci));
    });
  }
  if (const YAML::Node j = n["jwt"]) {
    if (r.map(j, "jwt", {"keys", "issuer", "audience", "leeway", "roles_claim", "identity_claim"},
              {"keys"})) {
      cr.jwt_keys = r.path(r.str(j["keys"], "jwt keys").value_or(""));
      if (j["issuer"]) cr.jwt.issuer = r.str(j["issuer"], "issuer").value_or("");
      if (j["audience"]) cr.jwt.audiences = r.strings(j["audience"], "audience");
      TimeNs leeway = static_cast<TimeNs>(cr.jwt.leeway_s) * 1'000'000'000ull;
      r.durationField(j, "leeway", leeway, 0, 3600'000'000'000ull);
      cr.jwt.leeway_s = static_cast<int64_t>(leeway / 1'000'000'000ull);
      if (j["roles_claim"])
        cr.jwt.roles_claim = r.str(j["roles_claim"], "roles_claim").value_or("scope");
      if (j["identity_claim"])
        cr.jwt.identity_claim = r.str(j["identity_claim"], "identity_claim").value_or("sub");
    }
  }
  if (n["revoked"]) cr.revoked = r.strings(n["revoked"], "revoked identity");
  if (n["revoked_file"])
    cr.revoked_file = r.path(r.str(n["revoked_file"], "revoked_file").value_or(""));
}

void readRateLimit(Reader& r, const YAML::Node& n, Route& rt) {
  if (!r.map(n, "rate_limit", {"client", "ip", "burst"})) return;
  auto rate = [&](const char* field, RateLimit& out) {
    if (!n[field]) return;
    auto s = r.str(n[field], field);
    if (!s) return;
    auto v = parseRate(*s);
    if (!v)
      r.error(n[field], strCat("rate_limit ", field, ": ", v.error().message));
    else
      out.rate = *v;
  };
  rate("client", rt.per_client);
  rate("ip", rt.per_ip);
  double burst = 0;
  r.integerField(n, "burst", burst, 1, 1'000'000);
  // Without a burst, a bucket holds one second of its rate (at least one request).
  for (RateLimit* l : {&rt.per_client, &rt.per_ip})
    if (l->rate > 0) l->burst = burst > 0 ? burst : std::max(1.0, l->rate);
}

void readRoute(Reader& r, const YAML::Node& n, GatewayConfig& c) {
  if (!r.map(n, "route",
             {"name", "host", "path", "methods", "upstream", "auth", "roles", "allow", "deny",
              "rate_limit", "max_body", "json", "xml", "waf"},
             {"name", "upstream"}))
    return;
  Route rt;
  rt.loc = Reader::loc(n);
  rt.name = r.str(n["name"], "route name").value_or("");
  for (const Route& o : c.routes)
    if (o.name == rt.name) r.error(n["name"], strCat("route '", rt.name, "' is defined twice"));
  const std::string what = strCat("route ", rt.name);
  if (n["host"]) {
    rt.host = r.str(n["host"], "host").value_or("");
    for (char& ch : rt.host)
      ch = asciiLower(ch);
  }
  if (n["path"]) {
    rt.path = r.str(n["path"], "path").value_or("/");
    if (rt.path.front() != '/') r.error(n["path"], strCat(what, ": path must start with '/'"));
  }
  if (n["methods"]) {
    rt.methods = r.strings(n["methods"], "method");
    for (std::string& m : rt.methods)
      for (char& ch : m)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  if (auto u = r.str(n["upstream"], "upstream")) {
    std::vector<std::string_view> names;
    bool found = false;
    for (size_t i = 0; i < c.upstreams.size(); ++i) {
      names.push_back(c.upstreams[i].name);
      if (c.upstreams[i].name == *u) {
        rt.upstream = i;
        found = true;
      }
    }
    if (!found) {
      const std::string_view near = closestMatch(*u, names);
      r.error(n["upstream"], strCat(what, ": no upstream named '", printable(*u), "'",
                                    near.empty() ? "" : strCat(" (did you mean '", near, "'?)")));
    }
  }
  if (n["auth"]) {
    for (const std::string& a : r.strings(n["auth"], "auth method")) {
      if (a == "api_key")
        rt.auth.push_back(AuthMethod::ApiKey);
      else if (a == "mtls")
        rt.auth.push_back(AuthMethod::Mtls);
      else if (a == "none")
        continue;
      else if (a == "jwt")
        rt.auth.push_back(AuthMethod::Jwt);
      else
        r.error(n["auth"], strCat(what, ": auth method '", printable(a),
                                  "' must be api_key, jwt, mtls or none"));
    }
  }
  if (n["roles"]) {
    rt.roles = r.strings(n["roles"], "role");
    if (rt.auth.empty()) r.error(n["roles"], strCat(what, ": roles need an auth method"));
  }
  auto prefixes = [&](const char* field, std::vector<Prefix>& out) {
    if (!n[field]) return;
    for (const std::string& p : r.strings(n[field], field)) {
      auto pr = Prefix::parse(p);
      if (!pr)
        r.error(n[field], strCat(what, ": ", field, ": ", pr.error().message));
      else
        out.push_back(*pr);
    }
  };
  prefixes("allow", rt.allow);
  prefixes("deny", rt.deny);
  if (n["rate_limit"]) readRateLimit(r, n["rate_limit"], rt);
  r.sizeField(n, "max_body", rt.max_body, 0, 1ull << 30);
  // Content checks are on by default; "off" turns one off for the route.
  rt.json = JsonLimits{};
  rt.xml = XmlLimits{};
  auto off = [](const YAML::Node& v) { return v.IsScalar() && v.Scalar() == "off"; };
  if (n["json"] && off(n["json"])) {
    rt.json.reset();
  } else if (n["json"]) {
    const YAML::Node j = n["json"];
    if (r.map(j, "json", {"max_depth", "max_keys", "max_string", "max_number", "max_size"})) {
      JsonLimits l;
      r.integerField(j, "max_depth", l.max_depth, 1, 1024);
      r.integerField(j, "max_keys", l.max_keys, 1, 10'000'000);
      r.sizeField(j, "max_string", l.max_string, 1, 1ull << 30);
      r.integerField(j, "max_number", l.max_number, 1, 1 << 20);
      r.sizeField(j, "max_size", l.max_size, 1, 1ull << 30);
      rt.json = l;
    }
  }
  if (n["xml"] && off(n["xml"])) {
    rt.xml.reset();
  } else if (n["xml"]) {
    const YAML::Node x = n["xml"];
    if (r.map(x, "xml", {"max_depth", "max_attributes", "max_nodes", "max_size"})) {
      XmlLimits l;
      r.integerField(x, "max_depth", l.max_depth, 1, 1024);
      r.integerField(x, "max_attributes", l.max_attributes, 0, 100000);
      r.integerField(x, "max_nodes", l.max_nodes, 1, 10'000'000);
      r.sizeField(x, "max_size", l.max_size, 1, 1ull << 30);
      rt.xml = l;
    }
  }
  if (const YAML::Node w = n["waf"]) {
    if (w.IsScalar() && w.Scalar() == "off") {
      rt.waf.mode = WafMode::Off;
    } else if (r.map(w, "waf", {"mode", "paranoia"}, {"mode"})) {
      const std::string mode = r.str(w["mode"], "waf mode").value_or("");
      if (mode == "blocking")
        rt.waf.mode = WafMode::Blocking;
      else if (mode == "detection")
        rt.waf.mode = WafMode::Detection;
      else if (mode == "off")
        rt.waf.mode = WafMode::Off;
      else
        r.error(w["mode"], strCat(what, ": waf mode must be blocking, detection or off"));
      r.integerField(w, "paranoia", rt.waf.paranoia, 1, 4);
    }
  }
  c.routes.push_back(std::move(rt));
}

void validate(Reader& r, const YAML::Node& root, GatewayConfig& c) {
  bool tls = false, mtls = false;
  for (const Listener& l : c.listeners) {
    tls = tls || !l.health;
    mtls = mtls || l.client_cert != ClientCert::None;
  }
  if (!tls) r.error(root, "the gateway needs at least one TLS listener (listen)");
  if (c.routes.empty()) r.error(root, "the gateway needs at least one route (routes)");
  for (const Route& rt : c.routes) {
    for (AuthMethod a : rt.auth) {
      if (a == AuthMethod::Mtls && !mtls)
        r.error(root, strCat("route ", rt.name, ": auth mtls needs a listener with client_ca"));
      if (a == AuthMethod::ApiKey && c.credentials.api_keys.empty())
        r.error(root, strCat("route ", rt.name, ": auth api_key but credentials has no api_keys"));
      if (a == AuthMethod::Jwt && c.credentials.jwt_keys.empty())
        r.error(root, strCat("route ", rt.name, ": auth jwt but credentials has no jwt keys"));
    }
  }
}

}  // namespace

Result<double> parseRate(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos || slash + 2 != s.size())
    return makeError(strCat("'", printable(s), "' must be N/s, N/m or N/h (e.g. 100/s)"));
  double n = 0;
  auto r = std::from_chars(s.data(), s.data() + slash, n);
  if (r.ec != std::errc() || r.ptr != s.data() + slash || !(n > 0) || n > 1e9)
    return makeError(strCat("'", printable(s), "' must be a positive count per unit (e.g. 100/s)"));
  switch (s.back()) {
    case 's':
      return n;
    case 'm':
      return n / 60;
    case 'h':
      return n / 3600;
    default:
      return makeError(strCat("'", printable(s), "' must end in /s, /m or /h"));
  }
}

GatewayLoad parseGatewayConfig(std::string_view yaml, const std::string& file_name,
                               const std::string& base_dir) {
  GatewayLoad out{std::nullopt, Diagnostics(file_name)};
  Diagnostics& d = out.diagnostics;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    const SourceLoc at = e.mark.is_null() ? SourceLoc{}
                                          : SourceLoc{static_cast<uint32_t>(e.mark.line + 1),
                                                      static_cast<uint32_t>(e.mark.column + 1)};
    d.error(at, strCat("not valid YAML: ", e.msg));
    return out;
  }
  GatewayConfig c;
  c.base_dir = base_dir;
  Reader r(d, base_dir);
  try {
    if (!r.map(root, "gateway configuration",
               {"listen", "upstreams", "credentials", "routes", "limits", "timeouts", "workers",
                "waf"},
               {"listen", "upstreams", "routes"}))
      return out;
    if (root["listen"])
      r.each(root["listen"], "listen", [&](const YAML::Node& n) { readListener(r, n, c); });
    if (root["upstreams"])
      r.each(root["upstreams"], "upstreams", [&](const YAML::Node& n) { readUpstream(r, n, c); });
    if (root["credentials"]) readCredentials(r, root["credentials"], c);
    if (root["routes"])
      r.each(root["routes"], "routes", [&](const YAML::Node& n) { readRoute(r, n, c); });
    if (const YAML::Node l = root["limits"]) {
      if (r.map(l, "limits",
                {"max_url", "max_header_bytes", "max_headers", "max_body", "max_connections"})) {
        r.sizeField(l, "max_url", c.limits.max_url, 64, 1 << 20);
        r.sizeField(l, "max_header_bytes", c.limits.max_header_bytes, 1024, 1 << 20);
        r.integerField(l, "max_headers", c.limits.max_headers, 1, 10000);
        r.sizeField(l, "max_body", c.limits.max_body, 0, 1ull << 30);
        r.integerField(l, "max_connections", c.max_connections, 1, 1'000'000);
      }
    }
    if (const YAML::Node t = root["timeouts"]) {
      if (r.map(t, "timeouts", {"header", "body", "idle", "connect", "response"})) {
        constexpr TimeNs kMs = 1'000'000, kHour = 3600'000'000'000ull;
        r.durationField(t, "header", c.timeouts.header, 10 * kMs, kHour);
        r.durationField(t, "body", c.timeouts.body, 10 * kMs, kHour);
        r.durationField(t, "idle", c.timeouts.idle, 10 * kMs, kHour);
        r.durationField(t, "connect", c.timeouts.connect, 10 * kMs, kHour);
        r.durationField(t, "response", c.timeouts.response, 10 * kMs, kHour);
      }
    }
    if (const YAML::Node w = root["waf"]) {
      if (r.map(w, "waf", {"crs_setup", "rules", "threshold"})) {
        if (w["crs_setup"])
          c.waf.crs_setup = r.path(r.str(w["crs_setup"], "crs_setup").value_or(""));
        if (w["rules"]) c.waf.rules_dir = r.path(r.str(w["rules"], "rules").value_or(""));
        r.integerField(w, "threshold", c.waf.threshold, 1, 10000);
      }
    }
    r.integerField(root, "workers", c.workers, 1, 64);
    validate(r, root, c);
  } catch (const YAML::Exception& e) {
    d.error({}, strCat("cannot read the configuration: ", e.msg));
  }
  if (!d.hasErrors()) out.config = std::move(c);
  return out;
}

GatewayLoad loadGatewayConfig(const std::string& path) {
  auto text = readFile(path, 16 << 20);
  if (!text) {
    GatewayLoad out{std::nullopt, Diagnostics(path)};
    out.diagnostics.error({}, text.error().message);
    return out;
  }
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? "." : path.substr(0, slash);
  return parseGatewayConfig(*text, path, base);
}

}  // namespace palisade::gateway
