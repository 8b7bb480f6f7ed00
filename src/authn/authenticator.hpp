#pragma once
// Authenticator: the bearer-token stage of the request pipeline, built once per config
// snapshot. For each identity provider it holds a JwtValidator, the provider's KeyStore and
// (optionally) its Introspector and claims mapping.
//
// authenticate() proves the caller's token for one route:
//  1. parse "Authorization: Bearer <token>" (missing -> 401 with a bare challenge);
//  2. the per-worker TokenCache (a hit is re-checked against the route's providers and scopes);
//  3. a JWT: the unverified "iss" picks the provider among the route's; verify with the
//     provider's keys (an unknown kid triggers at most one JWKS refetch per cooldown, then one
//     retry); an Okta org server or `mode: always` introspects instead;
//  4. an opaque token: RFC 7662 introspection by the route's providers that have it;
//  5. claims -> Identity, cached until exp; then the route's required scopes (403).
// Any failure is a deny: 401 invalid_token for bad tokens, 403 insufficient_scope, 503 when
// the provider cannot be reached and no usable key is known. Descriptions never contain key
// material or the token.
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/metrics.hpp"
#include "authn/identity.hpp"
#include "authn/jwt_validator.hpp"
#include "authn/key_store.hpp"
#include "authn/token_cache.hpp"
#include "core/config.hpp"
#include "core/expected.hpp"
#include "net/http_client.hpp"

namespace portcullis {

class AuthnServices;
class KeyStore;
class Introspector;

struct AuthnFailure {
  unsigned status = 401;    // 401, 403 or 503
  std::string_view error;   // RFC 6750 error: "", "invalid_token", "insufficient_scope"
  std::string_view reason;  // stable machine code for logs and metrics
  std::string description;  // short, safe for clients
  std::string scope;        // for insufficient_scope: the required scopes
};

class Authenticator {
 public:
  // Throws std::runtime_error on an unusable provider definition (start-up / reload only).
  static std::shared_ptr<const Authenticator> build(const Config& config, AuthnServices& services,
                                                    std::uint64_t generation);

  boost::asio::awaitable<Expected<std::shared_ptr<const Identity>, AuthnFailure>> authenticate(
      std::string_view authorization, const RouteConfig& route, TokenCache& cache) const;

  // WWW-Authenticate value for a failure (RFC 6750 3).
  static std::string challenge(const AuthnFailure& failure);

  std::size_t provider_count() const { return providers_.size(); }

  // Browser sign-in (config.sso): the SSO provider's endpoints from discovery (empty strings
  // until discovery succeeded), an HTTP fetcher for its token endpoint, and ID-token
  // verification (signature with the provider's keys, iss, aud = client_id, exp, and the
  // nonce of the login).
  KeyStoreStatus sso_provider_status() const;
  boost::asio::awaitable<Expected<HttpResult, std::string>> sso_fetch(
      HttpRequestSpec request) const;
  // `nonce`: the login's nonce, which the token must carry; nullopt for an ID token from a
  // refresh (no nonce is checked).
  boost::asio::awaitable<Expected<std::shared_ptr<const Identity>, std::string>> verify_id_token(
      std::string_view id_token, std::optional<std::string_view> nonce) const;
  // An OIDC back-channel logout token (OIDC Back-Channel Logout 1.0, 2.6): signature with the
  // provider's keys, iss, aud = client_id, exp, iat, the back-channel logout event, sub
  // and/or sid, and no nonce. Its verified claims.
  boost::asio::awaitable<Expected<std::shared_ptr<const boost::json::object>, std::string>>
  verify_logout_token(std::string_view logout_token) const;

 private:
  struct Provider;
  using Result = Expected<std::shared_ptr<const Identity>, AuthnFailure>;

  boost::asio::awaitable<Result> verify_jwt(const Provider& p, std::string_view token) const;
  boost::asio::awaitable<Result> introspect(const Provider& p, std::string_view token) const;
  bool route_accepts(const RouteConfig& route, const Provider& p) const;
  Expected<std::shared_ptr<const Identity>, AuthnFailure> check_scopes(
      std::shared_ptr<const Identity> identity, const RouteConfig& route) const;

  std::vector<std::shared_ptr<const Provider>> providers_;
  std::shared_ptr<const Provider> sso_provider_;  // null without config.sso
  std::optional<JwtValidator> sso_validator_;     // audience = the SSO client id

  // Signature and registered claims of a JWT from the SSO provider (one key refetch on an
  // unknown kid).
  boost::asio::awaitable<Expected<VerifiedToken, std::string>> verify_sso_jwt(
      std::string_view token) const;
  std::shared_ptr<HttpFetcher> sso_fetcher_;
  std::uint64_t generation_ = 0;
  const Clock* clock_ = nullptr;
};

}  // namespace portcullis
