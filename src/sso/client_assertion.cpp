#include "sso/client_assertion.hpp"

#include <array>
#include <limits>
#include <span>
#include <utility>

#include <openssl/evp.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "authn/base64url.hpp"
#include "authn/jws_sign.hpp"

namespace portcullis {
namespace {

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;  // what our own JWKS verifier (and common IdPs) accept
constexpr std::string_view kSupported = "EC P-256 (ES256) or RSA of 2048 to 8192 bits (RS256)";

bool contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

// Why `pem` gave no private key, in words an operator can act on.
std::string unreadable_pem_reason(std::string_view pem, const std::string& openssl_reason) {
  if (contains(pem, "-----BEGIN PUBLIC KEY-----") || contains(pem, "-----BEGIN RSA PUBLIC KEY"))
    return "this is a public key; private_key_jwt needs the client's private key PEM";
  if (contains(pem, "-----BEGIN CERTIFICATE-----"))
    return "this is a certificate; private_key_jwt needs the client's private key PEM";
  if (contains(pem, "ENCRYPTED"))
    return "encrypted private keys are not supported (decrypt it with: openssl pkey -in KEY "
           "-out PLAIN)";
  return "not a private key PEM (PKCS#8 or traditional, unencrypted): " + openssl_reason;
}

// The JWS algorithm for `key`, or why the key cannot sign client assertions.
Expected<JwsAlg, std::string> algorithm_for(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") == 1) {
    const std::string group = ec_group_name(key);
    if (group == "prime256v1") return JwsAlg::ES256;
    return unexpected("EC key on curve " + (group.empty() ? std::string("(unknown)") : group) +
                      " is not supported: use " + std::string(kSupported));
  }
  if (EVP_PKEY_is_a(key, "RSA") == 1) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kMinRsaBits)
      return unexpected("RSA key of " + std::to_string(bits) +
                        " bits is too short: at least 2048 bits are required");
    if (bits > kMaxRsaBits)
      return unexpected("RSA key of " + std::to_string(bits) +
                        " bits is too long: at most 8192 bits are supported");
    return JwsAlg::RS256;
  }
  const char* type = EVP_PKEY_get0_type_name(key);
  return unexpected(std::string(type != nullptr ? type : "this") + " key is not supported: use " +
                    std::string(kSupported));
}

}  // namespace

Expected<ClientAssertionSigner, std::string> ClientAssertionSigner::from_pem(std::string_view pem,
                                                                             std::string kid) {
  auto loaded = load_private_key_pem(pem);
  if (!loaded) return unexpected(unreadable_pem_reason(pem, loaded.error()));
  std::shared_ptr<EVP_PKEY> key(loaded->release(), [](EVP_PKEY* k) { EVP_PKEY_free(k); });

  auto alg = algorithm_for(key.get());
  if (!alg) return unexpected(alg.error());
  if (!has_private_key(key.get())) return unexpected(std::string("the key has no private part"));
  auto members = public_jwk_members(key.get());
  if (!members) return unexpected(members.error());
  boost::json::object jwk = std::move(*members);
  if (kid.empty()) {
    kid = jwk_thumbprint(jwk);
    if (kid.empty()) return unexpected(std::string("cannot compute the key thumbprint"));
  }

  ClientAssertionSigner signer;
  signer.key_ = std::move(key);
  signer.jws_alg_ = *alg;
  signer.alg_ = std::string(to_string(*alg));
  signer.kid_ = std::move(kid);

  jwk["kid"] = signer.kid_;
  jwk["alg"] = signer.alg_;
  jwk["use"] = "sig";
  boost::json::object doc;
  doc["keys"] = boost::json::array{std::move(jwk)};
  signer.jwks_ = boost::json::serialize(doc);

  boost::json::object header;
  header["alg"] = signer.alg_;
  header["typ"] = "JWT";
  header["kid"] = signer.kid_;
  signer.header_b64_ = base64url_encode(boost::json::serialize(header));
  return signer;
}

Expected<std::string, std::string> ClientAssertionSigner::sign(std::string_view client_id,
                                                               std::string_view audience,
                                                               std::int64_t now,
                                                               RandomSource& random) const {
  if (client_id.empty()) return unexpected(std::string("empty client id"));
  if (audience.empty()) return unexpected(std::string("empty audience (token endpoint)"));
  if (now < 0 || now > std::numeric_limits<std::int64_t>::max() - kClientAssertionLifetimeSeconds)
    return unexpected(std::string("clock out of range"));

  std::array<std::uint8_t, 16> jti{};
  random.fill(jti);

  boost::json::object claims;
  claims["iss"] = client_id;
  claims["sub"] = client_id;
  claims["aud"] = audience;
  claims["iat"] = now;
  claims["exp"] = now + kClientAssertionLifetimeSeconds;
  claims["jti"] = base64url_encode(std::span<const unsigned char>(jti.data(), jti.size()));

  std::string token = header_b64_;
  token.push_back('.');
  token += base64url_encode(boost::json::serialize(claims));
  auto signature = jws_signature(jws_alg_, key_.get(), token);
  if (!signature) return unexpected(signature.error());
  token.push_back('.');
  token += *signature;
  return token;
}

}  // namespace portcullis
