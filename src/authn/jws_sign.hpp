#pragma once
// The signing side of JWS (RFC 7515/7518) on OpenSSL 3 EVP: loading a private key PEM, the
// public JWK of a signing key, its RFC 7638 thumbprint, and the JWS signature of a signing
// input. jws.hpp and jwk.hpp are the verifying side. Shared by the signers we have:
// AssertionSigner (ES256 identity assertions to upstreams) and ClientAssertionSigner
// (private_key_jwt client authentication, ES256 or RS256).
//
//   auto key = load_private_key_pem(pem);              // Expected<EvpPkeyPtr, string>
//   auto jwk = public_jwk_members(key->get());         // {"kty":"EC","crv":"P-256","x":..,"y":..}
//   std::string kid = jwk_thumbprint(*jwk);            // RFC 7638
//   auto sig = jws_signature(JwsAlg::ES256, key->get(), header_b64 + "." + payload_b64);
//   std::string token = header_b64 + "." + payload_b64 + "." + *sig;
//
// Nothing here keeps state: a key may be used by any number of threads at once (each
// jws_signature call has its own EVP_MD_CTX; the EVP_PKEY is only read).
#include <string>
#include <string_view>

#include <openssl/types.h>
#include <boost/json/object.hpp>

#include "authn/jwk.hpp"
#include "core/expected.hpp"

namespace portcullis {

// Parses an unencrypted private key PEM, PKCS#8 ("BEGIN PRIVATE KEY") or traditional
// ("BEGIN EC PRIVATE KEY", "BEGIN RSA PRIVATE KEY"). Never prompts for a passphrase: an
// encrypted key fails. The error is OpenSSL's reason; callers add their own context.
Expected<EvpPkeyPtr, std::string> load_private_key_pem(std::string_view pem);

// True for an EC key on P-256 (prime256v1).
bool is_p256_key(EVP_PKEY* key);

// The EC curve's OpenSSL name ("prime256v1", "secp384r1", ...); empty when not an EC key.
std::string ec_group_name(EVP_PKEY* key);

// True when the key holds its private part (EC or RSA); false for public-only keys.
bool has_private_key(EVP_PKEY* key);

// The public members of the key's JWK (RFC 7518 section 6), in this order:
// EC P-256 {"kty":"EC","crv":"P-256","x","y"} (coordinates padded to 32 bytes),
// RSA {"kty":"RSA","n","e"} (minimal big-endian). Any other key is an error.
Expected<boost::json::object, std::string> public_jwk_members(EVP_PKEY* key);

// RFC 7638 thumbprint: base64url(SHA-256) of the required members in lexicographic order
// without whitespace. EC {"crv","kty","x","y"}, RSA {"e","kty","n"}, OKP {"crv","kty","x"};
// other members are ignored. Empty when the kty is none of these or a member is missing.
std::string jwk_thumbprint(const boost::json::object& jwk);

// RFC 7638 thumbprint of an EC public key: base64url(SHA-256({"crv","kty","x","y"})).
std::string ec_jwk_thumbprint(std::string_view crv, std::string_view x_b64, std::string_view y_b64);

// The base64url JWS signature of `signing_input` (BASE64URL(header) '.' BASE64URL(payload))
// with `key`: ES256 as the raw 64-byte r||s (RFC 7518 section 3.4, not DER), RS256 as
// RSASSA-PKCS1-v1_5 with SHA-256. Other algorithms, or a key that does not fit the algorithm,
// are an error.
Expected<std::string, std::string> jws_signature(JwsAlg alg, EVP_PKEY* key,
                                                 std::string_view signing_input);

}  // namespace portcullis
