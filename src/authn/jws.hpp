#pragma once
// Compact JWS (RFC 7515) parsing and signature verification on OpenSSL 3 EVP.
//
//   auto jws = parse_jws(token);                 // structure only, nothing is trusted yet
//   if (!jws) return jws.error();                // JwtError::malformed, token_too_large, ...
//   auto ok = verify_signature(*jws, key);       // alg must fit the key; none/HS* refused
//
// A ParsedJws keeps a view into the token (signing_input): the token must outlive it.
// Header "jku", "x5u", "jwk" and "x5c" are never read: keys come from the configured set only.
// Duplicate JSON member names resolve to the lexically last one (RFC 7515 section 4).
//
// JwtError lives here because parsing and verification produce most of its values; the JWT
// validator (jwt_validator.hpp) adds the claim checks.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "authn/jwk.hpp"
#include "core/expected.hpp"

namespace portcullis {

inline constexpr std::size_t kDefaultMaxTokenBytes = 16 * 1024;

// Why a token was refused. to_string() gives a stable short code (metrics, logs, audit);
// describe() a one-line human description. Neither ever contains the token or key material.
enum class JwtError : std::uint8_t {
  malformed,         // not three strict-base64url parts, header/payload not a JSON object, ...
  token_too_large,   // above the configured size limit
  alg_not_allowed,   // alg not in the provider's allowlist
  alg_none,          // "none" in any spelling
  unsupported_alg,   // HS* or anything else we never verify
  alg_key_mismatch,  // alg does not fit the key type/curve, or the JWK's own "alg"
  unknown_kid,       // the token names a kid the key set does not have (refetch hint)
  no_matching_key,   // no kid, and no key in the set fits the alg (refetch hint)
  bad_signature,     // signature did not verify
  wrong_issuer,      // iss missing or not the provider's issuer
  wrong_audience,    // aud missing or none of the configured audiences
  expired,           // now >= exp + skew
  not_yet_valid,     // nbf > now + skew
  issued_in_future,  // iat > now + skew
  missing_exp,       // no exp claim
  invalid_claim,     // a registered claim has the wrong JSON type (e.g. exp as a string)
  bad_typ,           // typ is not the required one
  unsupported_crit,  // crit names a header extension we do not understand
  internal,          // the crypto library failed for a reason other than the signature
};

std::string_view to_string(JwtError e);
std::string_view describe(JwtError e);
// True for errors a fresher key set could cure (unknown_kid, no_matching_key): the caller may
// refetch the JWKS (at most once per cooldown) and try again.
bool suggests_key_refetch(JwtError e);

struct JwsParseOptions {
  std::size_t max_token_bytes = kDefaultMaxTokenBytes;
  // Header extensions the caller handles itself; any other "crit" value is refused.
  std::span<const std::string_view> understood_crit = {};
};

struct JwsHeader {
  std::string alg;  // as written; parse_jws only checks that it is a non-empty string
  std::string kid;  // empty when absent
  std::string typ;  // empty when absent
  std::vector<std::string> crit;
};

struct ParsedJws {
  JwsHeader header;
  boost::json::object payload;
  std::string_view signing_input;  // BASE64URL(header) '.' BASE64URL(payload), into the token
  std::vector<unsigned char> signature;
  std::size_t token_bytes = 0;
};

// The three base64url parts of a compact JWS, not yet decoded.
struct CompactParts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
};

// Size check and split on '.': exactly three non-empty parts, else malformed.
Expected<CompactParts, JwtError> split_compact_jws(std::string_view token,
                                                   std::size_t max_token_bytes);

// Structure only: exactly three non-empty strict-base64url parts, header a JSON object with a
// string "alg" (and string "kid"/"typ" when present), well-formed and understood "crit",
// payload a JSON object.
Expected<ParsedJws, JwtError> parse_jws(std::string_view token,
                                        const JwsParseOptions& options = {});
// The result points into the token, so a temporary string cannot be parsed.
Expected<ParsedJws, JwtError> parse_jws(std::string&& token,
                                        const JwsParseOptions& options = {}) = delete;

// Maps a header "alg" to a JwsAlg: alg_none for "none" in any case, unsupported_alg for
// everything we never verify (HS*, RSA1_5, ...).
Expected<JwsAlg, JwtError> classify_alg(std::string_view alg);

// Verifies the signature with `key`. Returns the algorithm used on success.
Expected<JwsAlg, JwtError> verify_signature(const ParsedJws& jws, const Jwk& key);

// The primitive under it, for callers that split the token themselves (e.g. non-JSON payloads
// in test vectors): `signature` is the decoded third part (JOSE raw r||s for ES*).
Expected<JwsAlg, JwtError> verify_signature(JwsAlg alg, std::string_view signing_input,
                                            std::span<const unsigned char> signature,
                                            const Jwk& key);

}  // namespace portcullis
