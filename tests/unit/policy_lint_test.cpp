// Policy lint tests: each finding kind on purpose-made bad policies and configs (with its
// position), clean policies giving nothing, and the audit-record reader and least-privilege
// report.
#include "authz/policy_lint.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "authz/lint_audit_reader.hpp"
#include "authz/policy_parser.hpp"
#include "core/config_loader.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(__FILE__).parent_path().parent_path() / "fixtures/policy_lint";

std::string dump(const std::vector<LintFinding>& findings) {
  std::string out;
  for (const LintFinding& f : findings) out += "  " + f.to_string() + "\n";
  return out;
}

std::vector<LintFinding> lint_yaml(const std::string& yaml) {
  const PolicyParseResult r = parse_policy_string(yaml, "p.yaml");
  EXPECT_TRUE(r.ok()) << yaml << (r.errors.empty() ? "" : r.errors[0].to_string());
  if (!r.ok()) return {};
  return lint_policy(*r.policy, "p.yaml");
}

std::vector<LintFinding> with_code(const std::vector<LintFinding>& all, std::string_view code) {
  std::vector<LintFinding> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out),
               [&](const LintFinding& f) { return f.code == code; });
  return out;
}

bool has(const std::vector<LintFinding>& all, std::string_view code, int line, int column = 0) {
  return std::any_of(all.begin(), all.end(), [&](const LintFinding& f) {
    return f.code == code && f.line == line && (column == 0 || f.column == column);
  });
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// The config around the routes under test: one listener, upstream and identity provider.
constexpr const char* kHead =
    "listeners: [{name: edge, address: '127.0.0.1:8080'}]\n"                   // 1
    "identity_providers:\n"                                                    // 2
    "  - {name: corp, issuer: 'https://idp.example.com', audiences: [api]}\n"  // 3
    "upstreams: [{name: app, endpoints: ['127.0.0.1:9000']}]\n"                // 4
    "routes:\n";                                                               // 5

// Each test gets its own directory (the config's base, with policies/ for named policies).
class PolicyLintConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "portcullis-lint-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes kHead + routes to config() and lints it; the test fails when it does not load.
  std::vector<LintFinding> lint_routes(const std::string& routes,
                                       const LintAuditRecords* audit = nullptr) {
    write_file(config(), std::string(kHead) + routes);
    const ConfigLoadResult r = load_config_file(config());
    EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
    if (!r.ok()) return {};
    LintOptions options;
    options.audit = audit;
    return lint_config(*r.config, options);
  }

  std::string config() const { return (dir_ / "portcullis.yaml").string(); }

  fs::path dir_;
};

TEST(PolicyLint, CleanPoliciesHaveNoFindings) {
  const char* clean[] = {
      "allow: {group: {has: admins}}\n",
      "allow:\n  or:\n    - and:\n        - scope: {has: 'orders:read'}\n"
      "        - http_method: {in: [GET, HEAD]}\n    - scope: {has: 'orders:write'}\n"
      "deny:\n  or:\n    - email: {ends_with: '@contractors.example.com'}\n",
      "allow:\n  or:\n    - subject: {in: [alice, bob]}\n    - group: {has: admins}\n"
      "    - domain: {is: example.com}\n    - claim/realm_access.roles: {has: viewer}\n",
      "allow: {and: [{domain: {is: example.com}}, {source_ip: {in: [10.0.0.0/8]}}]}\n"
      "deny: {not: {source_ip: {is: 10.0.0.0/8}}}\n",
      "allow: {nor: [{not: {group: {has: a}}}]}\n",
      "allow:\n  or:\n    - and: [{group: {has: a}}, {http_method: {is: GET}}]\n"
      "    - group: {has: a}\n",  // broader after narrower: both reachable
      "deny: {group: {has: banned}}\n",
  };
  for (const char* yaml : clean) {
    const auto findings = lint_yaml(yaml);
    EXPECT_TRUE(findings.empty()) << yaml << dump(findings);
  }
}

TEST(PolicyLint, CleanConfigFixtureHasNoFindings) {
  const ConfigLoadResult r = load_config_file((kFixtures / "clean/portcullis.yaml").string());
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto findings = lint_config(*r.config);
  EXPECT_TRUE(findings.empty()) << dump(findings);
}

TEST(PolicyLint, AllowRuleWithoutIdentityCriterion) {
  auto f = lint_yaml("allow:\n  or:\n    - http_method: {is: GET}\n    - group: {has: a}\n");
  ASSERT_EQ(with_code(f, "allow-any-identity").size(), 1u) << dump(f);
  EXPECT_TRUE(has(f, "allow-any-identity", 3, 7)) << dump(f);
  EXPECT_NE(f[0].message.find("allow[0] allows anyone who can log in"), std::string::npos);
  EXPECT_EQ(f[0].severity, LintSeverity::warning);

  f = lint_yaml("allow: {authenticated_user: true}\n");
  ASSERT_EQ(f.size(), 1u) << dump(f);
  EXPECT_EQ(f[0].code, "allow-any-identity");
  EXPECT_NE(f[0].message.find("`authenticated_user: true` alone"), std::string::npos);

  for (const char* yaml : {
           "allow: {and: [{source_ip: {in: [10.0.0.0/8]}}, {http_path: {starts_with: /a}}]}\n",
           "allow: {not: {group: {has: banned}}}\n",  // everyone but the banned
           "allow: {or: [{group: {has: a}}, {http_method: {is: GET}}]}\n",  // one branch is open
           "allow: {issuer: {is: 'https://idp.example.com'}}\n",
           "allow: {and: [{authenticated_user: true}, {grpc_method: {is: /a.B/C}}]}\n",
       }) {
    f = lint_yaml(yaml);
    EXPECT_EQ(with_code(f, "allow-any-identity").size(), 1u) << yaml << dump(f);
  }
  // An identity criterion anywhere on every path is enough.
  for (const char* yaml : {
           "allow: {and: [{group: {has: a}}, {http_method: {is: GET}}]}\n",
           "allow: {or: [{group: {has: a}}, {scope: {has: b}}]}\n",
           "allow: {not: {not: {client_id: {is: cli}}}}\n",
           "deny: {http_method: {is: DELETE}}\n",  // deny rules may be about requests only
       }) {
    f = lint_yaml(yaml);
    EXPECT_TRUE(with_code(f, "allow-any-identity").empty()) << yaml << dump(f);
  }
}

TEST(PolicyLint, MatchAllPatterns) {
  auto f = lint_yaml(
      "allow:\n"
      "  or:\n"
      "    - email: {starts_with: ''}\n"                                    // 3
      "    - subject: {ends_with: ''}\n"                                    // 4
      "    - http_path: {contains: ''}\n"                                   // 5
      "    - group: {starts_with: ''}\n"                                    // 6
      "    - source_ip: {in: ['::/0']}\n"                                   // 7
      "deny: {and: [{group: {has: x}}, {source_ip: {is: 0.0.0.0/0}}]}\n");  // 8
  const auto m = with_code(f, "match-all-pattern");
  ASSERT_EQ(m.size(), 6u) << dump(f);
  for (int line : {3, 4, 5, 6, 7}) EXPECT_TRUE(has(m, "match-all-pattern", line, 7)) << line;
  EXPECT_TRUE(has(m, "match-all-pattern", 8, 34)) << dump(f);
  EXPECT_NE(m[0].message.find("`email: {starts_with: \"\"}`: an empty starts_with pattern matches "
                              "every value"),
            std::string::npos)
      << m[0].message;
  EXPECT_NE(m[3].message.find("anyone with at least one value"), std::string::npos);
  EXPECT_NE(m[5].message.find("0.0.0.0/0 matches every IPv4 address"), std::string::npos);
}

TEST(PolicyLint, PublicEmailDomains) {
  for (const char* yaml : {
           "allow: {domain: {is: gmail.com}}\n",
           "allow: {domain: {is: GMAIL.com}}\n",
           "allow: {email: {ends_with: '@outlook.com'}}\n",
           "allow: {domain: {in: [example.com, yahoo.com]}}\n",
           "allow: {email: {contains: '@proton.me'}}\n",
           "allow: {domain: {ends_with: icloud.com}}\n",
           "allow: {and: [{domain: {is: hotmail.com}}, {http_method: {is: GET}}]}\n",
       }) {
    const auto f = lint_yaml(yaml);
    ASSERT_EQ(f.size(), 1u) << yaml << dump(f);
    EXPECT_EQ(f[0].code, "public-email-domain") << yaml;
    EXPECT_EQ(f[0].line, 1) << yaml;
    EXPECT_NE(f[0].message.find("public mail provider"), std::string::npos);
  }
  // A real constraint next to it, a company domain, an exact address, or a deny: all fine.
  for (const char* yaml : {
           "allow: {and: [{domain: {is: gmail.com}}, {group: {has: beta-testers}}]}\n",
           "allow: {domain: {is: example.com}}\n",
           "allow: {email: {is: someone@gmail.com}}\n",
           "deny: {domain: {is: gmail.com}}\n",
           "allow: {email: {ends_with: '@notgmail.com'}}\n",
       }) {
    const auto f = lint_yaml(yaml);
    EXPECT_TRUE(f.empty()) << yaml << dump(f);
  }
}

TEST(PolicyLint, DuplicateRules) {
  const auto f = lint_yaml(
      "allow:\n"
      "  or:\n"
      "    - group: {has: a}\n"  // 3
      "    - scope: {has: s}\n"  // 4
      "    - group: {has: a}\n"  // 5
      "deny:\n"
      "  or:\n"
      "    - and: [{group: {has: x}}, {http_method: {in: [PUT, DELETE]}}]\n"    // 8
      "    - and: [{group: {has: x}}, {http_method: {in: [put, delete]}}]\n");  // 9
  const auto d = with_code(f, "duplicate-rule");
  ASSERT_EQ(d.size(), 2u) << dump(f);
  EXPECT_TRUE(has(d, "duplicate-rule", 5, 7));
  EXPECT_EQ(d[0].message, "allow[2] duplicates allow[0] (line 3)");
  EXPECT_TRUE(has(d, "duplicate-rule", 9, 7));
  EXPECT_EQ(d[1].message, "deny[1] duplicates deny[0] (line 8)");
  EXPECT_EQ(f.size(), 2u) << dump(f);  // a duplicate is not also "shadowed"
}

TEST(PolicyLint, AllowShadowedByDeny) {
  const auto f = lint_yaml(
      "allow:\n"
      "  or:\n"
      "    - email: {ends_with: '@contractors.example.com'}\n"                              // 3
      "    - and: [{group: {has: a}}, {email: {ends_with: '@contractors.example.com'}}]\n"  // 4
      "    - email: {is: bob@sub.contractors.example.com}\n"                                // 5
      "    - and: [{group: {has: ops}}, {http_method: {is: DELETE}}]\n"                     // 6
      "    - group: {has: b}\n"                                                             // 7
      "    - or: [{domain: {is: contractors.example.com}}, {http_method: {is: PATCH}}]\n"   // 8
      "deny:\n"
      "  or:\n"
      "    - email: {ends_with: '@contractors.example.com'}\n"  // 11
      "    - email: {ends_with: '.contractors.example.com'}\n"  // 12
      "    - http_method: {in: [DELETE, PATCH]}\n"              // 13
      "    - domain: {is: contractors.example.com}\n");         // 14
  const auto s = with_code(f, "shadowed-by-deny");
  ASSERT_EQ(s.size(), 5u) << dump(f);
  EXPECT_TRUE(has(s, "shadowed-by-deny", 3, 7));
  EXPECT_EQ(s[0].message,
            "allow[0] is identical to deny[0] (line 11): deny overrides allow, so it never allows "
            "anything");
  EXPECT_TRUE(has(s, "shadowed-by-deny", 4, 7));
  EXPECT_TRUE(has(s, "shadowed-by-deny", 5, 7));
  EXPECT_NE(s[2].message.find("deny[1] (line 12) denies every request it matches"),
            std::string::npos)
      << s[2].message;
  EXPECT_TRUE(has(s, "shadowed-by-deny", 6, 7));
  EXPECT_FALSE(has(s, "shadowed-by-deny", 7)) << dump(f);
  EXPECT_TRUE(has(s, "shadowed-by-deny", 8, 7));
  EXPECT_EQ(s[4].message,
            "allow[5] never allows anything: deny[0] .. deny[3] together deny every request it "
            "matches (deny overrides allow)");
  // A rule shadowed by a deny is not reported again as shadowed by an earlier allow.
  EXPECT_TRUE(with_code(f, "shadowed-rule").empty()) << dump(f);
}

TEST(PolicyLint, RuleShadowedByAnEarlierRule) {
  const auto f = lint_yaml(
      "allow:\n"
      "  or:\n"
      "    - group: {has: a}\n"                                      // 3
      "    - and: [{group: {has: a}}, {http_method: {is: GET}}]\n"   // 4
      "    - scope: {starts_with: 'orders:'}\n"                      // 5
      "    - scope: {in: ['orders:read', 'orders:write']}\n"         // 6
      "    - or: [{group: {has: a}}, {scope: {has: 'orders:x'}}]\n"  // 7
      "    - subject: {starts_with: ''}\n"                           // 8
      "    - client_id: {is: cli}\n"                                 // 9
      "deny:\n"
      "  or:\n"
      "    - source_ip: {is: 10.0.0.0/8}\n"                    // 12
      "    - source_ip: {in: [10.1.0.0/16, 10.2.3.4/32]}\n");  // 13
  const auto s = with_code(f, "shadowed-rule");
  EXPECT_TRUE(has(s, "shadowed-rule", 4, 7)) << dump(f);
  EXPECT_EQ(s[0].message,
            "allow[1] is never reached: allow[0] (line 3) matches every request it matches");
  EXPECT_TRUE(has(s, "shadowed-rule", 6, 7)) << dump(f);
  EXPECT_TRUE(has(s, "shadowed-rule", 7, 7)) << dump(f);  // by rules 0 and 2 together
  EXPECT_EQ(s[2].message,
            "allow[4] is never reached: allow[0] .. allow[3] together match every request it "
            "matches");
  EXPECT_FALSE(has(s, "shadowed-rule", 8)) << dump(f);    // broader than all before it
  EXPECT_TRUE(has(s, "shadowed-rule", 9, 7)) << dump(f);  // after an unconditional rule
  EXPECT_NE(s[3].message.find("allow[5] (line 8)"), std::string::npos) << s[3].message;
  EXPECT_TRUE(has(s, "shadowed-rule", 13, 7)) << dump(f);
  EXPECT_EQ(s[4].message,
            "deny[1] is redundant: deny[0] (line 12) already denies every request it matches");
  EXPECT_EQ(s.size(), 5u) << dump(f);
}

TEST(PolicyLint, EmptyListNeverMatches) {
  const auto f = lint_yaml("allow: {and: [{group: {has: a}}, {subject: {in: []}}]}\n");
  ASSERT_EQ(f.size(), 1u) << dump(f);
  EXPECT_EQ(f[0].code, "never-matches");
  EXPECT_EQ(f[0].line, 1);
  EXPECT_EQ(f[0].column, 35);
  EXPECT_EQ(f[0].message, "`subject: {in: []}` never matches: `in: []` lists nothing");
}

TEST(PolicyLint, FindingFormat) {
  const LintFinding f{LintSeverity::info, "p.yaml", 3, 7, "unused-grant", "text"};
  EXPECT_EQ(f.to_string(), "p.yaml:3:7: info: [unused-grant] text");
  const LintFinding g{LintSeverity::error, "a.jsonl", 0, 0, "audit-unreadable", "x"};
  EXPECT_EQ(g.to_string(), "a.jsonl: error: [audit-unreadable] x");
  EXPECT_EQ(severity_name(LintSeverity::warning), "warning");
}

TEST_F(PolicyLintConfig, RouteWithoutPolicy) {
  const auto f = lint_routes(
      "  - name: open\n"  // 6
      "    match: {path_prefix: /open}\n"
      "    upstream: app\n"
      "    auth: public\n"
      "  - name: closed\n"  // 10
      "    match: {path_prefix: /closed}\n"
      "    upstream: app\n"
      "    auth: bearer\n");
  ASSERT_EQ(f.size(), 1u) << dump(f);
  EXPECT_EQ(f[0].code, "route-without-policy");
  EXPECT_EQ(f[0].file, config());
  EXPECT_EQ(f[0].line, 10);
  EXPECT_EQ(f[0].column, 5);
  EXPECT_EQ(f[0].severity, LintSeverity::warning);
  EXPECT_NE(f[0].message.find("route 'closed'"), std::string::npos);
}

TEST_F(PolicyLintConfig, CriteriaThatNeverMatchOnTheirRoute) {
  const auto f = lint_routes(
      "  - name: api\n"                                                             // 6
      "    match: {path_prefix: /api, methods: [GET, HEAD]}\n"                      // 7
      "    upstream: app\n"                                                         // 8
      "    auth: bearer\n"                                                          // 9
      "    policy:\n"                                                               // 10
      "      allow:\n"                                                              // 11
      "        or:\n"                                                               // 12
      "          - spiffe_id: {is: 'spiffe://example.org/x'}\n"                     // 13
      "          - grpc_method: {is: /pkg.Svc/Get}\n"                               // 14
      "          - and: [{group: {has: a}}, {http_method: {is: POST}}]\n"           // 15
      "          - and: [{group: {has: b}}, {http_method: {in: [GET, PUT]}}]\n"     // 16
      "          - and: [{group: {has: c}}, {http_path: {starts_with: /admin}}]\n"  // 17
      "          - and: [{group: {has: d}}, {http_path: {is: /api/v1}}]\n"          // 18
      "          - and: [{group: {has: e}}, {authenticated_user: false}]\n"         // 19
      "          - and: [{group: {has: f}}, {http_path: {starts_with: /ap}}]\n"     // 20
      "  - name: pub\n"                                                             // 21
      "    match: {path: /pub}\n"                                                   // 22
      "    upstream: app\n"                                                         // 23
      "    auth: public\n"                                                          // 24
      "    policy:\n"                                                               // 25
      "      allow:\n"                                                              // 26
      "        or:\n"                                                               // 27
      "          - group: {has: admins}\n"                                          // 28
      "          - subject: {starts_with: ''}\n"                                    // 29
      "          - and: [{email: {is: a@example.com}}, {http_path: {is: /pub}}]\n"  // 30
      "          - http_path: {is: /other}\n");                                     // 31
  const auto n = with_code(f, "never-matches");
  EXPECT_TRUE(has(n, "never-matches", 13, 13)) << dump(f);
  EXPECT_TRUE(has(n, "never-matches", 14, 13)) << dump(f);
  EXPECT_TRUE(has(n, "never-matches", 15, 39)) << dump(f);
  EXPECT_FALSE(has(n, "never-matches", 16)) << dump(f);
  EXPECT_TRUE(has(f, "method-not-routed", 16, 39)) << dump(f);
  EXPECT_TRUE(has(n, "never-matches", 17, 39)) << dump(f);
  EXPECT_FALSE(has(n, "never-matches", 18)) << dump(f);
  EXPECT_TRUE(has(n, "never-matches", 19, 39)) << dump(f);
  EXPECT_FALSE(has(n, "never-matches", 20)) << dump(f);
  EXPECT_TRUE(has(n, "never-matches", 28, 13)) << dump(f);
  EXPECT_FALSE(has(n, "never-matches", 29)) << dump(f);  // "" matches the empty subject
  EXPECT_TRUE(has(n, "never-matches", 30, 20)) << dump(f);
  EXPECT_TRUE(has(n, "never-matches", 31, 13)) << dump(f);
  EXPECT_EQ(n.size(), 8u) << dump(f);
  for (const LintFinding& x : f) EXPECT_EQ(x.file, config()) << x.to_string();

  const auto message = [&](int line) {
    for (const LintFinding& x : n) {
      if (x.line == line) return x.message;
    }
    return std::string();
  };
  EXPECT_EQ(message(13),
            "`spiffe_id: {is: \"spiffe://example.org/x\"}` never matches on route 'api': the "
            "route's auth is not mtls, so requests carry no SPIFFE id");
  EXPECT_NE(message(14).find("matches no grpc_service"), std::string::npos);
  EXPECT_NE(message(15).find("the route only routes GET, HEAD (match.methods)"), std::string::npos);
  EXPECT_NE(message(17).find("every path on the route starts with /api"), std::string::npos);
  EXPECT_NE(message(19).find("requires authentication"), std::string::npos);
  EXPECT_NE(message(28).find("`auth: public`, so requests carry no identity"), std::string::npos);
  EXPECT_NE(message(31).find("the route only routes the path /pub"), std::string::npos);
  // No identity on a public route, so no "anyone who can log in" warning there.
  EXPECT_FALSE(has(f, "allow-any-identity", 31)) << dump(f);
}

TEST_F(PolicyLintConfig, RouteContextMakesRulesUnconditional) {
  const auto f = lint_routes(
      "  - name: api\n"  // 6
      "    match: {path_prefix: /api, methods: [GET]}\n"
      "    upstream: app\n"
      "    auth: bearer\n"
      "    policy:\n"  // 10
      "      allow:\n"
      "        or:\n"
      "          - and: [{group: {has: a}}, {http_method: {is: GET}}]\n"  // 13
      "          - group: {has: a}\n"                                     // 14
      "  - name: api2\n"                                                  // 15
      "    match: {path_prefix: /api2}\n"
      "    upstream: app\n"
      "    auth: bearer\n"
      "    policy:\n"                               // 19
      "      allow: {group: {has: a}}\n"            // 20
      "      deny: {authenticated_user: true}\n");  // 21
  // On a route that only routes GET, `http_method: GET` matches every request it sees.
  EXPECT_TRUE(has(f, "shadowed-rule", 14, 13)) << dump(f);
  // Every request on a bearer route is authenticated: the deny overrides every allow.
  EXPECT_TRUE(has(f, "shadowed-by-deny", 20, 15)) << dump(f);
  EXPECT_EQ(f.size(), 2u) << dump(f);
}

TEST_F(PolicyLintConfig, SharedPolicyFileNamesEveryRoute) {
  write_file(dir_ / "policies/shared.yaml",
             "allow:\n"
             "  or:\n"
             "    - group: {has: a}\n"
             "    - and: [{group: {has: b}}, {http_method: {is: DELETE}}]\n");
  const auto f = lint_routes(
      "  - {name: r1, match: {path_prefix: /r1, methods: [GET]}, upstream: app, auth: bearer,\n"
      "     policy: shared}\n"
      "  - {name: r2, match: {path_prefix: /r2, methods: [GET]}, upstream: app, auth: bearer,\n"
      "     policy: shared}\n"
      "  - {name: r3, match: {path_prefix: /r3}, upstream: app, auth: bearer,\n"
      "     shadow_policy: shared}\n"
      "  - {name: r4, match: {path_prefix: /r4}, upstream: app, auth: bearer, policy: shared}\n");
  const auto n = with_code(f, "never-matches");
  ASSERT_EQ(n.size(), 1u) << dump(f);
  EXPECT_EQ(n[0].file, (dir_ / "policies/shared.yaml").string());
  EXPECT_EQ(n[0].line, 4);
  EXPECT_EQ(n[0].column, 33);
  EXPECT_NE(n[0].message.find("never matches on routes 'r1', 'r2':"), std::string::npos)
      << n[0].message;
  EXPECT_TRUE(with_code(f, "unused-policy").empty()) << dump(f);
  EXPECT_EQ(with_code(f, "route-without-policy").size(), 1u) << dump(f);  // r3: shadow only
}

TEST_F(PolicyLintConfig, PolicyFilesNoRouteUses) {
  write_file(dir_ / "policies/used.yaml", "allow: {group: {has: a}}\n");
  write_file(dir_ / "policies/spare.yml", "allow: {group: {has: a}}\ndeny: {group: {has: a}}\n");
  write_file(dir_ / "policies/broken.yaml", "allow:\n  groups: {has: a}\n");
  write_file(dir_ / "policies/used.test.yaml",
             "policy: used.yaml\ncases:\n  - {name: x, identity: null, expect: deny}\n");
  write_file(dir_ / "policies/notes.txt", "not a policy\n");
  const auto f =
      lint_routes("  - {name: r, match: {}, upstream: app, auth: bearer, policy: used}\n");
  const auto u = with_code(f, "unused-policy");
  ASSERT_EQ(u.size(), 2u) << dump(f);
  EXPECT_EQ(u[0].file, (dir_ / "policies/broken.yaml").string());
  EXPECT_EQ(u[1].file, (dir_ / "policies/spare.yml").string());
  EXPECT_EQ(u[1].line, 1);
  EXPECT_EQ(u[1].severity, LintSeverity::warning);
  const auto e = with_code(f, "policy-error");
  ASSERT_EQ(e.size(), 1u) << dump(f);
  EXPECT_EQ(e[0].severity, LintSeverity::error);
  EXPECT_EQ(e[0].line, 2);
  EXPECT_EQ(e[0].column, 3);
  EXPECT_NE(e[0].message.find("unknown operator or criterion `groups`"), std::string::npos);
  // Unused policies are still checked on their own.
  EXPECT_TRUE(has(f, "shadowed-by-deny", 1)) << dump(f);
  EXPECT_EQ(f.size(), 4u) << dump(f);
}

TEST(PolicyLintAudit, ReadsJsonLines) {
  LintAuditRecords log;
  log.add_text(
      "{\"time\":\"2024-05-02T00:00:00Z\",\"route\":\"r\",\"decision\":\"allow\","
      "\"subject\":\"alice\",\"email\":\"Alice@Example.com\",\"groups\":[\"a\",1,\"b\"]}\n"
      "\n"
      "   \r\n"
      "{\"time\":\"2024-05-01T00:00:00Z\",\"route\":\"r\",\"decision\":\"deny\"}\n"
      "not json\n"
      "[1,2]\n"
      "{\"route\":\"r\"}\n"
      "{\"time\":1714694400,\"route\":\"r\",\"decision\":\"allow\"}",
      "a.jsonl");
  ASSERT_EQ(log.records.size(), 3u);
  const AuditRecord& r = log.records[0];
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.route, "r");
  EXPECT_EQ(r.subject, "alice");
  EXPECT_EQ(r.email, "alice@example.com");
  EXPECT_TRUE(r.has_email);
  EXPECT_TRUE(r.has_groups);
  EXPECT_EQ(r.groups, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(log.records[1].allowed);
  EXPECT_FALSE(log.records[1].has_groups);
  EXPECT_EQ(log.records[2].time, "2024-05-03T00:00:00Z");
  EXPECT_EQ(log.first_time, "2024-05-01T00:00:00Z");
  EXPECT_EQ(log.last_time, "2024-05-03T00:00:00Z");
  ASSERT_EQ(log.problems.size(), 3u);
  EXPECT_EQ(log.problems[0].to_string(),
            "a.jsonl:5:1: warning: [audit-bad-line] not an audit record: invalid JSON (syntax "
            "error)");
  EXPECT_EQ(log.problems[1].line, 6);
  EXPECT_NE(log.problems[1].message.find("expected a JSON object"), std::string::npos);
  EXPECT_EQ(log.problems[2].line, 7);
  EXPECT_NE(log.problems[2].message.find("no \"decision\""), std::string::npos);
  EXPECT_EQ(log.files, std::vector<std::string>{"a.jsonl"});
}

TEST(PolicyLintAudit, SkipsTheAuditLogsOwnRecords) {
  LintAuditRecords log;
  log.add_text(
      "{\"seq\":0,\"prev\":\"00\",\"type\":\"genesis\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
      "{\"seq\":1,\"prev\":\"ab\",\"type\":\"request\",\"time\":\"2024-05-01T00:00:00Z\","
      "\"route\":\"r\",\"subject\":\"alice\",\"email\":\"\",\"groups\":[],"
      "\"decision\":\"allow\"}\n"
      "{\"seq\":2,\"prev\":\"cd\",\"type\":\"checkpoint\",\"time\":\"2024-06-01T00:00:00Z\"}\n",
      "audit.jsonl");
  EXPECT_TRUE(log.problems.empty()) << dump(log.problems);
  ASSERT_EQ(log.records.size(), 1u);
  EXPECT_EQ(log.records[0].subject, "alice");
  EXPECT_EQ(log.first_time, "2024-05-01T00:00:00Z");
  EXPECT_EQ(log.last_time, "2024-05-01T00:00:00Z");
}

TEST(PolicyLintAudit, UnreadableFileIsAnError) {
  LintAuditRecords log;
  log.add_file("/nonexistent/portcullis-audit.jsonl");
  ASSERT_EQ(log.problems.size(), 1u);
  EXPECT_EQ(log.problems[0].severity, LintSeverity::error);
  EXPECT_EQ(log.problems[0].code, "audit-unreadable");
  EXPECT_TRUE(log.records.empty());
}

constexpr const char* kGrantRoutes =
    "  - name: api\n"                                                        // 6
    "    match: {path_prefix: /api}\n"                                       // 7
    "    upstream: app\n"                                                    // 8
    "    auth: bearer\n"                                                     // 9
    "    policy:\n"                                                          // 10
    "      allow:\n"                                                         // 11
    "        or:\n"                                                          // 12
    "          - subject: {in: [alice, carol]}\n"                            // 13
    "          - email: {is: Bob@Example.com}\n"                             // 14
    "          - and: [{group: {has: admins}}, {http_method: {is: GET}}]\n"  // 15
    "          - group: {in: [ops, admins]}\n"                               // 16
    "          - not: {subject: {is: mallory}}\n"                            // 17
    "  - name: pub\n"                                                        // 18
    "    match: {path_prefix: /pub}\n"
    "    upstream: app\n"
    "    auth: public\n"
    "    policy: {allow: {source_ip: {is: 10.0.0.0/8}}}\n";

TEST_F(PolicyLintConfig, UnusedGrantsInTheAuditWindow) {
  LintAuditRecords log;
  log.add_text(
      "{\"time\":\"2024-05-01T10:00:00Z\",\"route\":\"api\",\"decision\":\"allow\","
      "\"subject\":\"alice\",\"email\":\"alice@example.com\",\"groups\":[\"ops\"]}\n"
      "{\"time\":\"2024-05-01T11:00:00Z\",\"route\":\"api\",\"decision\":\"allow\","
      "\"subject\":\"b1\",\"email\":\"BOB@example.com\",\"groups\":[]}\n"
      "{\"time\":\"2024-05-01T12:00:00Z\",\"route\":\"api\",\"decision\":\"deny\","
      "\"subject\":\"carol\",\"email\":\"carol@example.com\",\"groups\":[\"admins\"]}\n"
      "{\"time\":\"2024-05-01T13:00:00Z\",\"route\":\"other\",\"decision\":\"allow\","
      "\"subject\":\"carol\",\"groups\":[\"admins\"]}\n",
      "audit.jsonl");
  const auto f = lint_routes(kGrantRoutes, &log);
  const auto u = with_code(f, "unused-grant");
  ASSERT_EQ(u.size(), 2u) << dump(f);
  EXPECT_EQ(u[0].line, 13);
  EXPECT_EQ(u[0].column, 13);
  EXPECT_EQ(u[0].severity, LintSeverity::info);
  EXPECT_EQ(u[0].message,
            "route 'api': subject 'carol' is granted but made no allowed call to the route in "
            "the audit window 2024-05-01T10:00:00Z .. 2024-05-01T13:00:00Z");
  EXPECT_EQ(u[1].line, 15);  // admins: first granted on line 15 (and again on 16)
  EXPECT_NE(u[1].message.find("group 'admins'"), std::string::npos);
  EXPECT_TRUE(with_code(f, "audit-missing-field").empty()) << dump(f);
}

TEST_F(PolicyLintConfig, GrantsOfFieldsTheRecordsLackAreNotJudged) {
  LintAuditRecords log;
  log.add_text(
      "{\"time\":\"2024-05-01T10:00:00Z\",\"route\":\"api\",\"decision\":\"allow\","
      "\"subject\":\"alice\"}\n",
      "access.log");
  const auto f = lint_routes(kGrantRoutes, &log);
  const auto u = with_code(f, "unused-grant");
  ASSERT_EQ(u.size(), 1u) << dump(f);
  EXPECT_NE(u[0].message.find("subject 'carol'"), std::string::npos);
  const auto m = with_code(f, "audit-missing-field");
  ASSERT_EQ(m.size(), 2u) << dump(f);
  EXPECT_EQ(m[0].file, "access.log");
  EXPECT_NE(m[0].message.find("no audit record carries \"email\""), std::string::npos);
  EXPECT_NE(m[1].message.find("no audit record carries \"groups\""), std::string::npos);
}

TEST(PolicyLint, RiskyFixtureReportsEachProblem) {
  const fs::path dir = kFixtures / "risky";
  const ConfigLoadResult r = load_config_file((dir / "portcullis.yaml").string());
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  LintAuditRecords log;
  log.add_file((dir / "audit.jsonl").string());
  LintOptions options;
  options.audit = &log;
  const auto f = lint_config(*r.config, options);
  std::vector<std::string> got;
  for (const LintFinding& x : f) {
    got.push_back(fs::path(x.file).filename().string() + ":" + std::to_string(x.line) + ":" +
                  std::string(severity_name(x.severity)) + ":" + x.code);
  }
  const std::vector<std::string> want = {
      "portcullis.yaml:14:warning:route-without-policy",
      "portcullis.yaml:30:warning:never-matches",
      "audit.jsonl:5:warning:audit-bad-line",
      "broken.yaml:1:warning:unused-policy",
      "broken.yaml:3:error:policy-error",
      "orders.yaml:5:info:unused-grant",
      "orders.yaml:6:info:method-not-routed",
      "orders.yaml:7:warning:public-email-domain",
      "orders.yaml:8:warning:shadowed-rule",
      "orders.yaml:11:warning:never-matches",
      "orders.yaml:12:warning:duplicate-rule",
      "orders.yaml:14:info:method-not-routed",
      "orders.yaml:15:warning:shadowed-by-deny",
      "orders.yaml:16:info:unused-grant",
      "orders.yaml:17:warning:allow-any-identity",
      "orders.yaml:18:warning:allow-any-identity",
      "orders.yaml:19:warning:shadowed-rule",
      "orders.yaml:19:warning:allow-any-identity",
      "orders.yaml:19:warning:match-all-pattern",
      "orders.yaml:23:warning:never-matches",
      "unused.yaml:1:warning:unused-policy",
  };
  EXPECT_EQ(got, want) << dump(f);
}

}  // namespace
}  // namespace portcullis
