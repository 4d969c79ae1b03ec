#include "gateway/crs_tests.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "core/strings.h"
#include "gateway/http.h"
#include "gateway/jwt.h"

namespace palisade::gateway {
namespace {

namespace fs = std::filesystem;

std::string scalarOr(const YAML::Node& n, const char* key, std::string fallback) {
  const YAML::Node v = n[key];
  return v && v.IsScalar() ? v.Scalar() : fallback;
}

bool base64Decode(std::string_view in, std::string& out) {
  // Standard base64 with padding: map to base64url and drop '='.
  std::string t;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    t.push_back(c == '+' ? '-' : c == '/' ? '_' : c);
  }
  return base64UrlDecode(t, out);
}

struct Stage {
  std::string method = "GET", uri = "/", version = "HTTP/1.1";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string data;
  std::string raw;  // the request as bytes, when the test gives it whole
};

// The request's bytes as a client would send them.
std::string wire(const Stage& s) {
  if (!s.raw.empty()) return s.raw;
  std::string out = strCat(s.method, " ", s.uri, " ", s.version, "\r\n");
  for (const auto& [k, v] : s.headers)
    out += strCat(k, ": ", v, "\r\n");
  return strCat(out, "\r\n", s.data);
}

// A raw request split leniently (the WAF sees what a lenient server would).
void splitRaw(Stage& s) {
  std::string_view r = s.raw;
  size_t eol = r.find('\n');
  std::string_view line = r.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t a = line.find(' '), b = line.rfind(' ');
  if (a != std::string_view::npos && b > a) {
    s.method = line.substr(0, a);
    s.uri = line.substr(a + 1, b - a - 1);
    s.version = line.substr(b + 1);
  }
  r.remove_prefix(eol == std::string_view::npos ? r.size() : eol + 1);
  while (!r.empty()) {
    eol = r.find('\n');
    std::string_view h = r.substr(0, eol);
    r.remove_prefix(eol == std::string_view::npos ? r.size() : eol + 1);
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    if (h.empty()) break;
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    s.headers.emplace_back(trim(h.substr(0, colon)), trim(h.substr(colon + 1)));
  }
  s.data = r;
}

}  // namespace

CrsTestResult runCrsTests(const std::string& dir, WafEngine& waf, int paranoia,
                          const std::function<void(size_t, size_t)>& progress) {
  CrsTestResult res;
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == ".yaml") files.push_back(it->path());
  std::sort(files.begin(), files.end());
  res.files = files.size();
  HttpLimits limits;
  limits.max_body = 16 << 20;
  size_t done = 0;
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
      ++res.failed;
      res.failures.push_back(strCat(name, ": not readable YAML: ", e.what()));
      continue;
    }
    const YAML::Node tests = doc["tests"];
    if (!tests || !tests.IsSequence()) continue;
    for (const YAML::Node& test : tests) {
      const std::string title = scalarOr(test, "test_title", "?");
      const YAML::Node stages = test["stages"];
      if (!stages || !stages.IsSequence()) continue;
      bool ok = true, skipped = false;
      std::string why;
      for (const YAML::Node& st : stages) {
        const YAML::Node stage = st["stage"];
        const YAML::Node in = stage ? stage["input"] : YAML::Node();
        const YAML::Node out = stage ? stage["output"] : YAML::Node();
        if (!in || !out) continue;
        Stage s;
        s.method = scalarOr(in, "method", s.method);
        s.uri = scalarOr(in, "uri", s.uri);
        s.version = scalarOr(in, "version", s.version);
        if (const YAML::Node h = in["headers"]; h && h.IsMap())
          for (auto it = h.begin(); it != h.end(); ++it)
            if (it->first.IsScalar() && it->second.IsScalar())
              s.headers.emplace_back(it->first.Scalar(), it->second.Scalar());
        if (const YAML::Node d = in["data"]) {
          if (d.IsScalar()) {
            s.data = d.Scalar();
          } else if (d.IsSequence()) {
            for (const YAML::Node& line : d)
              if (line.IsScalar()) s.data += strCat(s.data.empty() ? "" : "\r\n", line.Scalar());
          }
        }
        if (in["raw_request"]) {
          s.raw = scalarOr(in, "raw_request", "");
        } else if (in["encoded_request"]) {
          if (!base64Decode(scalarOr(in, "encoded_request", ""), s.raw)) {
            skipped = true;
            break;
          }
        }
        if (!s.raw.empty()) {
          splitRaw(s);
        } else if (!s.data.empty()) {
          // As the test client does: a body gets its length, and a form's type.
          auto has = [&](std::string_view k) {
            return std::any_of(s.headers.begin(), s.headers.end(),
                               [&](const auto& h) { return equalsIgnoreCase(h.first, k); });
          };
          if (!has("content-length"))
            s.headers.emplace_back("Content-Length", std::to_string(s.data.size()));
          if (!has("content-type"))
            s.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
        }

        // The gateway's parser first: what it refuses never reaches the WAF in
        // service; the WAF still runs, for the rule expectations.
        const std::string bytes = wire(s);
        RequestHead head;
        HttpError err;
        const Parse p = parseRequestHead(bytes, limits, head, err);
        WafRequest r;
        r.client_ip = "127.0.0.1";
        r.server_ip = scalarOr(in, "dest_addr", "127.0.0.1");
        r.client_port = 40000;
        r.server_port = 80;
        r.method = s.method;
        r.uri = s.uri;
        std::string version = s.version.starts_with("HTTP/") ? s.version.substr(5) : s.version;
        r.version = version;
        for (const auto& [k, v] : s.headers)
          r.headers.emplace_back(k, v);
        r.body = s.data;
        const WafVerdict v = waf.inspect(r, paranoia);
        std::string log;
        for (int64_t id : v.rules)
          log += strCat("[id \"", std::to_string(id), "\"]\n");
        const int status = p == Parse::Failed ? err.status
                           : v.intercept      ? (v.status ? v.status : 403)
                                              : 200;

        auto matches = [&](const std::string& pattern) {
          try {
            return std::regex_search(log, std::regex(pattern));
          } catch (const std::regex_error&) {
            return log.find(pattern) != std::string::npos;
          }
        };
        if (const YAML::Node lc = out["log_contains"];
            lc && lc.IsScalar() && !matches(lc.Scalar())) {
          ok = false;
          why = strCat("no ", lc.Scalar(), " (matched:", v.rules.empty() ? " none" : "", ")");
          for (int64_t id : v.rules)
            why += strCat(" ", std::to_string(id));
        }
        if (const YAML::Node nl = out["no_log_contains"];
            nl && nl.IsScalar() && matches(nl.Scalar())) {
          ok = false;
          why = strCat("unexpected ", nl.Scalar());
        }
        if (const YAML::Node sc = out["status"]) {
          bool any = false;
          if (sc.IsScalar()) any = sc.Scalar() == std::to_string(status);
          if (sc.IsSequence())
            for (const YAML::Node& x : sc)
              any = any || (x.IsScalar() && x.Scalar() == std::to_string(status));
          if (!any) {
            ok = false;
            why = strCat("status ", std::to_string(status));
          }
        }
        if (!ok) break;
      }
      if (skipped) {
        ++res.skipped;
      } else if (ok) {
        ++res.passed;
      } else {
        ++res.failed;
        res.failures.push_back(strCat(name, " ", title, ": ", why));
      }
    }
    if (progress) progress(++done, files.size());
  }
  return res;
}

}  // namespace palisade::gateway
