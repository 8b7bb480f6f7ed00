#pragma once
// SsoFlow: browser single sign-on for `auth: sso` and `bearer_or_sso` routes, built once per
// config snapshot from the `sso` section. It is protocol-neutral: a codec describes the request
// in an SsoRequest and writes whatever SsoResponse comes back (status, headers such as Location
// and Set-Cookie, body).
//
//  - session(): the identity of a valid session cookie (sealed with AES-256-GCM, see
//    cookie_sealer.hpp), or none;
//  - challenge(): no session on an sso route: a browser navigation is sent to the IdP
//    (authorization code + PKCE S256, state and nonce kept in a short-lived sealed pre-login
//    cookie); anything that looks like an API call gets 401 login_required;
//  - handle(): the gateway's own paths, on every host: the callback (state check, code
//    exchange, ID-token verification, session cookie, redirect to the page first asked for),
//    /.portcullis/login?rd=URL (checked by RedirectGuard), /.portcullis/logout (clears the
//    session, then RP-initiated logout at the IdP when it offers one), /.portcullis/userinfo;
//  - denied(): the HTML access-denied page for browsers.
//
//   if (flow.is_gateway_path(path)) reply(co_await flow.handle(req, *authenticator, random));
//   auto identity = flow.session(req, now);
//   if (!identity) reply(flow.challenge(req, authenticator->sso_provider_status(), random, now));
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "authn/identity.hpp"
#include "authn/key_store.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "sso/cookie_chunks.hpp"
#include "sso/cookie_sealer.hpp"
#include "sso/redirect_guard.hpp"

namespace portcullis {

class Authenticator;

// Ends a browser session everywhere (the replicas' shared revocations in Redis). The gateway
// gives one to SsoFlow::handle() when cache.redis is configured, so that logout also revokes
// the session id: a copy of the cookie then stops working on every replica, not only in the
// browser that logged out.
class SessionRevoker {
 public:
  virtual ~SessionRevoker() = default;
  virtual void revoke_session(const std::string& session_id, std::int64_t until_unix) = 0;
};

// What SsoFlow needs to know about a request (views into the codec's request).
struct SsoRequest {
  std::string_view method;
  std::string_view path;                  // normalized path
  std::string_view query;                 // raw query, without '?'
  std::string_view host;                  // Host / :authority as sent
  bool tls = false;                       // the browser's scheme is https
  std::vector<std::string_view> cookies;  // every Cookie header value
  std::string_view accept;
  bool x_requested_with = false;
  bool grpc = false;
  std::string_view request_id;
};

// An answer the codec writes as is.
struct SsoResponse {
  unsigned status = 0;
  std::string_view error;  // machine code for logs and the access log ("" on success)
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Location, Set-Cookie, ...
};

class SsoFlow {
 public:
  // Throws std::runtime_error when a cookie key does not parse (start-up / reload only).
  explicit SsoFlow(const SsoConfig& config);

  static constexpr std::string_view kLoginPath = "/.portcullis/login";
  static constexpr std::string_view kLogoutPath = "/.portcullis/logout";
  static constexpr std::string_view kUserinfoPath = "/.portcullis/userinfo";

  bool is_gateway_path(std::string_view path) const;

  // A browser navigation (GET/HEAD that accepts HTML, no X-Requested-With, not gRPC).
  static bool is_browser_navigation(const SsoRequest& req);

  std::shared_ptr<const Identity> session(const SsoRequest& req, std::int64_t now) const;

  SsoResponse challenge(const SsoRequest& req, const KeyStoreStatus& idp, RandomSource& random,
                        std::int64_t now) const;

  boost::asio::awaitable<SsoResponse> handle(const SsoRequest& req, const Authenticator& auth,
                                             RandomSource& random, std::int64_t now,
                                             SessionRevoker* revoker = nullptr) const;

  // 403 page for a browser whose session identity the policy denied. `rule` is shown only
  // when not empty (routes with show_deny_reason).
  static SsoResponse denied(const Identity* identity, std::string_view request_id,
                            std::string_view rule);

  // A Cookie header without the gateway's own cookies (the session chunks and the pre-login
  // cookie): they are credentials for the gateway, never for the upstream. Empty when nothing
  // else is left.
  std::string upstream_cookie_header(std::string_view cookie_header) const;

  const SsoConfig& config() const { return config_; }

 private:
  SsoResponse start_login(const SsoRequest& req, const KeyStoreStatus& idp, RandomSource& random,
                          std::int64_t now, std::string return_url) const;
  boost::asio::awaitable<SsoResponse> callback(const SsoRequest& req, const Authenticator& auth,
                                               RandomSource& random, std::int64_t now) const;
  SsoResponse logout(const SsoRequest& req, const KeyStoreStatus& idp, std::int64_t now,
                     SessionRevoker* revoker) const;
  SsoResponse userinfo(const SsoRequest& req, std::int64_t now) const;
  SsoResponse error_response(const SsoRequest& req, unsigned status, std::string_view error,
                             std::string_view message) const;
  CookieAttributes cookie_attributes(std::int64_t max_age) const;
  std::string login_cookie_name() const;
  std::string redirect_uri(const SsoRequest& req) const;

  // open() draws no randomness, so one opener serves every worker (open() only reads);
  // sealing builds a sealer with the worker's RandomSource.
  class NoRandom final : public RandomSource {
   public:
    void fill(std::span<std::uint8_t> out) override;
  };

  SsoConfig config_;
  std::vector<CookieKey> keys_;
  NoRandom no_random_;
  std::unique_ptr<CookieSealer> opener_;
  RedirectGuard guard_;
};

}  // namespace portcullis
