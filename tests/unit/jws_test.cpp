#include "authn/jws.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "authn/base64url.hpp"
#include "authn/jwk.hpp"

namespace portcullis {
namespace {

// ---- Published vectors ---------------------------------------------------------------------

// RFC 7515 appendix A.2 (RS256) and A.3 (ES256): same payload.
constexpr std::string_view kA2Token =
    "eyJhbGciOiJSUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
    "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L"
    "07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUi"
    "pUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr std::string_view kA2Jwks =
    R"({"keys":[{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-)"
    R"(Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7)"
    R"(OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qC)"
    R"(o5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuX)"
    R"(poQ","e":"AQAB"}]})";

constexpr std::string_view kA3Token =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
constexpr std::string_view kA3Jwks =
    R"({"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
    R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";

// RFC 8037 appendix A.4 (Ed25519); the payload is the text "Example of Ed25519 signing".
constexpr std::string_view kEd25519Token =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
constexpr std::string_view kEd25519Jwks =
    R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})";

// RFC 7520 section 4: the payload is the text "It's a dangerous business, Frodo, ...".
constexpr std::string_view kCookbookPayload =
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250by"
    "B0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUg"
    "eW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4";
// 4.1 RS256 and 4.2 PS384 with the RSA key of section 3.3/3.4.
constexpr std::string_view kCookbookRs256Header =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
constexpr std::string_view kCookbookRs256Sig =
    "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII"
    "7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1"
    "Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-Zn"
    "mKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";
constexpr std::string_view kCookbookPs384Header =
    "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
constexpr std::string_view kCookbookPs384Sig =
    "cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5"
    "dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8"
    "P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQS"
    "UmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw";
constexpr std::string_view kCookbookRsaJwks =
    R"({"keys":[{"kty":"RSA","kid":"bilbo.baggins@hobbiton.example","use":"sig",)"
    R"("n":"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_)"
    R"(AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tp)"
    R"(e-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniU)"
    R"(FAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw","e":"AQAB"}]})";
// 4.3 ES512 with the P-521 key of section 3.1/3.2.
constexpr std::string_view kCookbookEs512Header =
    "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
constexpr std::string_view kCookbookEs512Sig =
    "AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3mt"
    "PBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2";
constexpr std::string_view kCookbookEcJwks =
    R"({"keys":[{"kty":"EC","kid":"bilbo.baggins@hobbiton.example","use":"sig","crv":"P-521",)"
    R"("x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",)"
    R"("y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"}]})";
// 4.4 HS256 with the symmetric key of section 3.5: must never verify here.
constexpr std::string_view kCookbookHs256Header =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9";
constexpr std::string_view kCookbookHs256Sig = "s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";

// ---- Helpers -------------------------------------------------------------------------------

std::shared_ptr<const JwkSet> keys(std::string_view jwks) {
  auto set = JwkSet::parse(jwks);
  EXPECT_TRUE(set) << set.error();
  return set ? *set : nullptr;
}

const Jwk& first(const std::shared_ptr<const JwkSet>& set) {
  return *set->begin();
}

std::vector<unsigned char> bytes(std::string_view b64) {
  auto b = base64url_decode(b64);
  EXPECT_TRUE(b);
  return b ? *b : std::vector<unsigned char>{};
}

// Verifies a token the way the cookbook vectors need (payload is not JSON): split, classify the
// header alg, then the primitive.
Expected<JwsAlg, JwtError> verify_raw(std::string_view token, const Jwk& key) {
  auto parts = split_compact_jws(token, kDefaultMaxTokenBytes);
  if (!parts) return unexpected(parts.error());
  auto header = base64url_decode_to_string(parts->header);
  if (!header) return unexpected(JwtError::malformed);
  const auto at = header->find("\"alg\":\"");
  if (at == std::string::npos) return unexpected(JwtError::malformed);
  const auto start = at + 7;
  auto alg =
      classify_alg(std::string_view(*header).substr(start, header->find('"', start) - start));
  if (!alg) return alg;
  const std::string_view input = token.substr(0, parts->header.size() + 1 + parts->payload.size());
  return verify_signature(*alg, input, bytes(parts->signature), key);
}

std::string cookbook(std::string_view header, std::string_view sig) {
  return std::string(header) + "." + std::string(kCookbookPayload) + "." + std::string(sig);
}

// Flips one bit of the decoded part `index` (0 header, 1 payload, 2 signature) at `byte`.
std::string flip_bit(std::string_view token, int index, std::size_t byte, unsigned char mask) {
  auto parts = split_compact_jws(token, kDefaultMaxTokenBytes);
  EXPECT_TRUE(parts);
  std::string_view p[3] = {parts->header, parts->payload, parts->signature};
  auto decoded = bytes(p[index]);
  decoded.at(byte) ^= mask;
  std::string out[3] = {std::string(p[0]), std::string(p[1]), std::string(p[2])};
  out[index] = base64url_encode(decoded);
  return out[0] + "." + out[1] + "." + out[2];
}

std::string b64(std::string_view s) {
  return base64url_encode(s);
}

// ---- RFC vectors ---------------------------------------------------------------------------

TEST(JwsRfcVectors, Rfc7515A2Rs256) {
  auto set = keys(kA2Jwks);
  auto jws = parse_jws(kA2Token);
  ASSERT_TRUE(jws) << to_string(jws.error());
  EXPECT_EQ(jws->header.alg, "RS256");
  EXPECT_TRUE(jws->header.kid.empty());
  EXPECT_EQ(jws->payload.at("iss").as_string(), "joe");
  EXPECT_EQ(jws->payload.at("exp").as_int64(), 1300819380);
  EXPECT_EQ(jws->signature.size(), 256u);
  EXPECT_EQ(jws->signing_input, kA2Token.substr(0, kA2Token.rfind('.')));
  auto ok = verify_signature(*jws, first(set));
  ASSERT_TRUE(ok) << to_string(ok.error());
  EXPECT_EQ(*ok, JwsAlg::RS256);
}

TEST(JwsRfcVectors, Rfc7515A3Es256) {
  auto set = keys(kA3Jwks);
  auto jws = parse_jws(kA3Token);
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->signature.size(), 64u);
  auto ok = verify_signature(*jws, first(set));
  ASSERT_TRUE(ok) << to_string(ok.error());
  EXPECT_EQ(*ok, JwsAlg::ES256);
}

TEST(JwsRfcVectors, Rfc8037A4Ed25519) {
  auto set = keys(kEd25519Jwks);
  EXPECT_EQ(parse_jws(kEd25519Token).error(), JwtError::malformed) << "payload is not JSON";
  auto ok = verify_raw(kEd25519Token, first(set));
  ASSERT_TRUE(ok) << to_string(ok.error());
  EXPECT_EQ(*ok, JwsAlg::EdDSA);
}

TEST(JwsRfcVectors, Rfc7520Section4_1Rs256) {
  auto set = keys(kCookbookRsaJwks);
  auto ok = verify_raw(cookbook(kCookbookRs256Header, kCookbookRs256Sig), first(set));
  ASSERT_TRUE(ok) << to_string(ok.error());
  EXPECT_EQ(*ok, JwsAlg::RS256);
}

TEST(JwsRfcVectors, Rfc7520Section4_2Ps384) {
  auto set = keys(kCookbookRsaJwks);
  auto ok = verify_raw(cookbook(kCookbookPs384Header, kCookbookPs384Sig), first(set));
  ASSERT_TRUE(ok) << to_string(ok.error());
  EXPECT_EQ(*ok, JwsAlg::PS384);
}

TEST(JwsRfcVectors, Rfc7520Section4_3Es512) {
  auto set = keys(kCookbookEcJwks);
  auto ok = verify_raw(cookbook(kCookbookEs512Header, kCookbookEs512Sig), first(set));
  ASSERT_TRUE(ok) << to_string(ok.error());
  EXPECT_EQ(*ok, JwsAlg::ES512);
}

TEST(JwsRfcVectors, Rfc7520Section4_4Hs256IsRefused) {
  // Against the cookbook's RSA key (the key-confusion attack) and as an algorithm at all.
  auto set = keys(kCookbookRsaJwks);
  auto r = verify_raw(cookbook(kCookbookHs256Header, kCookbookHs256Sig), first(set));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), JwtError::unsupported_alg);
  // The section 3.5 key itself cannot even be loaded.
  EXPECT_FALSE(
      JwkSet::parse(R"({"keys":[{"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037",)"
                    R"("use":"sig","alg":"HS256",)"
                    R"("k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"}]})"));
}

// ---- Algorithm / key fit -------------------------------------------------------------------

TEST(JwsVerify, RefusesNoneAndHmacWhateverTheKey) {
  auto rsa = keys(kA2Jwks);
  for (std::string_view alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string t =
        b64(R"({"alg":")" + std::string(alg) + "\"}") + "." + b64(R"({"iss":"joe"})") + ".AAAA";
    auto jws = parse_jws(t);
    ASSERT_TRUE(jws);
    EXPECT_EQ(verify_signature(*jws, first(rsa)).error(), JwtError::alg_none) << alg;
  }
  for (std::string_view alg : {"HS256", "HS384", "HS512", "RSA1_5", "ES256K", "rs256"}) {
    const std::string t =
        b64(R"({"alg":")" + std::string(alg) + "\"}") + "." + b64(R"({"iss":"joe"})") + ".AAAA";
    auto jws = parse_jws(t);
    ASSERT_TRUE(jws);
    EXPECT_EQ(verify_signature(*jws, first(rsa)).error(), JwtError::unsupported_alg) << alg;
  }
}

TEST(JwsVerify, AlgMustFitTheKey) {
  auto rsa = keys(kA2Jwks);
  auto p256 = keys(kA3Jwks);
  auto p521 = keys(kCookbookEcJwks);
  auto ed = keys(kEd25519Jwks);
  auto rs = parse_jws(kA2Token);
  auto es = parse_jws(kA3Token);
  ASSERT_TRUE(rs && es);
  EXPECT_EQ(verify_signature(*rs, first(p256)).error(), JwtError::alg_key_mismatch);
  EXPECT_EQ(verify_signature(*rs, first(ed)).error(), JwtError::alg_key_mismatch);
  EXPECT_EQ(verify_signature(*es, first(rsa)).error(), JwtError::alg_key_mismatch);
  EXPECT_EQ(verify_signature(*es, first(p521)).error(), JwtError::alg_key_mismatch);
  EXPECT_EQ(verify_raw(kEd25519Token, first(p256)).error(), JwtError::alg_key_mismatch);
  // ES512 signature checked as if it were ES256 against the P-256 key.
  EXPECT_EQ(verify_signature(JwsAlg::ES512, es->signing_input, es->signature, first(p256)).error(),
            JwtError::alg_key_mismatch);
}

TEST(JwsVerify, JwkAlgPinsTheAlgorithm) {
  std::string pinned(kCookbookRsaJwks);
  pinned.insert(pinned.find("\"use\""), R"("alg":"RS256",)");
  auto set = keys(pinned);
  EXPECT_TRUE(verify_raw(cookbook(kCookbookRs256Header, kCookbookRs256Sig), first(set)));
  EXPECT_EQ(verify_raw(cookbook(kCookbookPs384Header, kCookbookPs384Sig), first(set)).error(),
            JwtError::alg_key_mismatch);
}

TEST(JwsVerify, PssAndPkcs1AreNotInterchangeable) {
  auto set = keys(kCookbookRsaJwks);
  const std::string rs = cookbook(kCookbookRs256Header, kCookbookRs256Sig);
  const std::string ps = cookbook(kCookbookPs384Header, kCookbookPs384Sig);
  const auto rs_input = std::string_view(rs).substr(0, rs.rfind('.'));
  const auto ps_input = std::string_view(ps).substr(0, ps.rfind('.'));
  EXPECT_EQ(verify_signature(JwsAlg::PS256, rs_input, bytes(kCookbookRs256Sig), first(set)).error(),
            JwtError::bad_signature);
  EXPECT_EQ(verify_signature(JwsAlg::RS384, ps_input, bytes(kCookbookPs384Sig), first(set)).error(),
            JwtError::bad_signature);
  EXPECT_EQ(verify_signature(JwsAlg::PS512, ps_input, bytes(kCookbookPs384Sig), first(set)).error(),
            JwtError::bad_signature);
}

TEST(JwsVerify, EcdsaSignatureMustBeRawRAndSOfTheCurveSize) {
  auto set = keys(kA3Jwks);
  auto jws = parse_jws(kA3Token);
  ASSERT_TRUE(jws);
  // The same signature in DER (what OpenSSL itself produces) is not a JOSE signature.
  BIGNUM* r = BN_bin2bn(jws->signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(jws->signature.data() + 32, 32, nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ASSERT_GT(der_len, 0);
  std::vector<unsigned char> der_sig(der, der + der_len);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  EXPECT_EQ(verify_signature(JwsAlg::ES256, jws->signing_input, der_sig, first(set)).error(),
            JwtError::bad_signature);

  auto shorter = jws->signature;
  shorter.pop_back();
  EXPECT_EQ(verify_signature(JwsAlg::ES256, jws->signing_input, shorter, first(set)).error(),
            JwtError::bad_signature);
  auto longer = jws->signature;
  longer.insert(longer.begin(), 0);
  EXPECT_EQ(verify_signature(JwsAlg::ES256, jws->signing_input, longer, first(set)).error(),
            JwtError::bad_signature);
  std::vector<unsigned char> zeros(64, 0);
  EXPECT_EQ(verify_signature(JwsAlg::ES256, jws->signing_input, zeros, first(set)).error(),
            JwtError::bad_signature);
}

TEST(JwsVerify, FailuresLeaveNoOpenSslErrorsBehind) {
  // A stale entry in OpenSSL's per-thread error queue would confuse a later SSL_get_error().
  auto rsa = keys(kA2Jwks);
  auto ec = keys(kA3Jwks);
  const std::string rs_token = flip_bit(kA2Token, 2, 5, 0x01);
  const std::string es_token = flip_bit(kA3Token, 2, 0, 0xff);
  auto rs = parse_jws(rs_token);
  auto es = parse_jws(es_token);
  ASSERT_TRUE(rs && es);
  const std::vector<unsigned char> junk(256, 0x42);  // right length, not a signature
  ERR_clear_error();
  EXPECT_FALSE(verify_signature(*rs, first(rsa)));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(verify_signature(*es, first(ec)));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(verify_signature(JwsAlg::RS256, rs->signing_input, junk, first(rsa)));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(verify_signature(JwsAlg::PS256, rs->signing_input, junk, first(rsa)));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_FALSE(JwkSet::parse(R"({"keys":[{"kty":"EC","crv":"P-256","x":")"
                             R"(f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":")"
                             R"(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]})"));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(JwsVerify, RsaSignatureMustHaveTheModulusLength) {
  auto set = keys(kA2Jwks);
  auto jws = parse_jws(kA2Token);
  ASSERT_TRUE(jws);
  auto padded = jws->signature;
  padded.insert(padded.begin(), 0);
  EXPECT_EQ(verify_signature(JwsAlg::RS256, jws->signing_input, padded, first(set)).error(),
            JwtError::bad_signature);
  std::vector<unsigned char> empty;
  EXPECT_EQ(verify_signature(JwsAlg::RS256, jws->signing_input, empty, first(set)).error(),
            JwtError::bad_signature);
}

TEST(JwsVerify, TamperedVectorsFail) {
  auto rsa = keys(kA2Jwks);
  auto ec = keys(kA3Jwks);
  // Payload: "joe" -> "koe" (one bit), still valid JSON.
  const std::size_t j = std::string_view("{\"iss\":\"").size();
  for (auto [token, set] : {std::pair{kA2Token, rsa}, std::pair{kA3Token, ec}}) {
    const std::string tampered = flip_bit(token, 1, j, 0x01);
    auto payload = parse_jws(tampered);
    ASSERT_TRUE(payload);
    EXPECT_EQ(payload->payload.at("iss").as_string(), "koe");
    EXPECT_EQ(verify_signature(*payload, first(set)).error(), JwtError::bad_signature);
    for (std::size_t byte : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
      const std::string bad_sig = flip_bit(token, 2, byte, 0x10);
      auto sig = parse_jws(bad_sig);
      ASSERT_TRUE(sig);
      EXPECT_EQ(verify_signature(*sig, first(set)).error(), JwtError::bad_signature);
    }
  }
  // Header: {"alg":"RS256"} -> {"alg":"RS256"} with a trailing space in a new spelling.
  const std::string respelled = b64(R"({"alg":"RS256" })") + std::string(kA2Token.substr(20));
  auto header = parse_jws(respelled);
  ASSERT_TRUE(header);
  EXPECT_EQ(verify_signature(*header, first(rsa)).error(), JwtError::bad_signature);
}

// ---- Structure -----------------------------------------------------------------------------

TEST(JwsParse, ReadsHeaderFields) {
  const std::string token =
      b64(R"({"alg":"ES256","kid":"k-1","typ":"at+jwt","jku":"https://evil.example/jwks"})") + "." +
      b64(R"({"sub":"alice"})") + ".AAAA";
  auto jws = parse_jws(token);
  ASSERT_TRUE(jws) << to_string(jws.error());
  EXPECT_EQ(jws->header.alg, "ES256");
  EXPECT_EQ(jws->header.kid, "k-1");
  EXPECT_EQ(jws->header.typ, "at+jwt");
  EXPECT_TRUE(jws->header.crit.empty());
  EXPECT_EQ(jws->payload.at("sub").as_string(), "alice");
  EXPECT_EQ(jws->signature, (std::vector<unsigned char>{0, 0, 0}));
  EXPECT_EQ(jws->token_bytes, token.size());
}

TEST(JwsParse, RequiresExactlyThreeNonEmptyParts) {
  const std::string h = b64(R"({"alg":"RS256"})");
  const std::string p = b64(R"({"iss":"joe"})");
  for (const std::string& bad :
       {h, h + "." + p, h + "." + p + ".AAAA.AAAA", h + "." + p + ".", "." + p + ".AAAA",
        h + "..AAAA", std::string(".."), std::string(""), h + "." + p + ".AAAA."}) {
    auto r = parse_jws(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error(), JwtError::malformed) << bad;
  }
}

TEST(JwsParse, RequiresStrictBase64Url) {
  const std::string token(kA2Token);
  const auto d1 = token.find('.');
  const auto d2 = token.rfind('.');
  std::vector<std::string> bad;
  bad.push_back(token + "=");                                    // padding on the signature
  bad.push_back(token.substr(0, d1) + "=" + token.substr(d1));   // padding on the header
  bad.push_back(token.substr(0, d2) + "==" + token.substr(d2));  // padding on the payload
  for (char c : {'+', '/', ' ', '\n', '\t', '='}) {
    std::string t = token;
    t[d2 + 5] = c;
    bad.push_back(t);
    t = token;
    t[3] = c;
    bad.push_back(t);
  }
  bad.push_back(" " + token);
  bad.push_back(token + "\n");
  bad.push_back(token.substr(0, d2 + 1) + "AAA" + token.substr(d2 + 1));  // len % 4 == 1
  for (const auto& t : bad) {
    auto r = parse_jws(t);
    ASSERT_FALSE(r) << t;
    EXPECT_EQ(r.error(), JwtError::malformed) << t;
  }
}

TEST(JwsParse, EnforcesTheSizeLimit) {
  JwsParseOptions options;
  options.max_token_bytes = kA2Token.size();
  EXPECT_TRUE(parse_jws(kA2Token, options));
  options.max_token_bytes = kA2Token.size() - 1;
  EXPECT_EQ(parse_jws(kA2Token, options).error(), JwtError::token_too_large);
  const std::string huge = std::string(kA2Token.substr(0, 20)) + "." +
                           b64(std::string(20000, 'x')) + "." +
                           std::string(kA2Token.substr(kA2Token.rfind('.') + 1));
  EXPECT_EQ(parse_jws(huge).error(), JwtError::token_too_large);  // default 16 KiB
}

TEST(JwsParse, HeaderAndPayloadMustBeJsonObjects) {
  const std::string p = b64(R"({"iss":"joe"})");
  const std::string h = b64(R"({"alg":"RS256"})");
  for (std::string_view header :
       {R"(["alg","RS256"])", R"("RS256")", R"({"alg":"RS256")", R"({})", R"({"alg":""})",
        R"({"alg":256})", R"({"alg":null})", R"({"alg":"RS256","kid":7})",
        R"({"alg":"RS256","typ":{}})", R"({"alg":"RS256",})", "{\"alg\":\"RS256\"}\x01"}) {
    const std::string t = b64(header) + "." + p + ".AAAA";
    auto r = parse_jws(t);
    ASSERT_FALSE(r) << header;
    EXPECT_EQ(r.error(), JwtError::malformed) << header;
  }
  for (std::string_view payload :
       {R"([1,2])", R"("joe")", "42", "null", R"({"iss":)", "\xff\xfe"}) {
    const std::string t = h + "." + b64(payload) + ".AAAA";
    auto r = parse_jws(t);
    ASSERT_FALSE(r) << payload;
    EXPECT_EQ(r.error(), JwtError::malformed) << payload;
  }
}

TEST(JwsParse, RefusesCritUnlessUnderstood) {
  const std::string p = b64(R"({"iss":"joe"})");
  auto with_header = [&](std::string_view header) {
    const std::string t = b64(header) + "." + p + ".AAAA";
    return parse_jws(t).error();
  };
  EXPECT_EQ(with_header(R"({"alg":"RS256","crit":["exp"],"exp":1})"), JwtError::unsupported_crit);
  EXPECT_EQ(with_header(R"({"alg":"RS256","crit":["b64"],"b64":false})"),
            JwtError::unsupported_crit);
  for (std::string_view malformed :
       {R"({"alg":"RS256","crit":[]})", R"({"alg":"RS256","crit":"exp"})",
        R"({"alg":"RS256","crit":[1]})", R"({"alg":"RS256","crit":[""]})",
        R"({"alg":"RS256","crit":null})", R"({"alg":"RS256","crit":["exp",2],"exp":1})"}) {
    EXPECT_EQ(with_header(malformed), JwtError::malformed) << malformed;
  }
  // A caller that handles an extension can let it through (it must then be present).
  const std::string_view understood[] = {"urn:example:ext"};
  JwsParseOptions options;
  options.understood_crit = understood;
  const std::string present =
      b64(R"({"alg":"RS256","crit":["urn:example:ext"],"urn:example:ext":1})") + "." + p + ".AAAA";
  auto ok = parse_jws(present, options);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->header.crit, std::vector<std::string>{"urn:example:ext"});
  const std::string absent =
      b64(R"({"alg":"RS256","crit":["urn:example:ext"]})") + "." + p + ".AAAA";
  EXPECT_EQ(parse_jws(absent, options).error(), JwtError::malformed);
}

TEST(JwsErrors, CodesAreStableUniqueAndDescribed) {
  const std::pair<JwtError, std::string_view> codes[] = {
      {JwtError::malformed, "malformed"},
      {JwtError::token_too_large, "token_too_large"},
      {JwtError::alg_not_allowed, "alg_not_allowed"},
      {JwtError::alg_none, "alg_none"},
      {JwtError::unsupported_alg, "unsupported_alg"},
      {JwtError::alg_key_mismatch, "alg_key_mismatch"},
      {JwtError::unknown_kid, "unknown_kid"},
      {JwtError::no_matching_key, "no_matching_key"},
      {JwtError::bad_signature, "bad_signature"},
      {JwtError::wrong_issuer, "wrong_issuer"},
      {JwtError::wrong_audience, "wrong_audience"},
      {JwtError::expired, "expired"},
      {JwtError::not_yet_valid, "not_yet_valid"},
      {JwtError::issued_in_future, "issued_in_future"},
      {JwtError::missing_exp, "missing_exp"},
      {JwtError::invalid_claim, "invalid_claim"},
      {JwtError::bad_typ, "bad_typ"},
      {JwtError::unsupported_crit, "unsupported_crit"},
      {JwtError::internal, "internal_error"},
  };
  std::set<std::string_view> seen;
  for (auto [e, code] : codes) {
    EXPECT_EQ(to_string(e), code);
    EXPECT_TRUE(seen.insert(code).second) << code;
    EXPECT_FALSE(describe(e).empty());
    EXPECT_EQ(describe(e).find('\n'), std::string_view::npos);
    EXPECT_EQ(suggests_key_refetch(e),
              e == JwtError::unknown_kid || e == JwtError::no_matching_key);
  }
}

}  // namespace
}  // namespace portcullis
