#pragma once
// Signs the X-Portcullis-Assertion header (like Google IAP's x-goog-iap-jwt-assertion): an
// ES256 JWT telling the upstream who the verified caller is, so it can trust the identity
// without trusting the network path.
//
//   auto signer = AssertionSigner::load_or_create("/var/lib/portcullis/assertion.pem");
//   serve(signer.public_jwks());              // at /.well-known/portcullis/jwks.json
//   auto jwt = signer.sign(identity, route_name, issuer, 5min, clock, random);
//
// The key is EC P-256 (PKCS#8 PEM). Its kid is the RFC 7638 JWK thumbprint, so the kid
// changes exactly when the key does. sign() is const and safe from any number of threads.
#include <chrono>
#include <string>
#include <string_view>

#include "authn/identity.hpp"
#include "authn/jwk.hpp"
#include "authn/jws_sign.hpp"  // ec_jwk_thumbprint (moved there; still reachable from here)
#include "core/clock.hpp"
#include "core/expected.hpp"
#include "core/ids.hpp"

namespace portcullis {

// Where every listener serves public_jwks().
inline constexpr std::string_view kAssertionJwksPath = "/.well-known/portcullis/jwks.json";

// Holds the P-256 signing key (shared read-only) and its public JWK; move-only.
class AssertionSigner {
 public:
  // Loads the key from `key_file`, or generates one and writes it there (mode 0600, atomically
  // through a temp file and rename) when the file does not exist. Throws std::runtime_error
  // (start-up only) when the file is readable by group/others, unreadable, not a private key
  // PEM, or not a P-256 key.
  static AssertionSigner load_or_create(const std::string& key_file);

  // Parses a private key PEM; throws std::runtime_error like load_or_create.
  static AssertionSigner from_pem(std::string_view pem);

  // A fresh random P-256 key (not persisted); throws std::runtime_error on failure.
  static AssertionSigner generate();

  const std::string& kid() const { return kid_; }

  // {"keys":[{"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"alg":"ES256","use":"sig"}]}
  const std::string& public_jwks() const { return jwks_; }

  // The private key as PKCS#8 PEM (for persisting a generated key).
  std::string private_pem() const;

  // An ES256 JWT with iss, aud (the route), sub (the subject, or the client id when there is
  // none), client_id and email (when set), groups, iat, exp, jti and idp (the identity's
  // issuer). Fails when the crypto library fails or an argument is unusable (no subject nor
  // client id, empty audience/issuer, ttl <= 0).
  Expected<std::string, std::string> sign(const Identity& id, std::string_view audience,
                                          std::string_view issuer, std::chrono::seconds ttl,
                                          const Clock& clock, RandomSource& random) const;

 private:
  explicit AssertionSigner(EvpPkeyPtr key);

  EvpPkeyPtr key_;
  std::string kid_;
  std::string jwks_;
  std::string header_b64_;  // base64url of the fixed JOSE header
};

}  // namespace portcullis
