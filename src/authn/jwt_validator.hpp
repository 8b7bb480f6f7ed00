#pragma once
// Validates a bearer JWT for one identity provider: structure, algorithm allowlist, typ, key
// selection from the provider's JwkSet, signature, then iss/aud/exp/nbf/iat.
//
//   auto validator = JwtValidator::create(config);          // once per config snapshot
//   auto token = validator->validate(raw, *jwks, clock);    // per request, thread-safe
//   if (!token && suggests_key_refetch(token.error())) ...  // refetch JWKS, retry once
//
// With several providers, unverified_issuer(raw) picks which validator (and key set) to use;
// nothing else about an unverified token is trusted.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "authn/jwk.hpp"
#include "authn/jws.hpp"
#include "core/clock.hpp"
#include "core/expected.hpp"

namespace portcullis {

struct JwtValidatorConfig {
  std::string issuer;                  // compared exactly with "iss"
  std::vector<std::string> audiences;  // "aud" must contain one; empty only if audience_waived
  bool audience_waived = false;
  std::vector<JwsAlg> algorithms;           // allowlist; must not be empty
  std::chrono::seconds clock_skew{60};      // 0..1h, applied to exp, nbf and iat
  std::optional<std::string> required_typ;  // e.g. "at+jwt" (RFC 9068); case-insensitive,
                                            // "application/" prefix accepted
  std::size_t max_token_bytes = kDefaultMaxTokenBytes;
};

struct VerifiedToken {
  boost::json::object claims;
  std::int64_t exp = 0;  // seconds since the Unix epoch (fractional exp rounded down)
  std::string kid;       // kid of the key that verified the signature (may be empty)
  JwsAlg alg = JwsAlg::RS256;
};

class JwtValidator {
 public:
  // Refuses an unusable configuration (empty issuer, no audiences without a waiver, empty
  // allowlist, skew out of range, zero size limit, empty required typ).
  static Expected<JwtValidator, std::string> create(JwtValidatorConfig config);

  Expected<VerifiedToken, JwtError> validate(std::string_view token, const JwkSet& keys,
                                             const Clock& clock) const;
  // Same, for a token the caller already parsed (e.g. to read its issuer); takes the payload.
  Expected<VerifiedToken, JwtError> validate(ParsedJws&& jws, const JwkSet& keys,
                                             const Clock& clock) const;

  const JwtValidatorConfig& config() const { return config_; }

 private:
  explicit JwtValidator(JwtValidatorConfig config) : config_(std::move(config)) {}

  Expected<JwsAlg, JwtError> check_header(const JwsHeader& header) const;
  Expected<std::string, JwtError> verify_with_keys(const ParsedJws& jws, JwsAlg alg,
                                                   const JwkSet& keys) const;
  Expected<std::int64_t, JwtError> check_claims(const boost::json::object& claims,
                                                const Clock& clock) const;

  JwtValidatorConfig config_;
};

// The "iss" of a token, without verifying anything: only for choosing among providers.
// Decodes just the payload; fails with malformed/token_too_large, or wrong_issuer when the
// payload has no string "iss".
Expected<std::string, JwtError> unverified_issuer(
    std::string_view token, std::size_t max_token_bytes = kDefaultMaxTokenBytes);

}  // namespace portcullis
