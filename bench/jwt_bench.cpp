// Cold JWT verification (no cache): parse + key selection + signature + claims, per algorithm,
// next to the bare OpenSSL RSA-2048 verify that `openssl speed rsa2048` measures.
//
//   ./build/bench/portcullis_bench
//   openssl speed -seconds 3 rsa2048      # compare "verify/s" with RS256 cold verify/s
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "authn/base64url.hpp"
#include "authn/jwt_validator.hpp"

namespace portcullis {
namespace {

namespace json = boost::json;
using Bytes = std::vector<unsigned char>;

constexpr std::int64_t kNow = 1'700'000'000;

class FixedClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override { return {}; }
  std::chrono::system_clock::time_point system_now() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
  }
};

Bytes bn_param(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  Bytes out(pad ? pad : BN_num_bytes(bn));
  if (pad)
    BN_bn2binpad(bn, out.data(), pad);
  else
    BN_bn2bin(bn, out.data());
  BN_free(bn);
  return out;
}

json::object public_jwk(EVP_PKEY* key, const char* kid) {
  json::object jwk{{"kid", kid}, {"use", "sig"}};
  if (EVP_PKEY_is_a(key, "RSA")) {
    jwk["kty"] = "RSA";
    jwk["n"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_RSA_N));
    jwk["e"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_RSA_E));
  } else if (EVP_PKEY_is_a(key, "EC")) {
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, 32));
    jwk["y"] = base64url_encode(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
  } else {
    Bytes x(32);
    std::size_t len = x.size();
    EVP_PKEY_get_raw_public_key(key, x.data(), &len);
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = base64url_encode(x);
  }
  return jwk;
}

Bytes sign(EVP_PKEY* key, std::string_view alg, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, alg == "EdDSA" ? nullptr : EVP_sha256(), nullptr, key);
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, data, input.size());
  Bytes sig(len);
  EVP_DigestSign(ctx, sig.data(), &len, data, input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg != "ES256") return sig;
  const unsigned char* p = sig.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  Bytes raw(64);
  BN_bn2binpad(ECDSA_SIG_get0_r(es), raw.data(), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), raw.data() + 32, 32);
  ECDSA_SIG_free(es);
  return raw;
}

// A realistic access token: an Okta-like claim set of about 500 bytes.
std::string make_token(EVP_PKEY* key, const char* alg, const char* kid) {
  const json::object header{{"alg", alg}, {"kid", kid}, {"typ", "at+jwt"}};
  const json::object claims{{"ver", 1},
                            {"jti", "AT.Y2hhbmdlLW1lLXBsZWFzZS10aGlzLWlzLWEtdGVzdA"},
                            {"iss", "https://example.okta.com/oauth2/default"},
                            {"aud", "api://mesh"},
                            {"iat", kNow - 60},
                            {"nbf", kNow - 60},
                            {"exp", kNow + 3600},
                            {"cid", "0oa1b2c3d4e5f6g7h8i9"},
                            {"uid", "00u1a2b3c4d5e6f7g8h9"},
                            {"scp", json::array{"openid", "profile", "orders:read"}},
                            {"sub", "alice@example.com"},
                            {"email", "alice@example.com"},
                            {"groups", json::array{"Everyone", "orders-readers", "engineering"}}};
  const std::string input =
      base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(claims));
  return input + "." + base64url_encode(sign(key, alg, input));
}

struct Fixture {
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
  EVP_PKEY* p256 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "prime256v1");
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  std::shared_ptr<const JwkSet> keys;
  std::unique_ptr<JwtValidator> validator;
  std::string rs256 = make_token(rsa, "RS256", "rsa");
  std::string es256 = make_token(p256, "ES256", "p256");
  std::string eddsa = make_token(ed, "EdDSA", "ed");
  FixedClock clock;

  Fixture() {
    json::array members{public_jwk(rsa, "rsa"), public_jwk(p256, "p256"), public_jwk(ed, "ed")};
    keys = *JwkSet::parse(json::serialize(json::object{{"keys", members}}));
    JwtValidatorConfig config;
    config.issuer = "https://example.okta.com/oauth2/default";
    config.audiences = {"api://mesh"};
    config.algorithms = {JwsAlg::RS256, JwsAlg::ES256, JwsAlg::EdDSA};
    config.required_typ = "at+jwt";
    validator = std::make_unique<JwtValidator>(*JwtValidator::create(config));
  }
};

Fixture& fixture() {
  static Fixture* f = new Fixture();
  return *f;
}

void cold_verify(benchmark::State& state, const std::string& token) {
  Fixture& f = fixture();
  if (!f.validator->validate(token, *f.keys, f.clock)) state.SkipWithError("token refused");
  for (auto _ : state) {
    auto r = f.validator->validate(token, *f.keys, f.clock);
    benchmark::DoNotOptimize(r);
  }
  state.counters["verify/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ColdVerify_RS256(benchmark::State& state) {
  cold_verify(state, fixture().rs256);
}
void BM_ColdVerify_ES256(benchmark::State& state) {
  cold_verify(state, fixture().es256);
}
void BM_ColdVerify_EdDSA(benchmark::State& state) {
  cold_verify(state, fixture().eddsa);
}

// The pieces of an RS256 verify, to see where the time goes.
void BM_Parse_RS256(benchmark::State& state) {
  const std::string& token = fixture().rs256;
  for (auto _ : state) {
    auto r = parse_jws(token);
    benchmark::DoNotOptimize(r);
  }
}

void BM_SignatureOnly_RS256(benchmark::State& state) {
  Fixture& f = fixture();
  auto jws = parse_jws(f.rs256);
  const Jwk& key = *f.keys->find("rsa");
  for (auto _ : state) {
    auto r = verify_signature(*jws, key);
    benchmark::DoNotOptimize(r);
  }
  state.counters["verify/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// What `openssl speed rsa2048` times: EVP_PKEY_verify of a fixed digest on a context set up
// once outside the loop (no hashing, no context creation).
void BM_OpenSslSpeedStyle_RSA2048Verify(benchmark::State& state) {
  Fixture& f = fixture();
  unsigned char digest[32] = {1, 2, 3};
  EVP_PKEY_CTX* sctx = EVP_PKEY_CTX_new(f.rsa, nullptr);
  EVP_PKEY_sign_init(sctx);
  EVP_PKEY_CTX_set_rsa_padding(sctx, RSA_PKCS1_PADDING);
  EVP_PKEY_CTX_set_signature_md(sctx, EVP_sha256());
  Bytes sig(256);
  std::size_t len = sig.size();
  EVP_PKEY_sign(sctx, sig.data(), &len, digest, sizeof digest);
  EVP_PKEY_CTX_free(sctx);
  EVP_PKEY_CTX* vctx = EVP_PKEY_CTX_new(f.rsa, nullptr);
  EVP_PKEY_verify_init(vctx);
  EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PADDING);
  EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256());
  for (auto _ : state) {
    int rc = EVP_PKEY_verify(vctx, sig.data(), len, digest, sizeof digest);
    benchmark::DoNotOptimize(rc);
  }
  EVP_PKEY_CTX_free(vctx);
  state.counters["verify/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_ColdVerify_RS256);
BENCHMARK(BM_ColdVerify_ES256);
BENCHMARK(BM_ColdVerify_EdDSA);
BENCHMARK(BM_Parse_RS256);
BENCHMARK(BM_SignatureOnly_RS256);
BENCHMARK(BM_OpenSslSpeedStyle_RSA2048Verify);

}  // namespace
}  // namespace portcullis

int main(int argc, char** argv) {
  std::printf(
      "Compare BM_ColdVerify_RS256 verify/s with the verify/s column of\n"
      "  openssl speed -seconds 3 rsa2048\n"
      "(target: openssl verify/s <= 1.3 x RS256 cold verify/s). BM_OpenSslSpeedStyle_* repeats\n"
      "what openssl speed measures inside this process.\n\n");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
