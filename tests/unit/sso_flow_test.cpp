// SsoFlow without the network: which requests count as browser navigations, the challenge (302
// to the IdP with PKCE S256, state, nonce and a sealed pre-login cookie; 401 for API calls;
// 503 before discovery), session cookies (a sealed session opens; tampered, expired, foreign
// and wrongly named ones do not), and the access-denied page.
#include "sso/sso_flow.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <map>

#include "sso/session_store.hpp"

namespace portcullis {
namespace {

// Runs a coroutine to completion on a private io_context.
template <class T>
T run(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.run();
  return f.get();
}

// An in-memory SessionStore: what Redis would hold, with the last TTL each key was given.
class MemoryStore final : public SessionStore {
 public:
  std::map<std::string, std::string> values;
  std::map<std::string, std::chrono::milliseconds> ttls;
  std::map<std::string, std::vector<std::string>> sets;
  std::vector<std::string> revoked;
  bool down = false;

  boost::asio::awaitable<Loaded> load(std::string key, std::chrono::milliseconds touch) override {
    Loaded out;
    out.unreachable = down;
    if (down || !values.count(key)) co_return out;
    if (touch.count() > 0) ttls[key] = touch;
    out.value = values[key];
    co_return out;
  }
  boost::asio::awaitable<bool> save(std::string key, std::string value,
                                    std::chrono::milliseconds ttl) override {
    if (down) co_return false;
    values[key] = std::move(value);
    ttls[key] = ttl;
    co_return true;
  }
  boost::asio::awaitable<std::optional<bool>> claim(std::string key,
                                                    std::chrono::milliseconds ttl) override {
    if (down) co_return std::nullopt;
    ttls[key] = ttl;
    co_return values.emplace(key, "1").second;
  }
  void add_to_index(std::string index, std::string member, std::chrono::milliseconds) override {
    sets[index].push_back(std::move(member));
  }
  boost::asio::awaitable<std::optional<std::vector<std::string>>> index_members(
      std::string index) override {
    if (down) co_return std::nullopt;
    co_return sets[index];
  }
  void remove(std::vector<std::string> keys) override {
    for (const auto& k : keys) {
      values.erase(k);
      sets.erase(k);
    }
  }
  boost::asio::awaitable<std::optional<std::size_t>> remove_now(
      std::vector<std::string> keys) override {
    if (down) co_return std::nullopt;
    std::size_t n = 0;
    for (const auto& k : keys) n += values.erase(k);
    co_return n;
  }
  void revoke_session(const std::string& sid, std::int64_t) override { revoked.push_back(sid); }
};

class CountingRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(next_++);
  }

 private:
  unsigned next_ = 1;
};

constexpr const char* kKeyA = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr const char* kKeyB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

SsoConfig config_with(const char* key) {
  SsoConfig c;
  c.provider = "idp";
  c.client_id = "portcullis-sso";
  c.client_secret = "s";
  c.cookie_secrets = {key};
  c.cookie_secure = true;
  return c;
}

KeyStoreStatus discovered() {
  KeyStoreStatus s;
  s.authorization_endpoint = "https://idp.example/auth";
  s.token_endpoint = "https://idp.example/token";
  return s;
}

SsoRequest browser(std::vector<std::string_view> cookies = {}) {
  SsoRequest r;
  r.method = "GET";
  r.path = "/app/page";
  r.query = "x=1";
  r.host = "gw.example";
  r.tls = true;
  r.accept = "text/html,application/xhtml+xml";
  r.cookies = std::move(cookies);
  r.request_id = "rid";
  return r;
}

std::string header(const SsoResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return {};
}

std::string sealed_session(const char* key, std::int64_t exp,
                           std::string_view purpose = "session") {
  CountingRandom random;
  CookieSealer sealer({*CookieKey::from_file_contents(key)}, random);
  boost::json::object s{{"sid", "s-1"},
                        {"provider", "idp"},
                        {"iss", "https://idp.example"},
                        {"sub", "alice"},
                        {"email", "alice@example.test"},
                        {"groups", boost::json::array{"eng"}},
                        {"session_exp", exp}};
  return sealer.seal(boost::json::serialize(s), purpose, exp);
}

// The session of a request, as admission sees it (no Authenticator: nothing is renewed).
std::shared_ptr<const Identity> session_of(const SsoFlow& flow, const SsoRequest& req,
                                           std::int64_t now, SessionStore* store = nullptr) {
  CountingRandom random;
  const SsoServices svc{nullptr, random, store};
  return run(flow.session(req, now, svc)).identity;
}

TEST(SsoFlow, BrowserNavigationsAreHtmlGetsWithoutXhrOrGrpc) {
  SsoRequest r = browser();
  EXPECT_TRUE(SsoFlow::is_browser_navigation(r));
  r.accept = "";
  EXPECT_TRUE(SsoFlow::is_browser_navigation(r));
  r.accept = "application/json";
  EXPECT_FALSE(SsoFlow::is_browser_navigation(r));
  r = browser();
  r.x_requested_with = true;
  EXPECT_FALSE(SsoFlow::is_browser_navigation(r));
  r = browser();
  r.grpc = true;
  EXPECT_FALSE(SsoFlow::is_browser_navigation(r));
  r = browser();
  r.method = "POST";
  EXPECT_FALSE(SsoFlow::is_browser_navigation(r));
}

TEST(SsoFlow, ChallengeSendsABrowserToTheIdpWithPkceStateAndNonce) {
  SsoFlow flow(config_with(kKeyA));
  CountingRandom random;
  const SsoResponse r = flow.challenge(browser(), discovered(), random, 1000);
  ASSERT_EQ(r.status, 302u);
  const std::string location = header(r, "location");
  EXPECT_EQ(location.rfind("https://idp.example/auth?response_type=code&client_id=portcullis-sso"
                           "&redirect_uri=https%3A%2F%2Fgw.example%2F.portcullis%2Fcallback"
                           "&scope=openid+email+profile&state=",
                           0),
            0u)
      << location;
  EXPECT_NE(location.find("&nonce="), std::string::npos);
  EXPECT_NE(location.find("&code_challenge="), std::string::npos);
  EXPECT_NE(location.find("&code_challenge_method=S256"), std::string::npos);
  const std::string cookie = header(r, "set-cookie");
  EXPECT_EQ(cookie.rfind("__Host-portcullis_login=", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax"), std::string::npos)
      << cookie;
  // The state is random per login.
  const SsoResponse again = flow.challenge(browser(), discovered(), random, 1000);
  EXPECT_NE(header(again, "location"), location);
}

TEST(SsoFlow, ChallengeAnswersApiCalls401AndWaitsForDiscovery) {
  SsoFlow flow(config_with(kKeyA));
  CountingRandom random;
  SsoRequest api = browser();
  api.accept = "application/json";
  const SsoResponse r = flow.challenge(api, discovered(), random, 1000);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error, "login_required");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(header(r, "location"), "");
  const SsoResponse early = flow.challenge(browser(), KeyStoreStatus{}, random, 1000);
  EXPECT_EQ(early.status, 503u);
  EXPECT_EQ(early.error, "idp_unavailable");
}

TEST(SsoFlow, ASealedSessionOpensAsAnIdentity) {
  SsoFlow flow(config_with(kKeyA));
  const std::string cookie = "__Host-portcullis=" + sealed_session(kKeyA, 5000);
  auto id = session_of(flow, browser({cookie}), 1000);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->subject, "alice");
  EXPECT_EQ(id->email, "alice@example.test");
  EXPECT_EQ(id->groups, std::vector<std::string>{"eng"});
  EXPECT_EQ(id->issuer, "https://idp.example");
  EXPECT_EQ(id->provider, "idp");
  EXPECT_EQ(id->method, "sso");
  EXPECT_EQ(id->expires_at, 5000);
  EXPECT_EQ(id->session_id, "s-1");
}

TEST(SsoFlow, BadSessionCookiesAreNoSession) {
  SsoFlow flow(config_with(kKeyA));
  const std::string good = sealed_session(kKeyA, 5000);
  std::string tampered = good;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  const std::vector<std::string> refused = {
      "__Host-portcullis=" + tampered,                              // altered
      "__Host-portcullis=" + good.substr(0, good.size() - 4),       // truncated
      "__Host-portcullis=" + sealed_session(kKeyB, 5000),           // another gateway's key
      "__Host-portcullis=" + sealed_session(kKeyA, 900),            // expired
      "__Host-portcullis=" + sealed_session(kKeyA, 5000, "login"),  // a pre-login cookie
      "portcullis=" + good,                                         // not our cookie name
      "__Host-portcullis=" + good + "; __Host-portcullis=" + good,  // planted duplicate
  };
  for (const auto& c : refused) EXPECT_FALSE(session_of(flow, browser({c}), 1000)) << c;
  // A refused cookie is cleared by the challenge.
  CountingRandom random;
  const SsoResponse r =
      flow.challenge(browser({"__Host-portcullis=" + tampered}), discovered(), random, 1000);
  bool cleared = false;
  for (const auto& [n, v] : r.headers) {
    if (n == "set-cookie" && v.rfind("__Host-portcullis=;", 0) == 0) cleared = true;
  }
  EXPECT_TRUE(cleared);
}

TEST(SsoFlow, KeyRotationOpensSessionsSealedWithTheOldKey) {
  SsoConfig c = config_with(kKeyB);
  c.cookie_secrets.push_back(kKeyA);  // B seals now, A still opens
  SsoFlow flow(c);
  EXPECT_TRUE(
      session_of(flow, browser({"__Host-portcullis=" + sealed_session(kKeyA, 5000)}), 1000));
}

TEST(SsoFlow, DeniedPageNamesTheRequestTheUserAndTheRuleWhenAllowed) {
  Identity id;
  id.subject = "mallory";
  id.email = "mallory@example.test";
  const SsoResponse r = SsoFlow::denied(&id, "rid-1", "policies/app.yaml#deny[0]");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<dd id=\"request-id\">rid-1</dd>"), std::string::npos);
  EXPECT_NE(r.body.find("<dd id=\"identity\">mallory@example.test</dd>"), std::string::npos);
  EXPECT_NE(r.body.find("<dd id=\"rule\">policies/app.yaml#deny[0]</dd>"), std::string::npos);
  EXPECT_EQ(r.body.find("http"), std::string::npos);  // no external assets
  const SsoResponse quiet = SsoFlow::denied(&id, "rid-2", "");
  EXPECT_EQ(quiet.body.find("id=\"rule\""), std::string::npos);
}

TEST(SsoFlow, GatewayPaths) {
  SsoFlow flow(config_with(kKeyA));
  for (const char* p : {"/.portcullis/callback", "/.portcullis/login", "/.portcullis/logout",
                        "/.portcullis/userinfo"}) {
    EXPECT_TRUE(flow.is_gateway_path(p)) << p;
  }
  EXPECT_FALSE(flow.is_gateway_path("/.portcullis/other"));
  EXPECT_FALSE(flow.is_gateway_path("/app"));
}

}  // namespace
}  // namespace portcullis

namespace portcullis {
namespace {

TEST(SsoFlow, TheGatewaysCookiesNeverGoUpstream) {
  SsoFlow flow(config_with(kKeyA));
  EXPECT_EQ(
      flow.upstream_cookie_header("theme=dark; __Host-portcullis=abc; __Host-portcullis_1=def; "
                                  "__Host-portcullis_login=x; lang=en"),
      "theme=dark; lang=en");
  EXPECT_EQ(flow.upstream_cookie_header("__Host-portcullis=abc"), "");
  EXPECT_EQ(flow.upstream_cookie_header("__Host-portcullisX=1; portcullis=2"),
            "__Host-portcullisX=1; portcullis=2");
}

}  // namespace
}  // namespace portcullis

namespace portcullis {
namespace {

SessionRecord record_of(std::string sid, std::int64_t exp, std::int64_t seen) {
  SessionRecord r;
  r.sid = std::move(sid);
  r.provider = "idp";
  r.issuer = "https://idp.example";
  r.subject = "alice";
  r.email = "alice@example.test";
  r.groups = {"eng"};
  r.idp_sid = "idp-session-1";
  r.issued_at = seen;
  r.seen_at = seen;
  r.expires_at = exp;
  return r;
}

TEST(SessionRecord, RoundTripsAndKeepsTheRefreshTokenOutOfTheClaims) {
  SessionRecord r = record_of("s-9", 5000, 1000);
  r.refresh_token = "rt-secret";
  r.refresh_at = 1300;
  auto back = SessionRecord::from_json(r.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->sid, "s-9");
  EXPECT_EQ(back->idp_sid, "idp-session-1");
  EXPECT_EQ(back->refresh_token, "rt-secret");
  EXPECT_EQ(back->refresh_at, 1300);
  EXPECT_EQ(back->seen_at, 1000);
  auto id = back->to_identity();
  EXPECT_EQ(id->session_id, "s-9");
  EXPECT_EQ(id->groups, std::vector<std::string>{"eng"});
  EXPECT_EQ(boost::json::serialize(*id->claims).find("rt-secret"), std::string::npos);
  EXPECT_FALSE(SessionRecord::from_json(R"({"sub":"alice"})"));       // no sid
  EXPECT_FALSE(SessionRecord::from_json(R"({"sid":"s","sub":""})"));  // no subject
  EXPECT_FALSE(SessionRecord::from_json("not json"));
}

TEST(SsoFlow, IdleCookieSessionsExpireAndAreTouchedWhileUsed) {
  SsoConfig c = config_with(kKeyA);
  c.idle_timeout = std::chrono::seconds(100);
  SsoFlow flow(c);
  CountingRandom random;
  CookieSealer sealer({*CookieKey::from_file_contents(kKeyA)}, random);
  const std::string cookie =
      "__Host-portcullis=" + sealer.seal(record_of("s-1", 5000, 1000).to_json(), "session", 5000);
  EXPECT_TRUE(session_of(flow, browser({cookie}), 1100));   // 100 s idle: still valid
  EXPECT_FALSE(session_of(flow, browser({cookie}), 1101));  // beyond: gone
  // Used after a tenth of the idle time, the session comes back with a fresh cookie whose
  // last use is now, so it lives another idle period from here.
  const SsoServices svc{nullptr, random, nullptr};
  SessionResult used = run(flow.session(browser({cookie}), 1050, svc));
  ASSERT_TRUE(used.identity);
  ASSERT_FALSE(used.set_cookies.empty());
  const std::string& fresh = used.set_cookies.front();
  ASSERT_EQ(fresh.rfind("__Host-portcullis=", 0), 0u) << fresh;
  const std::string value = fresh.substr(18, fresh.find(';') - 18);
  EXPECT_TRUE(session_of(flow, browser({"__Host-portcullis=" + value}), 1140));
  // Used within the tenth: nothing to write back.
  EXPECT_TRUE(run(flow.session(browser({cookie}), 1005, svc)).set_cookies.empty());
}

TEST(SsoFlow, RedisSessionsLiveInTheStoreAndTheCookieOnlyRefersToThem) {
  SsoConfig c = config_with(kKeyA);
  c.session_store = SessionStoreKind::redis;
  c.idle_timeout = std::chrono::minutes(30);
  SsoFlow flow(c);
  MemoryStore store;
  CountingRandom random;
  CookieSealer sealer({*CookieKey::from_file_contents(kKeyA)}, random);
  const std::string ref =
      "__Host-portcullis=" + sealer.seal(R"({"sid":"s-1"})", "session-ref", 5000);
  // Nothing in the store: no session (a deleted or never-written session).
  EXPECT_FALSE(session_of(flow, browser({ref}), 1000, &store));
  store.values[SessionStore::session_key("s-1")] =
      sealer.seal(record_of("s-1", 5000, 1000).to_json(), "session:s-1", 5000);
  auto id = session_of(flow, browser({ref}), 1000, &store);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->subject, "alice");
  EXPECT_EQ(id->session_id, "s-1");
  // Each use resets the idle timer in the store (GETEX PX).
  EXPECT_EQ(store.ttls[SessionStore::session_key("s-1")], std::chrono::minutes(30));
  // Without the store (Redis down) or without the store wired, no session: deny, not allow.
  store.down = true;
  EXPECT_FALSE(session_of(flow, browser({ref}), 1000, &store));
  {
    // ... and the challenge keeps the cookie: it opens again once Redis is back.
    const SsoServices svc{nullptr, random, &store};
    const SessionResult down = run(flow.session(browser({ref}), 1000, svc));
    EXPECT_TRUE(down.store_unreachable);
    const SsoResponse r =
        flow.challenge(browser({ref}), discovered(), random, 1000, down.store_unreachable);
    EXPECT_EQ(r.status, 302u);
    for (const auto& [n, v] : r.headers) {
      EXPECT_FALSE(n == "set-cookie" && v.rfind("__Host-portcullis=;", 0) == 0) << v;
    }
  }
  store.down = false;
  EXPECT_FALSE(session_of(flow, browser({ref}), 1000, nullptr));
  // A session value copied under another id never opens (sealed for its own id).
  const std::string ref2 =
      "__Host-portcullis=" + sealer.seal(R"({"sid":"s-2"})", "session-ref", 5000);
  store.values[SessionStore::session_key("s-2")] = store.values[SessionStore::session_key("s-1")];
  EXPECT_FALSE(session_of(flow, browser({ref2}), 1000, &store));
  // A whole session sealed into the cookie is not a reference.
  const std::string whole =
      "__Host-portcullis=" + sealer.seal(record_of("s-1", 5000, 1000).to_json(), "session", 5000);
  EXPECT_FALSE(session_of(flow, browser({whole}), 1000, &store));
  // Expired: the record's absolute end wins over the store's TTL.
  EXPECT_FALSE(session_of(flow, browser({ref}), 5000, &store));
}

TEST(SsoFlow, LogoutDeletesARedisSessionAndRevokesItsId) {
  SsoConfig c = config_with(kKeyA);
  c.session_store = SessionStoreKind::redis;
  SsoFlow flow(c);
  MemoryStore store;
  CountingRandom random;
  CookieSealer sealer({*CookieKey::from_file_contents(kKeyA)}, random);
  const std::string key = SessionStore::session_key("s-1");
  store.values[key] = sealer.seal(record_of("s-1", 5000, 1000).to_json(), "session:s-1", 5000);
  const std::string cookie =
      "__Host-portcullis=" + sealer.seal(R"({"sid":"s-1"})", "session-ref", 5000);
  SsoRequest req = browser({cookie});  // views: the cookie outlives the request
  req.path = SsoFlow::kLogoutPath;
  const SsoServices svc{nullptr, random, &store};
  const SsoResponse r = run(flow.handle(req, 1000, svc));
  EXPECT_EQ(r.status, 200u);  // no end_session_endpoint known: the gateway's own page
  EXPECT_EQ(store.values.count(key), 0u);
  EXPECT_EQ(store.revoked, std::vector<std::string>{"s-1"});
  bool cleared = false;
  for (const auto& [n, v] : r.headers) {
    if (n == "set-cookie" && v.rfind("__Host-portcullis=;", 0) == 0) cleared = true;
  }
  EXPECT_TRUE(cleared);
}

TEST(SsoFlow, BackchannelLogoutIsAPostForRedisSessionsOnly) {
  CountingRandom random;
  MemoryStore store;
  SsoRequest req = browser();
  req.path = SsoFlow::kBackchannelLogoutPath;
  EXPECT_TRUE(SsoFlow::wants_body("POST", SsoFlow::kBackchannelLogoutPath));
  EXPECT_FALSE(SsoFlow::wants_body("GET", SsoFlow::kBackchannelLogoutPath));
  EXPECT_FALSE(SsoFlow::wants_body("POST", SsoFlow::kLogoutPath));
  SsoConfig c = config_with(kKeyA);
  c.session_store = SessionStoreKind::redis;
  SsoFlow redis_flow(c);
  EXPECT_TRUE(redis_flow.is_gateway_path(SsoFlow::kBackchannelLogoutPath));
  const SsoServices svc{nullptr, random, &store};
  EXPECT_EQ(run(redis_flow.handle(req, 1000, svc)).status, 405u);  // GET
  req.method = "POST";
  SsoFlow cookie_flow(config_with(kKeyA));
  const SsoResponse r = run(cookie_flow.handle(req, 1000, svc));
  EXPECT_EQ(r.status, 501u);
  EXPECT_EQ(r.content_type, "application/json");
}

}  // namespace
}  // namespace portcullis
