// Policies bound to routes by the config loader (inline, file, named in policy_dir), and the
// authorization stage that applies them (authorize()).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "authn/identity.hpp"
#include "authz/assertion_signer.hpp"
#include "authz/policy.hpp"
#include "core/config_loader.hpp"
#include "proxy/admission.hpp"
#include "proxy/runtime.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

constexpr const char* kHead = R"(listeners:
  - {name: plain, address: 127.0.0.1:8080}
identity_providers:
  - {name: idp, issuer: https://idp.example, audiences: [api], jwks_file: jwks.json}
upstreams:
  - {name: echo, endpoints: [{address: 127.0.0.1:7001}]}
routes:
)";

constexpr const char* kOrdersPolicy = R"(allow:
  or:
    - group: {has: orders-readers}
deny:
  email: {ends_with: "@contractors.example.com"}
)";

class PolicyBindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "portcullis-binding-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    write_file(dir_ / "jwks.json", AssertionSigner::generate().public_jwks());
    write_file(dir_ / "policies/orders.yaml", kOrdersPolicy);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ConfigLoadResult load(const std::string& routes, const std::string& extra = {}) {
    return load_config_string(std::string(kHead) + routes + extra,
                              (dir_ / "gw.yaml").string(), dir_.string());
  }
  static std::string describe(const ConfigLoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += e.to_string() + "\n";
    return out;
  }
  fs::path dir_;
};

TEST_F(PolicyBindingTest, NamedFileAndInlinePolicies) {
  auto r = load(R"(  - {name: a, match: {path_prefix: /a}, upstream: echo, auth: bearer, policy: orders}
  - {name: b, match: {path_prefix: /b}, upstream: echo, auth: bearer, policy: policies/orders.yaml}
  - name: c
    match: {path_prefix: /c}
    upstream: echo
    auth: bearer
    policy:
      allow: {scope: {has: "c:read"}}
)");
  ASSERT_TRUE(r.ok()) << describe(r);
  const auto& routes = r.config->routes;
  ASSERT_TRUE(routes[0].policy && routes[1].policy && routes[2].policy);
  EXPECT_EQ(routes[0].policy->ref, "orders");
  EXPECT_EQ(routes[0].policy->file, (dir_ / "policies/orders.yaml").string());
  // One file, compiled once, shared by both routes.
  EXPECT_EQ(routes[0].policy->compiled, routes[1].policy->compiled);
  EXPECT_EQ(routes[0].policy->compiled->source, "policies/orders.yaml");  // relative to the config
  EXPECT_EQ(routes[2].policy->ref, "inline");
  // Inline: the config's file name and the route (no directories: it reaches 403 bodies).
  EXPECT_EQ(routes[2].policy->compiled->source, "gw.yaml route c");
  EXPECT_EQ(routes[0].policy->compiled->version.size(), 16u);
  EXPECT_NE(routes[0].policy->compiled->version, routes[2].policy->compiled->version);
  // The config and the policy file are the files to watch.
  EXPECT_EQ(r.config->source_files,
            (std::vector<std::string>{(dir_ / "gw.yaml").string(),
                                      (dir_ / "policies/orders.yaml").string()}));
}

TEST_F(PolicyBindingTest, PolicyDirAndYmlExtension) {
  write_file(dir_ / "rules/billing.yml", "allow: {group: {has: billing}}\n");
  auto r = load("  - {name: a, match: {}, upstream: echo, auth: bearer, policy: billing}\n",
                "policy_dir: rules\n");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.config->policy_dir, (dir_ / "rules").string());
  EXPECT_EQ(r.config->routes[0].policy->file, (dir_ / "rules/billing.yml").string());
}

TEST_F(PolicyBindingTest, VersionChangesWithTheText) {
  auto before = load("  - {name: a, match: {}, upstream: echo, auth: bearer, policy: orders}\n");
  write_file(dir_ / "policies/orders.yaml", "allow: {group: {has: orders-writers}}\n");
  auto after = load("  - {name: a, match: {}, upstream: echo, auth: bearer, policy: orders}\n");
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_NE(before.config->routes[0].policy->compiled->version,
            after.config->routes[0].policy->compiled->version);
}

TEST_F(PolicyBindingTest, ErrorsNameTheFileLineAndKey) {
  write_file(dir_ / "policies/broken.yaml", "allow:\n  group: {hass: x}\n");
  auto r = load(R"(  - {name: a, match: {}, upstream: echo, auth: bearer, policy: broken}
  - {name: b, match: {}, upstream: echo, auth: bearer, policy: nosuch}
  - name: c
    match: {}
    upstream: echo
    auth: bearer
    policy:
      allow: {grup: {has: x}}
  - {name: d, match: {}, upstream: echo, auth: bearer, policy: "bad name!"}
)");
  ASSERT_FALSE(r.ok());
  const std::string all = describe(r);
  const std::string cfg = (dir_ / "gw.yaml").string();
  const std::string broken = (dir_ / "policies/broken.yaml").string();
  EXPECT_NE(all.find(broken + ":2:"), std::string::npos) << all;
  EXPECT_NE(all.find("hass"), std::string::npos) << all;
  EXPECT_NE(all.find(cfg + ":8:"), std::string::npos) << all;  // route a's policy key
  EXPECT_NE(all.find((dir_ / "policies/nosuch.yaml").string() + "' does not exist"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(cfg + ":15:"), std::string::npos) << all;  // inline: grup
  EXPECT_NE(all.find("grup"), std::string::npos) << all;
  EXPECT_NE(all.find("may only use letters"), std::string::npos) << all;
  // The config's own errors come first, the policy file's after.
  EXPECT_EQ(r.errors.front().file, cfg);
  EXPECT_EQ(r.errors.back().file, broken);
}

TEST_F(PolicyBindingTest, AssertionSection) {
  auto r = load("  - {name: a, match: {}, upstream: echo, auth: public}\n",
                "assertion: {key_file: keys/a.pem, issuer: https://gw.example, ttl: 90s}\n");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.config->assertion.key_file, (dir_ / "keys/a.pem").string());
  EXPECT_EQ(r.config->assertion.issuer, "https://gw.example");
  EXPECT_EQ(r.config->assertion.ttl, std::chrono::seconds(90));
  auto bad = load("  - {name: a, match: {}, upstream: echo, auth: public}\n",
                  "assertion: {ttl: 2h}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(describe(bad).find("between 1s and 1h"), std::string::npos);
}

// authorize() over a runtime built from a config.
class AuthorizeTest : public PolicyBindingTest {
 protected:
  void build(const std::string& routes) {
    auto r = load(routes);
    ASSERT_TRUE(r.ok()) << describe(r);
    runtime_ = Runtime::build(r.config, 1, nullptr, nullptr);
  }
  LocalReply decide(const char* path, std::shared_ptr<const Identity> id,
                    const char* method = "GET") {
    ctx_ = RequestContext{};
    ctx_.method = method;
    ctx_.host = "example.com";
    ctx_.path = path;
    ctx_.peer = boost::asio::ip::make_address("127.0.0.1");
    EXPECT_FALSE(admit(*runtime_, ctx_)) << path;
    ctx_.identity = std::move(id);
    return authorize(*runtime_, ctx_);
  }
  static std::shared_ptr<const Identity> person(std::string email,
                                                std::vector<std::string> groups) {
    auto id = std::make_shared<Identity>();
    id->subject = email.substr(0, email.find('@'));
    id->email = std::move(email);
    id->groups = std::move(groups);
    return id;
  }
  std::shared_ptr<const Runtime> runtime_;
  RequestContext ctx_;
};

constexpr const char* kRoutes = R"(  - {name: orders, match: {path_prefix: /orders}, upstream: echo, auth: bearer, policy: orders, show_deny_reason: true}
  - {name: quiet, match: {path_prefix: /quiet}, upstream: echo, auth: bearer, policy: orders}
  - {name: nopolicy, match: {path_prefix: /none}, upstream: echo, auth: bearer, show_deny_reason: true}
  - name: shadowed
    match: {path_prefix: /shadowed}
    upstream: echo
    auth: bearer
    policy: {allow: {authenticated_user: true}}
    shadow_policy: orders
  - name: office
    match: {path_prefix: /office}
    upstream: echo
    auth: public
    policy: {allow: {source_ip: {in: [10.0.0.0/8]}}}
  - {name: open, match: {path_prefix: /}, upstream: echo, auth: public}
)";

TEST_F(AuthorizeTest, AllowDenyOverridesAndDefault) {
  build(kRoutes);
  const std::string file = "policies/orders.yaml";
  EXPECT_FALSE(decide("/orders/1", person("alice@example.com", {"orders-readers"})));
  EXPECT_EQ(ctx_.decision, "allow");
  EXPECT_EQ(decision_rule(ctx_.policy_decision), file + "#allow[0]");

  auto denied = decide("/orders/1", person("eve@contractors.example.com", {"orders-readers"}));
  EXPECT_EQ(denied.status, 403u);
  EXPECT_EQ(ctx_.decision, "deny");
  EXPECT_EQ(denied.rule, file + "#deny[0]");
  EXPECT_EQ(denied.reason, "matched deny rule");

  auto nobody = decide("/orders/1", person("bob@example.com", {"eng"}));
  EXPECT_EQ(nobody.status, 403u);
  EXPECT_EQ(nobody.rule, file + "#default");
  EXPECT_EQ(nobody.reason, "no rule matched");
}

TEST_F(AuthorizeTest, ReasonOnlyWhenTheRouteShowsIt) {
  build(kRoutes);
  auto quiet = decide("/quiet", person("bob@example.com", {}));
  EXPECT_EQ(quiet.status, 403u);
  EXPECT_TRUE(quiet.reason.empty());
  EXPECT_TRUE(quiet.rule.empty());
  EXPECT_EQ(ctx_.decision_reason, "no rule matched");  // still recorded for logs and audit
}

TEST_F(AuthorizeTest, RouteWithoutPolicyDeniesEveryone) {
  build(kRoutes);
  auto r = decide("/none", person("alice@example.com", {"orders-readers"}));
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.reason, "route has no policy");
}

TEST_F(AuthorizeTest, PublicRoutesAreDecidedToo) {
  build(kRoutes);
  EXPECT_FALSE(decide("/anything", nullptr));
  EXPECT_EQ(ctx_.decision, "allow");
  EXPECT_EQ(ctx_.policy_decision.section, "public");
  EXPECT_EQ(ctx_.decision_reason, "public route");
  // A public route with a policy evaluates it without an identity.
  auto outside = decide("/office", nullptr);
  EXPECT_EQ(outside.status, 403u);
  ctx_.peer = boost::asio::ip::make_address("10.1.2.3");
  EXPECT_FALSE(authorize(*runtime_, ctx_));
}

TEST_F(AuthorizeTest, ShadowPolicyIsRecordedNeverEnforced) {
  build(kRoutes);
  EXPECT_FALSE(decide("/shadowed", person("bob@example.com", {"eng"})));
  EXPECT_EQ(ctx_.decision, "allow");
  ASSERT_TRUE(ctx_.shadow_decision.has_value());
  EXPECT_FALSE(ctx_.shadow_decision->allow);
  const auto& m = runtime_->route_policy_metrics[3];
  const auto mismatches = m.shadow_mismatch->value.load();
  const auto would_deny = m.shadow_deny->value.load();
  EXPECT_GE(mismatches, 1u);
  EXPECT_FALSE(decide("/shadowed", person("carol@example.com", {"orders-readers"})));
  EXPECT_TRUE(ctx_.shadow_decision->allow);
  EXPECT_EQ(m.shadow_mismatch->value.load(), mismatches);
  EXPECT_EQ(m.shadow_deny->value.load(), would_deny);
}

}  // namespace
}  // namespace portcullis
