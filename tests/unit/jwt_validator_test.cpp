#include "authn/jwt_validator.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

namespace json = boost::json;
using Bytes = std::vector<unsigned char>;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::string_view kIssuer = "https://issuer.example/oauth2/default";
constexpr std::string_view kAudience = "api://mesh";

class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t unix_seconds)
      : now_(std::chrono::sys_seconds(std::chrono::seconds(unix_seconds))) {}
  std::chrono::steady_clock::time_point steady_now() const override { return {}; }
  std::chrono::system_clock::time_point system_now() const override { return now_; }

 private:
  std::chrono::system_clock::time_point now_;
};

// ---- Key generation, JWK export and signing with OpenSSL (test side only) ------------------

Bytes bn_bytes(const BIGNUM* bn, int pad = 0) {
  Bytes out(pad ? pad : BN_num_bytes(bn));
  if (pad)
    BN_bn2binpad(bn, out.data(), pad);
  else
    BN_bn2bin(bn, out.data());
  return out;
}

Bytes bn_param(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1) << name;
  Bytes out = bn_bytes(bn, pad);
  BN_free(bn);
  return out;
}

int ec_field_bytes(EVP_PKEY* key) {
  return (EVP_PKEY_get_bits(key) + 7) / 8;
}

json::object public_jwk(EVP_PKEY* key, std::string_view kid) {
  json::object jwk;
  if (!kid.empty()) jwk["kid"] = kid;
  if (EVP_PKEY_is_a(key, "RSA")) {
    jwk["kty"] = "RSA";
    jwk["n"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_RSA_N));
    jwk["e"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_RSA_E));
  } else if (EVP_PKEY_is_a(key, "EC")) {
    const int bits = EVP_PKEY_get_bits(key);
    jwk["kty"] = "EC";
    jwk["crv"] = bits == 256 ? "P-256" : bits == 384 ? "P-384" : "P-521";
    jwk["x"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, ec_field_bytes(key)));
    jwk["y"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, ec_field_bytes(key)));
  } else {
    Bytes x(32);
    std::size_t len = x.size();
    EXPECT_EQ(EVP_PKEY_get_raw_public_key(key, x.data(), &len), 1);
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = base64url_encode(x);
  }
  return jwk;
}

const EVP_MD* md_for(std::string_view alg) {
  if (alg.ends_with("256")) return EVP_sha256();
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return nullptr;
}

// Signs like a JOSE implementation would, for any of our algorithms (ES*: DER -> raw r||s).
Bytes sign(EVP_PKEY* key, std::string_view alg, std::string_view input,
           int pss_salt = RSA_PSS_SALTLEN_DIGEST, const EVP_MD* mgf1 = nullptr) {
  const EVP_MD* md = md_for(alg);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EXPECT_EQ(EVP_DigestSignInit(ctx, &pctx, alg == "EdDSA" ? nullptr : md, nullptr, key), 1);
  if (alg.starts_with("PS")) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt);
    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf1 ? mgf1 : md);
  }
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t len = 0;
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &len, data, input.size()), 1);
  Bytes sig(len);
  EXPECT_EQ(EVP_DigestSign(ctx, sig.data(), &len, data, input.size()), 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!alg.starts_with("ES")) return sig;
  const unsigned char* p = sig.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  const int field = ec_field_bytes(key);
  Bytes raw = bn_bytes(ECDSA_SIG_get0_r(es), field);
  Bytes s = bn_bytes(ECDSA_SIG_get0_s(es), field);
  raw.insert(raw.end(), s.begin(), s.end());
  ECDSA_SIG_free(es);
  return raw;
}

Bytes hmac_sha256(const Bytes& secret, std::string_view input) {
  Bytes out(32);
  std::size_t len = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                      reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                      out.data(), out.size(), &len),
            nullptr);
  return out;
}

Bytes public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  Bytes out(data, data + len);
  BIO_free(bio);
  return out;
}

Bytes public_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string b64(std::string_view s) {
  return base64url_encode(s);
}

struct TestKeys {
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
  EVP_PKEY* rsa2 = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
  EVP_PKEY* attacker = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
  EVP_PKEY* p256 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "prime256v1");
  EVP_PKEY* p384 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp384r1");
  EVP_PKEY* p521 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp521r1");
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  std::shared_ptr<const JwkSet> set;

  TestKeys() {
    json::array members;
    for (auto [key, kid] : {std::pair{rsa, "rsa"}, std::pair{rsa2, "rsa2"}, std::pair{p256, "p256"},
                            std::pair{p384, "p384"}, std::pair{p521, "p521"}, std::pair{ed, "ed"}})
      members.push_back(public_jwk(key, kid));
    auto parsed = JwkSet::parse(json::serialize(json::object{{"keys", members}}));
    EXPECT_TRUE(parsed) << parsed.error();
    set = *parsed;
  }
};

// Generated once for the whole binary (RSA key generation is slow); never freed.
const TestKeys& keys() {
  static const TestKeys* k = new TestKeys();
  return *k;
}

struct Case {
  std::string_view alg;
  EVP_PKEY* key;
  std::string_view kid;
};
std::vector<Case> every_algorithm() {
  const TestKeys& k = keys();
  return {{"RS256", k.rsa, "rsa"},   {"RS384", k.rsa, "rsa"},   {"RS512", k.rsa, "rsa"},
          {"PS256", k.rsa, "rsa"},   {"PS384", k.rsa, "rsa"},   {"PS512", k.rsa, "rsa"},
          {"ES256", k.p256, "p256"}, {"ES384", k.p384, "p384"}, {"ES512", k.p521, "p521"},
          {"EdDSA", k.ed, "ed"}};
}

json::object claims() {
  return json::object{{"iss", kIssuer},
                      {"aud", kAudience},
                      {"sub", "alice"},
                      {"exp", kNow + 300},
                      {"iat", kNow - 10},
                      {"nbf", kNow - 10},
                      {"scp", json::array{"orders:read"}}};
}

std::string token(EVP_PKEY* key, std::string_view alg, json::object header,
                  const json::object& body, std::string_view signing_alg = "") {
  if (!header.contains("alg")) header["alg"] = alg;
  const std::string input = b64(json::serialize(header)) + "." + b64(json::serialize(body));
  return input + "." + base64url_encode(sign(key, signing_alg.empty() ? alg : signing_alg, input));
}

std::string token(const Case& c, const json::object& body = claims()) {
  return token(c.key, c.alg, json::object{{"kid", c.kid}, {"typ", "at+jwt"}}, body);
}

std::string rs256(const json::object& body, std::string_view kid = "rsa") {
  return token(Case{"RS256", keys().rsa, kid}, body);
}

JwtValidatorConfig config() {
  JwtValidatorConfig c;
  c.issuer = kIssuer;
  c.audiences = {"api://other", std::string(kAudience)};
  c.algorithms = {JwsAlg::RS256, JwsAlg::RS384, JwsAlg::RS512, JwsAlg::PS256, JwsAlg::PS384,
                  JwsAlg::PS512, JwsAlg::ES256, JwsAlg::ES384, JwsAlg::ES512, JwsAlg::EdDSA};
  c.clock_skew = std::chrono::seconds(60);
  return c;
}

JwtValidator validator(JwtValidatorConfig c = config()) {
  auto v = JwtValidator::create(std::move(c));
  EXPECT_TRUE(v) << v.error();
  return std::move(*v);
}

Expected<VerifiedToken, JwtError> check(std::string_view t, const JwtValidator& v = validator(),
                                        std::int64_t now = kNow) {
  return v.validate(t, *keys().set, FakeClock(now));
}

JwtError error_of(std::string_view t, const JwtValidator& v = validator(),
                  std::int64_t now = kNow) {
  auto r = check(t, v, now);
  EXPECT_FALSE(r) << "accepted: " << t;
  return r ? JwtError::internal : r.error();
}

template <class T>
json::object with(json::object o, std::string_view key, T&& v) {
  o[key] = json::value_from(std::forward<T>(v));
  return o;
}
json::object without(json::object o, std::string_view key) {
  o.erase(key);
  return o;
}

// Flips one bit of the decoded part `index` (0 header, 1 payload, 2 signature).
std::string flip_bit(std::string_view t, int index, std::size_t byte, unsigned char mask) {
  auto parts = split_compact_jws(t, kDefaultMaxTokenBytes);
  EXPECT_TRUE(parts);
  std::string out[3] = {std::string(parts->header), std::string(parts->payload),
                        std::string(parts->signature)};
  auto decoded = base64url_decode(out[index]);
  EXPECT_TRUE(decoded);
  decoded->at(byte) ^= mask;
  out[index] = base64url_encode(*decoded);
  return out[0] + "." + out[1] + "." + out[2];
}

// ---- Positive ------------------------------------------------------------------------------

TEST(JwtValidator, AcceptsEveryAlgorithmWithAndWithoutKid) {
  for (const Case& c : every_algorithm()) {
    auto r = check(token(c));
    ASSERT_TRUE(r) << c.alg << ": " << to_string(r.error());
    EXPECT_EQ(r->alg, *parse_jws_alg(c.alg));
    EXPECT_EQ(r->kid, c.kid);
    EXPECT_EQ(r->exp, kNow + 300);
    EXPECT_EQ(r->claims.at("sub").as_string(), "alice");

    auto no_kid = check(token(c.key, c.alg, json::object{}, claims()));
    ASSERT_TRUE(no_kid) << c.alg << " without kid: " << to_string(no_kid.error());
    EXPECT_EQ(no_kid->kid, c.kid);
  }
}

TEST(JwtValidator, AcceptsParsedTokensAndExposesTheIssuerCheaply) {
  const std::string t = rs256(claims());
  auto iss = unverified_issuer(t);
  ASSERT_TRUE(iss);
  EXPECT_EQ(*iss, kIssuer);
  auto parsed = parse_jws(t);
  ASSERT_TRUE(parsed);
  auto r = validator().validate(std::move(*parsed), *keys().set, FakeClock(kNow));
  ASSERT_TRUE(r) << to_string(r.error());

  EXPECT_EQ(unverified_issuer("a.b").error(), JwtError::malformed);
  EXPECT_EQ(unverified_issuer(rs256(without(claims(), "iss"))).error(), JwtError::wrong_issuer);
  EXPECT_EQ(unverified_issuer(rs256(with(claims(), "iss", 42))).error(), JwtError::wrong_issuer);
  EXPECT_EQ(unverified_issuer(t, 100).error(), JwtError::token_too_large);
}

// ---- Algorithms and keys -------------------------------------------------------------------

TEST(JwtValidator, RefusesAlgNoneWithAndWithoutSignature) {
  const std::string body = b64(json::serialize(claims()));
  const std::string rsa_sig = rs256(claims()).substr(rs256(claims()).rfind('.'));
  for (std::string_view alg : {"none", "None", "NONE"}) {
    const std::string head = b64(R"({"alg":")" + std::string(alg) + R"(","kid":"rsa"})");
    EXPECT_EQ(error_of(head + "." + body + "."), JwtError::malformed) << alg;
    EXPECT_EQ(error_of(head + "." + body + rsa_sig), JwtError::alg_none) << alg;
    EXPECT_EQ(error_of(head + "." + body + ".AAAA"), JwtError::alg_none) << alg;
  }
}

TEST(JwtValidator, RefusesHs256SignedWithTheRsaPublicKey) {
  const TestKeys& k = keys();
  for (const Bytes& secret : {public_pem(k.rsa), public_der(k.rsa)}) {
    for (std::string_view kid : {"rsa", ""}) {
      json::object header{{"alg", "HS256"}};
      if (!kid.empty()) header["kid"] = kid;
      const std::string input = b64(json::serialize(header)) + "." + b64(json::serialize(claims()));
      const std::string t = input + "." + base64url_encode(hmac_sha256(secret, input));
      EXPECT_EQ(error_of(t), JwtError::alg_not_allowed);
      auto parsed = parse_jws(t);
      ASSERT_TRUE(parsed);
      EXPECT_EQ(verify_signature(*parsed, *k.set->find("rsa")).error(), JwtError::unsupported_alg);
    }
  }
}

TEST(JwtValidator, RefusesAlgorithmsOutsideTheAllowlist) {
  auto c = config();
  c.algorithms = {JwsAlg::RS256};
  const JwtValidator rs_only = validator(c);
  EXPECT_TRUE(check(rs256(claims()), rs_only));
  for (const Case& tc : every_algorithm())
    if (tc.alg != "RS256") {
      EXPECT_EQ(error_of(token(tc), rs_only), JwtError::alg_not_allowed);
    }
}

TEST(JwtValidator, RefusesAlgorithmsThatDoNotFitTheKey) {
  const TestKeys& k = keys();
  // ES256 signed with P-256 but naming the P-384 key; ES384 naming the P-256 key.
  EXPECT_EQ(error_of(token(Case{"ES256", k.p256, "p384"})), JwtError::alg_key_mismatch);
  EXPECT_EQ(error_of(token(Case{"ES384", k.p384, "p256"})), JwtError::alg_key_mismatch);
  EXPECT_EQ(error_of(token(Case{"ES512", k.p521, "p384"})), JwtError::alg_key_mismatch);
  // RSA algorithms against EC/OKP keys and the other way round.
  EXPECT_EQ(error_of(token(Case{"RS256", k.rsa, "p256"})), JwtError::alg_key_mismatch);
  EXPECT_EQ(error_of(token(Case{"PS256", k.rsa, "ed"})), JwtError::alg_key_mismatch);
  EXPECT_EQ(error_of(token(Case{"ES256", k.p256, "rsa"})), JwtError::alg_key_mismatch);
  EXPECT_EQ(error_of(token(Case{"EdDSA", k.ed, "p256"})), JwtError::alg_key_mismatch);
}

TEST(JwtValidator, PssAndPkcs1CannotBeConfused) {
  const TestKeys& k = keys();
  const json::object kid{{"kid", "rsa"}};
  // Signed with PKCS#1 v1.5 but labelled PS256, and the other way round.
  EXPECT_EQ(error_of(token(k.rsa, "PS256", kid, claims(), "RS256")), JwtError::bad_signature);
  EXPECT_EQ(error_of(token(k.rsa, "RS256", kid, claims(), "PS256")), JwtError::bad_signature);
  // A JWK that says "alg":"RS256" is never used for PS256.
  json::object pinned = public_jwk(k.rsa, "pinned");
  pinned["alg"] = "RS256";
  auto set = JwkSet::parse(json::serialize(json::object{{"keys", json::array{pinned}}}));
  ASSERT_TRUE(set);
  const JwtValidator v = validator();
  const FakeClock clock(kNow);
  EXPECT_TRUE(v.validate(token(Case{"RS256", k.rsa, "pinned"}), **set, clock));
  EXPECT_EQ(v.validate(token(Case{"PS256", k.rsa, "pinned"}), **set, clock).error(),
            JwtError::alg_key_mismatch);
  EXPECT_EQ(v.validate(token(k.rsa, "PS256", json::object{}, claims()), **set, clock).error(),
            JwtError::no_matching_key);
}

TEST(JwtValidator, PssNeedsASaltAsLongAsTheHashAndMgf1WithTheSameHash) {
  const TestKeys& k = keys();
  const std::string input =
      b64(R"({"alg":"PS256","kid":"rsa"})") + "." + b64(json::serialize(claims()));
  auto with_sig = [&](const Bytes& sig) { return input + "." + base64url_encode(sig); };
  EXPECT_TRUE(check(with_sig(sign(k.rsa, "PS256", input))));
  EXPECT_EQ(error_of(with_sig(sign(k.rsa, "PS256", input, 0))), JwtError::bad_signature);
  EXPECT_EQ(error_of(with_sig(sign(k.rsa, "PS256", input, 20))), JwtError::bad_signature);
  EXPECT_EQ(error_of(with_sig(sign(k.rsa, "PS256", input, RSA_PSS_SALTLEN_MAX))),
            JwtError::bad_signature);
  EXPECT_EQ(error_of(with_sig(sign(k.rsa, "PS256", input, RSA_PSS_SALTLEN_DIGEST, EVP_sha1()))),
            JwtError::bad_signature);
}

TEST(JwtValidator, UnknownKidAsksForARefetchAndWrongKidFails) {
  const TestKeys& k = keys();
  auto unknown = check(token(Case{"RS256", k.rsa, "rotated-away"}));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), JwtError::unknown_kid);
  EXPECT_TRUE(suggests_key_refetch(unknown.error()));
  // Signed by rsa2 but naming rsa: a real key, the wrong one.
  EXPECT_EQ(error_of(token(Case{"RS256", k.rsa2, "rsa"})), JwtError::bad_signature);
  // Signed by a key nobody configured.
  EXPECT_EQ(error_of(token(Case{"RS256", k.attacker, "rsa"})), JwtError::bad_signature);
  EXPECT_EQ(error_of(token(k.attacker, "RS256", json::object{}, claims())),
            JwtError::bad_signature);
}

TEST(JwtValidator, WithoutKidNoFittingKeyIsReported) {
  json::array only_rsa{public_jwk(keys().rsa, "rsa")};
  auto set = JwkSet::parse(json::serialize(json::object{{"keys", only_rsa}}));
  ASSERT_TRUE(set);
  auto r = validator().validate(token(keys().p256, "ES256", json::object{}, claims()), **set,
                                FakeClock(kNow));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), JwtError::no_matching_key);
  EXPECT_TRUE(suggests_key_refetch(r.error()));
}

TEST(JwtValidator, WithoutKidTriesAtMostEightKeys) {
  std::vector<EVP_PKEY*> eds;
  json::array members;
  for (int i = 0; i < 10; ++i) {
    eds.push_back(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    members.push_back(public_jwk(eds.back(), ""));
  }
  auto set = JwkSet::parse(json::serialize(json::object{{"keys", members}}));
  ASSERT_TRUE(set);
  ASSERT_EQ((*set)->size(), 10u);
  const JwtValidator v = validator();
  const FakeClock clock(kNow);
  EXPECT_TRUE(v.validate(token(eds[0], "EdDSA", json::object{}, claims()), **set, clock));
  EXPECT_TRUE(v.validate(token(eds[7], "EdDSA", json::object{}, claims()), **set, clock));
  EXPECT_EQ(v.validate(token(eds[8], "EdDSA", json::object{}, claims()), **set, clock).error(),
            JwtError::bad_signature);
  for (EVP_PKEY* e : eds) EVP_PKEY_free(e);
}

TEST(JwtValidator, KeysNamedByTheTokenAreIgnored) {
  const TestKeys& k = keys();
  const std::string attacker_jwk = json::serialize(public_jwk(k.attacker, "evil"));
  json::object header{{"jku", "https://evil.example/jwks.json"},
                      {"x5u", "https://evil.example/cert.pem"},
                      {"jwk", public_jwk(k.attacker, "evil")},
                      {"x5c", json::array{b64("not a certificate")}}};
  // Signed by the attacker's key that the header carries: never trusted.
  EXPECT_EQ(error_of(token(k.attacker, "RS256", header, claims())), JwtError::bad_signature);
  header["kid"] = "evil";
  EXPECT_EQ(error_of(token(k.attacker, "RS256", header, claims())), JwtError::unknown_kid);
  // The same headers on a token signed by a configured key change nothing.
  header["kid"] = "rsa";
  EXPECT_TRUE(check(token(k.rsa, "RS256", header, claims())));
}

// ---- Claims --------------------------------------------------------------------------------

TEST(JwtValidator, RequiresTheExactIssuer) {
  EXPECT_EQ(error_of(rs256(with(claims(), "iss", "https://evil.example"))), JwtError::wrong_issuer);
  EXPECT_EQ(error_of(rs256(with(claims(), "iss", std::string(kIssuer) + "/"))),
            JwtError::wrong_issuer);
  EXPECT_EQ(error_of(rs256(with(claims(), "iss", "HTTPS://issuer.example/oauth2/default"))),
            JwtError::wrong_issuer);
  EXPECT_EQ(error_of(rs256(with(claims(), "iss", json::array{kIssuer}))), JwtError::wrong_issuer);
  EXPECT_EQ(error_of(rs256(without(claims(), "iss"))), JwtError::wrong_issuer);
}

TEST(JwtValidator, RequiresAConfiguredAudience) {
  EXPECT_TRUE(check(rs256(with(claims(), "aud", "api://other"))));
  EXPECT_TRUE(check(rs256(with(claims(), "aud", json::array{"x", kAudience}))));
  EXPECT_EQ(error_of(rs256(with(claims(), "aud", "api://evil"))), JwtError::wrong_audience);
  EXPECT_EQ(error_of(rs256(with(claims(), "aud", json::array{"api://evil", "x"}))),
            JwtError::wrong_audience);
  EXPECT_EQ(error_of(rs256(with(claims(), "aud", json::array{}))), JwtError::wrong_audience);
  EXPECT_EQ(error_of(rs256(with(claims(), "aud", json::array{kAudience, 7}))),
            JwtError::wrong_audience);
  EXPECT_EQ(error_of(rs256(with(claims(), "aud", 7))), JwtError::wrong_audience);
  EXPECT_EQ(error_of(rs256(without(claims(), "aud"))), JwtError::wrong_audience);

  auto waived = config();
  waived.audiences.clear();
  waived.audience_waived = true;
  EXPECT_TRUE(check(rs256(without(claims(), "aud")), validator(waived)));
  EXPECT_TRUE(check(rs256(with(claims(), "aud", "anything")), validator(waived)));
}

TEST(JwtValidator, ExpiryHonoursTheSkewToTheSecond) {
  // Valid while now < exp + skew (60 s).
  const std::string t = rs256(with(claims(), "exp", kNow));
  EXPECT_TRUE(check(t, validator(), kNow + 59));
  EXPECT_EQ(error_of(t, validator(), kNow + 60), JwtError::expired);
  EXPECT_EQ(error_of(t, validator(), kNow + 3600), JwtError::expired);
  auto strict = config();
  strict.clock_skew = std::chrono::seconds(0);
  EXPECT_TRUE(check(t, validator(strict), kNow - 1));
  EXPECT_EQ(error_of(t, validator(strict), kNow), JwtError::expired);
  // A fractional exp counts as the whole second before it.
  EXPECT_EQ(error_of(rs256(with(claims(), "exp", kNow + 0.9)), validator(strict), kNow),
            JwtError::expired);
  EXPECT_TRUE(check(rs256(with(claims(), "exp", kNow + 1.5)), validator(strict), kNow));
}

TEST(JwtValidator, ExpIsRequiredAndNumeric) {
  EXPECT_EQ(error_of(rs256(without(claims(), "exp"))), JwtError::missing_exp);
  EXPECT_EQ(error_of(rs256(with(claims(), "exp", std::to_string(kNow + 300)))),
            JwtError::invalid_claim);
  EXPECT_EQ(error_of(rs256(with(claims(), "exp", nullptr))), JwtError::invalid_claim);
  EXPECT_EQ(error_of(rs256(with(claims(), "exp", true))), JwtError::invalid_claim);
  EXPECT_EQ(error_of(rs256(with(claims(), "nbf", "0"))), JwtError::invalid_claim);
  EXPECT_EQ(error_of(rs256(with(claims(), "iat", json::array{}))), JwtError::invalid_claim);
  // Far-future values do not overflow anything.
  auto far = check(rs256(with(claims(), "exp", std::uint64_t{18'000'000'000'000'000'000u})));
  ASSERT_TRUE(far);
  EXPECT_EQ(far->exp, std::numeric_limits<std::int64_t>::max());
  EXPECT_TRUE(check(rs256(with(claims(), "exp", 1e300))));
}

TEST(JwtValidator, NotBeforeHonoursTheSkew) {
  const std::string t = rs256(with(claims(), "nbf", kNow + 60));
  EXPECT_TRUE(check(t));
  EXPECT_EQ(error_of(rs256(with(claims(), "nbf", kNow + 61))), JwtError::not_yet_valid);
  EXPECT_EQ(error_of(rs256(with(claims(), "nbf", kNow + 60.5))), JwtError::not_yet_valid);
  EXPECT_TRUE(check(rs256(without(claims(), "nbf"))));
}

TEST(JwtValidator, IssuedAtMayNotBeInTheFuture) {
  EXPECT_TRUE(check(rs256(with(claims(), "iat", kNow + 60))));
  EXPECT_EQ(error_of(rs256(with(claims(), "iat", kNow + 61))), JwtError::issued_in_future);
  EXPECT_EQ(error_of(rs256(with(claims(), "iat", kNow + 86400))), JwtError::issued_in_future);
  EXPECT_TRUE(check(rs256(without(claims(), "iat"))));
}

TEST(JwtValidator, ChecksTheTypWhenConfigured) {
  auto c = config();
  c.required_typ = "at+jwt";
  const JwtValidator v = validator(c);
  const TestKeys& k = keys();
  for (std::string_view typ : {"at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"})
    EXPECT_TRUE(check(token(k.rsa, "RS256", json::object{{"typ", typ}}, claims()), v)) << typ;
  for (std::string_view typ : {"JWT", "jwt", "at+jwt ", "application/jwt", "x/at+jwt", ""})
    EXPECT_EQ(error_of(token(k.rsa, "RS256", json::object{{"typ", typ}}, claims()), v),
              JwtError::bad_typ)
        << typ;
  EXPECT_EQ(error_of(token(k.rsa, "RS256", json::object{}, claims()), v), JwtError::bad_typ);
  // Without a requirement any typ passes.
  EXPECT_TRUE(check(token(k.rsa, "RS256", json::object{{"typ", "JWT"}}, claims())));
}

// ---- Structure and tampering ---------------------------------------------------------------

TEST(JwtValidator, RefusesTamperedHeaderPayloadOrSignature) {
  for (const Case& c : every_algorithm()) {
    json::object header{{"kid", c.kid}, {"h", "a"}};
    json::object body = claims();
    body["p"] = "a";
    const std::string t = token(c.key, c.alg, header, body);
    ASSERT_TRUE(check(t)) << c.alg;
    const std::string head_json = json::serialize(with(header, "alg", c.alg));
    const std::string body_json = json::serialize(body);
    // 'a' ^ 0x01 == '`': the JSON stays valid, only the signature can notice.
    const std::string th = flip_bit(t, 0, head_json.find(R"("h":"a")") + 5, 0x01);
    const std::string tp = flip_bit(t, 1, body_json.find(R"("p":"a")") + 5, 0x01);
    ASSERT_TRUE(parse_jws(th)) << c.alg;
    ASSERT_TRUE(parse_jws(tp)) << c.alg;
    EXPECT_EQ(error_of(th), JwtError::bad_signature) << c.alg;
    EXPECT_EQ(error_of(tp), JwtError::bad_signature) << c.alg;
    for (std::size_t byte : {std::size_t{0}, std::size_t{17}, std::size_t{63}})
      EXPECT_EQ(error_of(flip_bit(t, 2, byte, 0x04)), JwtError::bad_signature) << c.alg;
  }
}

TEST(JwtValidator, RefusesBadBase64Url) {
  const std::string t = rs256(claims());
  const auto d1 = t.find('.');
  const auto d2 = t.rfind('.');
  for (char c : {'=', '+', '/', ' ', '\n'}) {
    for (std::size_t at : {std::size_t{2}, d1 + 3, d2 + 3}) {
      std::string bad = t;
      bad[at] = c;
      EXPECT_EQ(error_of(bad), JwtError::malformed) << int(c) << "@" << at;
    }
  }
  EXPECT_EQ(error_of(t + "=="), JwtError::malformed);
  EXPECT_EQ(error_of(t.substr(0, d1) + "=" + t.substr(d1)), JwtError::malformed);
  EXPECT_EQ(error_of(t.substr(0, d2) + " " + t.substr(d2)), JwtError::malformed);
}

TEST(JwtValidator, RefusesWrongNumbersOfParts) {
  const std::string t = rs256(claims());
  const auto d1 = t.find('.');
  const auto d2 = t.rfind('.');
  for (const std::string& bad :
       {t.substr(0, d2), t + "." + t.substr(d2 + 1), t + ".",
        t.substr(0, d1) + ".." + t.substr(d2 + 1), t.substr(d1), std::string(".."),
        std::string("..."), std::string(""), t.substr(0, d1)}) {
    EXPECT_EQ(error_of(bad), JwtError::malformed) << bad;
  }
}

TEST(JwtValidator, RefusesOversizedTokens) {
  auto c = config();
  c.max_token_bytes = 2048;
  const JwtValidator small = validator(c);
  EXPECT_TRUE(check(rs256(claims()), small));
  const std::string big = rs256(with(claims(), "pad", std::string(2000, 'x')));
  EXPECT_EQ(error_of(big, small), JwtError::token_too_large);
  EXPECT_TRUE(check(big));  // within the default 16 KiB
  EXPECT_EQ(error_of(rs256(with(claims(), "pad", std::string(16 * 1024, 'x')))),
            JwtError::token_too_large);
  // A token parsed elsewhere with a laxer limit is still held to the validator's.
  JwsParseOptions lax;
  lax.max_token_bytes = 1 << 20;
  auto parsed = parse_jws(big, lax);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(small.validate(std::move(*parsed), *keys().set, FakeClock(kNow)).error(),
            JwtError::token_too_large);
}

TEST(JwtValidator, RefusesCrit) {
  const TestKeys& k = keys();
  const json::object unknown{{"kid", "rsa"}, {"crit", json::array{"exp"}}, {"exp", kNow}};
  EXPECT_EQ(error_of(token(k.rsa, "RS256", unknown, claims())), JwtError::unsupported_crit);
  const json::object b64{{"kid", "rsa"}, {"crit", json::array{"b64"}}, {"b64", false}};
  EXPECT_EQ(error_of(token(k.rsa, "RS256", b64, claims())), JwtError::unsupported_crit);
  for (json::value crit : {json::value(json::array{}), json::value("exp"), json::value(1),
                           json::value(json::array{1}), json::value(nullptr)}) {
    const json::object malformed{{"kid", "rsa"}, {"crit", crit}};
    EXPECT_EQ(error_of(token(k.rsa, "RS256", malformed, claims())), JwtError::malformed)
        << json::serialize(crit);
  }
}

TEST(JwtValidator, ErrorsNeverEchoTheToken) {
  const std::string t = rs256(with(claims(), "iss", "https://evil.example"));
  auto r = check(t);
  ASSERT_FALSE(r);
  const std::string_view d = describe(r.error());
  EXPECT_EQ(d.find("evil"), std::string_view::npos);
  EXPECT_EQ(std::string_view(t).find(d), std::string_view::npos);
}

TEST(JwtValidator, OneKeySetServesManyThreadsAtOnce) {
  std::vector<std::string> good;
  std::vector<std::string> bad;
  for (const Case& c : every_algorithm()) {
    good.push_back(token(c));
    bad.push_back(flip_bit(good.back(), 2, 1, 0x01));
  }
  const JwtValidator v = validator();
  const FakeClock clock(kNow);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 30; ++i) {
        for (std::size_t j = 0; j < good.size(); ++j) {
          if (!v.validate(good[j], *keys().set, clock)) ++failures;
          if (v.validate(bad[j], *keys().set, clock)) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- Configuration -------------------------------------------------------------------------

TEST(JwtValidator, RefusesUnusableConfigurations) {
  auto no_issuer = config();
  no_issuer.issuer.clear();
  EXPECT_FALSE(JwtValidator::create(no_issuer));
  auto no_audience = config();
  no_audience.audiences.clear();
  EXPECT_FALSE(JwtValidator::create(no_audience));
  auto empty_audience = config();
  empty_audience.audiences.push_back("");
  EXPECT_FALSE(JwtValidator::create(empty_audience));
  auto no_algs = config();
  no_algs.algorithms.clear();
  EXPECT_FALSE(JwtValidator::create(no_algs));
  auto negative_skew = config();
  negative_skew.clock_skew = std::chrono::seconds(-1);
  EXPECT_FALSE(JwtValidator::create(negative_skew));
  auto huge_skew = config();
  huge_skew.clock_skew = std::chrono::hours(2);
  EXPECT_FALSE(JwtValidator::create(huge_skew));
  auto zero_size = config();
  zero_size.max_token_bytes = 0;
  EXPECT_FALSE(JwtValidator::create(zero_size));
  auto empty_typ = config();
  empty_typ.required_typ = "";
  EXPECT_FALSE(JwtValidator::create(empty_typ));
}

}  // namespace
}  // namespace portcullis
