// The log's cryptography, through OpenSSL 3: SHA-256 for the hash chain and
// Ed25519 for the signed checkpoints.
//
// Sha256 keeps one digest context and reuses it, so hashing a record costs the
// digest itself, not a context allocation. Keys live in PEM files: the private
// key (PKCS#8) stays with the writer and must not be readable by group or
// others; the public key (SubjectPublicKeyInfo) goes to whoever verifies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

struct evp_md_ctx_st;
struct evp_md_st;
struct evp_pkey_st;

namespace palisade::events {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Digest operator()(std::string_view data);

 private:
  evp_md_ctx_st* ctx_;
  evp_md_st* md_;
};

// Lower-case hex; out needs 2 * n bytes.
void toHex(const uint8_t* p, size_t n, char* out);
std::string toHex(const uint8_t* p, size_t n);
inline std::string toHex(const Digest& d) {
  return toHex(d.data(), d.size());
}
// Exactly 2 * out.size() hex digits (either case) -> bytes; false otherwise.
bool fromHex(std::string_view hex, uint8_t* out, size_t n);

// An Ed25519 key: private (can sign and verify) or public (verify only).
class SigningKey {
 public:
  ~SigningKey();
  SigningKey(SigningKey&& o) noexcept
      : pkey_(o.pkey_), private_(o.private_), id_(std::move(o.id_)) {
    o.pkey_ = nullptr;
  }
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  SigningKey& operator=(SigningKey&&) = delete;

  static Result<SigningKey> generate();
  // A private key file; refused when group or others may read it.
  static Result<SigningKey> loadPrivate(const std::string& path);
  static Result<SigningKey> loadPublic(const std::string& path);

  // Writes the private key (mode 0600, not over an existing file) or the public key.
  Status savePrivate(const std::string& path) const;
  Status savePublic(const std::string& path) const;

  // Another handle on the same public key (OpenSSL keys are immutable and
  // may be used from several threads): for verifiers that each own their keys.
  SigningKey sharePublic() const;

  bool isPrivate() const { return private_; }
  // First 8 bytes of SHA-256 of the raw 32-byte public key, as 16 hex digits.
  const std::string& id() const { return id_; }

  // 64-byte Ed25519 signature as 128 hex digits.
  Result<std::string> sign(std::string_view message) const;
  bool verify(std::string_view message, std::string_view signature_hex) const;

 private:
  SigningKey(evp_pkey_st* pkey, bool is_private);
  evp_pkey_st* pkey_;
  bool private_;
  std::string id_;
};

// The most recent OpenSSL error as text, for messages.
std::string opensslError();

}  // namespace palisade::events
