#include "gateway/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/file.h"
#include "core/strings.h"

namespace palisade::gateway {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxTokenBytes = 16384;

int b64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn bignum(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()), nullptr));
}

// A public key from OSSL_PARAMs built by `push` (RSA n/e or EC point).
template <class Push>
std::shared_ptr<EVP_PKEY> publicKey(const char* type, Push push) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return nullptr;
  EVP_PKEY* pkey = nullptr;
  if (push(bld)) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1)
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
  }
  OSSL_PARAM_BLD_free(bld);
  if (pkey == nullptr) return nullptr;
  // The point must be on the curve (and an RSA key sane) before it is trusted.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  const bool ok = check != nullptr && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

std::string field(const json& k, const char* name) {
  auto it = k.find(name);
  return it != k.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<JwtKey> parseKey(const json& k, size_t index) {
  const std::string where = strCat("key ", std::to_string(index + 1));
  if (!k.is_object()) return makeError(strCat(where, ": not a JSON object"));
  JwtKey out;
  out.kid = field(k, "kid");
  const std::string label = out.kid.empty() ? where : strCat(where, " (kid ", out.kid, ")");
  const std::string kty = field(k, "kty"), alg = field(k, "alg"), use = field(k, "use");
  if (!use.empty() && use != "sig") return makeError(strCat(label, ": use '", use, "' is not sig"));
  auto b64 = [&](const char* name, std::string& bytes) -> Status {
    if (!base64UrlDecode(field(k, name), bytes) || bytes.empty())
      return makeError(strCat(label, ": '", name, "' must be base64url"));
    return {};
  };
  if (kty == "oct") {
    if (!alg.empty() && alg != "HS256")
      return makeError(strCat(label, ": alg ", alg, " is not supported (HS256)"));
    out.alg = JwtAlg::HS256;
    if (Status st = b64("k", out.secret); !st) return st.error();
    if (out.secret.size() < 32)
      return makeError(strCat(label, ": an HS256 key needs at least 32 bytes (RFC 7518 3.2)"));
  } else if (kty == "RSA") {
    if (!alg.empty() && alg != "RS256")
      return makeError(strCat(label, ": alg ", alg, " is not supported (RS256)"));
    out.alg = JwtAlg::RS256;
    std::string n, e;
    if (Status st = b64("n", n); !st) return st.error();
    if (Status st = b64("e", e); !st) return st.error();
    Bn bn = bignum(n), be = bignum(e);
    out.pkey = publicKey("RSA", [&](OSSL_PARAM_BLD* b) {
      return bn && be && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn.get()) == 1 &&
             OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be.get()) == 1;
    });
    if (!out.pkey) return makeError(strCat(label, ": not a valid RSA public key"));
    if (EVP_PKEY_get_bits(out.pkey.get()) < 2048)
      return makeError(strCat(label, ": RSA keys under 2048 bits are refused"));
  } else if (kty == "EC") {
    if (!alg.empty() && alg != "ES256")
      return makeError(strCat(label, ": alg ", alg, " is not supported (ES256)"));
    if (field(k, "crv") != "P-256")
      return makeError(strCat(label, ": only the P-256 curve (ES256)"));
    out.alg = JwtAlg::ES256;
    std::string x, y;
    if (Status st = b64("x", x); !st) return st.error();
    if (Status st = b64("y", y); !st) return st.error();
    if (x.size() != 32 || y.size() != 32)
      return makeError(strCat(label, ": x and y must be 32 bytes"));
    std::array<unsigned char, 65> point{};
    point[0] = 4;
    std::memcpy(point.data() + 1, x.data(), 32);
    std::memcpy(point.data() + 33, y.data(), 32);
    out.pkey = publicKey("EC", [&](OSSL_PARAM_BLD* b) {
      return OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
             OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                              point.size()) == 1;
    });
    if (!out.pkey) return makeError(strCat(label, ": not a point on P-256"));
  } else {
    return makeError(strCat(label, ": kty '", printable(kty), "' is not supported (oct, RSA, EC)"));
  }
  return out;
}

bool verifySignature(const JwtKey& key, std::string_view signed_part, const std::string& sig) {
  if (key.alg == JwtAlg::HS256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
             &len) == nullptr)
      return false;
    return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
  }
  std::string der;
  const std::string* s = &sig;
  if (key.alg == JwtAlg::ES256) {
    // JWS carries r || s (32 bytes each); OpenSSL verifies DER.
    if (sig.size() != 64) return false;
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
    BIGNUM* ss = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
    if (es == nullptr || r == nullptr || ss == nullptr || ECDSA_SIG_set0(es, r, ss) != 1) {
      BN_free(r);
      BN_free(ss);
      ECDSA_SIG_free(es);
      return false;
    }
    unsigned char* p = nullptr;
    const int n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    if (n <= 0) return false;
    der.assign(reinterpret_cast<char*>(p), static_cast<size_t>(n));
    OPENSSL_free(p);
    s = &der;
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  const bool ok = md != nullptr &&
                  EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key.pkey.get()) == 1 &&
                  EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(s->data()), s->size(),
                                   reinterpret_cast<const unsigned char*>(signed_part.data()),
                                   signed_part.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

JwtResult refuse(std::string_view why) {
  JwtResult r;
  r.reason = why;
  return r;
}

// A NumericDate (seconds, maybe fractional); false when absent or not a number.
bool numericDate(const json& claims, const char* name, int64_t& out) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return false;
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < -1e15 || v > 1e15) return false;
  out = static_cast<int64_t>(v);
  return true;
}

}  // namespace

bool base64UrlDecode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = b64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero (one canonical encoding per byte string).
  return (acc & ((1u << bits) - 1)) == 0;
}

Result<JwtKeySet> JwtKeySet::parse(std::string_view text) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return makeError("not valid JSON");
  auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array() || keys->empty())
    return makeError("a JWK Set needs a non-empty \"keys\" array (RFC 7517 5)");
  if (keys->size() > 1000) return makeError("more than 1,000 keys");
  JwtKeySet set;
  for (size_t i = 0; i < keys->size(); ++i) {
    auto k = parseKey((*keys)[i], i);
    if (!k) return k.error();
    for (const JwtKey& o : set.keys_)
      if (!k->kid.empty() && o.kid == k->kid)
        return makeError(strCat("kid '", printable(k->kid), "' appears twice"));
    set.keys_.push_back(std::move(*k));
  }
  return set;
}

Result<JwtKeySet> JwtKeySet::load(const std::string& path) {
  auto text = readFile(path, 4 << 20);
  if (!text) return makeError(strCat(path, ": ", text.error().message));
  auto set = parse(*text);
  if (!set) return makeError(strCat(path, ": ", set.error().message));
  return set;
}

JwtResult verifyJwt(std::string_view token, const JwtKeySet& keys, const JwtRules& rules,
                    int64_t now_s) {
  if (token.size() > kMaxTokenBytes) return refuse("token too long");
  const size_t d1 = token.find('.');
  const size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return refuse("malformed token (JWS compact form has three parts)");
  std::string header_bytes, payload_bytes, sig;
  if (!base64UrlDecode(token.substr(0, d1), header_bytes) ||
      !base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), payload_bytes) ||
      !base64UrlDecode(token.substr(d2 + 1), sig))
    return refuse("malformed token (base64url)");
  const json header = json::parse(header_bytes, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return refuse("malformed token header");
  const std::string alg = field(header, "alg");
  JwtAlg want;
  if (alg == "HS256")
    want = JwtAlg::HS256;
  else if (alg == "RS256")
    want = JwtAlg::RS256;
  else if (alg == "ES256")
    want = JwtAlg::ES256;
  else
    return refuse("token algorithm not accepted");
  if (header.contains("crit")) return refuse("token has critical extensions");
  const std::string kid = field(header, "kid");

  // The key: the one named by kid, of the token's algorithm; without a kid,
  // any key of that algorithm.
  const std::string_view signed_part = token.substr(0, d2);
  const JwtKey* used = nullptr;
  bool kid_known = false;
  for (const JwtKey& k : keys.keys()) {
    if (!kid.empty() && k.kid != kid) continue;
    kid_known = true;
    if (k.alg != want) continue;
    if (verifySignature(k, signed_part, sig)) {
      used = &k;
      break;
    }
  }
  if (used == nullptr) return refuse(kid_known ? "bad token signature" : "token key (kid) unknown");

  const json claims = json::parse(payload_bytes, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return refuse("malformed token claims");
  JwtResult r;
  if (!numericDate(claims, "exp", r.id.exp)) return refuse("token without an expiry (exp)");
  if (now_s > r.id.exp + rules.leeway_s) return refuse("token expired");
  int64_t nbf = 0;
  if (claims.contains("nbf")) {
    if (!numericDate(claims, "nbf", nbf)) return refuse("malformed nbf claim");
    if (now_s + rules.leeway_s < nbf) return refuse("token not yet valid (nbf)");
  }
  if (!rules.issuer.empty() && field(claims, "iss") != rules.issuer)
    return refuse("token issuer not accepted");
  if (!rules.audiences.empty()) {
    bool match = false;
    auto aud = claims.find("aud");
    auto accepted = [&](const json& a) {
      return a.is_string() && std::find(rules.audiences.begin(), rules.audiences.end(),
                                        a.get<std::string>()) != rules.audiences.end();
    };
    if (aud != claims.end()) {
      if (aud->is_array()) {
        for (const json& a : *aud)
          match = match || accepted(a);
      } else {
        match = accepted(*aud);
      }
    }
    if (!match) return refuse("token audience not accepted");
  }
  r.id.subject = field(claims, rules.identity_claim.c_str());
  if (r.id.subject.empty() || r.id.subject.size() > 256) return refuse("token without a subject");
  if (auto roles = claims.find(rules.roles_claim); roles != claims.end()) {
    if (roles->is_string()) {
      std::string_view list = roles->get_ref<const std::string&>();
      while (!list.empty() && r.id.roles.size() < 256) {
        const size_t sp = list.find(' ');
        if (sp != 0) r.id.roles.emplace_back(list.substr(0, sp));
        if (sp == std::string_view::npos) break;
        list.remove_prefix(sp + 1);
      }
    } else if (roles->is_array()) {
      for (const json& x : *roles)
        if (x.is_string() && r.id.roles.size() < 256) r.id.roles.push_back(x.get<std::string>());
    }
  }
  r.id.kid = used->kid;
  r.id.jti = field(claims, "jti").substr(0, 256);
  r.ok = true;
  return r;
}

}  // namespace palisade::gateway
