// Decision cache keys: every component the policy can see changes the key, field boundaries
// cannot collide, what the policy cannot see does not split the cache, and key_scope() finds
// policies that read the path or source IP.
#include "cache/decision_key.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "authn/identity.hpp"
#include "authz/policy_parser.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kV1 = "0123456789abcdef";
constexpr std::string_view kV2 = "fedcba9876543210";

Identity base_identity() {
  Identity id;
  id.provider = "okta";
  id.issuer = "https://idp.example.com";
  id.subject = "alice";
  id.email = "alice@example.com";
  id.groups = {"staff", "orders-readers"};
  id.scopes = {"openid", "orders:read"};
  id.client_id = "cli";
  id.token_id = "jti-1";
  id.expires_at = 1'700'000'600;
  id.method = "jwt";
  id.claims = std::make_shared<const boost::json::object>(
      boost::json::parse(R"({"sub":"alice","tier":"gold","exp":1700000600})").as_object());
  return id;
}

std::string hex(const Sha256Digest& d) {
  return to_hex(d.data(), d.size());
}

TEST(IdentityDigest, EveryVisibleFieldChangesIt) {
  const std::string base = hex(identity_digest(base_identity()));
  const std::vector<std::pair<const char*, std::function<void(Identity&)>>> cases = {
      {"issuer", [](Identity& i) { i.issuer += "/"; }},
      {"subject", [](Identity& i) { i.subject = "bob"; }},
      {"email", [](Identity& i) { i.email = "alice@example.org"; }},
      {"group added", [](Identity& i) { i.groups.push_back("admins"); }},
      {"group removed", [](Identity& i) { i.groups.pop_back(); }},
      {"scope added", [](Identity& i) { i.scopes.push_back("orders:write"); }},
      {"client_id", [](Identity& i) { i.client_id = "other"; }},
      {"claim value",
       [](Identity& i) {
         i.claims = std::make_shared<const boost::json::object>(
             boost::json::parse(R"({"sub":"alice","tier":"silver","exp":1700000600})").as_object());
       }},
      {"no claims", [](Identity& i) { i.claims = nullptr; }},
      {"empty claims",
       [](Identity& i) { i.claims = std::make_shared<const boost::json::object>(); }},
  };
  std::set<std::string> seen{base};
  for (const auto& [name, mutate] : cases) {
    Identity id = base_identity();
    mutate(id);
    EXPECT_TRUE(seen.insert(hex(identity_digest(id))).second) << name;
  }
}

TEST(IdentityDigest, InvisibleFieldsDoNotSplitTheCache) {
  // The policy cannot read these (the jti and exp reach it only through the claims, which are
  // digested as a whole).
  const std::string base = hex(identity_digest(base_identity()));
  Identity id = base_identity();
  id.provider = "other-provider";
  id.method = "introspection";
  id.token_id = "jti-2";
  id.expires_at += 100;
  EXPECT_EQ(hex(identity_digest(id)), base);
}

TEST(IdentityDigest, FieldBoundariesCannotCollide) {
  const auto digest = [](auto mutate) {
    Identity id;
    mutate(id);
    return hex(identity_digest(id));
  };
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {digest([](Identity& i) { i.issuer = "ab", i.subject = "c"; }),
       digest([](Identity& i) { i.issuer = "a", i.subject = "bc"; })},
      {digest([](Identity& i) { i.subject = "ab", i.email = "c"; }),
       digest([](Identity& i) { i.subject = "a", i.email = "bc"; })},
      {digest([](Identity& i) {
         i.groups = {"ab", "c"};
       }),
       digest([](Identity& i) {
         i.groups = {"a", "bc"};
       })},
      {digest([](Identity& i) {
         i.groups = {"ab", "c"};
       }),
       digest([](Identity& i) { i.groups = {"abc"}; })},
      {digest([](Identity& i) { i.groups = {"a"}; }),
       digest([](Identity& i) { i.scopes = {"a"}; })},
      {digest([](Identity& i) { i.groups = {""}; }), digest([](Identity&) {})},
      {digest([](Identity& i) { i.groups = {"x"}, i.scopes = {}; }),
       digest([](Identity& i) { i.groups = {}, i.scopes = {"x"}; })},
      {digest([](Identity& i) { i.email = "x"; }), digest([](Identity& i) { i.client_id = "x"; })},
  };
  for (std::size_t n = 0; n < pairs.size(); ++n) EXPECT_NE(pairs[n].first, pairs[n].second) << n;
}

DecisionKeyInput base_input(const IdentityDigest* idd) {
  DecisionKeyInput in;
  in.identity = idd;
  in.route = "orders-api";
  in.method = "GET";
  in.grpc_method = "";
  in.path = "/orders/42";
  in.source_ip = boost::asio::ip::make_address("10.1.2.3");
  in.scope = {true, true};
  in.policy_version = kV1;
  in.shadow_policy_version = "";
  return in;
}

TEST(DecisionKey, EveryComponentChangesTheKey) {
  const IdentityDigest alice = identity_digest(base_identity());
  Identity b = base_identity();
  b.subject = "bob";
  const IdentityDigest bob = identity_digest(b);
  const std::vector<std::pair<const char*, std::function<void(DecisionKeyInput&)>>> cases = {
      {"identity", [&](DecisionKeyInput& in) { in.identity = &bob; }},
      {"anonymous", [](DecisionKeyInput& in) { in.identity = nullptr; }},
      {"route", [](DecisionKeyInput& in) { in.route = "orders-admin"; }},
      {"method", [](DecisionKeyInput& in) { in.method = "POST"; }},
      {"grpc method", [](DecisionKeyInput& in) { in.grpc_method = "/pkg.S/M"; }},
      {"path", [](DecisionKeyInput& in) { in.path = "/orders/43"; }},
      {"path not in scope", [](DecisionKeyInput& in) { in.scope.path = false; }},
      {"source ip",
       [](DecisionKeyInput& in) { in.source_ip = boost::asio::ip::make_address("10.1.2.4"); }},
      {"source ip v6",
       [](DecisionKeyInput& in) {
         in.source_ip = boost::asio::ip::make_address("::ffff:10.1.2.3");
       }},
      {"source ip not in scope", [](DecisionKeyInput& in) { in.scope.source_ip = false; }},
      {"policy version", [](DecisionKeyInput& in) { in.policy_version = kV2; }},
      {"no policy", [](DecisionKeyInput& in) { in.policy_version = ""; }},
      {"shadow version", [](DecisionKeyInput& in) { in.shadow_policy_version = kV2; }},
  };
  const DecisionKey base = make_decision_key(base_input(&alice));
  std::set<std::string> seen{base.redis_key()};
  for (const auto& [name, mutate] : cases) {
    DecisionKeyInput in = base_input(&alice);
    mutate(in);
    EXPECT_TRUE(seen.insert(make_decision_key(in).redis_key()).second) << name;
  }
  EXPECT_EQ(make_decision_key(base_input(&alice)), base);  // deterministic
}

TEST(DecisionKey, OutOfScopeAttributesDoNotSplitTheCache) {
  const IdentityDigest alice = identity_digest(base_identity());
  DecisionKeyInput a = base_input(&alice);
  a.scope = {false, false};
  DecisionKeyInput b = a;
  b.path = "/elsewhere";
  b.source_ip = boost::asio::ip::make_address("192.0.2.1");
  EXPECT_EQ(make_decision_key(a), make_decision_key(b));
}

TEST(DecisionKey, FieldBoundariesCannotCollide) {
  DecisionKeyInput a, b;
  a.route = "ab", a.method = "c";
  b.route = "a", b.method = "bc";
  EXPECT_NE(make_decision_key(a), make_decision_key(b));
  a = b = {};
  a.method = "GE", a.grpc_method = "T";
  b.method = "GET";
  EXPECT_NE(make_decision_key(a), make_decision_key(b));
  a = b = {};
  a.policy_version = kV1;  // version vs shadow version
  b.shadow_policy_version = kV1;
  EXPECT_NE(make_decision_key(a), make_decision_key(b));
  a = b = {};
  a.scope.path = true;  // an empty path in scope differs from no path
  EXPECT_NE(make_decision_key(a), make_decision_key(b));
  a = b = {};
  a.scope.path = true, a.path = "x";
  b.route = "x";
  EXPECT_NE(make_decision_key(a), make_decision_key(b));
}

TEST(DecisionKey, LongInputsSpillToTheHeapAndStillDiffer) {
  DecisionKeyInput a;
  a.scope.path = true;
  std::string p1(5000, 'a'), p2(5000, 'a');
  p2.back() = 'b';
  a.path = p1;
  DecisionKeyInput b = a;
  b.path = p2;
  EXPECT_NE(make_decision_key(a), make_decision_key(b));
  EXPECT_EQ(make_decision_key(a), make_decision_key(a));
}

TEST(DecisionKey, RedisKeyIsPrefixedHexOfTheBytes) {
  const DecisionKey k = make_decision_key({});
  const std::string r = k.redis_key();
  ASSERT_EQ(r.size(), DecisionKey::kRedisKeySize);
  EXPECT_TRUE(r.starts_with("pc:d:v1:"));
  EXPECT_EQ(r.substr(8), to_hex(k.bytes.data(), k.bytes.size()));
  std::string out = "x";
  k.append_redis_key(out);
  EXPECT_EQ(out, "x" + r);
  EXPECT_EQ(DecisionKeyHash{}(k), DecisionKeyHash{}(make_decision_key({})));
}

TEST(KeyScope, FindsPathAndSourceIpCriteriaAnywhere) {
  struct Case {
    const char* yaml;
    bool path;
    bool source_ip;
  };
  const Case cases[] = {
      {"allow:\n  group: {has: a}\n", false, false},
      {"allow:\n  http_method: {in: [GET]}\n", false, false},
      {"allow:\n  http_path: {starts_with: /x}\n", true, false},
      {"allow:\n  source_ip: {in: [10.0.0.0/8]}\n", false, true},
      {"allow:\n  or:\n    - group: {has: a}\n    - and:\n        - not: {http_path: {is: /y}}\n"
       "        - scope: {has: s}\n",
       true, false},
      {"allow:\n  group: {has: a}\ndeny:\n  nor:\n    - source_ip: {in: [10.0.0.0/8]}\n", false,
       true},
  };
  for (const Case& c : cases) {
    auto r = parse_policy_string(c.yaml, "t.yaml");
    ASSERT_TRUE(r.ok()) << c.yaml;
    const DecisionKeyScope s = key_scope(r.policy.get(), nullptr);
    EXPECT_EQ(s.path, c.path) << c.yaml;
    EXPECT_EQ(s.source_ip, c.source_ip) << c.yaml;
    // A shadow policy's needs count too.
    const DecisionKeyScope shadow = key_scope(nullptr, r.policy.get());
    EXPECT_EQ(shadow.path, c.path) << c.yaml;
    EXPECT_EQ(shadow.source_ip, c.source_ip) << c.yaml;
  }
  EXPECT_FALSE(key_scope(nullptr, nullptr).path);
}

}  // namespace
}  // namespace portcullis
