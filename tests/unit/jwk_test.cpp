#include "authn/jwk.hpp"

#include <gtest/gtest.h>

#include <string>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

// RFC 7515 appendix A.2 (RSA, 2048 bits).
constexpr std::string_view kRfc7515RsaN =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4"
    "QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdb"
    "BYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-D"
    "WNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
// RFC 7515 appendix A.3 (P-256).
constexpr std::string_view kP256X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr std::string_view kP256Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
constexpr std::string_view kP256D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
// RFC 7520 section 3.1/3.2 (P-521).
constexpr std::string_view kP521X =
    "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt";
constexpr std::string_view kP521Y =
    "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1";
// RFC 8037 appendix A (Ed25519).
constexpr std::string_view kEd25519X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
// RFC 7520 section 3.5 (symmetric).
constexpr std::string_view kOctK = "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg";

std::string rsa_jwk(std::string_view extra = "") {
  return std::string(R"({"kty":"RSA","n":")") + std::string(kRfc7515RsaN) + R"(","e":"AQAB")" +
         std::string(extra) + "}";
}
std::string p256_jwk(std::string_view extra = "", std::string_view y = kP256Y) {
  return std::string(R"({"kty":"EC","crv":"P-256","x":")") + std::string(kP256X) + R"(","y":")" +
         std::string(y) + "\"" + std::string(extra) + "}";
}
std::string p521_jwk(std::string_view extra = "") {
  return std::string(R"({"kty":"EC","crv":"P-521","x":")") + std::string(kP521X) + R"(","y":")" +
         std::string(kP521Y) + "\"" + std::string(extra) + "}";
}
std::string ed25519_jwk(std::string_view extra = "") {
  return std::string(R"({"kty":"OKP","crv":"Ed25519","x":")") + std::string(kEd25519X) + "\"" +
         std::string(extra) + "}";
}
std::string jwks(std::initializer_list<std::string> keys) {
  std::string out = R"({"keys":[)";
  bool first = true;
  for (const auto& k : keys) {
    if (!first) out += ",";
    out += k;
    first = false;
  }
  return out + "]}";
}

Expected<Jwk, std::string> one(const std::string& json) {
  boost::json::value v = boost::json::parse(json);
  return Jwk::from_json(v.as_object());
}

// A freshly generated RSA public key of `bits` as a JWK.
std::string generated_rsa_jwk(unsigned bits) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  EXPECT_NE(key, nullptr);
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e);
  std::vector<unsigned char> nb(BN_num_bytes(n)), eb(BN_num_bytes(e));
  BN_bn2bin(n, nb.data());
  BN_bn2bin(e, eb.data());
  BN_free(n);
  BN_free(e);
  EVP_PKEY_free(key);
  return R"({"kty":"RSA","kid":"small","n":")" + base64url_encode(nb) + R"(","e":")" +
         base64url_encode(eb) + "\"}";
}

TEST(Jwk, ParsesEachSupportedKeyType) {
  auto rsa = one(rsa_jwk(R"(,"kid":"r1","use":"sig","alg":"RS256")"));
  ASSERT_TRUE(rsa) << rsa.error();
  EXPECT_EQ(rsa->kty(), JwkType::rsa);
  EXPECT_EQ(rsa->kid(), "r1");
  EXPECT_EQ(rsa->use(), "sig");
  EXPECT_EQ(rsa->alg(), JwsAlg::RS256);
  EXPECT_EQ(rsa->bits(), 2048);
  EXPECT_NE(rsa->pkey(), nullptr);

  auto p256 = one(p256_jwk());
  ASSERT_TRUE(p256) << p256.error();
  EXPECT_EQ(p256->kty(), JwkType::ec);
  EXPECT_EQ(p256->crv(), JwkCurve::p256);
  EXPECT_EQ(p256->bits(), 256);
  EXPECT_TRUE(p256->kid().empty());
  EXPECT_FALSE(p256->alg().has_value());

  auto p521 = one(p521_jwk());
  ASSERT_TRUE(p521) << p521.error();
  EXPECT_EQ(p521->crv(), JwkCurve::p521);
  EXPECT_EQ(p521->bits(), 521);

  auto ed = one(ed25519_jwk());
  ASSERT_TRUE(ed) << ed.error();
  EXPECT_EQ(ed->kty(), JwkType::okp);
  EXPECT_EQ(ed->crv(), JwkCurve::ed25519);
}

TEST(Jwk, UsableWithChecksTypeCurveAndOwnAlg) {
  auto rsa = one(rsa_jwk());
  ASSERT_TRUE(rsa);
  for (JwsAlg a :
       {JwsAlg::RS256, JwsAlg::RS384, JwsAlg::RS512, JwsAlg::PS256, JwsAlg::PS384, JwsAlg::PS512})
    EXPECT_TRUE(rsa->usable_with(a)) << to_string(a);
  for (JwsAlg a : {JwsAlg::ES256, JwsAlg::ES384, JwsAlg::ES512, JwsAlg::EdDSA})
    EXPECT_FALSE(rsa->usable_with(a)) << to_string(a);

  auto pinned = one(rsa_jwk(R"(,"alg":"RS256")"));
  ASSERT_TRUE(pinned);
  EXPECT_TRUE(pinned->usable_with(JwsAlg::RS256));
  EXPECT_FALSE(pinned->usable_with(JwsAlg::PS256));
  EXPECT_FALSE(pinned->usable_with(JwsAlg::RS512));

  auto p256 = one(p256_jwk());
  ASSERT_TRUE(p256);
  EXPECT_TRUE(p256->usable_with(JwsAlg::ES256));
  EXPECT_FALSE(p256->usable_with(JwsAlg::ES384));
  EXPECT_FALSE(p256->usable_with(JwsAlg::ES512));
  EXPECT_FALSE(p256->usable_with(JwsAlg::RS256));

  auto p521 = one(p521_jwk());
  ASSERT_TRUE(p521);
  EXPECT_TRUE(p521->usable_with(JwsAlg::ES512));
  EXPECT_FALSE(p521->usable_with(JwsAlg::ES256));

  auto ed = one(ed25519_jwk());
  ASSERT_TRUE(ed);
  EXPECT_TRUE(ed->usable_with(JwsAlg::EdDSA));
  EXPECT_FALSE(ed->usable_with(JwsAlg::ES256));
}

TEST(Jwk, AlgNamesRoundTripAndNoneOrHmacIsNotAnAlg) {
  for (JwsAlg a : {JwsAlg::RS256, JwsAlg::RS384, JwsAlg::RS512, JwsAlg::PS256, JwsAlg::PS384,
                   JwsAlg::PS512, JwsAlg::ES256, JwsAlg::ES384, JwsAlg::ES512, JwsAlg::EdDSA})
    EXPECT_EQ(parse_jws_alg(to_string(a)), a);
  for (std::string_view bad :
       {"none", "HS256", "HS384", "HS512", "rs256", "ES256K", "Ed25519", "RSA1_5", ""})
    EXPECT_FALSE(parse_jws_alg(bad).has_value()) << bad;
}

TEST(Jwk, RefusesKeysThatDoNotFitTheirAlg) {
  EXPECT_FALSE(one(rsa_jwk(R"(,"alg":"ES256")")));
  EXPECT_FALSE(one(rsa_jwk(R"(,"alg":"HS256")")));
  EXPECT_FALSE(one(p256_jwk(R"(,"alg":"ES384")")));
  EXPECT_FALSE(one(ed25519_jwk(R"(,"alg":"ES256")")));
  EXPECT_TRUE(one(ed25519_jwk(R"(,"alg":"EdDSA")")));
}

TEST(Jwk, RefusesPrivateMembers) {
  auto with_d = one(p256_jwk(R"(,"d":")" + std::string(kP256D) + "\""));
  ASSERT_FALSE(with_d);
  EXPECT_NE(with_d.error().find("\"d\""), std::string::npos);
  EXPECT_EQ(with_d.error().find(kP256D), std::string::npos) << "no key material in errors";
  EXPECT_FALSE(one(rsa_jwk(R"(,"p":"AQAB")")));
  EXPECT_FALSE(one(rsa_jwk(R"(,"qi":"AQAB")")));
}

TEST(Jwk, RefusesWrongUseAndKeyOps) {
  EXPECT_FALSE(one(rsa_jwk(R"(,"use":"enc")")));
  EXPECT_FALSE(one(rsa_jwk(R"(,"use":7)")));
  EXPECT_FALSE(one(rsa_jwk(R"(,"key_ops":["sign"])")));
  EXPECT_FALSE(one(rsa_jwk(R"(,"key_ops":"verify")")));
  EXPECT_TRUE(one(rsa_jwk(R"(,"key_ops":["verify"])")));
}

TEST(Jwk, RefusesWeakOrOddRsaKeys) {
  auto small = one(generated_rsa_jwk(1024));
  ASSERT_FALSE(small);
  EXPECT_NE(small.error().find("1024"), std::string::npos);
  EXPECT_FALSE(one(R"({"kty":"RSA","n":")" + std::string(kRfc7515RsaN) + R"(","e":"AQ"})"));  // e=1
  EXPECT_FALSE(
      one(R"({"kty":"RSA","n":")" + std::string(kRfc7515RsaN) + R"(","e":"Ag"})"));  // even
  EXPECT_FALSE(one(R"({"kty":"RSA","e":"AQAB"})"));
  EXPECT_FALSE(one(R"({"kty":"RSA","n":"AQAB=","e":"AQAB"})"));  // not strict base64url
}

TEST(Jwk, RefusesPointsOffTheCurveAndWrongCoordinateLengths) {
  std::string y(kP256Y);
  y[10] = y[10] == 'A' ? 'B' : 'A';
  auto off = one(p256_jwk("", y));
  ASSERT_FALSE(off);
  EXPECT_FALSE(one(p256_jwk("", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")));  // y = 0
  EXPECT_FALSE(one(p256_jwk("", kP256Y.substr(0, 42))));                           // 31 bytes
  EXPECT_FALSE(one(R"({"kty":"EC","crv":"P-256","x":")" + std::string(kP521X) + R"(","y":")" +
                   std::string(kP521Y) + "\"}"));  // P-521 coordinates on P-256
  EXPECT_FALSE(one(R"({"kty":"OKP","crv":"Ed25519","x":"AQAB"})"));
}

TEST(Jwk, RefusesUnknownTypesAndCurves) {
  EXPECT_FALSE(one(R"({"kty":"EC","crv":"P-192","x":"AA","y":"AA"})"));
  EXPECT_FALSE(one(R"({"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"})"));
  EXPECT_FALSE(one(R"({"kty":"OKP","crv":"X25519","x":")" + std::string(kEd25519X) + "\"}"));
  EXPECT_FALSE(one(R"({"kty":"OKP","crv":"Ed448","x":"AA"})"));
  EXPECT_FALSE(one(R"({"kty":"DSA"})"));
  EXPECT_FALSE(one(R"({"n":"AQAB"})"));
  EXPECT_FALSE(one(R"({"kty":1})"));
}

TEST(JwkSet, ParsesASetFindsByKidAndIterates) {
  auto set = JwkSet::parse(jwks({rsa_jwk(R"(,"kid":"rsa-1")"), p256_jwk(R"(,"kid":"ec-1")"),
                                 ed25519_jwk(R"(,"kid":"ed-1")"), p521_jwk()}));
  ASSERT_TRUE(set) << set.error();
  const JwkSet& s = **set;
  EXPECT_EQ(s.size(), 4u);
  EXPECT_TRUE(s.warnings().empty());
  ASSERT_NE(s.find("ec-1"), nullptr);
  EXPECT_EQ(s.find("ec-1")->crv(), JwkCurve::p256);
  EXPECT_EQ(s.find("nope"), nullptr);
  EXPECT_EQ(s.find(""), nullptr);
  int n = 0;
  for (const Jwk& k : s) {
    EXPECT_NE(k.pkey(), nullptr);
    ++n;
  }
  EXPECT_EQ(n, 4);
}

TEST(JwkSet, SkipsUnusableKeysWithWarnings) {
  auto set = JwkSet::parse(jwks({
      rsa_jwk(R"(,"kid":"good")"),
      rsa_jwk(R"(,"kid":"enc","use":"enc")"),
      p256_jwk(R"(,"kid":"private","d":")" + std::string(kP256D) + "\""),
      R"({"kty":"EC","kid":"k1","crv":"secp256k1","x":"AA","y":"AA"})",
      R"({"kty":"PQC","kid":"future"})",
      generated_rsa_jwk(1024),
      "42",
  }));
  ASSERT_TRUE(set) << set.error();
  EXPECT_EQ((*set)->size(), 1u);
  EXPECT_NE((*set)->find("good"), nullptr);
  const auto& w = (*set)->warnings();
  ASSERT_EQ(w.size(), 6u);
  EXPECT_NE(w[0].find("enc"), std::string::npos);
  EXPECT_NE(w[1].find("private"), std::string::npos);
  EXPECT_NE(w[1].find("\"d\""), std::string::npos);
  EXPECT_NE(w[4].find("small"), std::string::npos);
  for (const auto& line : w) EXPECT_EQ(line.find(kP256D), std::string::npos) << line;
}

TEST(JwkSet, RefusesASetWithASymmetricKey) {
  auto set = JwkSet::parse(jwks(
      {rsa_jwk(R"(,"kid":"good")"), R"({"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037",)"
                                    R"("use":"sig","alg":"HS256","k":")" +
                                        std::string(kOctK) + "\"}"}));
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().find("oct"), std::string::npos);
  EXPECT_EQ(set.error().find(kOctK), std::string::npos);
}

TEST(JwkSet, RefusesASetWithoutUsableKeys) {
  EXPECT_FALSE(JwkSet::parse(R"({"keys":[]})"));
  auto only_small = JwkSet::parse(jwks({generated_rsa_jwk(1024)}));
  ASSERT_FALSE(only_small);
  EXPECT_NE(only_small.error().find("1024"), std::string::npos);
}

TEST(JwkSet, RefusesDocumentsThatAreNotAKeySet) {
  EXPECT_FALSE(JwkSet::parse(""));
  EXPECT_FALSE(JwkSet::parse("{"));
  EXPECT_FALSE(JwkSet::parse("[]"));
  EXPECT_FALSE(JwkSet::parse(R"({"keys":{}})"));
  EXPECT_FALSE(JwkSet::parse(rsa_jwk()));  // a single JWK is not a set
}

}  // namespace
}  // namespace portcullis
