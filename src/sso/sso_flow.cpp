#include "sso/sso_flow.hpp"

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
#include "core/sha256.hpp"
#include "net/form_encoding.hpp"

namespace portcullis {
namespace json = boost::json;

namespace {

constexpr std::int64_t kLoginTtl = 600;  // seconds a sign-in at the IdP may take
constexpr std::string_view kSessionPurpose = "session";
constexpr std::string_view kLoginPurpose = "login";
constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJson = "application/json";

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

std::string login_field(const std::optional<json::object>& login, std::string_view k) {
  const auto* v = login ? login->if_contains(k) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
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
}

bool SsoFlow::is_gateway_path(std::string_view path) const {
  return path == config_.callback_path || path == kLoginPath || path == kLogoutPath ||
         path == kUserinfoPath;
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

std::shared_ptr<const Identity> SsoFlow::session(const SsoRequest& req, std::int64_t now) const {
  auto joined = join_cookie(config_.effective_cookie_name(), req.cookies);
  if (!joined || joined->chunks == 0) return nullptr;
  auto plain = opener_->open(joined->value, kSessionPurpose, now);
  if (!plain) return nullptr;
  boost::system::error_code ec;
  json::value doc = json::parse(*plain, ec);
  if (ec || !doc.is_object()) return nullptr;
  auto claims = std::make_shared<const json::object>(std::move(doc.get_object()));
  auto identity = std::make_shared<Identity>();
  auto str = [&](std::string_view k) {
    const auto* v = claims->if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  identity->provider = str("provider");
  identity->issuer = str("iss");
  identity->subject = str("sub");
  identity->email = str("email");
  if (const auto* g = claims->if_contains("groups"); g && g->is_array()) {
    for (const auto& x : g->get_array()) {
      if (x.is_string()) identity->groups.emplace_back(x.get_string());
    }
  }
  if (const auto* e = claims->if_contains("session_exp"); e && e->is_int64()) {
    identity->expires_at = e->get_int64();
  }
  identity->session_id = str("sid");
  identity->method = "sso";
  identity->claims = std::move(claims);
  if (identity->subject.empty()) return nullptr;
  return identity;
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
                               RandomSource& random, std::int64_t now) const {
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

boost::asio::awaitable<SsoResponse> SsoFlow::handle(const SsoRequest& req,
                                                    const Authenticator& auth, RandomSource& random,
                                                    std::int64_t now,
                                                    SessionRevoker* revoker) const {
  if (req.path == config_.callback_path) co_return co_await callback(req, auth, random, now);
  if (req.path == kLogoutPath) co_return logout(req, auth.sso_provider_status(), now, revoker);
  if (req.path == kUserinfoPath) co_return userinfo(req, now);
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
  co_return start_login(req, auth.sso_provider_status(), random, now, std::move(return_url));
}

boost::asio::awaitable<SsoResponse> SsoFlow::callback(const SsoRequest& req,
                                                      const Authenticator& auth,
                                                      RandomSource& random,
                                                      std::int64_t now) const {
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
  if (!login || !state || state->empty() || *state != login_field(login, "state")) {
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
  const KeyStoreStatus idp = auth.sso_provider_status();
  HttpRequestSpec exchange;
  exchange.method = "POST";
  exchange.url = idp.token_endpoint;
  exchange.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
  exchange.headers.emplace_back("accept", "application/json");
  exchange.body = "grant_type=authorization_code&code=" + form_encode(*code) +
                  "&redirect_uri=" + form_encode(login_field(login, "redirect_uri")) +
                  "&code_verifier=" + form_encode(login_field(login, "verifier"));
  if (config_.client_auth == "client_secret_post") {
    exchange.body += "&client_id=" + form_encode(config_.client_id) +
                     "&client_secret=" + form_encode(config_.client_secret);
  } else {  // RFC 6749 2.3.1: form-encoded id and secret, then Basic
    const std::string credentials =
        form_encode(config_.client_id) + ':' + form_encode(config_.client_secret);
    exchange.headers.emplace_back("authorization", "Basic " + base64_encode(credentials));
  }
  auto response = co_await auth.sso_fetch(std::move(exchange));
  if (!response || response->status != 200) {
    co_return error_response(
        req, 502, "idp_token_exchange_failed",
        "the identity provider did not accept the sign-in code" +
            (response ? " (HTTP " + std::to_string(response->status) + ")" : std::string()));
  }
  boost::system::error_code ec;
  auto tokens = json::parse(response->body, ec);
  const json::value* id_token =
      !ec && tokens.is_object() ? tokens.get_object().if_contains("id_token") : nullptr;
  if (!id_token || !id_token->is_string()) {
    co_return error_response(req, 502, "idp_token_exchange_failed",
                             "the identity provider's answer has no ID token");
  }
  // Arguments are named, never temporaries inside co_await: GCC 12 destroys those twice.
  const std::string nonce = login_field(login, "nonce");
  const std::string raw_id_token(id_token->get_string());
  auto identity = co_await auth.verify_id_token(raw_id_token, nonce);
  if (!identity) {
    co_return error_response(req, 401, "id_token_invalid",
                             "the ID token was refused: " + identity.error());
  }
  const std::int64_t session_exp =
      now + std::chrono::duration_cast<std::chrono::seconds>(config_.session_ttl).count();
  const Identity& id = **identity;
  json::object session{{"sid", random_token(random, 16)},
                       {"provider", id.provider},
                       {"iss", id.issuer},
                       {"sub", id.subject},
                       {"email", id.email},
                       {"groups", to_json(id.groups)},
                       {"iat", now},
                       {"session_exp", session_exp}};
  CookieSealer sealer(keys_, random);
  const std::string sealed = sealer.seal(json::serialize(session), kSessionPurpose, session_exp);
  auto chunks = split_cookie(config_.effective_cookie_name(), sealed);
  if (!chunks) {
    co_return error_response(req, 500, "session_too_large",
                             "the session is too large for cookies (" + chunks.error() + ")");
  }
  SsoResponse r;
  r.status = 302;
  r.content_type = kHtml;
  r.body = page("Signed in", "Returning to the page you asked for.",
                {{"request-id", std::string(req.request_id)}});
  // The return address was checked (or built from our own normalized path) when the login
  // started; check it again, so no path to an open redirect exists even if that changes.
  auto target = guard_.check(login_field(login, "return"), req.tls ? "https" : "http", req.host);
  r.headers.emplace_back("location", target ? std::move(*target) : std::string("/"));
  r.headers.emplace_back("cache-control", "no-store");
  const auto max_age = session_exp - now;
  for (const auto& [name, value] : *chunks) {
    r.headers.emplace_back("set-cookie",
                           set_cookie_header(name, value, cookie_attributes(max_age)));
  }
  for (auto& h : clear_stale_chunks(config_.effective_cookie_name(), chunks->size(),
                                    kMaxCookieChunks, cookie_attributes(0))) {
    r.headers.emplace_back("set-cookie", std::move(h));
  }
  r.headers.emplace_back("set-cookie",
                         clear_cookie_header(login_cookie_name(), cookie_attributes(0)));
  co_return r;
}

SsoResponse SsoFlow::logout(const SsoRequest& req, const KeyStoreStatus& idp, std::int64_t now,
                            SessionRevoker* revoker) const {
  if (revoker) {
    if (auto identity = session(req, now); identity && !identity->session_id.empty()) {
      revoker->revoke_session(identity->session_id, identity->expires_at);
    }
  }
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
    return r;
  }
  r.status = 200;
  r.content_type = kHtml;
  r.body = page("Signed out", "Your session with this gateway has ended.",
                {{"request-id", std::string(req.request_id)}});
  return r;
}

SsoResponse SsoFlow::userinfo(const SsoRequest& req, std::int64_t now) const {
  auto identity = session(req, now);
  if (!identity) {
    SsoRequest api = req;
    api.accept = kJson;
    return error_response(api, 401, "login_required", "no browser session");
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
                                        {"session_expires_at", identity->expires_at}}) +
           "\n";
  r.headers.emplace_back("cache-control", "no-store");
  return r;
}

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
