#pragma once
// The audit log's Ed25519 keys (OpenSSL EVP). AuditSigningKey signs checkpoints in the writer;
// AuditVerifyKey checks them in `portcullis audit verify`. Public keys travel as RFC 8037 OKP
// JWKs ({"kty":"OKP","crv":"Ed25519","x":...}) and are named by their RFC 7638 thumbprint
// (kid); a pinned key is a SubjectPublicKeyInfo PEM (`openssl pkey -in key.pem -pubout`).
//
//   auto key = AuditSigningKey::load_or_create("/var/lib/portcullis/audit.pem");  // 0600
//   auto sig = key->sign(message);              // base64url, 86 characters
//   AuditVerifyKey::from_x(key->x())->verify(message, *sig);   // true
//
// Both are cheap to copy (the EVP_PKEY is shared, read-only). sign() is for one thread at a time.
#include <memory>
#include <string>
#include <string_view>

#include "core/expected.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace portcullis {

class AuditSigningKey {
 public:
  // Loads the PKCS#8 PEM at `path`, or generates a key and writes it there (mode 0600, via a
  // temp file and rename) when the file does not exist. Refuses a file readable or writable by
  // group/others, an encrypted key, or a key that is not Ed25519.
  static Expected<AuditSigningKey, std::string> load_or_create(const std::string& path);
  static Expected<AuditSigningKey, std::string> from_pem(std::string_view pem);
  static Expected<AuditSigningKey, std::string> generate();

  const std::string& x() const { return x_; }      // base64url of the 32-byte public key
  const std::string& kid() const { return kid_; }  // RFC 7638 thumbprint
  std::string public_jwk() const;                  // {"kty":"OKP","crv":"Ed25519","x":"..."}
  std::string public_pem() const;
  std::string private_pem() const;

  // Ed25519 signature of `message`, base64url without padding.
  Expected<std::string, std::string> sign(std::string_view message) const;

 private:
  explicit AuditSigningKey(std::shared_ptr<EVP_PKEY> key);
  std::shared_ptr<EVP_PKEY> key_;
  std::string x_;
  std::string kid_;
};

class AuditVerifyKey {
 public:
  static Expected<AuditVerifyKey, std::string> from_x(std::string_view x_b64url);
  // A public key PEM (SubjectPublicKeyInfo) or, for convenience, a private key PEM.
  static Expected<AuditVerifyKey, std::string> from_pem(std::string_view pem);
  static Expected<AuditVerifyKey, std::string> from_pem_file(const std::string& path);

  const std::string& x() const { return x_; }
  const std::string& kid() const { return kid_; }
  bool verify(std::string_view message, std::string_view sig_b64url) const;

 private:
  explicit AuditVerifyKey(std::shared_ptr<EVP_PKEY> key);
  std::shared_ptr<EVP_PKEY> key_;
  std::string x_;
  std::string kid_;
};

// base64url(SHA-256('{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}')), RFC 7638 / RFC 8037.
std::string ed25519_thumbprint(std::string_view x_b64url);

}  // namespace portcullis
