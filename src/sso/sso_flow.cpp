#include "sso/sso_flow.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <optional>
#include <stdexcept>

#include "authn/authenticator.hpp"
#include "authn/base64url.hpp"
#include "core/log.hpp"
#include "core/sha256.hpp"
#include "net/form_encoding.hpp"
#include "sso/client_assertion.hpp"
#include "sso/session_store.hpp"

namespace portcullis {
namespace json = boost::json;
namespace asio = boost::asio;

namespace {

constexpr std::int64_t kLoginTtl = 600;  // seconds a sign-in at the IdP may take
constexpr std::string_view kSessionPurpose = "session";
constexpr std::string_view kLoginPurpose = "login";
constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kSessionRefPurpose = "session-ref";  // the cookie of a Redis session
constexpr std::int64_t kRefreshRetry = 60;  // seconds before a failed renewal is tried again
constexpr std::chrono::seconds kRefreshLock{30};
constexpr std::chrono::minutes kLogoutTokenMemory{10};

// A session in Redis is sealed for its own id: a value copied under another id never opens.
std::string stored_purpose(std::string_view sid) {
  return "session:" + std::string(sid);
}

KeyStoreStatus provider_status(const SsoServices& svc) {
  return svc.auth ? svc.auth->sso_provider_status() : KeyStoreStatus{};
}

std::int64_t seconds_of(Duration d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d).count();
}

std::string random_token(RandomSource& random, std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  random.fill(std::span<std::uint8_t>(buf.data(), buf.size()));
  return base64url_encode(std::span<const unsigned char>(buf.data(), buf.size()));
}

// The first value of `name` in a query string (decoded), or nothing.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (form_decode(pair.substr(0, eq)) != name) continue;
    return form_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// A small self-contained page (no external assets): a heading, a sentence, and facts.
std::string page(std::string_view title, std::string_view message,
                 const std::vector<std::pair<std::string, std::string>>& facts) {
  std::string html =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>";
  html += html_escape(title);
  html +=
      "</title><style>body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1f2430;"
      "margin:0}main{max-width:34rem;margin:12vh auto;background:#fff;border-radius:10px;"
      "padding:2rem 2.2rem;box-shadow:0 2px 12px rgba(0,0,0,.08)}h1{font-size:1.4rem;margin:0 0 "
      ".8rem}p{line-height:1.5}dl{display:grid;grid-template-columns:max-content auto;gap:.35rem "
      "1rem;font-size:.9rem}dt{color:#667}dd{margin:0;font-family:ui-monospace,monospace;"
      "word-break:break-all}a{color:#2255cc}</style></head><body><main><h1>";
  html += html_escape(title);
  html += "</h1><p>";
  html += html_escape(message);
  html += "</p><dl>";
  for (const auto& [id, value] : facts) {
    html += "<dt>";
    html += html_escape(id == "request-id" ? "Request id"
                        : id == "identity" ? "Signed in as"
                        : id == "rule"     ? "Rule"
                                           : id);
    html += "</dt><dd id=\"";
    html += html_escape(id);
    html += "\">";
    html += html_escape(value);
    html += "</dd>";
  }
  html += "</dl></main></body></html>\n";
  return html;
}

std::string json_error(unsigned status, std::string_view error, std::string_view message,
                       std::string_view request_id) {
  return json::serialize(json::object{{"status", status},
                                      {"error", error},
                                      {"message", message},
                                      {"request_id", request_id}}) +
         "\n";
}

std::string string_field(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string string_field(const std::optional<json::object>& login, std::string_view k) {
  return login ? string_field(*login, k) : std::string();
}

json::array to_json(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

void SsoFlow::NoRandom::fill(std::span<std::uint8_t> out) {
  std::fill(out.begin(), out.end(), std::uint8_t{0});
}

SsoFlow::SsoFlow(const SsoConfig& config) : config_(config), guard_(config.allowed_redirect_hosts) {
  for (const auto& contents : config.cookie_secrets) {
    auto key = CookieKey::from_file_contents(contents);
    if (!key) throw std::runtime_error("sso: cookie secret: " + key.error());
    keys_.push_back(*key);
  }
  if (keys_.empty()) throw std::runtime_error("sso: no cookie secret");
  opener_ = std::make_unique<CookieSealer>(keys_, no_random_);
  if (config.client_auth == "private_key_jwt") {
    auto signer = ClientAssertionSigner::from_pem(config.client_key, config.client_key_id);
    if (!signer) throw std::runtime_error("sso: client_key_file: " + signer.error());
    assertion_signer_ = std::make_shared<const ClientAssertionSigner>(std::move(*signer));
  }
}

bool SsoFlow::is_gateway_path(std::string_view path) const {
  return path == config_.callback_path || path == kLoginPath || path == kLogoutPath ||
         path == kUserinfoPath || path == kBackchannelLogoutPath;
}

bool SsoFlow::wants_body(std::string_view method, std::string_view path) {
  return method == "POST" && path == kBackchannelLogoutPath;
}

bool SsoFlow::is_browser_navigation(const SsoRequest& req) {
  if (req.grpc || req.x_requested_with) return false;
  if (req.method != "GET" && req.method != "HEAD") return false;
  return req.accept.empty() || req.accept.find("text/html") != std::string_view::npos;
}

CookieAttributes SsoFlow::cookie_attributes(std::int64_t max_age) const {
  CookieAttributes a;
  a.secure = config_.cookie_secure;
  a.max_age = max_age;
  if (!config_.cookie_domain.empty()) a.domain = config_.cookie_domain;
  return a;
}

std::string SsoFlow::login_cookie_name() const {
  return config_.effective_cookie_name() + "_login";
}

std::string SsoFlow::redirect_uri(const SsoRequest& req) const {
  std::string uri = req.tls ? "https://" : "http://";
  uri += req.host;
  uri += config_.callback_path;
  return uri;
}

// GCC 12 reports -Wmismatched-new-delete on Asio's coroutine frames once a coroutine's ramp
// is inlined (awaitable_frame_base's operator new/delete are a matching pair): a false
// positive, silenced for the coroutines of this file (as in cli/login_command.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<SsoFlow::OpenedSession> SsoFlow::open_session(const SsoRequest& req,
                                                              std::int64_t now,
                                                              SessionStore* store) const {
  OpenedSession out;
  auto joined = join_cookie(config_.effective_cookie_name(), req.cookies);
  if (!joined || joined->chunks == 0) co_return out;
  out.chunks = joined->chunks;
  std::optional<SessionRecord> record;
  if (redis_sessions()) {
    // The cookie is a sealed reference; the session itself is in the store.
    auto ref = opener_->open(joined->value, kSessionRefPurpose, now);
    if (!ref || store == nullptr) co_return out;
    boost::system::error_code ec;
    json::value doc = json::parse(*ref, ec);
    const json::value* sid_value =
        !ec && doc.is_object() ? doc.get_object().if_contains("sid") : nullptr;
    if (!sid_value || !sid_value->is_string() || sid_value->get_string().empty()) co_return out;
    const std::string sid(sid_value->get_string());
    std::string key = SessionStore::session_key(sid);
    auto stored = co_await store->load(std::move(key), config_.idle_timeout);
    out.store_unreachable = stored.unreachable;
    if (!stored.value) co_return out;
    auto plain = opener_->open(*stored.value, stored_purpose(sid), now);
    if (!plain) co_return out;
    record = SessionRecord::from_json(*plain);
    if (record && record->sid != sid) record.reset();
  } else {
    auto plain = opener_->open(joined->value, kSessionPurpose, now);
    if (!plain) co_return out;
    record = SessionRecord::from_json(*plain);
    // Idle expiry of a cookie-held session: its last use travels in the cookie.
    const auto idle = seconds_of(config_.idle_timeout);
    if (record && idle > 0 && now - record->seen_at > idle) record.reset();
  }
  if (record && record->expires_at <= now) record.reset();
  out.record = std::move(record);
  co_return out;
}

asio::awaitable<SessionResult> SsoFlow::session(const SsoRequest& req, std::int64_t now,
                                                const SsoServices& svc) const {
  auto opened = co_await open_session(req, now, svc.store);
  if (!opened.record) {
    SessionResult none;
    none.store_unreachable = opened.store_unreachable;
    co_return none;
  }
  SessionRecord& record = *opened.record;
  bool changed = false;
  bool locked = false;  // this request holds the session's renewal lock
  if (!record.refresh_token.empty() && now >= record.refresh_at) {
    // With sessions in Redis one replica renews a session at a time (the others go on with
    // it as it is), so a rotating refresh token is never spent twice.
    bool mine = !redis_sessions();
    if (!mine && svc.store) {
      std::string lock = SessionStore::refresh_lock_key(record.sid);
      auto claimed = co_await svc.store->claim(std::move(lock), kRefreshLock);
      mine = claimed.value_or(false);
    }
    if (mine) {
      locked = redis_sessions();
      const RefreshOutcome outcome = co_await refresh(record, now, svc);
      if (outcome == RefreshOutcome::refused) {
        if (locked) {
          svc.store->remove(
              {SessionStore::session_key(record.sid), SessionStore::refresh_lock_key(record.sid)});
        }
        co_return SessionResult{};
      }
      changed = true;
    }
  }
  // Idle expiry of cookie-held sessions: the last use is written back at most every tenth
  // of the idle timeout (Redis sessions are touched by the load itself).
  const auto idle = seconds_of(config_.idle_timeout);
  if (!redis_sessions() && idle > 0 &&
      now - record.seen_at >= std::max<std::int64_t>(1, idle / 10)) {
    changed = true;
  }
  SessionResult out;
  if (changed) {
    record.seen_at = now;
    auto cookies = co_await store_session(record, now, svc, opened.chunks);
    // A write that fails leaves the previous session in place: it stays valid as it was.
    if (cookies) out.set_cookies = std::move(*cookies);
  }
  // Released only once the renewed session is written: another replica that takes the lock
  // then reads the new refresh token, never the spent one.
  if (locked) svc.store->remove({SessionStore::refresh_lock_key(record.sid)});
  out.identity = record.to_identity();
  co_return out;
}

asio::awaitable<Expected<std::vector<std::string>, std::string>> SsoFlow::store_session(
    const SessionRecord& record, std::int64_t now, const SsoServices& svc,
    std::size_t carried_chunks) const {
  CookieSealer sealer(keys_, svc.random);
  const std::int64_t lifetime = record.expires_at - now;
  if (lifetime <= 0) co_return unexpected(std::string("the session has expired"));
  std::string cookie_value;
  if (redis_sessions()) {
    if (svc.store == nullptr) co_return unexpected(std::string("no session store (cache.redis)"));
    std::string sealed =
        sealer.seal(record.to_json(), stored_purpose(record.sid), record.expires_at);
    std::chrono::milliseconds ttl = std::chrono::seconds(lifetime);
    if (config_.idle_timeout.count() > 0) {
      ttl = std::min(ttl,
                     std::chrono::duration_cast<std::chrono::milliseconds>(config_.idle_timeout));
    }
    std::string key = SessionStore::session_key(record.sid);
    const bool saved = co_await svc.store->save(std::move(key), std::move(sealed), ttl);
    if (!saved)
      co_return unexpected(std::string("the session store (Redis) did not take the session"));
    const std::chrono::milliseconds index_ttl = std::chrono::seconds(lifetime);
    svc.store->add_to_index(SessionStore::subject_index(record.issuer, record.subject), record.sid,
                            index_ttl);
    if (!record.idp_sid.empty()) {
      svc.store->add_to_index(SessionStore::idp_session_index(record.issuer, record.idp_sid),
                              record.sid, index_ttl);
    }
    cookie_value = sealer.seal(json::serialize(json::object{{"sid", record.sid}}),
                               kSessionRefPurpose, record.expires_at);
  } else {
    cookie_value = sealer.seal(record.to_json(), kSessionPurpose, record.expires_at);
  }
  auto chunks = split_cookie(config_.effective_cookie_name(), cookie_value);
  if (!chunks) {
    co_return unexpected("the session is too large for cookies (" + chunks.error() + ")");
  }
  std::vector<std::string> out;
  for (const auto& [name, value] : *chunks) {
    out.push_back(set_cookie_header(name, value, cookie_attributes(lifetime)));
  }
  for (auto& h : clear_stale_chunks(config_.effective_cookie_name(), chunks->size(), carried_chunks,
                                    cookie_attributes(0))) {
    out.push_back(std::move(h));
  }
  co_return out;
}

asio::awaitable<Expected<json::object, SsoFlow::TokenError>> SsoFlow::token_request(
    std::string form, std::int64_t now, const SsoServices& svc) const {
  const KeyStoreStatus idp = provider_status(svc);
  if (!svc.auth || idp.token_endpoint.empty()) {
    co_return unexpected(TokenError{0, "the token endpoint is not known yet (discovery)"});
  }
  HttpRequestSpec exchange;
  exchange.method = "POST";
  exchange.url = idp.token_endpoint;
  exchange.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
  exchange.headers.emplace_back("accept", "application/json");
  exchange.body = std::move(form);
  if (assertion_signer_) {  // private_key_jwt (RFC 7523 2.2): aud is the token endpoint
    auto assertion =
        assertion_signer_->sign(config_.client_id, idp.token_endpoint, now, svc.random);
    if (!assertion) {
      co_return unexpected(TokenError{0, "cannot sign the client assertion: " + assertion.error()});
    }
    exchange.body += "&client_id=" + form_encode(config_.client_id) +
                     "&client_assertion_type=" + form_encode(kClientAssertionType) +
                     "&client_assertion=" + *assertion;
  } else if (config_.client_auth == "client_secret_post") {
    exchange.body += "&client_id=" + form_encode(config_.client_id) +
                     "&client_secret=" + form_encode(config_.client_secret);
  } else {  // RFC 6749 2.3.1: form-encoded id and secret, then Basic
    const std::string credentials =
        form_encode(config_.client_id) + ':' + form_encode(config_.client_secret);
    exchange.headers.emplace_back("authorization", "Basic " + base64_encode(credentials));
  }
  auto response = co_await svc.auth->sso_fetch(std::move(exchange));
  if (!response) co_return unexpected(TokenError{0, response.error()});
  if (response->status != 200) {
    co_return unexpected(TokenError{response->status, "HTTP " + std::to_string(response->status)});
  }
  boost::system::error_code ec;
  json::value tokens = json::parse(response->body, ec);
  if (ec || !tokens.is_object()) {
    co_return unexpected(TokenError{0, "the token endpoint's answer is not a JSON object"});
  }
  co_return std::move(tokens.get_object());
}

asio::awaitable<SsoFlow::RefreshOutcome> SsoFlow::refresh(SessionRecord& record, std::int64_t now,
                                                          const SsoServices& svc) const {
  std::string form = "grant_type=refresh_token&refresh_token=" + form_encode(record.refresh_token);
  auto tokens = co_await token_request(std::move(form), now, svc);
  if (!tokens) {
    // 400/401: the IdP refused the grant (invalid_grant: revoked, user disabled, logged out).
    if (tokens.error().status == 400 || tokens.error().status == 401) {
      app_log()->info("sso: session {} ended: the identity provider refused its refresh ({})",
                      record.sid, tokens.error().message);
      co_return RefreshOutcome::refused;
    }
    app_log()->warn("sso: session {} not renewed, trying again in {}s: {}", record.sid,
                    kRefreshRetry, escape_for_log(tokens.error().message));
    record.refresh_at = now + kRefreshRetry;
    co_return RefreshOutcome::unavailable;
  }
  if (const auto* id_token = tokens->if_contains("id_token"); id_token && id_token->is_string()) {
    const std::string raw(id_token->get_string());
    const std::optional<std::string_view> no_nonce;
    auto identity = co_await svc.auth->verify_id_token(raw, no_nonce);
    if (!identity || (*identity)->subject != record.subject ||
        (*identity)->issuer != record.issuer) {
      app_log()->warn("sso: session {} ended: the refreshed ID token was refused ({})", record.sid,
                      identity ? std::string("another subject") : identity.error());
      co_return RefreshOutcome::refused;
    }
    record.email = (*identity)->email;
    record.groups = (*identity)->groups;
  }
  if (const auto* rt = tokens->if_contains("refresh_token"); rt && rt->is_string()) {
    record.refresh_token = std::string(rt->get_string());
  }
  record.expires_at = now + seconds_of(config_.session_ttl);
  record.refresh_at = now + seconds_of(config_.refresh_interval);
  co_return RefreshOutcome::renewed;
}

SsoResponse SsoFlow::error_response(const SsoRequest& req, unsigned status, std::string_view error,
                                    std::string_view message) const {
  SsoResponse r;
  r.status = status;
  r.error = error;
  if (is_browser_navigation(req)) {
    r.content_type = kHtml;
    r.body = page(status == 403 ? "Sign-in refused" : "Sign-in error", message,
                  {{"request-id", std::string(req.request_id)}, {"error", std::string(error)}});
  } else {
    r.content_type = kJson;
    r.body = json_error(status, error, message, req.request_id);
  }
  r.headers.emplace_back("cache-control", "no-store");
  return r;
}

SsoResponse SsoFlow::challenge(const SsoRequest& req, const KeyStoreStatus& idp,
                               RandomSource& random, std::int64_t now, bool keep_cookie) const {
  SsoResponse r;
  if (!is_browser_navigation(req)) {
    r = error_response(req, 401, "login_required",
                       "sign in first (a browser session or a bearer token)");
  } else {
    std::string return_url(req.path);
    if (!req.query.empty()) {
      return_url += '?';
      return_url += req.query;
    }
    r = start_login(req, idp, random, now, std::move(return_url));
  }
  // A cookie that was sent but did not open (tampered, expired, another key) goes away.
  if (keep_cookie) return r;
  if (auto joined = join_cookie(config_.effective_cookie_name(), req.cookies);
      !joined || joined->chunks > 0) {
    for (auto& h : clear_stale_chunks(config_.effective_cookie_name(), 0, kMaxCookieChunks,
                                      cookie_attributes(0))) {
      r.headers.emplace_back("set-cookie", std::move(h));
    }
  }
  return r;
}

SsoResponse SsoFlow::start_login(const SsoRequest& req, const KeyStoreStatus& idp,
                                 RandomSource& random, std::int64_t now,
                                 std::string return_url) const {
  if (idp.authorization_endpoint.empty() || idp.token_endpoint.empty()) {
    return error_response(req, 503, "idp_unavailable",
                          "the identity provider's endpoints are not known yet (discovery)");
  }
  const std::string state = random_token(random, 24);
  const std::string nonce = random_token(random, 24);
  const std::string verifier = random_token(random, 32);
  const auto digest = sha256(verifier);
  const std::string challenge_value =
      base64url_encode(std::span<const unsigned char>(digest.data(), digest.size()));
  json::object login{{"state", state},
                     {"nonce", nonce},
                     {"verifier", verifier},
                     {"return", return_url},
                     {"redirect_uri", redirect_uri(req)}};
  CookieSealer sealer(keys_, random);
  const std::string sealed = sealer.seal(json::serialize(login), kLoginPurpose, now + kLoginTtl);

  std::string location = idp.authorization_endpoint;
  location += location.find('?') == std::string::npos ? '?' : '&';
  std::string scopes;
  for (const auto& s : config_.scopes) {
    if (!scopes.empty()) scopes += ' ';
    scopes += s;
  }
  location += "response_type=code&client_id=" + form_encode(config_.client_id) +
              "&redirect_uri=" + form_encode(redirect_uri(req)) + "&scope=" + form_encode(scopes) +
              "&state=" + state + "&nonce=" + nonce + "&code_challenge=" + challenge_value +
              "&code_challenge_method=S256";
  SsoResponse r;
  r.status = 302;
  r.content_type = kHtml;
  r.body = page("Signing in", "Continuing to the sign-in page.",
                {{"request-id", std::string(req.request_id)}});
  r.headers.emplace_back("location", std::move(location));
  r.headers.emplace_back("cache-control", "no-store");
  r.headers.emplace_back(
      "set-cookie", set_cookie_header(login_cookie_name(), sealed, cookie_attributes(kLoginTtl)));
  return r;
}

boost::asio::awaitable<SsoResponse> SsoFlow::handle(const SsoRequest& req, std::int64_t now,
                                                    const SsoServices& svc) const {
  if (req.path == config_.callback_path) co_return co_await callback(req, now, svc);
  if (req.path == kLogoutPath) co_return co_await logout(req, now, svc);
  if (req.path == kUserinfoPath) co_return co_await userinfo(req, now, svc);
  if (req.path == kBackchannelLogoutPath) co_return co_await backchannel_logout(req, svc);
  // kLoginPath: an explicit sign-in, then back to `rd` when it is safe.
  std::string return_url = "/";
  if (auto rd = query_param(req.query, "rd")) {
    auto target = guard_.check(*rd, req.tls ? "https" : "http", req.host);
    if (!target) {
      co_return error_response(req, 400, "bad_redirect",
                               "the return address is not allowed: " + target.error());
    }
    return_url = std::move(*target);
  }
  co_return start_login(req, provider_status(svc), svc.random, now, std::move(return_url));
}

asio::awaitable<SsoResponse> SsoFlow::callback(const SsoRequest& req, std::int64_t now,
                                               const SsoServices& svc) const {
  // The pre-login cookie: one per sign-in, sealed, bound to this purpose and short-lived.
  std::optional<json::object> login;
  for (std::string_view header : req.cookies) {
    for (const auto& [name, value] : parse_cookie_header(header)) {
      if (name != login_cookie_name()) continue;
      auto plain = opener_->open(value, kLoginPurpose, now);
      if (!plain) continue;
      boost::system::error_code ec;
      auto doc = json::parse(*plain, ec);
      if (!ec && doc.is_object()) login = std::move(doc.get_object());
    }
  }
  const auto state = query_param(req.query, "state");
  if (!login || !state || state->empty() || *state != string_field(login, "state")) {
    co_return error_response(req, 400, "state_mismatch",
                             "this sign-in was not started here or has expired; try again");
  }
  if (auto err = query_param(req.query, "error")) {
    const auto desc = query_param(req.query, "error_description");
    co_return error_response(
        req, 403, "idp_refused",
        "the identity provider refused the sign-in: " + *err + (desc ? " (" + *desc + ")" : ""));
  }
  const auto code = query_param(req.query, "code");
  if (!code || code->empty()) {
    co_return error_response(req, 400, "bad_callback", "the callback carries no code");
  }
  std::string form = "grant_type=authorization_code&code=" + form_encode(*code) +
                     "&redirect_uri=" + form_encode(string_field(login, "redirect_uri")) +
                     "&code_verifier=" + form_encode(string_field(login, "verifier"));
  auto tokens = co_await token_request(std::move(form), now, svc);
  if (!tokens) {
    co_return error_response(
        req, 502, "idp_token_exchange_failed",
        "the identity provider did not accept the sign-in code (" + tokens.error().message + ")");
  }
  const json::value* id_token = tokens->if_contains("id_token");
  if (!id_token || !id_token->is_string()) {
    co_return error_response(req, 502, "idp_token_exchange_failed",
                             "the identity provider's answer has no ID token");
  }
  // Arguments are named, never temporaries inside co_await: GCC 12 destroys those twice.
  const std::string nonce = string_field(login, "nonce");
  const std::string raw_id_token(id_token->get_string());
  const std::optional<std::string_view> expected_nonce(nonce);
  auto identity = co_await svc.auth->verify_id_token(raw_id_token, expected_nonce);
  if (!identity) {
    co_return error_response(req, 401, "id_token_invalid",
                             "the ID token was refused: " + identity.error());
  }
  const Identity& id = **identity;
  SessionRecord record;
  record.sid = random_token(svc.random, 16);
  record.provider = id.provider;
  record.issuer = id.issuer;
  record.subject = id.subject;
  record.email = id.email;
  record.groups = id.groups;
  if (id.claims) {
    if (const auto* sid = id.claims->if_contains("sid"); sid && sid->is_string()) {
      record.idp_sid = std::string(sid->get_string());
    }
  }
  record.issued_at = now;
  record.seen_at = now;
  record.expires_at = now + seconds_of(config_.session_ttl);
  if (const auto* rt = tokens->if_contains("refresh_token"); rt && rt->is_string()) {
    record.refresh_token = std::string(rt->get_string());
    record.refresh_at = now + seconds_of(config_.refresh_interval);
  }
  auto cookies = co_await store_session(record, now, svc, kMaxCookieChunks);
  if (!cookies) {
    const bool store_failed = redis_sessions();
    co_return error_response(req, store_failed ? 503 : 500,
                             store_failed ? "session_store_unavailable" : "session_too_large",
                             "the session could not be kept: " + cookies.error());
  }
  SsoResponse r;
  r.status = 302;
  r.content_type = kHtml;
  r.body = page("Signed in", "Returning to the page you asked for.",
                {{"request-id", std::string(req.request_id)}});
  // The return address was checked (or built from our own normalized path) when the login
  // started; check it again, so no path to an open redirect exists even if that changes.
  auto target = guard_.check(string_field(login, "return"), req.tls ? "https" : "http", req.host);
  r.headers.emplace_back("location", target ? std::move(*target) : std::string("/"));
  r.headers.emplace_back("cache-control", "no-store");
  for (auto& c : *cookies) r.headers.emplace_back("set-cookie", std::move(c));
  r.headers.emplace_back("set-cookie",
                         clear_cookie_header(login_cookie_name(), cookie_attributes(0)));
  co_return r;
}

asio::awaitable<SsoResponse> SsoFlow::logout(const SsoRequest& req, std::int64_t now,
                                             const SsoServices& svc) const {
  // The session ends everywhere: deleted from the store (Redis sessions) and its id revoked
  // on every replica, so a copy of the cookie stops working too.
  auto opened = co_await open_session(req, now, svc.store);
  if (opened.record && svc.store) {
    if (redis_sessions()) svc.store->remove({SessionStore::session_key(opened.record->sid)});
    svc.store->revoke_session(opened.record->sid, opened.record->expires_at);
  }
  const KeyStoreStatus idp = provider_status(svc);
  SsoResponse r;
  for (auto& h : clear_stale_chunks(config_.effective_cookie_name(), 0, kMaxCookieChunks,
                                    cookie_attributes(0))) {
    r.headers.emplace_back("set-cookie", std::move(h));
  }
  r.headers.emplace_back("cache-control", "no-store");
  if (!idp.end_session_endpoint.empty()) {
    std::string location = idp.end_session_endpoint;
    location += location.find('?') == std::string::npos ? '?' : '&';
    location += "client_id=" + form_encode(config_.client_id);
    if (!config_.post_logout_redirect_uri.empty()) {
      location += "&post_logout_redirect_uri=" + form_encode(config_.post_logout_redirect_uri);
    }
    r.status = 302;
    r.headers.emplace_back("location", std::move(location));
    r.content_type = kHtml;
    r.body = page("Signing out", "Continuing to the identity provider.",
                  {{"request-id", std::string(req.request_id)}});
    co_return r;
  }
  r.status = 200;
  r.content_type = kHtml;
  r.body = page("Signed out", "Your session with this gateway has ended.",
                {{"request-id", std::string(req.request_id)}});
  co_return r;
}

asio::awaitable<SsoResponse> SsoFlow::backchannel_logout(const SsoRequest& req,
                                                         const SsoServices& svc) const {
  // OIDC Back-Channel Logout 1.0: the IdP POSTs logout_token; 200 when done, 400 otherwise.
  SsoRequest api = req;
  api.accept = kJson;
  if (req.method != "POST") {
    co_return error_response(api, 405, "method_not_allowed", "use POST");
  }
  if (!redis_sessions() || svc.store == nullptr || svc.auth == nullptr) {
    co_return error_response(api, 501, "not_implemented",
                             "back-channel logout needs sessions in Redis (session_store: redis)");
  }
  const auto token = query_param(req.body, "logout_token");
  if (!token || token->empty()) {
    co_return error_response(api, 400, "invalid_request", "the body carries no logout_token");
  }
  const std::string raw(*token);
  auto claims = co_await svc.auth->verify_logout_token(raw);
  if (!claims) {
    app_log()->warn("sso: back-channel logout refused: {}", claims.error());
    co_return error_response(api, 400, "invalid_request",
                             "the logout token was refused: " + claims.error());
  }
  const json::object& c = **claims;
  const std::string issuer = string_field(c, "iss");
  if (const std::string jti = string_field(c, "jti"); !jti.empty()) {
    // A logout token is used once (replay guard for as long as such tokens are accepted).
    std::string key = SessionStore::logout_jti_key(issuer, jti);
    auto fresh = co_await svc.store->claim(std::move(key), kLogoutTokenMemory);
    if (!fresh) {
      co_return error_response(api, 503, "session_store_unavailable",
                               "the session store (Redis) cannot be reached");
    }
    if (!*fresh) {
      co_return error_response(api, 400, "invalid_request", "this logout token was used already");
    }
  }
  const std::string idp_sid = string_field(c, "sid");
  std::string index = idp_sid.empty() ? SessionStore::subject_index(issuer, string_field(c, "sub"))
                                      : SessionStore::idp_session_index(issuer, idp_sid);
  auto members = co_await svc.store->index_members(index);
  if (!members) {
    co_return error_response(api, 503, "session_store_unavailable",
                             "the session store (Redis) cannot be reached");
  }
  std::vector<std::string> keys;
  for (const auto& sid : *members) keys.push_back(SessionStore::session_key(sid));
  // The index may still list sessions that ended otherwise (logout, expiry): count only the
  // ones deleted now.
  auto ended = co_await svc.store->remove_now(std::move(keys));
  if (!ended) {
    co_return error_response(api, 503, "session_store_unavailable",
                             "the session store (Redis) cannot be reached");
  }
  svc.store->remove({std::move(index)});
  app_log()->info("sso: back-channel logout ended {} session(s) ({})", *ended,
                  idp_sid.empty() ? "every session of the subject" : "one IdP session");
  SsoResponse r;
  r.status = 200;
  r.content_type = kJson;
  r.body = json::serialize(json::object{{"sessions_ended", *ended}}) + "\n";
  r.headers.emplace_back("cache-control", "no-store");
  co_return r;
}

asio::awaitable<SsoResponse> SsoFlow::userinfo(const SsoRequest& req, std::int64_t now,
                                               const SsoServices& svc) const {
  auto result = co_await session(req, now, svc);
  const auto& identity = result.identity;
  if (!identity) {
    SsoRequest api = req;
    api.accept = kJson;
    co_return error_response(api, 401, "login_required", "no browser session");
  }
  SsoResponse r;
  r.status = 200;
  r.content_type = kJson;
  r.body = json::serialize(json::object{{"subject", identity->subject},
                                        {"email", identity->email},
                                        {"groups", to_json(identity->groups)},
                                        {"issuer", identity->issuer},
                                        {"provider", identity->provider},
                                        {"session_id", identity->session_id},
                                        {"session_expires_at", identity->expires_at},
                                        {"session_store", redis_sessions() ? "redis" : "cookie"}}) +
           "\n";
  r.headers.emplace_back("cache-control", "no-store");
  for (auto& c : result.set_cookies) r.headers.emplace_back("set-cookie", std::move(c));
  co_return r;
}

#pragma GCC diagnostic pop

std::string SsoFlow::upstream_cookie_header(std::string_view cookie_header) const {
  const std::string& base = config_.effective_cookie_name();
  const std::string login = login_cookie_name();
  std::string out;
  for (const auto& [name, value] : parse_cookie_header(cookie_header)) {
    bool ours = name == base || name == login;
    for (std::size_t i = 1; !ours && i < kMaxCookieChunks; ++i) {
      ours = name == cookie_chunk_name(base, i);
    }
    if (ours) continue;
    if (!out.empty()) out += "; ";
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

SsoResponse SsoFlow::denied(const Identity* identity, std::string_view request_id,
                            std::string_view rule) {
  std::vector<std::pair<std::string, std::string>> facts{{"request-id", std::string(request_id)}};
  if (identity) {
    facts.emplace_back("identity", identity->email.empty() ? identity->subject : identity->email);
  }
  if (!rule.empty()) facts.emplace_back("rule", std::string(rule));
  SsoResponse r;
  r.status = 403;
  r.error = "forbidden";
  r.content_type = kHtml;
  r.body =
      page("Access denied", "You are signed in, but this page's policy does not allow you.", facts);
  r.headers.emplace_back("cache-control", "no-store");
  return r;
}

}  // namespace portcullis
