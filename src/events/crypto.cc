#include "events/crypto.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/strings.h"

namespace palisade::events {

std::string opensslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()), md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {
  if (!ctx_ || !md_) {
    std::fprintf(stderr, "palisade: OpenSSL has no SHA-256: %s\n", opensslError().c_str());
    std::abort();
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(md_);
}

Digest Sha256::operator()(std::string_view data) {
  Digest d{};
  unsigned int len = 0;
  // With a fetched digest these cannot fail short of memory exhaustion inside OpenSSL.
  if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 ||
      EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx_, d.data(), &len) != 1 || len != d.size()) {
    std::fprintf(stderr, "palisade: SHA-256 failed: %s\n", opensslError().c_str());
    std::abort();
  }
  return d;
}

namespace {
// The two hex digits of every byte: each chained record has two hashes in hex.
constexpr std::array<std::array<char, 2>, 256> kHexPairs = [] {
  constexpr char kDigits[] = "0123456789abcdef";
  std::array<std::array<char, 2>, 256> t{};
  for (int i = 0; i < 256; ++i)
    t[i] = {kDigits[i >> 4], kDigits[i & 15]};
  return t;
}();
}  // namespace

void toHex(const uint8_t* p, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i)
    std::memcpy(out + 2 * i, kHexPairs[p[i]].data(), 2);
}

std::string toHex(const uint8_t* p, size_t n) {
  std::string s(2 * n, '0');
  toHex(p, n, s.data());
  return s;
}

namespace {
// 0-15 for a hex digit (either case), 0xff for anything else.
constexpr std::array<uint8_t, 256> kHexValue = [] {
  std::array<uint8_t, 256> t{};
  t.fill(0xff);
  for (int i = 0; i < 10; ++i)
    t['0' + i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 6; ++i) {
    t['a' + i] = static_cast<uint8_t>(10 + i);
    t['A' + i] = static_cast<uint8_t>(10 + i);
  }
  return t;
}();

std::string keyIdOf(EVP_PKEY* pkey) {
  uint8_t raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof raw) return {};
  Sha256 sha;
  Digest d = sha(std::string_view(reinterpret_cast<const char*>(raw), len));
  return toHex(d.data(), 8);
}

bool isEd25519(EVP_PKEY* pkey) {
  return EVP_PKEY_is_a(pkey, "ED25519") == 1;
}
}  // namespace

bool fromHex(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  uint8_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t hi = kHexValue[static_cast<uint8_t>(hex[2 * i])];
    const uint8_t lo = kHexValue[static_cast<uint8_t>(hex[2 * i + 1])];
    bad |= (hi | lo) & 0xf0;
    out[i] = static_cast<uint8_t>(hi << 4 | (lo & 15));
  }
  return bad == 0;
}

SigningKey::SigningKey(evp_pkey_st* pkey, bool is_private)
    : pkey_(pkey), private_(is_private), id_(keyIdOf(pkey)) {}

SigningKey SigningKey::sharePublic() const {
  EVP_PKEY_up_ref(pkey_);
  SigningKey k(pkey_, false);
  return k;
}

SigningKey::~SigningKey() {
  EVP_PKEY_free(pkey_);
}

Result<SigningKey> SigningKey::generate() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!pkey) return makeError(strCat("cannot generate an Ed25519 key: ", opensslError()));
  return SigningKey(pkey, true);
}

Result<SigningKey> SigningKey::loadPrivate(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return makeError(errnoText(path));
  struct stat st {};
  if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fclose(f);
    return makeError(strCat(path, ": the signing key is readable by group or others (mode ",
                            std::to_string(st.st_mode & 0777),
                            " decimal); chmod 600 it and keep it apart from the log"));
  }
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!pkey) return makeError(strCat(path, ": not a PEM private key: ", opensslError()));
  if (!isEd25519(pkey)) {
    EVP_PKEY_free(pkey);
    return makeError(
        strCat(path, ": the key is not Ed25519 (make one with `palisade log keygen`)"));
  }
  return SigningKey(pkey, true);
}

Result<SigningKey> SigningKey::loadPublic(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return makeError(errnoText(path));
  EVP_PKEY* pkey = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!pkey) return makeError(strCat(path, ": not a PEM public key: ", opensslError()));
  if (!isEd25519(pkey)) {
    EVP_PKEY_free(pkey);
    return makeError(strCat(path, ": the key is not Ed25519"));
  }
  return SigningKey(pkey, false);
}

Status SigningKey::savePrivate(const std::string& path) const {
  if (!private_) return makeError("not a private key");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return makeError(errnoText(path));
  FILE* f = fdopen(fd, "wb");
  if (!f) {
    ::close(fd);
    return makeError(errnoText(path));
  }
  bool ok = PEM_write_PrivateKey(f, pkey_, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return makeError(strCat(path, ": cannot write the key: ", opensslError()));
  return {};
}

Status SigningKey::savePublic(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return makeError(errnoText(path));
  bool ok = PEM_write_PUBKEY(f, pkey_) == 1;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return makeError(strCat(path, ": cannot write the key: ", opensslError()));
  return {};
}

Result<std::string> SigningKey::sign(std::string_view message) const {
  if (!private_) return makeError("a public key cannot sign");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  uint8_t sig[64];
  size_t len = sizeof sig;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey_) == 1 &&
            EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const uint8_t*>(message.data()),
                           message.size()) == 1 &&
            len == sizeof sig;
  EVP_MD_CTX_free(ctx);
  if (!ok) return makeError(strCat("Ed25519 signing failed: ", opensslError()));
  return toHex(sig, sizeof sig);
}

bool SigningKey::verify(std::string_view message, std::string_view signature_hex) const {
  uint8_t sig[64];
  if (!fromHex(signature_hex, sig, sizeof sig)) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey_) == 1 &&
            EVP_DigestVerify(ctx, sig, sizeof sig, reinterpret_cast<const uint8_t*>(message.data()),
                             message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

}  // namespace palisade::events
