#pragma once
// OAuth client authentication with private_key_jwt (RFC 7523 section 2.2, OpenID Connect Core
// section 9): instead of a client secret, the client sends the token endpoint a short-lived JWT
// signed with its private key, as client_assertion with
// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer.
//
//   auto signer = ClientAssertionSigner::from_pem(pem);       // EC P-256 or RSA >= 2048
//   if (!signer) return signer.error();                       // why the key is unusable
//   register_at_idp(signer->public_jwks());                   // once, by the operator
//   auto jwt = signer->sign(client_id, token_endpoint, now, random);
//   form["client_assertion_type"] = kClientAssertionType;
//   form["client_assertion"] = *jwt;
//
// Copyable and immutable after from_pem: the key is shared read-only and sign() is const and
// safe from any number of threads at once (each call has its own EVP_MD_CTX; the RandomSource
// is the caller's, one per worker).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/types.h>

#include "authn/jwk.hpp"
#include "core/expected.hpp"
#include "core/ids.hpp"

namespace portcullis {

inline constexpr std::string_view kClientAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// Lifetime of a client assertion: exp = iat + this. Short, since each one is used once.
inline constexpr std::int64_t kClientAssertionLifetimeSeconds = 60;

// Holds the client's private key (EC P-256 -> ES256, RSA 2048..8192 bits -> RS256), its kid
// and its public JWK set; signs client assertions for the token endpoint.
class ClientAssertionSigner {
 public:
  // Parses an unencrypted private key PEM, PKCS#8 or traditional (SEC1 / PKCS#1). Any other
  // key (P-384 and other curves, Ed25519, RSA below 2048 or above 8192 bits, a public key, an
  // encrypted key, not a PEM at all) is an error saying why. `kid` empty: the RFC 7638 JWK
  // thumbprint of the public key, so the kid changes exactly when the key does.
  static Expected<ClientAssertionSigner, std::string> from_pem(std::string_view pem,
                                                               std::string kid = {});

  const std::string& alg() const { return alg_; }  // "ES256" or "RS256"
  const std::string& kid() const { return kid_; }

  // {"keys":[{"kty":..,(crv, x, y | n, e),"kid":..,"alg":..,"use":"sig"}]}: the public key to
  // register at the IdP (jwks or jwks_uri of the client).
  const std::string& public_jwks() const { return jwks_; }

  // A compact JWS with header {"alg","typ":"JWT","kid"} and claims iss = sub = client_id,
  // aud = audience (the token endpoint URL), iat = now, exp = now + 60, jti = 16 random bytes
  // as base64url. Fails when client_id or audience is empty or the crypto library fails.
  Expected<std::string, std::string> sign(std::string_view client_id, std::string_view audience,
                                          std::int64_t now, RandomSource& random) const;

 private:
  ClientAssertionSigner() = default;

  std::shared_ptr<EVP_PKEY> key_;  // read-only after construction
  JwsAlg jws_alg_ = JwsAlg::ES256;
  std::string alg_;
  std::string kid_;
  std::string jwks_;
  std::string header_b64_;  // base64url of the fixed JOSE header
};

}  // namespace portcullis
