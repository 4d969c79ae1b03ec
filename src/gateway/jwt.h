// JSON Web Tokens (RFC 7519) in JWS compact form (RFC 7515), verified with
// keys from a JWK Set (RFC 7517): HS256 with "oct" keys, RS256 with "RSA"
// keys, ES256 with "EC" P-256 keys (RFC 7518). A token's algorithm must be
// its key's: an RSA public key is never used as an HMAC secret, and "none"
// is never accepted. Claims checked: exp (required), nbf, iss, aud, with a
// leeway for clock skew.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace palisade::gateway {

enum class JwtAlg : uint8_t { HS256, RS256, ES256 };

struct JwtKey {
  std::string kid;
  JwtAlg alg = JwtAlg::HS256;
  std::string secret;              // HS256
  std::shared_ptr<EVP_PKEY> pkey;  // RS256, ES256
};

class JwtKeySet {
 public:
  // A JWK Set document: {"keys":[...]}. Keys of other types or uses
  // ("use":"enc") are refused by name; an HMAC key shorter than 32 bytes too.
  static Result<JwtKeySet> parse(std::string_view jwks);
  static Result<JwtKeySet> load(const std::string& path);
  const std::vector<JwtKey>& keys() const { return keys_; }

 private:
  std::vector<JwtKey> keys_;
};

struct JwtRules {
  std::string issuer;                  // empty: any
  std::vector<std::string> audiences;  // empty: any; else aud must name one
  int64_t leeway_s = 60;
  std::string roles_claim = "scope";  // a space-separated string or an array of strings
  std::string identity_claim = "sub";
};

struct JwtIdentity {
  std::string subject;
  std::vector<std::string> roles;
  int64_t exp = 0;
  std::string kid;
  std::string jti;  // the token's own id, when it has one (revocable as "jti:<id>")
};

struct JwtResult {
  bool ok = false;
  std::string_view reason;  // static text when !ok
  JwtIdentity id;
};

JwtResult verifyJwt(std::string_view token, const JwtKeySet& keys, const JwtRules& rules,
                    int64_t now_s);

// base64url without padding (RFC 4648 section 5); false on any other byte.
bool base64UrlDecode(std::string_view in, std::string& out);

}  // namespace palisade::gateway
