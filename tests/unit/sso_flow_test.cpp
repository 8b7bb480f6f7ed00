// SsoFlow without the network: which requests count as browser navigations, the challenge (302
// to the IdP with PKCE S256, state, nonce and a sealed pre-login cookie; 401 for API calls;
// 503 before discovery), session cookies (a sealed session opens; tampered, expired, foreign
// and wrongly named ones do not), and the access-denied page.
#include "sso/sso_flow.hpp"

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace portcullis {
namespace {

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
  boost::json::object s{{"provider", "idp"},
                        {"iss", "https://idp.example"},
                        {"sub", "alice"},
                        {"email", "alice@example.test"},
                        {"groups", boost::json::array{"eng"}},
                        {"session_exp", exp}};
  return sealer.seal(boost::json::serialize(s), purpose, exp);
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
  auto id = flow.session(browser({cookie}), 1000);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->subject, "alice");
  EXPECT_EQ(id->email, "alice@example.test");
  EXPECT_EQ(id->groups, std::vector<std::string>{"eng"});
  EXPECT_EQ(id->issuer, "https://idp.example");
  EXPECT_EQ(id->provider, "idp");
  EXPECT_EQ(id->method, "sso");
  EXPECT_EQ(id->expires_at, 5000);
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
  for (const auto& c : refused) EXPECT_FALSE(flow.session(browser({c}), 1000)) << c;
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
  EXPECT_TRUE(flow.session(browser({"__Host-portcullis=" + sealed_session(kKeyA, 5000)}), 1000));
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
