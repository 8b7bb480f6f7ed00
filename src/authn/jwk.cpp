#include "authn/jwk.hpp"

#include <array>
#include <utility>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;  // larger moduli only make verification a DoS lever
constexpr int kMaxRsaExponentBits = 64;

struct BnDeleter {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ParamDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

using Bytes = std::vector<unsigned char>;

struct AlgInfo {
  JwsAlg alg;
  std::string_view name;
  JwkType kty;
  JwkCurve crv;
};
constexpr std::array<AlgInfo, 10> kAlgs = {{
    {JwsAlg::RS256, "RS256", JwkType::rsa, JwkCurve::none},
    {JwsAlg::RS384, "RS384", JwkType::rsa, JwkCurve::none},
    {JwsAlg::RS512, "RS512", JwkType::rsa, JwkCurve::none},
    {JwsAlg::PS256, "PS256", JwkType::rsa, JwkCurve::none},
    {JwsAlg::PS384, "PS384", JwkType::rsa, JwkCurve::none},
    {JwsAlg::PS512, "PS512", JwkType::rsa, JwkCurve::none},
    {JwsAlg::ES256, "ES256", JwkType::ec, JwkCurve::p256},
    {JwsAlg::ES384, "ES384", JwkType::ec, JwkCurve::p384},
    {JwsAlg::ES512, "ES512", JwkType::ec, JwkCurve::p521},
    {JwsAlg::EdDSA, "EdDSA", JwkType::okp, JwkCurve::ed25519},
}};

const AlgInfo& info(JwsAlg alg) {
  return kAlgs[static_cast<std::size_t>(alg)];
}

// Digests fetched once (explicit fetches avoid a per-call implicit lookup in OpenSSL 3).
// Intentionally never freed: they live as long as the process.
struct Digests {
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA2-384", nullptr);
  EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA2-512", nullptr);
};

// The digest of `alg`; nullptr for EdDSA (which hashes internally).
const EVP_MD* digest_for(JwsAlg alg) {
  static const Digests d;
  switch (alg) {
    case JwsAlg::RS256:
    case JwsAlg::PS256:
    case JwsAlg::ES256:
      return d.sha256;
    case JwsAlg::RS384:
    case JwsAlg::PS384:
    case JwsAlg::ES384:
      return d.sha384;
    case JwsAlg::RS512:
    case JwsAlg::PS512:
    case JwsAlg::ES512:
      return d.sha512;
    case JwsAlg::EdDSA:
      return nullptr;
  }
  return nullptr;
}

// An EVP_DigestVerify context for `alg` with `key`, everything but the data set up.
EvpMdCtxPtr make_verify_template(JwsAlg alg, EVP_PKEY* key) {
  const EVP_MD* md = digest_for(alg);
  if (alg != JwsAlg::EdDSA && !md) return nullptr;
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) return nullptr;
  switch (alg) {
    case JwsAlg::RS256:
    case JwsAlg::RS384:
    case JwsAlg::RS512:
      if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) return nullptr;
      break;
    case JwsAlg::PS256:
    case JwsAlg::PS384:
    case JwsAlg::PS512:
      // RFC 7518 3.5: MGF1 with the same hash, salt exactly as long as the hash.
      if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)
        return nullptr;
      break;
    default:
      break;
  }
  return ctx;
}

// A string member: nullopt when absent, an error when present but not a string.
Expected<std::optional<std::string_view>, std::string> string_member(const boost::json::object& o,
                                                                     std::string_view name) {
  const boost::json::value* v = o.if_contains(name);
  if (!v) return std::optional<std::string_view>{};
  const boost::json::string* s = v->if_string();
  if (!s) return unexpected("\"" + std::string(name) + "\" is not a string");
  return std::optional<std::string_view>{std::string_view(*s)};
}

Expected<Bytes, std::string> required_bytes(const boost::json::object& o, std::string_view name) {
  auto s = string_member(o, name);
  if (!s) return unexpected(s.error());
  if (!*s) return unexpected("missing \"" + std::string(name) + "\"");
  auto bytes = base64url_decode(**s);
  if (!bytes || bytes->empty())
    return unexpected("\"" + std::string(name) + "\" is not valid base64url");
  return std::move(*bytes);
}

// Fails and clears OpenSSL's error queue, so errors never leak into unrelated TLS calls.
Unexpected<std::string> openssl_failure(std::string what) {
  ERR_clear_error();
  return unexpected(std::move(what));
}

Expected<EvpPkeyPtr, std::string> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1)
    return openssl_failure("key import failed");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || !raw)
    return openssl_failure("key parameters rejected");
  return EvpPkeyPtr(raw);
}

Expected<EvpPkeyPtr, std::string> rsa_key(const boost::json::object& o) {
  auto n = required_bytes(o, "n");
  if (!n) return unexpected(n.error());
  auto e = required_bytes(o, "e");
  if (!e) return unexpected(e.error());
  BnPtr bn_n(BN_bin2bn(n->data(), static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(e->data(), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return openssl_failure("key import failed");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < kMinRsaBits)
    return unexpected("RSA modulus of " + std::to_string(bits) + " bits is below 2048");
  if (bits > kMaxRsaBits)
    return unexpected("RSA modulus of " + std::to_string(bits) + " bits is above 8192");
  if (!BN_is_odd(bn_n.get())) return unexpected("RSA modulus is even");
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()) ||
      BN_num_bits(bn_e.get()) > kMaxRsaExponentBits)
    return unexpected("RSA public exponent is out of range");
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    return openssl_failure("key import failed");
  return from_params("RSA", bld.get());
}

struct CurveInfo {
  std::string_view jwk_name;
  JwkCurve crv;
  const char* group;  // OpenSSL group name
  std::size_t field_bytes;
};
constexpr std::array<CurveInfo, 3> kCurves = {{
    {"P-256", JwkCurve::p256, "prime256v1", 32},
    {"P-384", JwkCurve::p384, "secp384r1", 48},
    {"P-521", JwkCurve::p521, "secp521r1", 66},
}};

Expected<EvpPkeyPtr, std::string> ec_key(const boost::json::object& o, const CurveInfo& curve) {
  auto x = required_bytes(o, "x");
  if (!x) return unexpected(x.error());
  auto y = required_bytes(o, "y");
  if (!y) return unexpected(y.error());
  // RFC 7518 6.2.1.2/6.2.1.3: each coordinate is exactly the full field size.
  if (x->size() != curve.field_bytes || y->size() != curve.field_bytes)
    return unexpected("EC coordinate has the wrong length for " + std::string(curve.jwk_name));
  Bytes point;  // SEC 1 uncompressed point: 04 || x || y
  point.reserve(1 + 2 * curve.field_bytes);
  point.push_back(0x04);
  point.insert(point.end(), x->begin(), x->end());
  point.insert(point.end(), y->begin(), y->end());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve.group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1)
    return openssl_failure("key import failed");
  auto key = from_params("EC", bld.get());
  if (!key) return unexpected("EC point is not on " + std::string(curve.jwk_name));
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    return openssl_failure("EC point is not a valid public key on " + std::string(curve.jwk_name));
  return key;
}

Expected<EvpPkeyPtr, std::string> ed25519_key(const boost::json::object& o) {
  auto x = required_bytes(o, "x");
  if (!x) return unexpected(x.error());
  if (x->size() != 32) return unexpected("Ed25519 public key is not 32 bytes");
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, x->data(), 32);
  if (!raw) return openssl_failure("Ed25519 key import failed");
  return EvpPkeyPtr(raw);
}

// Members that only a private JWK has (RFC 7518 6.3.2, 6.2.2; RFC 8037 2).
constexpr std::array<std::string_view, 7> kPrivateMembers = {"d",  "p",  "q",  "dp",
                                                             "dq", "qi", "oth"};

// kid as it may appear in a log line: printable ASCII, bounded.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7F && c != '"' ? c : '?');
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

void EvpPkeyDeleter::operator()(EVP_PKEY* key) const noexcept {
  EVP_PKEY_free(key);
}
void EvpMdCtxDeleter::operator()(EVP_MD_CTX* ctx) const noexcept {
  EVP_MD_CTX_free(ctx);
}

std::string_view to_string(JwsAlg alg) {
  return info(alg).name;
}

std::optional<JwsAlg> parse_jws_alg(std::string_view name) {
  for (const auto& a : kAlgs)
    if (a.name == name) return a.alg;
  return std::nullopt;
}

std::string_view to_string(JwkType kty) {
  switch (kty) {
    case JwkType::rsa:
      return "RSA";
    case JwkType::ec:
      return "EC";
    case JwkType::okp:
      return "OKP";
  }
  return "";
}

std::string_view to_string(JwkCurve crv) {
  switch (crv) {
    case JwkCurve::none:
      return "";
    case JwkCurve::p256:
      return "P-256";
    case JwkCurve::p384:
      return "P-384";
    case JwkCurve::p521:
      return "P-521";
    case JwkCurve::ed25519:
      return "Ed25519";
  }
  return "";
}

bool Jwk::usable_with(JwsAlg alg) const {
  const AlgInfo& a = info(alg);
  if (a.kty != kty_ || a.crv != crv_) return false;
  return !alg_ || *alg_ == alg;
}

const EVP_MD_CTX* Jwk::verify_template(JwsAlg alg) const {
  for (const auto& [a, ctx] : templates_)
    if (a == alg) return ctx.get();
  return nullptr;
}

Expected<Jwk, std::string> Jwk::from_json(const boost::json::object& o) {
  Jwk key;
  auto kty = string_member(o, "kty");
  if (!kty) return unexpected(kty.error());
  if (!*kty) return unexpected(std::string("missing \"kty\""));
  auto kid = string_member(o, "kid");
  if (!kid) return unexpected(kid.error());
  if (*kid) key.kid_ = std::string(**kid);

  for (std::string_view m : kPrivateMembers)
    if (o.contains(m))
      return unexpected("private key member \"" + std::string(m) +
                        "\" present; a key set must carry public keys only");

  auto use = string_member(o, "use");
  if (!use) return unexpected(use.error());
  if (*use) {
    if (**use != "sig") return unexpected("\"use\" is \"" + printable(**use) + "\", not \"sig\"");
    key.use_ = "sig";
  }
  if (const boost::json::value* ops = o.if_contains("key_ops")) {
    const boost::json::array* arr = ops->if_array();
    if (!arr) return unexpected(std::string("\"key_ops\" is not an array"));
    bool verify = false;
    for (const auto& op : *arr) {
      const boost::json::string* s = op.if_string();
      if (!s) return unexpected(std::string("\"key_ops\" holds a non-string"));
      if (*s == "verify") verify = true;
    }
    if (!verify) return unexpected(std::string("\"key_ops\" does not allow \"verify\""));
  }

  auto alg = string_member(o, "alg");
  if (!alg) return unexpected(alg.error());
  if (*alg) {
    key.alg_ = parse_jws_alg(**alg);
    if (!key.alg_) return unexpected("unsupported \"alg\" \"" + printable(**alg) + "\"");
  }

  Expected<EvpPkeyPtr, std::string> pkey = unexpected(std::string());
  if (**kty == "RSA") {
    key.kty_ = JwkType::rsa;
    pkey = rsa_key(o);
  } else if (**kty == "EC" || **kty == "OKP") {
    auto crv = string_member(o, "crv");
    if (!crv) return unexpected(crv.error());
    if (!*crv) return unexpected(std::string("missing \"crv\""));
    if (**kty == "EC") {
      key.kty_ = JwkType::ec;
      const CurveInfo* curve = nullptr;
      for (const auto& c : kCurves)
        if (c.jwk_name == **crv) curve = &c;
      if (!curve) return unexpected("unsupported EC curve \"" + printable(**crv) + "\"");
      key.crv_ = curve->crv;
      pkey = ec_key(o, *curve);
    } else {
      key.kty_ = JwkType::okp;
      if (**crv != "Ed25519")
        return unexpected("unsupported OKP curve \"" + printable(**crv) + "\"");
      key.crv_ = JwkCurve::ed25519;
      pkey = ed25519_key(o);
    }
  } else {
    return unexpected("unsupported \"kty\" \"" + printable(**kty) + "\"");
  }
  if (!pkey) return unexpected(pkey.error());
  key.pkey_ = std::move(*pkey);
  key.bits_ = EVP_PKEY_get_bits(key.pkey_.get());
  if (key.alg_ && !key.usable_with(*key.alg_))
    return unexpected("\"alg\" " + std::string(to_string(*key.alg_)) + " does not fit a " +
                      std::string(to_string(key.kty_)) + " key");
  for (const auto& a : kAlgs) {
    if (!key.usable_with(a.alg)) continue;
    EvpMdCtxPtr ctx = make_verify_template(a.alg, key.pkey_.get());
    if (!ctx) return openssl_failure("cannot set up " + std::string(a.name) + " verification");
    key.templates_.emplace_back(a.alg, std::move(ctx));
  }
  return key;
}

JwkSet::JwkSet(std::vector<Jwk> keys, std::vector<std::string> warnings)
    : keys_(std::move(keys)), warnings_(std::move(warnings)) {}

const Jwk* JwkSet::find(std::string_view kid) const {
  if (kid.empty()) return nullptr;
  for (const Jwk& k : keys_)
    if (k.kid() == kid) return &k;
  return nullptr;
}

Expected<std::shared_ptr<const JwkSet>, std::string> JwkSet::parse(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(json, ec);
  if (ec) return unexpected("JWKS is not valid JSON: " + ec.message());
  const boost::json::object* root = doc.if_object();
  if (!root) return unexpected(std::string("JWKS is not a JSON object"));
  const boost::json::value* keys_value = root->if_contains("keys");
  if (!keys_value) return unexpected(std::string("JWKS has no \"keys\" member"));
  const boost::json::array* members = keys_value->if_array();
  if (!members) return unexpected(std::string("JWKS \"keys\" is not an array"));

  std::vector<Jwk> keys;
  std::vector<std::string> warnings;
  for (std::size_t i = 0; i < members->size(); ++i) {
    const boost::json::object* member = (*members)[i].if_object();
    std::string where = "key #" + std::to_string(i);
    if (!member) {
      warnings.push_back(where + " skipped: not a JSON object");
      continue;
    }
    const boost::json::value* kty = member->if_contains("kty");
    if (kty && kty->is_string() && kty->get_string() == "oct")
      return unexpected(where + " is a symmetric (\"oct\") key; a key set with one is refused");
    if (const boost::json::value* kid = member->if_contains("kid"); kid && kid->is_string())
      where += " (kid \"" + printable(kid->get_string()) + "\")";
    auto key = Jwk::from_json(*member);
    if (!key) {
      warnings.push_back(where + " skipped: " + key.error());
      continue;
    }
    keys.push_back(std::move(*key));
  }
  if (keys.empty()) {
    std::string reason = "JWKS has no usable signing key";
    if (!warnings.empty()) reason += " (" + warnings.front() + ")";
    return unexpected(std::move(reason));
  }
  return std::make_shared<const JwkSet>(std::move(keys), std::move(warnings));
}

}  // namespace portcullis
