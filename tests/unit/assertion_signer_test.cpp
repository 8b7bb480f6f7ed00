#include "authz/assertion_signer.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "authn/base64url.hpp"
#include "authn/jwt_validator.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::string_view kIssuer = "https://portcullis.example";
constexpr std::string_view kRoute = "billing-api";

// RFC 7515 appendix A.3: the ES256 example key.
constexpr std::string_view kX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr std::string_view kY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
constexpr std::string_view kD = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
// Its RFC 7638 thumbprint, computed outside this code base (Python hashlib over the canonical
// JSON {"crv":"P-256","kty":"EC","x":kX,"y":kY}).
constexpr std::string_view kThumbprint = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U";

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

std::vector<unsigned char> b64(std::string_view s) {
  auto r = base64url_decode(s);
  EXPECT_TRUE(r.has_value());
  return r ? *r : std::vector<unsigned char>{};
}

std::string pem_of(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// The RFC 7515 A.3 private key as PKCS#8 PEM, built from its JWK members.
std::string rfc_key_pem() {
  const auto x = b64(kX), y = b64(kY), d = b64(kD);
  std::vector<unsigned char> pub{0x04};
  pub.insert(pub.end(), x.begin(), x.end());
  pub.insert(pub.end(), y.begin(), y.end());
  BIGNUM* priv = BN_bin2bn(d.data(), static_cast<int>(d.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params), 1);
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  EXPECT_EQ(EVP_PKEY_pairwise_check(check), 1) << "d does not match (x, y)";
  const std::string pem = pem_of(key);
  EVP_PKEY_CTX_free(check);
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(priv);
  return pem;
}

std::string p384_pem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  const std::string pem = pem_of(key);
  EVP_PKEY_free(key);
  return pem;
}

// SHA-256 over a hand-built canonical JWK, independent of the code under test.
std::string expected_thumbprint() {
  const std::string canonical = std::string("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"") +
                                std::string(kX) + "\",\"y\":\"" + std::string(kY) + "\"}";
  std::array<unsigned char, 32> digest{};
  unsigned int len = 0;
  EXPECT_EQ(
      EVP_Digest(canonical.data(), canonical.size(), digest.data(), &len, EVP_sha256(), nullptr),
      1);
  return base64url_encode(std::span<const unsigned char>(digest));
}

Identity alice() {
  Identity id;
  id.provider = "okta";
  id.issuer = "https://idp.example/oauth2/default";
  id.subject = "00u1alice";
  id.email = "alice@example.com";
  id.groups = {"eng", "billing-admins"};
  return id;
}

JwtValidator validator() {
  JwtValidatorConfig config;
  config.issuer = std::string(kIssuer);
  config.audiences = {std::string(kRoute)};
  config.algorithms = {JwsAlg::ES256};
  config.clock_skew = std::chrono::seconds(0);
  config.required_typ = "JWT";
  auto v = JwtValidator::create(std::move(config));
  EXPECT_TRUE(v.has_value());
  return std::move(v).value();
}

class AssertionSignerTest : public ::testing::Test {
 protected:
  AssertionSignerTest()
      : signer_(AssertionSigner::from_pem(rfc_key_pem())),
        keys_(JwkSet::parse(signer_.public_jwks()).value()) {}

  std::string sign(const Identity& id, std::chrono::seconds ttl = std::chrono::seconds(300)) {
    auto t = signer_.sign(id, kRoute, kIssuer, ttl, FakeClock(kNow), random_);
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.error());
    return t ? *t : std::string();
  }

  AssertionSigner signer_;
  std::shared_ptr<const JwkSet> keys_;
  CountingRandom random_;
};

TEST_F(AssertionSignerTest, KidIsTheRfc7638Thumbprint) {
  EXPECT_EQ(signer_.kid(), kThumbprint);
  EXPECT_EQ(signer_.kid(), expected_thumbprint());
  EXPECT_EQ(signer_.kid(), ec_jwk_thumbprint("P-256", kX, kY));
}

TEST_F(AssertionSignerTest, PublicJwksHasExactlyThePublicMembers) {
  const json::value doc = json::parse(signer_.public_jwks());
  const auto& keys = doc.at("keys").as_array();
  ASSERT_EQ(keys.size(), 1u);
  const json::object expected{{"kty", "EC"},          {"crv", "P-256"}, {"x", kX},     {"y", kY},
                              {"kid", signer_.kid()}, {"alg", "ES256"}, {"use", "sig"}};
  EXPECT_EQ(keys[0].as_object(), expected);
  ASSERT_EQ(keys_->size(), 1u);
  EXPECT_TRUE(keys_->warnings().empty());
  ASSERT_NE(keys_->find(signer_.kid()), nullptr);
}

TEST_F(AssertionSignerTest, TokenVerifiesWithJwtValidator) {
  const std::string token = sign(alice());
  auto verified = validator().validate(token, *keys_, FakeClock(kNow + 10));
  ASSERT_TRUE(verified.has_value()) << to_string(verified.error());
  EXPECT_EQ(verified->kid, signer_.kid());
  EXPECT_EQ(verified->alg, JwsAlg::ES256);
  EXPECT_EQ(verified->exp, kNow + 300);
}

TEST_F(AssertionSignerTest, HeaderAndClaims) {
  const std::string token = sign(alice());
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  const json::value header = json::parse(base64url_decode_to_string(token.substr(0, dot1)).value());
  EXPECT_EQ(header, (json::object{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", signer_.kid()}}));
  EXPECT_EQ(b64(token.substr(dot2 + 1)).size(), 64u);  // raw r||s

  const json::object claims =
      json::parse(base64url_decode_to_string(token.substr(dot1 + 1, dot2 - dot1 - 1)).value())
          .as_object();
  EXPECT_EQ(claims.at("iss").as_string(), kIssuer);
  EXPECT_EQ(claims.at("aud").as_string(), kRoute);
  EXPECT_EQ(claims.at("sub"), "00u1alice");
  EXPECT_EQ(claims.at("email"), "alice@example.com");
  EXPECT_EQ(claims.at("groups"), (json::array{"eng", "billing-admins"}));
  EXPECT_EQ(claims.at("iat"), kNow);
  EXPECT_EQ(claims.at("exp"), kNow + 300);
  EXPECT_EQ(claims.at("idp"), "https://idp.example/oauth2/default");
  EXPECT_EQ(b64(claims.at("jti").as_string()).size(), 16u);
  EXPECT_EQ(claims.size(), 9u);
}

TEST_F(AssertionSignerTest, OmitsEmptyEmailKeepsEmptyGroups) {
  Identity id = alice();
  id.email.clear();
  id.groups.clear();
  auto verified = validator().validate(sign(id), *keys_, FakeClock(kNow));
  ASSERT_TRUE(verified.has_value());
  EXPECT_FALSE(verified->claims.contains("email"));
  EXPECT_EQ(verified->claims.at("groups"), json::array{});
}

TEST_F(AssertionSignerTest, ClientCredentialsIdentityUsesTheClientIdAsSubject) {
  Identity machine;
  machine.issuer = "https://idp.example/oauth2/default";
  machine.client_id = "svc-billing";
  auto verified = validator().validate(sign(machine), *keys_, FakeClock(kNow));
  ASSERT_TRUE(verified.has_value());
  EXPECT_EQ(verified->claims.at("sub"), "svc-billing");
  EXPECT_EQ(verified->claims.at("client_id"), "svc-billing");

  Identity person = alice();
  person.client_id = "portal";
  auto both = validator().validate(sign(person), *keys_, FakeClock(kNow));
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->claims.at("sub"), "00u1alice");
  EXPECT_EQ(both->claims.at("client_id"), "portal");
}

TEST_F(AssertionSignerTest, JtiDiffersPerToken) {
  auto a = validator().validate(sign(alice()), *keys_, FakeClock(kNow));
  auto b = validator().validate(sign(alice()), *keys_, FakeClock(kNow));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->claims.at("jti"), b->claims.at("jti"));
}

TEST_F(AssertionSignerTest, ValidatorChecksIssuerAudienceAndExpiry) {
  const std::string token = sign(alice(), std::chrono::seconds(60));
  EXPECT_EQ(validator().validate(token, *keys_, FakeClock(kNow + 60)).error(), JwtError::expired);

  JwtValidatorConfig other = validator().config();
  other.audiences = {"another-route"};
  EXPECT_EQ(JwtValidator::create(other)->validate(token, *keys_, FakeClock(kNow)).error(),
            JwtError::wrong_audience);
  other = validator().config();
  other.issuer = "https://someone-else.example";
  EXPECT_EQ(JwtValidator::create(other)->validate(token, *keys_, FakeClock(kNow)).error(),
            JwtError::wrong_issuer);
}

TEST_F(AssertionSignerTest, TamperingIsDetected) {
  const std::string token = sign(alice());
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  json::object claims =
      json::parse(base64url_decode_to_string(token.substr(dot1 + 1, dot2 - dot1 - 1)).value())
          .as_object();
  claims["groups"] = json::array{"eng", "root"};
  const std::string forged =
      token.substr(0, dot1 + 1) + base64url_encode(json::serialize(claims)) + token.substr(dot2);
  EXPECT_EQ(validator().validate(forged, *keys_, FakeClock(kNow)).error(), JwtError::bad_signature);

  std::string flipped = token;
  flipped[dot2 + 5] = flipped[dot2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(validator().validate(flipped, *keys_, FakeClock(kNow)).has_value());

  // Another key's JWKS does not verify this signer's token.
  auto other = JwkSet::parse(AssertionSigner::generate().public_jwks());
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(validator().validate(token, **other, FakeClock(kNow)).has_value());
}

TEST_F(AssertionSignerTest, RefusesUnusableArguments) {
  const FakeClock clock(kNow);
  Identity nobody = alice();
  nobody.subject.clear();
  EXPECT_FALSE(signer_.sign(nobody, kRoute, kIssuer, std::chrono::seconds(60), clock, random_));
  EXPECT_FALSE(signer_.sign(alice(), "", kIssuer, std::chrono::seconds(60), clock, random_));
  EXPECT_FALSE(signer_.sign(alice(), kRoute, "", std::chrono::seconds(60), clock, random_));
  EXPECT_FALSE(signer_.sign(alice(), kRoute, kIssuer, std::chrono::seconds(0), clock, random_));
}

TEST_F(AssertionSignerTest, ConcurrentSigningFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  const JwtValidator v = validator();
  std::atomic<int> verified{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      CountingRandom random;  // RandomSource is per worker
      const FakeClock clock(kNow);
      for (int i = 0; i < kPerThread; ++i) {
        auto token =
            signer_.sign(alice(), kRoute, kIssuer, std::chrono::seconds(60), clock, random);
        if (token && v.validate(*token, *keys_, clock)) ++verified;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(verified.load(), kThreads * kPerThread);
}

TEST(AssertionSignerPem, RefusesP384AndGarbage) {
  EXPECT_THROW(AssertionSigner::from_pem(p384_pem()), std::runtime_error);
  EXPECT_THROW(AssertionSigner::from_pem("not a pem"), std::runtime_error);
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  EXPECT_THROW(AssertionSigner::from_pem(pem_of(ed)), std::runtime_error);
  EVP_PKEY_free(ed);
}

TEST(AssertionSignerPem, PrivatePemRoundTrips) {
  const AssertionSigner a = AssertionSigner::generate();
  const AssertionSigner b = AssertionSigner::from_pem(a.private_pem());
  EXPECT_EQ(a.kid(), b.kid());
  EXPECT_NE(a.private_pem().find("BEGIN PRIVATE KEY"), std::string::npos);  // PKCS#8
}

// A private temp directory per test, removed afterwards.
class AssertionSignerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "portcullis-signer-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& p, const std::string& data, fs::perms perms) {
    std::ofstream(p) << data;
    fs::permissions(p, perms);
  }

  fs::path dir_;
};

TEST_F(AssertionSignerFileTest, CreatesA0600FileAndReloadsTheSameKey) {
  const fs::path file = dir_ / "assertion.pem";
  const AssertionSigner created = AssertionSigner::load_or_create(file.string());
  ASSERT_TRUE(fs::exists(file));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // No temp file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);

  const AssertionSigner reloaded = AssertionSigner::load_or_create(file.string());
  EXPECT_EQ(reloaded.kid(), created.kid());
  EXPECT_EQ(reloaded.public_jwks(), created.public_jwks());
}

TEST_F(AssertionSignerFileTest, LoadsAnExistingKey) {
  const fs::path file = dir_ / "rfc.pem";
  write(file, rfc_key_pem(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(AssertionSigner::load_or_create(file.string()).kid(), expected_thumbprint());
}

TEST_F(AssertionSignerFileTest, RefusesAFileReadableByOthers) {
  const fs::path file = dir_ / "open.pem";
  write(file, rfc_key_pem(),
        fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
            fs::perms::others_read);  // 0644
  try {
    AssertionSigner::load_or_create(file.string());
    FAIL() << "a 0644 key file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("0644"), std::string::npos) << e.what();
  }
  // The file is left alone, not replaced.
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::others_read, fs::perms::others_read);
}

TEST_F(AssertionSignerFileTest, RefusesAP384Key) {
  const fs::path file = dir_ / "p384.pem";
  write(file, p384_pem(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THROW(AssertionSigner::load_or_create(file.string()), std::runtime_error);
}

TEST_F(AssertionSignerFileTest, FailsWhenTheDirectoryIsMissing) {
  EXPECT_THROW(AssertionSigner::load_or_create((dir_ / "no" / "such.pem").string()),
               std::runtime_error);
}

}  // namespace
}  // namespace portcullis
