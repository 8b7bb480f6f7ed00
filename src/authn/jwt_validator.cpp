#include "authn/jwt_validator.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "authn/audience.hpp"
#include "authn/base64url.hpp"

namespace portcullis {
namespace {

constexpr std::size_t kMaxKeysTried = 8;
constexpr auto kMaxClockSkew = std::chrono::hours(1);

bool ascii_iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

// RFC 7515 4.1.9: typ may omit the "application/" prefix.
bool typ_matches(std::string_view typ, std::string_view required) {
  constexpr std::string_view kPrefix = "application/";
  if (ascii_iequals(typ, required)) return true;
  return typ.size() == kPrefix.size() + required.size() &&
         ascii_iequals(typ.substr(0, kPrefix.size()), kPrefix) &&
         ascii_iequals(typ.substr(kPrefix.size()), required);
}

enum class Round { down, up };

// A NumericDate (RFC 7519 2) as whole seconds, rounded in the direction that is stricter for
// the claim; nullopt when the value is not a finite number.
std::optional<std::int64_t> numeric_date(const boost::json::value& v, Round round) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64())
    return v.get_uint64() > static_cast<std::uint64_t>(kMax)
               ? kMax
               : static_cast<std::int64_t>(v.get_uint64());
  if (!v.is_double() || !std::isfinite(v.get_double())) return std::nullopt;
  const double d = round == Round::down ? std::floor(v.get_double()) : std::ceil(v.get_double());
  if (d >= 9.2e18) return kMax;
  if (d <= -9.2e18) return kMin;
  return static_cast<std::int64_t>(d);
}

}  // namespace

Expected<JwtValidator, std::string> JwtValidator::create(JwtValidatorConfig config) {
  if (config.issuer.empty()) return unexpected(std::string("issuer must not be empty"));
  if (config.audiences.empty() && !config.audience_waived)
    return unexpected(std::string(
        "audiences must not be empty (set the audience waiver to accept any audience)"));
  for (const auto& a : config.audiences)
    if (a.empty()) return unexpected(std::string("an audience must not be empty"));
  if (config.algorithms.empty())
    return unexpected(std::string("the algorithm allowlist must not be empty"));
  if (config.clock_skew < std::chrono::seconds(0) || config.clock_skew > kMaxClockSkew)
    return unexpected(std::string("clock skew must be between 0s and 1h"));
  if (config.max_token_bytes == 0)
    return unexpected(std::string("the token size limit must not be zero"));
  if (config.required_typ && config.required_typ->empty())
    return unexpected(std::string("the required typ must not be empty"));
  return JwtValidator(std::move(config));
}

Expected<VerifiedToken, JwtError> JwtValidator::validate(std::string_view token, const JwkSet& keys,
                                                         const Clock& clock) const {
  JwsParseOptions options;
  options.max_token_bytes = config_.max_token_bytes;
  auto jws = parse_jws(token, options);
  if (!jws) return unexpected(jws.error());
  return validate(std::move(*jws), keys, clock);
}

Expected<VerifiedToken, JwtError> JwtValidator::validate(ParsedJws&& jws, const JwkSet& keys,
                                                         const Clock& clock) const {
  if (jws.token_bytes > config_.max_token_bytes) return unexpected(JwtError::token_too_large);
  auto alg = check_header(jws.header);
  if (!alg) return unexpected(alg.error());
  auto kid = verify_with_keys(jws, *alg, keys);
  if (!kid) return unexpected(kid.error());
  auto exp = check_claims(jws.payload, clock);
  if (!exp) return unexpected(exp.error());
  VerifiedToken out;
  out.claims = std::move(jws.payload);
  out.exp = *exp;
  out.kid = std::move(*kid);
  out.alg = *alg;
  return out;
}

Expected<JwsAlg, JwtError> JwtValidator::check_header(const JwsHeader& header) const {
  auto alg = classify_alg(header.alg);
  if (!alg) {
    return unexpected(alg.error() == JwtError::alg_none ? JwtError::alg_none
                                                        : JwtError::alg_not_allowed);
  }
  if (std::find(config_.algorithms.begin(), config_.algorithms.end(), *alg) ==
      config_.algorithms.end())
    return unexpected(JwtError::alg_not_allowed);
  if (config_.required_typ && !typ_matches(header.typ, *config_.required_typ))
    return unexpected(JwtError::bad_typ);
  return *alg;
}

// Key selection never looks at jku/x5u/jwk/x5c: only `keys` is trusted. With a kid, only keys
// with that kid are candidates; without one, every key that fits the algorithm (bounded).
Expected<std::string, JwtError> JwtValidator::verify_with_keys(const ParsedJws& jws, JwsAlg alg,
                                                               const JwkSet& keys) const {
  const std::string& kid = jws.header.kid;
  bool kid_seen = false;
  std::size_t tried = 0;
  for (const Jwk& key : keys) {
    if (!kid.empty()) {
      if (key.kid() != kid) continue;
      kid_seen = true;
    }
    if (!key.usable_with(alg)) continue;
    if (tried++ == kMaxKeysTried) break;
    auto ok = verify_signature(alg, jws.signing_input, jws.signature, key);
    if (ok) return key.kid();
    if (ok.error() != JwtError::bad_signature) return unexpected(ok.error());
  }
  if (tried > 0) return unexpected(JwtError::bad_signature);
  if (kid.empty()) return unexpected(JwtError::no_matching_key);
  return unexpected(kid_seen ? JwtError::alg_key_mismatch : JwtError::unknown_kid);
}

Expected<std::int64_t, JwtError> JwtValidator::check_claims(const boost::json::object& claims,
                                                            const Clock& clock) const {
  const boost::json::value* iss = claims.if_contains("iss");
  if (!iss || !iss->is_string() || std::string_view(iss->get_string()) != config_.issuer)
    return unexpected(JwtError::wrong_issuer);

  if (!config_.audiences.empty()) {
    const boost::json::value* aud = claims.if_contains("aud");
    if (!aud || !audience_matches(*aud, config_.audiences))
      return unexpected(JwtError::wrong_audience);
  }

  const std::int64_t now =
      std::chrono::floor<std::chrono::seconds>(clock.system_now()).time_since_epoch().count();
  const std::int64_t skew = config_.clock_skew.count();

  const boost::json::value* exp_value = claims.if_contains("exp");
  if (!exp_value) return unexpected(JwtError::missing_exp);
  const auto exp = numeric_date(*exp_value, Round::down);
  if (!exp) return unexpected(JwtError::invalid_claim);
  if (!(now - skew < *exp)) return unexpected(JwtError::expired);

  if (const boost::json::value* v = claims.if_contains("nbf")) {
    const auto nbf = numeric_date(*v, Round::up);
    if (!nbf) return unexpected(JwtError::invalid_claim);
    if (*nbf > now + skew) return unexpected(JwtError::not_yet_valid);
  }
  if (const boost::json::value* v = claims.if_contains("iat")) {
    const auto iat = numeric_date(*v, Round::up);
    if (!iat) return unexpected(JwtError::invalid_claim);
    if (*iat > now + skew) return unexpected(JwtError::issued_in_future);
  }
  return *exp;
}

Expected<std::string, JwtError> unverified_issuer(std::string_view token,
                                                  std::size_t max_token_bytes) {
  auto parts = split_compact_jws(token, max_token_bytes);
  if (!parts) return unexpected(parts.error());
  if (parts->payload.size() % 4 == 1) return unexpected(JwtError::malformed);
  const std::size_t size = base64url_decoded_size(parts->payload.size());
  std::array<unsigned char, 4096> stack;
  std::vector<unsigned char> heap;
  if (size > stack.size()) heap.resize(size);
  std::span<unsigned char> buf =
      size > stack.size() ? std::span<unsigned char>(heap) : std::span(stack).first(size);
  auto n = base64url_decode(parts->payload, buf);
  if (!n) return unexpected(JwtError::malformed);

  unsigned char arena[4096];
  boost::json::monotonic_resource mr(arena, sizeof arena);
  boost::system::error_code ec;
  boost::json::value v =
      boost::json::parse(std::string_view(reinterpret_cast<const char*>(buf.data()), *n), ec, &mr);
  if (ec || !v.is_object()) return unexpected(JwtError::malformed);
  const boost::json::value* iss = v.get_object().if_contains("iss");
  if (!iss || !iss->is_string()) return unexpected(JwtError::wrong_issuer);
  return std::string(std::string_view(iss->get_string()));
}

}  // namespace portcullis
