#include "sso/client_assertion.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "authn/base64url.hpp"
#include "authn/jwk.hpp"
#include "authn/jws.hpp"
#include "authn/jwt_validator.hpp"
#include "core/clock.hpp"

namespace portcullis {
namespace {

namespace json = boost::json;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::string_view kClientId = "portcullis-gateway";
constexpr std::string_view kTokenEndpoint = "https://idp.example/oauth2/v1/token";

// RFC 7515 appendix A.3: the ES256 example key, and its RFC 7638 thumbprint computed outside
// this code base (the same value tests/unit/assertion_signer_test.cpp uses).
constexpr std::string_view kEcX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr std::string_view kEcY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
constexpr std::string_view kEcD = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
constexpr std::string_view kEcThumbprint = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U";

// RFC 7517 appendix A.2: the RSA private key (kid "2011-04-29") whose public part is the
// RFC 7638 section 3.1 example, with the thumbprint given there.
constexpr std::string_view kRsaN =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPe"
    "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368"
    "QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd"
    "2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
constexpr std::string_view kRsaE = "AQAB";
constexpr std::string_view kRsaD =
    "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2"
    "vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_"
    "cPVY3i07"
    "a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsn"
    "n4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q";
constexpr std::string_view kRsaP =
    "83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjM"
    "mCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs";
constexpr std::string_view kRsaQ =
    "3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_N"
    "GEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk";
constexpr std::string_view kRsaDp =
    "G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c8tQ2VF402XRugK"
    "DTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob8YeiKkTiBj0";
constexpr std::string_view kRsaDq =
    "s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7pMdC_agI3nG8Ibp"
    "1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18txXw494Q_cgk";
constexpr std::string_view kRsaQi =
    "GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0KWNGDjJHZDdDmF"
    "hW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6Ia6zTKhAVRU";
constexpr std::string_view kRsaThumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t unix_seconds)
      : now_(std::chrono::sys_seconds(std::chrono::seconds(unix_seconds))) {}
  std::chrono::steady_clock::time_point steady_now() const override { return {}; }
  std::chrono::system_clock::time_point system_now() const override { return now_; }

 private:
  std::chrono::system_clock::time_point now_;
};

// Counts up, so each jti differs and tests stay deterministic.
class CountingRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = next_++;
  }

 private:
  std::uint8_t next_ = 1;
};

struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::vector<unsigned char> b64(std::string_view s) {
  auto r = base64url_decode(s);
  EXPECT_TRUE(r.has_value()) << s;
  return r ? *r : std::vector<unsigned char>{};
}

enum class PemForm { pkcs8, traditional, public_key, encrypted };

std::string pem_of(EVP_PKEY* key, PemForm form = PemForm::pkcs8) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  int ok = 0;
  switch (form) {
    case PemForm::pkcs8:
      ok = PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
      break;
    case PemForm::traditional:
      ok = PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                nullptr);
      break;
    case PemForm::public_key:
      ok = PEM_write_bio_PUBKEY(bio.get(), key);
      break;
    case PemForm::encrypted: {
      static char passphrase[] = "correct horse";
      ok = PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                         passphrase);
      break;
    }
  }
  EXPECT_EQ(ok, 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Pkey keygen(const char* type, const char* curve) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve));
  EXPECT_NE(key, nullptr) << type << " " << curve;
  return key;
}

Pkey rsa_keygen(std::size_t bits) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
  EXPECT_NE(key, nullptr) << "RSA " << bits;
  return key;
}

// A key from OSSL_PARAMs, checked to be a consistent key pair.
Pkey key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* raw = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx, &raw, EVP_PKEY_KEYPAIR, params), 1);
  Pkey key(raw);
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
  EXPECT_EQ(EVP_PKEY_pairwise_check(check), 1) << "the private part does not fit the public one";
  EVP_PKEY_CTX_free(check);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return key;
}

BIGNUM* bn_of(std::string_view b64url) {
  const auto bytes = b64(b64url);
  return BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr);
}

// The RFC 7515 A.3 P-256 key.
Pkey rfc_ec_key() {
  const auto x = b64(kEcX), y = b64(kEcY);
  std::vector<unsigned char> pub{0x04};
  pub.insert(pub.end(), x.begin(), x.end());
  pub.insert(pub.end(), y.begin(), y.end());
  BIGNUM* d = bn_of(kEcD);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
  Pkey key = key_from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  BN_free(d);
  return key;
}

// The RFC 7517 A.2 RSA-2048 key, with all CRT members.
Pkey rfc_rsa_key() {
  const std::array<std::pair<const char*, std::string_view>, 8> members = {{
      {OSSL_PKEY_PARAM_RSA_N, kRsaN},
      {OSSL_PKEY_PARAM_RSA_E, kRsaE},
      {OSSL_PKEY_PARAM_RSA_D, kRsaD},
      {OSSL_PKEY_PARAM_RSA_FACTOR1, kRsaP},
      {OSSL_PKEY_PARAM_RSA_FACTOR2, kRsaQ},
      {OSSL_PKEY_PARAM_RSA_EXPONENT1, kRsaDp},
      {OSSL_PKEY_PARAM_RSA_EXPONENT2, kRsaDq},
      {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, kRsaQi},
  }};
  std::vector<BIGNUM*> bns;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  for (const auto& [name, value] : members) {
    bns.push_back(bn_of(value));
    OSSL_PARAM_BLD_push_BN(bld, name, bns.back());
  }
  Pkey key = key_from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  for (BIGNUM* bn : bns) BN_free(bn);
  return key;
}

// SHA-256 over a hand-built canonical JWK (RFC 7638 3.2), independent of the code under test.
std::string thumbprint_of(const std::string& canonical) {
  std::array<unsigned char, 32> digest{};
  unsigned int len = 0;
  EXPECT_EQ(
      EVP_Digest(canonical.data(), canonical.size(), digest.data(), &len, EVP_sha256(), nullptr),
      1);
  return base64url_encode(std::span<const unsigned char>(digest));
}

std::string bn_param_b64(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1) << name;
  std::vector<unsigned char> bytes(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn)));
  if (pad > 0)
    BN_bn2binpad(bn, bytes.data(), pad);
  else
    BN_bn2bin(bn, bytes.data());
  BN_free(bn);
  return base64url_encode(std::span<const unsigned char>(bytes));
}

std::string expected_ec_thumbprint(EVP_PKEY* key) {
  return thumbprint_of("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" +
                       bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, 32) + "\",\"y\":\"" +
                       bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + "\"}");
}

std::string expected_rsa_thumbprint(EVP_PKEY* key) {
  return thumbprint_of("{\"e\":\"" + bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0) +
                       "\",\"kty\":\"RSA\",\"n\":\"" + bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0) +
                       "\"}");
}

ClientAssertionSigner signer_of(const std::string& pem, std::string kid = {}) {
  auto signer = ClientAssertionSigner::from_pem(pem, std::move(kid));
  EXPECT_TRUE(signer.has_value()) << (signer ? "" : signer.error());
  return std::move(signer).value();
}

std::string sign(const ClientAssertionSigner& signer, RandomSource& random,
                 std::int64_t now = kNow) {
  auto token = signer.sign(kClientId, kTokenEndpoint, now, random);
  EXPECT_TRUE(token.has_value()) << (token ? "" : token.error());
  return token ? *token : std::string();
}

struct Decoded {
  json::object header;
  json::object claims;
  std::vector<unsigned char> signature;
};

Decoded decode(const std::string& token) {
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  EXPECT_NE(dot2, std::string::npos);
  EXPECT_EQ(token.find('.', dot2 + 1), std::string::npos);
  Decoded d;
  d.header = json::parse(base64url_decode_to_string(token.substr(0, dot1)).value()).as_object();
  d.claims =
      json::parse(base64url_decode_to_string(token.substr(dot1 + 1, dot2 - dot1 - 1)).value())
          .as_object();
  d.signature = b64(token.substr(dot2 + 1));
  return d;
}

// Verifies `token` with the project's JWS verifier and the key from the signer's own JWKS.
Expected<JwsAlg, JwtError> verify(const ClientAssertionSigner& signer, const std::string& token) {
  auto keys = JwkSet::parse(signer.public_jwks());
  EXPECT_TRUE(keys.has_value()) << (keys ? "" : keys.error());
  if (!keys) return unexpected(JwtError::internal);
  EXPECT_TRUE((*keys)->warnings().empty());
  const Jwk* key = (*keys)->find(signer.kid());
  EXPECT_NE(key, nullptr);
  if (key == nullptr) return unexpected(JwtError::unknown_kid);
  auto jws = parse_jws(token);
  if (!jws) return unexpected(jws.error());
  return verify_signature(*jws, *key);
}

// What an IdP checks (RFC 7523 section 3): iss and aud, exp, signature by the registered key.
JwtValidator idp_validator() {
  JwtValidatorConfig config;
  config.issuer = std::string(kClientId);
  config.audiences = {std::string(kTokenEndpoint)};
  config.algorithms = {JwsAlg::ES256, JwsAlg::RS256};
  config.clock_skew = std::chrono::seconds(0);
  config.required_typ = "JWT";
  auto v = JwtValidator::create(std::move(config));
  EXPECT_TRUE(v.has_value());
  return std::move(v).value();
}

void expect_header_and_claims(const ClientAssertionSigner& signer, const std::string& token) {
  const Decoded d = decode(token);
  EXPECT_EQ(d.header, (json::object{{"alg", signer.alg()}, {"typ", "JWT"}, {"kid", signer.kid()}}));
  EXPECT_EQ(d.claims.at("iss").as_string(), kClientId);
  EXPECT_EQ(d.claims.at("sub").as_string(), kClientId);
  EXPECT_EQ(d.claims.at("aud").as_string(), kTokenEndpoint);
  EXPECT_EQ(d.claims.at("iat"), kNow);
  EXPECT_EQ(d.claims.at("exp"), kNow + 60);
  ASSERT_TRUE(d.claims.at("jti").is_string());
  EXPECT_EQ(b64(d.claims.at("jti").as_string()).size(), 16u);
  EXPECT_EQ(d.claims.size(), 6u);
}

std::string refusal(const std::string& pem) {
  auto signer = ClientAssertionSigner::from_pem(pem);
  EXPECT_FALSE(signer.has_value());
  return signer ? std::string() : signer.error();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---- ES256 ----------------------------------------------------------------------------------

TEST(ClientAssertionEs256, Rfc7515KeyGetsItsRfc7638ThumbprintAndExactJwks) {
  const Pkey key = rfc_ec_key();
  const ClientAssertionSigner signer = signer_of(pem_of(key.get()));
  EXPECT_EQ(signer.alg(), "ES256");
  EXPECT_EQ(signer.kid(), kEcThumbprint);
  EXPECT_EQ(signer.kid(), expected_ec_thumbprint(key.get()));

  const json::value doc = json::parse(signer.public_jwks());
  const auto& keys = doc.at("keys").as_array();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].as_object(), (json::object{{"kty", "EC"},
                                               {"crv", "P-256"},
                                               {"x", kEcX},
                                               {"y", kEcY},
                                               {"kid", kEcThumbprint},
                                               {"alg", "ES256"},
                                               {"use", "sig"}}));
}

TEST(ClientAssertionEs256, SignsARawSignatureThatTheJwsVerifierAccepts) {
  const ClientAssertionSigner signer = signer_of(pem_of(rfc_ec_key().get()));
  CountingRandom random;
  const std::string token = sign(signer, random);
  expect_header_and_claims(signer, token);
  EXPECT_EQ(decode(token).signature.size(), 64u);  // JOSE r||s, not DER (70..72 bytes)

  auto verified = verify(signer, token);
  ASSERT_TRUE(verified.has_value()) << to_string(verified.error());
  EXPECT_EQ(*verified, JwsAlg::ES256);
}

TEST(ClientAssertionEs256, GeneratedKeyVerifiesAsTheIdpWould) {
  const Pkey key = keygen("EC", "P-256");
  const ClientAssertionSigner signer = signer_of(pem_of(key.get()));
  EXPECT_EQ(signer.kid(), expected_ec_thumbprint(key.get()));
  CountingRandom random;
  const std::string token = sign(signer, random);
  expect_header_and_claims(signer, token);

  auto keys = JwkSet::parse(signer.public_jwks());
  ASSERT_TRUE(keys.has_value());
  auto ok = idp_validator().validate(token, **keys, FakeClock(kNow + 59));
  ASSERT_TRUE(ok.has_value()) << to_string(ok.error());
  EXPECT_EQ(ok->alg, JwsAlg::ES256);
  EXPECT_EQ(ok->kid, signer.kid());
  EXPECT_EQ(ok->exp, kNow + 60);
  EXPECT_EQ(idp_validator().validate(token, **keys, FakeClock(kNow + 60)).error(),
            JwtError::expired);
}

TEST(ClientAssertionEs256, TraditionalSec1PemIsTheSameKey) {
  const Pkey key = keygen("EC", "P-256");
  const std::string traditional = pem_of(key.get(), PemForm::traditional);
  ASSERT_NE(traditional.find("BEGIN EC PRIVATE KEY"), std::string::npos);
  const ClientAssertionSigner a = signer_of(traditional);
  const ClientAssertionSigner b = signer_of(pem_of(key.get()));
  EXPECT_EQ(a.kid(), b.kid());
  EXPECT_EQ(a.public_jwks(), b.public_jwks());
  CountingRandom random;
  EXPECT_TRUE(verify(b, sign(a, random)).has_value());
}

// ---- RS256 ----------------------------------------------------------------------------------

TEST(ClientAssertionRs256, Rfc7517KeyGetsTheRfc7638Thumbprint) {
  const Pkey key = rfc_rsa_key();
  const ClientAssertionSigner signer = signer_of(pem_of(key.get()));
  EXPECT_EQ(signer.alg(), "RS256");
  EXPECT_EQ(signer.kid(), kRsaThumbprint);  // RFC 7638 section 3.1
  EXPECT_EQ(signer.kid(), expected_rsa_thumbprint(key.get()));

  const json::value doc = json::parse(signer.public_jwks());
  const auto& keys = doc.at("keys").as_array();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].as_object(), (json::object{{"kty", "RSA"},
                                               {"n", kRsaN},
                                               {"e", kRsaE},
                                               {"kid", kRsaThumbprint},
                                               {"alg", "RS256"},
                                               {"use", "sig"}}));
}

TEST(ClientAssertionRs256, SignsPkcs1V15Sha256ThatTheJwsVerifierAccepts) {
  const Pkey key = rfc_rsa_key();
  const ClientAssertionSigner signer = signer_of(pem_of(key.get()));
  CountingRandom random;
  const std::string token = sign(signer, random);
  expect_header_and_claims(signer, token);

  auto verified = verify(signer, token);
  ASSERT_TRUE(verified.has_value()) << to_string(verified.error());
  EXPECT_EQ(*verified, JwsAlg::RS256);

  // RSASSA-PKCS1-v1_5 is deterministic: the same bytes as OpenSSL signing directly.
  const std::string input = token.substr(0, token.rfind('.'));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), nullptr, key.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
  std::vector<unsigned char> expected(256);
  std::size_t len = expected.size();
  ASSERT_EQ(EVP_DigestSign(ctx, expected.data(), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  EVP_MD_CTX_free(ctx);
  expected.resize(len);
  EXPECT_EQ(decode(token).signature, expected);
}

TEST(ClientAssertionRs256, Generated2048BitKeyVerifiesAsTheIdpWould) {
  const Pkey key = rsa_keygen(2048);
  const ClientAssertionSigner signer = signer_of(pem_of(key.get()));
  EXPECT_EQ(signer.alg(), "RS256");
  EXPECT_EQ(signer.kid(), expected_rsa_thumbprint(key.get()));
  CountingRandom random;
  const std::string token = sign(signer, random);
  expect_header_and_claims(signer, token);
  EXPECT_EQ(decode(token).signature.size(), 256u);

  auto keys = JwkSet::parse(signer.public_jwks());
  ASSERT_TRUE(keys.has_value());
  auto ok = idp_validator().validate(token, **keys, FakeClock(kNow));
  ASSERT_TRUE(ok.has_value()) << to_string(ok.error());
  EXPECT_EQ(ok->alg, JwsAlg::RS256);
  EXPECT_EQ(ok->claims.at("sub").as_string(), kClientId);
}

TEST(ClientAssertionRs256, TraditionalPkcs1PemIsTheSameKey) {
  const Pkey key = rfc_rsa_key();
  const std::string traditional = pem_of(key.get(), PemForm::traditional);
  ASSERT_NE(traditional.find("BEGIN RSA PRIVATE KEY"), std::string::npos);
  const ClientAssertionSigner signer = signer_of(traditional);
  EXPECT_EQ(signer.kid(), kRsaThumbprint);
  CountingRandom random;
  EXPECT_TRUE(verify(signer, sign(signer, random)).has_value());
}

// ---- Both -----------------------------------------------------------------------------------

TEST(ClientAssertionSigner, ExplicitKidIsKeptInHeaderAndJwks) {
  for (const std::string& pem : {pem_of(rfc_ec_key().get()), pem_of(rfc_rsa_key().get())}) {
    const ClientAssertionSigner signer = signer_of(pem, "gateway-2024-06");
    EXPECT_EQ(signer.kid(), "gateway-2024-06");
    const json::value doc = json::parse(signer.public_jwks());
    EXPECT_EQ(doc.at("keys").as_array().at(0).at("kid"), "gateway-2024-06");
    CountingRandom random;
    const std::string token = sign(signer, random);
    EXPECT_EQ(decode(token).header.at("kid"), "gateway-2024-06");
    auto verified = verify(signer, token);  // found in the JWKS by that kid
    EXPECT_TRUE(verified.has_value());
  }
}

TEST(ClientAssertionSigner, JtiIsSixteenRandomBytesAndDiffersPerCall) {
  const ClientAssertionSigner signer = signer_of(pem_of(rfc_ec_key().get()));
  CountingRandom random;
  const json::value first = decode(sign(signer, random)).claims.at("jti");
  const json::value second = decode(sign(signer, random)).claims.at("jti");
  EXPECT_NE(first, second);
  std::array<unsigned char, 16> expected{};
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<unsigned char>(i + 1);
  EXPECT_EQ(first.as_string(), base64url_encode(std::span<const unsigned char>(expected)));

  // With the production CSPRNG too.
  OpenSslRandom csprng;
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i)
    seen.insert(std::string(decode(sign(signer, csprng)).claims.at("jti").as_string()));
  EXPECT_EQ(seen.size(), 20u);
}

TEST(ClientAssertionSigner, ATokenDoesNotVerifyWithAnotherKeyOrAfterTampering) {
  const ClientAssertionSigner a = signer_of(pem_of(keygen("EC", "P-256").get()));
  const ClientAssertionSigner b = signer_of(pem_of(keygen("EC", "P-256").get()), a.kid());
  CountingRandom random;
  const std::string token = sign(a, random);
  ASSERT_TRUE(verify(a, token).has_value());
  EXPECT_EQ(verify(b, token).error(), JwtError::bad_signature);

  Decoded d = decode(token);
  d.claims["sub"] = "someone-else";
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  const std::string forged =
      token.substr(0, dot1 + 1) + base64url_encode(json::serialize(d.claims)) + token.substr(dot2);
  EXPECT_EQ(verify(a, forged).error(), JwtError::bad_signature);
}

TEST(ClientAssertionSigner, RefusesEmptyClientIdOrAudience) {
  const ClientAssertionSigner signer = signer_of(pem_of(rfc_ec_key().get()));
  CountingRandom random;
  EXPECT_FALSE(signer.sign("", kTokenEndpoint, kNow, random).has_value());
  EXPECT_FALSE(signer.sign(kClientId, "", kNow, random).has_value());
  EXPECT_TRUE(signer.sign(kClientId, kTokenEndpoint, kNow, random).has_value());
}

TEST(ClientAssertionSigner, CopiesShareTheKeyAndOutliveTheOriginal) {
  std::unique_ptr<ClientAssertionSigner> original =
      std::make_unique<ClientAssertionSigner>(signer_of(pem_of(rfc_rsa_key().get())));
  const ClientAssertionSigner copy = *original;
  ClientAssertionSigner assigned = signer_of(pem_of(rfc_ec_key().get()));
  assigned = copy;
  original.reset();
  CountingRandom random;
  EXPECT_EQ(copy.kid(), kRsaThumbprint);
  EXPECT_EQ(assigned.alg(), "RS256");
  EXPECT_TRUE(verify(copy, sign(copy, random)).has_value());
  EXPECT_TRUE(verify(assigned, sign(assigned, random)).has_value());
}

TEST(ClientAssertionSigner, ConcurrentSigningFromFourThreads) {
  for (const std::string& pem :
       {pem_of(keygen("EC", "P-256").get()), pem_of(rfc_rsa_key().get())}) {
    const ClientAssertionSigner signer = signer_of(pem);
    auto keys = JwkSet::parse(signer.public_jwks());
    ASSERT_TRUE(keys.has_value());
    const JwtValidator v = idp_validator();
    constexpr int kThreads = 4;
    constexpr int kPerThread = 25;
    std::atomic<int> verified{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        CountingRandom random;  // RandomSource is per worker
        const FakeClock clock(kNow);
        for (int i = 0; i < kPerThread; ++i) {
          auto token = signer.sign(kClientId, kTokenEndpoint, kNow, random);
          if (token && v.validate(*token, **keys, clock)) ++verified;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(verified.load(), kThreads * kPerThread) << signer.alg();
  }
}

// ---- Refused keys ---------------------------------------------------------------------------

TEST(ClientAssertionKeys, RefusesP384) {
  const std::string why = refusal(pem_of(keygen("EC", "P-384").get()));
  EXPECT_NE(why.find("secp384r1"), std::string::npos) << why;
  EXPECT_NE(why.find("P-256"), std::string::npos) << why;
}

TEST(ClientAssertionKeys, RefusesEd25519) {
  const std::string why = refusal(pem_of(keygen("ED25519", nullptr).get()));
  EXPECT_NE(lower(why).find("ed25519"), std::string::npos) << why;
  EXPECT_NE(why.find("not supported"), std::string::npos) << why;
}

TEST(ClientAssertionKeys, RefusesRsaBelow2048Bits) {
  const std::string why = refusal(pem_of(rsa_keygen(1024).get()));
  EXPECT_NE(why.find("1024"), std::string::npos) << why;
  EXPECT_NE(why.find("2048"), std::string::npos) << why;
}

TEST(ClientAssertionKeys, RefusesGarbageAndEmptyInput) {
  for (const std::string& junk :
       {std::string("not a pem"), std::string(),
        std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}) {
    const std::string why = refusal(junk);
    EXPECT_NE(why.find("not a private key PEM"), std::string::npos) << why;
  }
}

TEST(ClientAssertionKeys, RefusesPublicKeysSayingSo) {
  for (const std::string& pem : {pem_of(rfc_ec_key().get(), PemForm::public_key),
                                 pem_of(rfc_rsa_key().get(), PemForm::public_key)}) {
    ASSERT_NE(pem.find("BEGIN PUBLIC KEY"), std::string::npos);
    const std::string why = refusal(pem);
    EXPECT_NE(why.find("public key"), std::string::npos) << why;
  }
}

TEST(ClientAssertionKeys, RefusesEncryptedKeysWithoutPrompting) {
  const std::string pem = pem_of(rfc_ec_key().get(), PemForm::encrypted);
  ASSERT_NE(pem.find("BEGIN ENCRYPTED PRIVATE KEY"), std::string::npos);
  const std::string why = refusal(pem);
  EXPECT_NE(why.find("encrypted"), std::string::npos) << why;
}

}  // namespace
}  // namespace portcullis
