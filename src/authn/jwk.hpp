#pragma once
// Public signing keys from a JWKS document (RFC 7517/7518/8037), ready for OpenSSL.
//
// A JwkSet is parsed once per fetch and then shared read-only between workers:
//
//   auto set = JwkSet::parse(body);              // Expected<shared_ptr<const JwkSet>, string>
//   if (!set) log(set.error());                  // keep the previous set
//   for (const auto& w : (*set)->warnings()) log(w);
//   const Jwk* key = (*set)->find("kid-1");
//
// Accepted: RSA (n, e; 2048..8192-bit modulus), EC P-256/P-384/P-521 (x, y; point checked),
// OKP Ed25519 (x). Keys whose "use" is not "sig", whose "key_ops" lacks "verify", whose
// kty/crv/alg we do not support, which carry private members ("d", ...) or which are malformed
// are skipped with a warning. A symmetric ("oct") key refuses the whole document: a symmetric
// secret must never sit in a published key set, and is never usable for verification here.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/types.h>
#include <boost/json/fwd.hpp>

#include "core/expected.hpp"

namespace portcullis {

// The asymmetric JWS algorithms we verify. "none" and HS* are deliberately not representable.
enum class JwsAlg : std::uint8_t {
  RS256,
  RS384,
  RS512,
  PS256,
  PS384,
  PS512,
  ES256,
  ES384,
  ES512,
  EdDSA,
};

std::string_view to_string(JwsAlg alg);
// Exact, case-sensitive JOSE name -> JwsAlg; nullopt for anything else ("none", "HS256", ...).
std::optional<JwsAlg> parse_jws_alg(std::string_view name);

enum class JwkType : std::uint8_t { rsa, ec, okp };
enum class JwkCurve : std::uint8_t { none, p256, p384, p521, ed25519 };

std::string_view to_string(JwkType kty);   // "RSA", "EC", "OKP"
std::string_view to_string(JwkCurve crv);  // "", "P-256", "P-384", "P-521", "Ed25519"

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const noexcept;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept;
};
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

// One public verification key. Move-only; owns its EVP_PKEY, and for each algorithm the key
// fits a verification context set up once (digest, padding, PSS salt and MGF1), so the hot
// path copies a context instead of looking algorithms up in the provider on every token.
class Jwk {
 public:
  // Builds a key from one JWKS member. The error says why the key is not usable.
  static Expected<Jwk, std::string> from_json(const boost::json::object& member);

  const std::string& kid() const { return kid_; }  // empty when the JWK has none
  JwkType kty() const { return kty_; }
  JwkCurve crv() const { return crv_; }  // none for RSA
  const std::optional<JwsAlg>& alg() const { return alg_; }
  const std::string& use() const { return use_; }  // empty when absent, otherwise "sig"
  int bits() const { return bits_; }
  EVP_PKEY* pkey() const { return pkey_.get(); }

  // True when a token signed with `alg` may be checked with this key: kty and curve fit the
  // algorithm, and the JWK's own "alg", when present, names exactly `alg`.
  bool usable_with(JwsAlg alg) const;

  // The prepared EVP_DigestVerify context for `alg`; nullptr when !usable_with(alg). Never
  // modify it: copy it (EVP_MD_CTX_copy_ex) into a context of your own, which is safe from
  // any number of threads at once.
  const EVP_MD_CTX* verify_template(JwsAlg alg) const;

 private:
  Jwk() = default;

  std::string kid_;
  JwkType kty_ = JwkType::rsa;
  JwkCurve crv_ = JwkCurve::none;
  std::optional<JwsAlg> alg_;
  std::string use_;
  int bits_ = 0;
  EvpPkeyPtr pkey_;
  std::vector<std::pair<JwsAlg, EvpMdCtxPtr>> templates_;
};

// An immutable set of verification keys, shared as std::shared_ptr<const JwkSet>.
class JwkSet {
 public:
  // Parses a JWKS document ({"keys": [...]}). Fails when the document is not a JWKS, holds an
  // "oct" key, or has no usable key at all; otherwise unusable keys are skipped with a warning.
  static Expected<std::shared_ptr<const JwkSet>, std::string> parse(std::string_view json);

  JwkSet(std::vector<Jwk> keys, std::vector<std::string> warnings);

  // First key whose kid equals `kid`; nullptr when none (or `kid` is empty).
  const Jwk* find(std::string_view kid) const;

  std::size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  std::vector<Jwk>::const_iterator begin() const { return keys_.begin(); }
  std::vector<Jwk>::const_iterator end() const { return keys_.end(); }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<Jwk> keys_;
  std::vector<std::string> warnings_;
};

}  // namespace portcullis
