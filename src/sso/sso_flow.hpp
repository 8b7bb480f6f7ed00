#pragma once
// SsoFlow: browser single sign-on for `auth: sso` and `bearer_or_sso` routes, built once per
// config snapshot from the `sso` section. It is protocol-neutral: a codec describes the request
// in an SsoRequest and writes whatever SsoResponse comes back (status, headers such as Location
// and Set-Cookie, body).
//
//  - session(): the session the request's cookie refers to (a SessionRecord sealed with
//    AES-256-GCM into the cookie, or, with session_store: redis, kept in Redis with only a
//    sealed reference in the cookie); idle expiry; renewal with the refresh token every
//    refresh_interval; cookies to send back when the session changed;
//  - challenge(): no session on an sso route: a browser navigation is sent to the IdP
//    (authorization code + PKCE S256, state and nonce kept in a short-lived sealed pre-login
//    cookie); anything that looks like an API call gets 401 login_required;
//  - handle(): the gateway's own paths, on every host: the callback (state check, code
//    exchange, ID-token verification, session, redirect to the page first asked for),
//    /.portcullis/login?rd=URL (checked by RedirectGuard), /.portcullis/logout (ends the
//    session, then RP-initiated logout at the IdP when it offers one), /.portcullis/userinfo,
//    and /.portcullis/backchannel-logout (OIDC back-channel logout, sessions in Redis);
//  - denied(): the HTML access-denied page for browsers.
//
//   SsoServices svc{authenticator, random, store};
//   if (flow.is_gateway_path(path)) reply(co_await flow.handle(req, now, svc));
//   auto s = co_await flow.session(req, now, svc);
//   if (!s.identity) reply(flow.challenge(req, authenticator->sso_provider_status(), random, now));
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "authn/identity.hpp"
#include "authn/key_store.hpp"
#include "core/config.hpp"
#include "core/expected.hpp"
#include "core/ids.hpp"
#include "sso/cookie_chunks.hpp"
#include "sso/cookie_sealer.hpp"
#include "sso/redirect_guard.hpp"
#include "sso/session_record.hpp"

namespace portcullis {

class Authenticator;
class ClientAssertionSigner;
class SessionStore;

// What SsoFlow uses besides its config: the IdP (through the Authenticator; null only in
// unit tests: no IdP can be reached), the worker's randomness, and the replicas' shared store
// (null without cache.redis).
struct SsoServices {
  const Authenticator* auth = nullptr;
  RandomSource& random;
  SessionStore* store = nullptr;
};

// The request's session: its identity (null: none, or expired, idle, refused at renewal) and
// Set-Cookie values to send with the answer when the session changed (renewed, touched).
struct SessionResult {
  std::shared_ptr<const Identity> identity;
  std::vector<std::string> set_cookies;
  // No identity because the session store (Redis) did not answer: the cookie may be good,
  // so the challenge keeps it (a Redis outage must not sign everybody out for good).
  bool store_unreachable = false;
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
  std::string_view body;  // the back-channel logout POST's form body (see wants_body())
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
  static constexpr std::string_view kBackchannelLogoutPath = "/.portcullis/backchannel-logout";
  // The largest body the codec reads for the gateway's own paths (a logout token).
  static constexpr std::size_t kMaxBodyBytes = 64 * 1024;

  bool is_gateway_path(std::string_view path) const;
  // Whether the codec must read the request body (up to kMaxBodyBytes) into SsoRequest::body
  // before handle(): the back-channel logout POST.
  static bool wants_body(std::string_view method, std::string_view path);

  // A browser navigation (GET/HEAD that accepts HTML, no X-Requested-With, not gRPC).
  static bool is_browser_navigation(const SsoRequest& req);

  boost::asio::awaitable<SessionResult> session(const SsoRequest& req, std::int64_t now,
                                                const SsoServices& svc) const;

  // A cookie that was sent but did not open is cleared, unless `keep_cookie` (the session
  // store was unreachable).
  SsoResponse challenge(const SsoRequest& req, const KeyStoreStatus& idp, RandomSource& random,
                        std::int64_t now, bool keep_cookie = false) const;

  boost::asio::awaitable<SsoResponse> handle(const SsoRequest& req, std::int64_t now,
                                             const SsoServices& svc) const;

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
  enum class RefreshOutcome { renewed, refused, unavailable };
  struct TokenError {
    unsigned status = 0;  // the IdP's HTTP status; 0 when it could not be reached
    std::string message;
  };
  struct OpenedSession {
    std::optional<SessionRecord> record;
    std::size_t chunks = 0;  // cookie chunks the request carried
    bool store_unreachable = false;
  };

  bool redis_sessions() const { return config_.session_store == SessionStoreKind::redis; }
  SsoResponse start_login(const SsoRequest& req, const KeyStoreStatus& idp, RandomSource& random,
                          std::int64_t now, std::string return_url) const;
  boost::asio::awaitable<SsoResponse> callback(const SsoRequest& req, std::int64_t now,
                                               const SsoServices& svc) const;
  boost::asio::awaitable<SsoResponse> logout(const SsoRequest& req, std::int64_t now,
                                             const SsoServices& svc) const;
  boost::asio::awaitable<SsoResponse> backchannel_logout(const SsoRequest& req,
                                                         const SsoServices& svc) const;
  boost::asio::awaitable<SsoResponse> userinfo(const SsoRequest& req, std::int64_t now,
                                               const SsoServices& svc) const;
  // The session the cookie refers to, idle and absolute expiry checked; no renewal.
  boost::asio::awaitable<OpenedSession> open_session(const SsoRequest& req, std::int64_t now,
                                                     SessionStore* store) const;
  // Seals the record (into the store with redis sessions) and gives the Set-Cookie values.
  boost::asio::awaitable<Expected<std::vector<std::string>, std::string>> store_session(
      const SessionRecord& record, std::int64_t now, const SsoServices& svc,
      std::size_t carried_chunks) const;
  // The refresh-token grant; updates the record on success (and refresh_at on failures
  // worth retrying).
  boost::asio::awaitable<RefreshOutcome> refresh(SessionRecord& record, std::int64_t now,
                                                 const SsoServices& svc) const;
  // A token-endpoint request with the configured client authentication; the JSON answer.
  boost::asio::awaitable<Expected<boost::json::object, TokenError>> token_request(
      std::string form, std::int64_t now, const SsoServices& svc) const;
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
  std::shared_ptr<const ClientAssertionSigner> assertion_signer_;  // private_key_jwt
};

}  // namespace portcullis
