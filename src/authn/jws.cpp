#include "authn/jws.hpp"

#include <algorithm>
#include <array>
#include <memory>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

// Stack storage for small decoded parts, the heap only for unusually large ones.
template <std::size_t N>
class Scratch {
 public:
  std::span<unsigned char> get(std::size_t n) {
    if (n <= N) return {stack_.data(), n};
    heap_.resize(n);
    return heap_;
  }

 private:
  std::array<unsigned char, N> stack_;
  std::vector<unsigned char> heap_;
};

std::string_view as_chars(std::span<const unsigned char> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::size_t ec_field_bytes(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::ES256:
      return 32;
    case JwsAlg::ES384:
      return 48;
    case JwsAlg::ES512:
      return 66;
    default:
      return 0;
  }
}

// Failing paths clear OpenSSL's per-thread error queue so it never confuses later TLS calls.
Unexpected<JwtError> fail(JwtError e) {
  ERR_clear_error();
  return unexpected(e);
}

// JOSE r||s (RFC 7518 3.4) -> DER ECDSA-Sig-Value, written to `der`; returns its length.
Expected<std::size_t, JwtError> ecdsa_raw_to_der(std::span<const unsigned char> raw,
                                                 std::span<unsigned char> der) {
  const std::size_t half = raw.size() / 2;
  BnPtr r(BN_bin2bn(raw.data(), static_cast<int>(half), nullptr));
  BnPtr s(BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return fail(JwtError::internal);
  r.release();  // owned by sig now
  s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0 || static_cast<std::size_t>(len) > der.size()) return fail(JwtError::internal);
  unsigned char* out = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &out) != len) return fail(JwtError::internal);
  return static_cast<std::size_t>(len);
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

Expected<JwsHeader, JwtError> parse_header(std::string_view header_b64,
                                           const JwsParseOptions& options) {
  Scratch<1024> scratch;
  if (header_b64.size() % 4 == 1) return unexpected(JwtError::malformed);
  auto buf = scratch.get(base64url_decoded_size(header_b64.size()));
  auto n = base64url_decode(header_b64, buf);
  if (!n) return unexpected(JwtError::malformed);

  unsigned char arena[4096];
  boost::json::monotonic_resource mr(arena, sizeof arena);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(as_chars(buf.first(*n)), ec, &mr);
  if (ec) return unexpected(JwtError::malformed);
  const boost::json::object* h = v.if_object();
  if (!h) return unexpected(JwtError::malformed);

  JwsHeader header;
  const boost::json::value* alg = h->if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string().empty())
    return unexpected(JwtError::malformed);
  header.alg = std::string_view(alg->get_string());
  if (const boost::json::value* kid = h->if_contains("kid")) {
    if (!kid->is_string()) return unexpected(JwtError::malformed);
    header.kid = std::string_view(kid->get_string());
  }
  if (const boost::json::value* typ = h->if_contains("typ")) {
    if (!typ->is_string()) return unexpected(JwtError::malformed);
    header.typ = std::string_view(typ->get_string());
  }
  if (const boost::json::value* crit = h->if_contains("crit")) {
    // RFC 7515 4.1.11: a non-empty array of names. A name we do not understand fails the token.
    const boost::json::array* names = crit->if_array();
    if (!names || names->empty()) return unexpected(JwtError::malformed);
    for (const auto& name : *names)
      if (!name.is_string() || name.get_string().empty()) return unexpected(JwtError::malformed);
    for (const auto& name : *names) {
      const std::string_view s = name.get_string();
      if (std::find(options.understood_crit.begin(), options.understood_crit.end(), s) ==
          options.understood_crit.end())
        return unexpected(JwtError::unsupported_crit);
      if (!h->contains(s)) return unexpected(JwtError::malformed);
      header.crit.emplace_back(s);
    }
  }
  return header;
}

Expected<boost::json::object, JwtError> parse_payload(std::string_view payload_b64) {
  Scratch<4096> scratch;
  if (payload_b64.size() % 4 == 1) return unexpected(JwtError::malformed);
  auto buf = scratch.get(base64url_decoded_size(payload_b64.size()));
  auto n = base64url_decode(payload_b64, buf);
  if (!n) return unexpected(JwtError::malformed);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(as_chars(buf.first(*n)), ec);
  if (ec || !v.is_object()) return unexpected(JwtError::malformed);
  return std::move(v.get_object());
}

}  // namespace

std::string_view to_string(JwtError e) {
  switch (e) {
    case JwtError::malformed:
      return "malformed";
    case JwtError::token_too_large:
      return "token_too_large";
    case JwtError::alg_not_allowed:
      return "alg_not_allowed";
    case JwtError::alg_none:
      return "alg_none";
    case JwtError::unsupported_alg:
      return "unsupported_alg";
    case JwtError::alg_key_mismatch:
      return "alg_key_mismatch";
    case JwtError::unknown_kid:
      return "unknown_kid";
    case JwtError::no_matching_key:
      return "no_matching_key";
    case JwtError::bad_signature:
      return "bad_signature";
    case JwtError::wrong_issuer:
      return "wrong_issuer";
    case JwtError::wrong_audience:
      return "wrong_audience";
    case JwtError::expired:
      return "expired";
    case JwtError::not_yet_valid:
      return "not_yet_valid";
    case JwtError::issued_in_future:
      return "issued_in_future";
    case JwtError::missing_exp:
      return "missing_exp";
    case JwtError::invalid_claim:
      return "invalid_claim";
    case JwtError::bad_typ:
      return "bad_typ";
    case JwtError::unsupported_crit:
      return "unsupported_crit";
    case JwtError::internal:
      return "internal_error";
  }
  return "internal_error";
}

std::string_view describe(JwtError e) {
  switch (e) {
    case JwtError::malformed:
      return "the token is not a well-formed signed JWT";
    case JwtError::token_too_large:
      return "the token is larger than allowed";
    case JwtError::alg_not_allowed:
      return "the signature algorithm is not allowed for this issuer";
    case JwtError::alg_none:
      return "unsigned tokens are not accepted";
    case JwtError::unsupported_alg:
      return "the signature algorithm is not supported";
    case JwtError::alg_key_mismatch:
      return "the signature algorithm does not match the signing key";
    case JwtError::unknown_kid:
      return "the signing key is not known";
    case JwtError::no_matching_key:
      return "no signing key matches the signature algorithm";
    case JwtError::bad_signature:
      return "the signature is invalid";
    case JwtError::wrong_issuer:
      return "the token issuer is not accepted";
    case JwtError::wrong_audience:
      return "the token audience is not accepted";
    case JwtError::expired:
      return "the token has expired";
    case JwtError::not_yet_valid:
      return "the token is not valid yet";
    case JwtError::issued_in_future:
      return "the token was issued in the future";
    case JwtError::missing_exp:
      return "the token has no expiry time";
    case JwtError::invalid_claim:
      return "a registered claim has an invalid type";
    case JwtError::bad_typ:
      return "the token type is not accepted";
    case JwtError::unsupported_crit:
      return "the token requires an unsupported header extension";
    case JwtError::internal:
      return "the token could not be checked";
  }
  return "the token could not be checked";
}

bool suggests_key_refetch(JwtError e) {
  return e == JwtError::unknown_kid || e == JwtError::no_matching_key;
}

Expected<CompactParts, JwtError> split_compact_jws(std::string_view token,
                                                   std::size_t max_token_bytes) {
  if (token.size() > max_token_bytes) return unexpected(JwtError::token_too_large);
  const std::size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return unexpected(JwtError::malformed);
  const std::size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return unexpected(JwtError::malformed);
  CompactParts parts{token.substr(0, d1), token.substr(d1 + 1, d2 - d1 - 1), token.substr(d2 + 1)};
  if (parts.header.empty() || parts.payload.empty() || parts.signature.empty())
    return unexpected(JwtError::malformed);
  return parts;
}

Expected<ParsedJws, JwtError> parse_jws(std::string_view token, const JwsParseOptions& options) {
  auto parts = split_compact_jws(token, options.max_token_bytes);
  if (!parts) return unexpected(parts.error());
  auto header = parse_header(parts->header, options);
  if (!header) return unexpected(header.error());
  auto payload = parse_payload(parts->payload);
  if (!payload) return unexpected(payload.error());
  auto signature = base64url_decode(parts->signature);
  if (!signature) return unexpected(JwtError::malformed);

  ParsedJws jws;
  jws.header = std::move(*header);
  jws.payload = std::move(*payload);
  jws.signing_input = token.substr(0, parts->header.size() + 1 + parts->payload.size());
  jws.signature = std::move(*signature);
  jws.token_bytes = token.size();
  return jws;
}

Expected<JwsAlg, JwtError> classify_alg(std::string_view alg) {
  if (ascii_iequals(alg, "none")) return unexpected(JwtError::alg_none);
  auto parsed = parse_jws_alg(alg);
  if (!parsed) return unexpected(JwtError::unsupported_alg);
  return *parsed;
}

Expected<JwsAlg, JwtError> verify_signature(const ParsedJws& jws, const Jwk& key) {
  auto alg = classify_alg(jws.header.alg);
  if (!alg) return alg;
  return verify_signature(*alg, jws.signing_input, jws.signature, key);
}

Expected<JwsAlg, JwtError> verify_signature(JwsAlg alg, std::string_view signing_input,
                                            std::span<const unsigned char> signature,
                                            const Jwk& key) {
  if (!key.usable_with(alg)) return unexpected(JwtError::alg_key_mismatch);
  EVP_PKEY* pkey = key.pkey();
  if (!pkey) return unexpected(JwtError::internal);

  // Signature lengths are fixed by the key (RFC 7518 3.3-3.5, RFC 8037 3.1).
  std::array<unsigned char, 160> der;  // DER of a P-521 signature is at most 139 bytes
  std::span<const unsigned char> sig = signature;
  if (key.kty() == JwkType::rsa) {
    if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(pkey)))
      return unexpected(JwtError::bad_signature);
  } else if (key.kty() == JwkType::ec) {
    if (signature.size() != 2 * ec_field_bytes(alg)) return unexpected(JwtError::bad_signature);
    auto len = ecdsa_raw_to_der(signature, der);
    if (!len) return unexpected(len.error());
    sig = std::span<const unsigned char>(der.data(), *len);
  } else if (signature.size() != 64) {
    return unexpected(JwtError::bad_signature);
  }

  // Copy the key's prepared context: no provider lookups per token, and the template itself
  // is only ever read, so many threads may verify with the same key at once.
  const EVP_MD_CTX* prepared = key.verify_template(alg);
  if (!prepared) return unexpected(JwtError::internal);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_MD_CTX_copy_ex(ctx.get(), prepared) != 1) return fail(JwtError::internal);
  EVP_MD_CTX_set_flags(ctx.get(), EVP_MD_CTX_FLAG_FINALISE);  // no internal dup before final
  const int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(),
                                  reinterpret_cast<const unsigned char*>(signing_input.data()),
                                  signing_input.size());
  if (rc != 1) return fail(JwtError::bad_signature);
  return alg;
}

}  // namespace portcullis
