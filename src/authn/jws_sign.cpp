#include "authn/jws_sign.hpp"

#include <array>
#include <memory>
#include <span>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "authn/base64url.hpp"
#include "core/openssl_error.hpp"
#include "core/sha256.hpp"

namespace portcullis {
namespace {

constexpr int kP256CoordBytes = 32;

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct BnDeleter {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;

// Never prompt on a terminal for an encrypted key: refuse it instead.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// A BIGNUM parameter of the key, or null.
BnPtr bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return nullptr;
  return BnPtr(raw);
}

Expected<std::string, std::string> p256_coordinate(EVP_PKEY* key, const char* name) {
  BnPtr bn = bn_param(key, name);
  if (!bn) return unexpected(std::string("cannot read the public key"));
  std::array<unsigned char, kP256CoordBytes> out{};
  if (BN_bn2binpad(bn.get(), out.data(), kP256CoordBytes) != kP256CoordBytes)
    return unexpected(std::string("public key coordinate out of range"));
  return base64url_encode(std::span<const unsigned char>(out));
}

Expected<std::string, std::string> rsa_member(EVP_PKEY* key, const char* name) {
  BnPtr bn = bn_param(key, name);
  if (!bn || BN_is_zero(bn.get())) return unexpected(std::string("cannot read the public key"));
  std::vector<unsigned char> out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());  // minimal big-endian (RFC 7518 6.3.1)
  return base64url_encode(std::span<const unsigned char>(out));
}

// DER ECDSA-Sig-Value -> JOSE r||s, each left-padded to 32 bytes (RFC 7518 3.4).
bool der_to_raw(std::span<const unsigned char> der,
                std::array<unsigned char, 2 * kP256CoordBytes>& raw) {
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return false;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return BN_bn2binpad(r, raw.data(), kP256CoordBytes) == kP256CoordBytes &&
         BN_bn2binpad(s, raw.data() + kP256CoordBytes, kP256CoordBytes) == kP256CoordBytes;
}

std::string string_member(const boost::json::object& jwk, std::string_view name) {
  const auto* v = jwk.if_contains(name);
  if (!v || !v->is_string()) return {};
  return std::string(v->get_string());
}

}  // namespace

Expected<EvpPkeyPtr, std::string> load_private_key_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return unexpected(std::string("out of memory"));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) return unexpected(openssl_error());
  return key;
}

std::string ec_group_name(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return {};
  std::array<char, 64> group{};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(),
                                     &len) != 1)
    return {};
  return std::string(group.data(), len);
}

bool is_p256_key(EVP_PKEY* key) {
  return ec_group_name(key) == "prime256v1";
}

bool has_private_key(EVP_PKEY* key) {
  const char* name = EVP_PKEY_is_a(key, "EC") == 1    ? OSSL_PKEY_PARAM_PRIV_KEY
                     : EVP_PKEY_is_a(key, "RSA") == 1 ? OSSL_PKEY_PARAM_RSA_D
                                                      : nullptr;
  if (name == nullptr) return false;
  BIGNUM* priv = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &priv) != 1) return false;
  BN_clear_free(priv);
  return true;
}

Expected<boost::json::object, std::string> public_jwk_members(EVP_PKEY* key) {
  boost::json::object jwk;
  if (is_p256_key(key)) {
    auto x = p256_coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X);
    if (!x) return unexpected(x.error());
    auto y = p256_coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y);
    if (!y) return unexpected(y.error());
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = *x;
    jwk["y"] = *y;
    return jwk;
  }
  if (EVP_PKEY_is_a(key, "RSA") == 1) {
    auto n = rsa_member(key, OSSL_PKEY_PARAM_RSA_N);
    if (!n) return unexpected(n.error());
    auto e = rsa_member(key, OSSL_PKEY_PARAM_RSA_E);
    if (!e) return unexpected(e.error());
    jwk["kty"] = "RSA";
    jwk["n"] = *n;
    jwk["e"] = *e;
    return jwk;
  }
  return unexpected(std::string("only EC P-256 and RSA keys have a JWK here"));
}

std::string jwk_thumbprint(const boost::json::object& jwk) {
  // RFC 7638 3.2: required members only, lexicographic order, no whitespace. The values are
  // base64url or fixed names, so they need no JSON escaping; anything else is refused.
  const std::string kty = string_member(jwk, "kty");
  std::vector<std::string_view> names;
  if (kty == "EC") {
    names = {"crv", "kty", "x", "y"};
  } else if (kty == "RSA") {
    names = {"e", "kty", "n"};
  } else if (kty == "OKP") {
    names = {"crv", "kty", "x"};
  } else {
    return {};
  }
  std::string canonical = "{";
  for (const std::string_view name : names) {
    const std::string value = string_member(jwk, name);
    if (value.empty()) return {};
    for (const char c : value)
      if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return {};
    if (canonical.size() > 1) canonical.push_back(',');
    canonical.append("\"").append(name).append("\":\"").append(value).append("\"");
  }
  canonical.push_back('}');
  const Sha256Digest digest = sha256(canonical);
  return base64url_encode(std::span<const unsigned char>(digest.data(), digest.size()));
}

std::string ec_jwk_thumbprint(std::string_view crv, std::string_view x_b64,
                              std::string_view y_b64) {
  std::string canonical = "{\"crv\":\"";
  canonical.append(crv).append("\",\"kty\":\"EC\",\"x\":\"");
  canonical.append(x_b64).append("\",\"y\":\"").append(y_b64).append("\"}");
  const Sha256Digest digest = sha256(canonical);
  return base64url_encode(std::span<const unsigned char>(digest.data(), digest.size()));
}

Expected<std::string, std::string> jws_signature(JwsAlg alg, EVP_PKEY* key,
                                                 std::string_view signing_input) {
  const bool es256 = alg == JwsAlg::ES256;
  if (!es256 && alg != JwsAlg::RS256)
    return unexpected("cannot sign " + std::string(to_string(alg)) + " (ES256 and RS256 only)");
  if (key == nullptr || (es256 ? !is_p256_key(key) : EVP_PKEY_is_a(key, "RSA") != 1))
    return unexpected("the key does not fit " + std::string(to_string(alg)));
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());

  // A context per call: the EVP_PKEY itself is only read, so concurrent calls are safe.
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, key, nullptr) != 1 ||
      (!es256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0))
    return unexpected(std::string(to_string(alg)) + " signing failed: " + openssl_error());

  if (es256) {
    std::array<unsigned char, 80> der{};  // a P-256 DER signature is at most 72 bytes
    std::size_t der_len = der.size();
    if (EVP_DigestSign(ctx.get(), der.data(), &der_len, data, signing_input.size()) != 1)
      return unexpected("ES256 signing failed: " + openssl_error());
    std::array<unsigned char, 2 * kP256CoordBytes> raw{};
    if (!der_to_raw(std::span<const unsigned char>(der.data(), der_len), raw))
      return unexpected(std::string("ES256 signing produced a malformed signature"));
    return base64url_encode(std::span<const unsigned char>(raw));
  }

  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data, signing_input.size()) != 1)
    return unexpected("RS256 signing failed: " + openssl_error());
  std::vector<unsigned char> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data, signing_input.size()) != 1)
    return unexpected("RS256 signing failed: " + openssl_error());
  sig.resize(len);
  return base64url_encode(std::span<const unsigned char>(sig));
}

}  // namespace portcullis
