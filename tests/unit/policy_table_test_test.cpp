// Table-test loader and runner tests: the fixture suites pass (and the failing one fails with
// expected vs actual and the trace), every malformed file is refused with file:line:column,
// identities keep their JSON types, requests are defaulted and normalised.
#include "authz/policy_table_test.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <string>

namespace portcullis {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(__FILE__).parent_path().parent_path() / "fixtures/policy_test";

std::string errors_of(const TableTestLoad& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TableTestLoad load(const std::string& yaml) {
  return load_table_test_string(yaml, "t_test.yaml", kFixtures.string());
}

TableTestSuite load_ok(const std::string& yaml) {
  TableTestLoad r = load(yaml);
  EXPECT_TRUE(r.ok()) << errors_of(r) << yaml;
  return r.ok() ? std::move(*r.suite) : TableTestSuite{};
}

// A temporary directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "portcullis-tabletest-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

TEST(PolicyTableTest, EveryFixtureSuiteThatShouldPassPasses) {
  std::size_t files = 0, cases = 0;
  for (const auto& entry : fs::directory_iterator(kFixtures / "pass")) {
    const TableTestLoad r = load_table_test(entry.path().string());
    ASSERT_TRUE(r.ok()) << errors_of(r);
    ++files;
    for (const TableTestOutcome& o : run_table_test(*r.suite)) {
      EXPECT_TRUE(o.passed) << outcome_text(*r.suite, o, true);
      ++cases;
    }
  }
  EXPECT_GE(files, 5u);
  EXPECT_GE(cases, 20u);
}

TEST(PolicyTableTest, TheRepositoryExampleForOrdersPasses) {
  const fs::path file =
      kFixtures.parent_path().parent_path().parent_path() / "policies/orders_test.yaml";
  const TableTestLoad r = load_table_test(file.string());
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto outcomes = run_table_test(*r.suite);
  EXPECT_GE(outcomes.size(), 5u);
  for (const TableTestOutcome& o : outcomes) {
    EXPECT_TRUE(o.passed) << outcome_text(*r.suite, o, true);
  }
}

TEST(PolicyTableTest, FailuresShowExpectedActualAndTheTrace) {
  const std::string file = (kFixtures / "fail/mixed_test.yaml").string();
  const TableTestLoad r = load_table_test(file);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto outcomes = run_table_test(*r.suite);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].passed);
  EXPECT_FALSE(outcomes[1].passed);
  EXPECT_FALSE(outcomes[2].passed);

  EXPECT_EQ(outcome_text(*r.suite, outcomes[0], false),
            "PASS " + file + ":4: admin on the corporate network is allowed\n");
  const std::string wrong_decision = outcome_text(*r.suite, outcomes[1], false);
  EXPECT_TRUE(
      wrong_decision.starts_with("FAIL " + file +
                                 ":9: wrongly expects an admin from the internet to be allowed\n"
                                 "    expected: allow\n"
                                 "    actual:   deny by "))
      << wrong_decision;
  EXPECT_NE(wrong_decision.find("admin.yaml#default (no rule matched)\n"), std::string::npos);
  EXPECT_NE(wrong_decision.find("    request:  GET / from 198.51.100.7\n"), std::string::npos);
  EXPECT_NE(
      wrong_decision.find("          ✗ source_ip: {in: [10.0.0.0/8, \"fd00::/8\"]}   source_ip = "
                          "\"198.51.100.7\"   (7:11)\n"),
      std::string::npos)
      << wrong_decision;

  const std::string wrong_rule = outcome_text(*r.suite, outcomes[2], false);
  EXPECT_NE(wrong_rule.find("    expected: deny by deny[1]\n"), std::string::npos) << wrong_rule;
  EXPECT_NE(wrong_rule.find("admin.yaml#deny[0] (matched deny rule)\n"), std::string::npos);
}

TEST(PolicyTableTest, VerboseShowsTheTraceOfPassingCases) {
  const TableTestSuite suite = load_ok(
      "policy: {allow: {group: {has: a}}}\n"
      "cases:\n"
      "  - {name: member, identity: {groups: [a]}, expect: allow}\n");
  const TableTestOutcome o = run_table_case(suite, suite.cases[0]);
  ASSERT_TRUE(o.passed);
  const std::string text = outcome_text(suite, o, true);
  EXPECT_NE(text.find("PASS t_test.yaml:3: member\n"), std::string::npos) << text;
  EXPECT_NE(text.find("✓ group: {has: a}   groups = [\"a\"]   (1:18)\n"), std::string::npos)
      << text;
}

struct ErrorCase {
  const char* name;
  const char* yaml;
  int line;
  int column;
  const char* message;  // a substring of the message
};

TEST(PolicyTableTest, MalformedFilesAreRefusedWithPositions) {
  const ErrorCase cases[] = {
      {"unknown top-level key", "policy: {allow: {group: {has: a}}}\ncase: []\n", 2, 1,
       "unknown key `case` in a table test (valid: policy, claims, config, route, cases)"},
      {"policy and config", "policy: x.yaml\nconfig: gateway.yaml\ncases: []\n", 2, 1,
       "`policy` and `config` are mutually exclusive"},
      {"nothing to test", "cases: [{name: a, identity: null, expect: deny}]\n", 1, 1,
       "needs `policy`"},
      {"no cases", "policy: {allow: {group: {has: a}}}\n", 1, 1, "needs `cases`"},
      {"empty cases", "policy: {allow: {group: {has: a}}}\ncases: []\n", 2, 1, "at least one case"},
      {"case not a map", "policy: {allow: {group: {has: a}}}\ncases: [oops]\n", 2, 9,
       "a case must be a map"},
      {"unknown case key",
       "policy: {allow: {group: {has: a}}}\ncases:\n  - name: a\n    identity: null\n"
       "    expect: deny\n    requets: {}\n",
       6, 5, "unknown key `requets` in a case (valid: name, identity, request, expect)"},
      {"missing name",
       "policy: {allow: {group: {has: a}}}\ncases:\n  - {identity: null, expect: deny}\n", 3, 5,
       "a case needs `name`"},
      {"missing identity",
       "policy: {allow: {group: {has: a}}}\ncases:\n  - {name: a, expect: deny}\n", 3, 5,
       "a case needs `identity`"},
      {"missing expect",
       "policy: {allow: {group: {has: a}}}\ncases:\n  - {name: a, identity: null}\n", 3, 5,
       "a case needs `expect`"},
      {"identity not a map",
       "policy: {allow: {group: {has: a}}}\ncases:\n  - {name: a, identity: alice, expect: deny}\n",
       3, 15, "`identity` needs a map of claims"},
      {"bad decision",
       "policy: {allow: {group: {has: a}}}\ncases:\n  - {name: a, identity: null, expect: "
       "permit}\n",
       3, 39, "`expect` needs a decision: allow or deny"},
      {"bad rule",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, expect: {decision: deny, rule: \"deny[x]\"}}\n",
       3, 62, "'deny[x]' is not a rule"},
      {"rule contradicts the decision",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, expect: {decision: allow, rule: \"deny[0]\"}}\n",
       3, 63, "cannot make the decision allow"},
      {"gateway rules need a route",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, expect: {decision: deny, rule: authentication}}\n",
       3, 62, "exists only for `config` + `route` suites"},
      {"bad source ip",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, request: {source_ip: 10.0.0}, expect: deny}\n",
       3, 52, "'10.0.0' is not an IP address"},
      {"path refused by the gateway",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, request: {path: /a%2Fb}, expect: deny}\n",
       3, 47, "path '/a%2Fb' is refused by the gateway (400 bad_path: "},
      {"unknown request key",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, request: {verb: GET}, expect: deny}\n",
       3, 41, "unknown key `verb` in `request`"},
      {"duplicate case names",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, identity: null, expect: deny}\n  - {name: a, identity: null, expect: deny}\n",
       4, 12, "duplicate case name \"a\""},
      {"duplicate key",
       "policy: {allow: {group: {has: a}}}\ncases:\n"
       "  - {name: a, name: b, identity: null, expect: deny}\n",
       3, 15, "duplicate key `name`"},
      {"route without config",
       "policy: {allow: {group: {has: a}}}\nroute: r\ncases: [{name: a, identity: null, expect: "
       "deny}]\n",
       2, 1, "`route` needs `config`"},
      {"claims mapping with config",
       "config: gateway.yaml\nroute: admin\nclaims: {groups: roles}\n"
       "cases: [{name: a, identity: null, expect: deny}]\n",
       3, 1, "`claims` is for `policy:` suites"},
      {"config without route",
       "config: gateway.yaml\ncases: [{name: a, identity: null, expect: deny}]\n", 1, 1,
       "`config` needs `route`"},
      {"unknown route",
       "config: gateway.yaml\nroute: nope\ncases: [{name: a, identity: null, expect: deny}]\n", 2,
       8, "no route named 'nope' in "},
      {"unknown claims mapping key",
       "claims: {roles: x}\npolicy: {allow: {group: {has: a}}}\n"
       "cases: [{name: a, identity: null, expect: deny}]\n",
       1, 10, "unknown key `roles` in `claims`"},
      {"missing policy file",
       "policy: nowhere/p.yaml\ncases: [{name: a, identity: null, expect: deny}]\n", 1, 9,
       "policy file '"},
      {"inline policy error at its position in the test file",
       "policy:\n  allow:\n    groups: {has: a}\ncases: [{name: a, identity: null, expect: "
       "deny}]\n",
       3, 5, "unknown operator or criterion `groups`"},
      {"yaml syntax error", "policy: {allow: [\ncases: x\n", 3, 1, ""},
  };
  for (const ErrorCase& c : cases) {
    const TableTestLoad r = load(c.yaml);
    EXPECT_FALSE(r.ok()) << c.name;
    ASSERT_FALSE(r.errors.empty()) << c.name;
    const ConfigError& e = r.errors.front();
    EXPECT_EQ(e.file, "t_test.yaml") << c.name;
    EXPECT_EQ(e.line, c.line) << c.name << ": " << e.to_string();
    EXPECT_EQ(e.column, c.column) << c.name << ": " << e.to_string();
    EXPECT_NE(e.message.find(c.message), std::string::npos) << c.name << ": " << e.to_string();
  }
}

TEST(PolicyTableTest, ConfigErrorsAreReportedWithTheirOwnFile) {
  TempDir dir;
  dir.write("broken.yaml", "routes: 3\n");
  const std::string test = dir.write(
      "t_test.yaml",
      "config: broken.yaml\nroute: r\ncases: [{name: a, identity: null, expect: deny}]\n");
  const TableTestLoad r = load_table_test(test);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors.front().file, (dir.path / "broken.yaml").string()) << errors_of(r);
  EXPECT_EQ(r.errors.back().file, test);
  EXPECT_EQ(r.errors.back().line, 1);
  EXPECT_EQ(r.errors.back().column, 9);
}

TEST(PolicyTableTest, IdentitiesKeepTheirJsonTypes) {
  const TableTestSuite suite = load_ok(
      "policy: {allow: {group: {has: a}}}\n"
      "cases:\n"
      "  - name: types\n"
      "    identity:\n"
      "      int: 3\n"
      "      neg: -4\n"
      "      big: 18446744073709551615\n"
      "      float: 1.5\n"
      "      yes: true\n"
      "      no: False\n"
      "      nothing: null\n"
      "      tilde: ~\n"
      "      quoted: \"3\"\n"
      "      single: 'true'\n"
      "      tagged: !!str 5\n"
      "      word: abc\n"
      "      version: 1.2.3\n"
      "      nested: {list: [1, x, {k: v}]}\n"
      "    expect: deny\n");
  ASSERT_EQ(suite.cases.size(), 1u);
  ASSERT_TRUE(suite.cases[0].claims);
  EXPECT_EQ(boost::json::serialize(*suite.cases[0].claims),
            R"({"int":3,"neg":-4,"big":18446744073709551615,"float":1.5E0,"yes":true,)"
            R"("no":false,"nothing":null,"tilde":null,"quoted":"3","single":"true",)"
            R"("tagged":"5","word":"abc","version":"1.2.3","nested":{"list":[1,"x",{"k":"v"}]}})");
}

TEST(PolicyTableTest, RequestsAreDefaultedAndNormalised) {
  const TableTestSuite suite = load_ok(
      "policy: {allow: {group: {has: a}}}\n"
      "cases:\n"
      "  - {name: defaults, identity: null, expect: deny}\n"
      "  - name: given\n"
      "    identity: null\n"
      "    request: {method: PATCH, path: \"/a/./b//../c;x=1?q=1\", source_ip: \"::1\","
      " grpc_method: /p.S/M}\n"
      "    expect: deny\n");
  ASSERT_EQ(suite.cases.size(), 2u);
  const TableTestCase& d = suite.cases[0];
  EXPECT_FALSE(d.claims);
  EXPECT_EQ(d.method, "GET");
  EXPECT_EQ(d.path, "/");
  EXPECT_EQ(d.grpc_method, "");
  EXPECT_EQ(d.source_ip.to_string(), "0.0.0.0");
  const TableTestCase& g = suite.cases[1];
  EXPECT_EQ(g.method, "PATCH");
  EXPECT_EQ(g.path, "/a/c");
  EXPECT_EQ(g.grpc_method, "/p.S/M");
  EXPECT_EQ(g.source_ip.to_string(), "::1");
  EXPECT_EQ(g.line, 4);
}

TEST(PolicyTableTest, PolicyFilesResolveRelativeToTheTestFile) {
  TempDir dir;
  dir.write("policies/p.yaml", "allow: {scope: {has: \"x:read\"}}\n");
  const std::string test =
      dir.write("tests/p_test.yaml",
                "policy: ../policies/p.yaml\n"
                "cases:\n"
                "  - {name: reader, identity: {scp: [\"x:read\"]}, expect: {decision: allow, rule: "
                "\"policies/p.yaml#allow[0]\"}}\n"
                "  - {name: suffix on a path boundary only, identity: {scp: [\"x:read\"]},"
                " expect: {decision: allow, rule: \"s/p.yaml#allow[0]\"}}\n");
  const TableTestLoad r = load_table_test(test);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.suite->policy->source, (dir.path / "policies/p.yaml").string());
  const auto outcomes = run_table_test(*r.suite);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(outcomes[0].passed) << outcome_text(*r.suite, outcomes[0], true);
  EXPECT_FALSE(outcomes[1].passed);
}

TEST(PolicyTableTest, ClaimsMappingAppliesToPolicySuites) {
  const TableTestSuite suite = load_ok(
      "claims: {subject: uid, groups: realm_access.roles, scopes: perms, client_id: app}\n"
      "policy: {allow: {and: [{subject: {is: u1}}, {group: {has: r}}, {scope: {has: p}},"
      " {client_id: {is: c}}]}}\n"
      "cases:\n"
      "  - name: mapped\n"
      "    identity: {uid: u1, realm_access: {roles: [r]}, perms: \"p q\", app: c}\n"
      "    expect: {decision: allow, rule: \"allow[0]\"}\n"
      "  - name: default claim names are not used\n"
      "    identity: {sub: u1, groups: [r], scope: p, client_id: c}\n"
      "    expect: {decision: deny, rule: default}\n");
  for (const TableTestCase& c : suite.cases) {
    const TableTestOutcome o = run_table_case(suite, c);
    EXPECT_TRUE(o.passed) << outcome_text(suite, o, true);
  }
  EXPECT_EQ(suite.mapping.subject, "uid");
  EXPECT_EQ(suite.mapping.scopes, "perms");
}

TEST(PolicyTableTest, RouteSuitesDecideAsTheGateway) {
  const TableTestSuite suite = load_ok(
      "config: gateway.yaml\n"
      "route: status\n"
      "cases:\n"
      "  - {name: token ignored, identity: {sub: a}, request: {method: POST, path: /status},"
      " expect: {decision: deny, rule: default}}\n"
      "  - {name: wrong expectation, identity: {sub: a}, request: {method: POST, path: /status},"
      " expect: allow}\n");
  ASSERT_NE(suite.route(), nullptr);
  EXPECT_EQ(suite.route()->name, "status");
  const TableTestOutcome ok = run_table_case(suite, suite.cases[0]);
  EXPECT_TRUE(ok.passed) << outcome_text(suite, ok, true);
  EXPECT_TRUE(ok.actual.identity_ignored);
  const TableTestOutcome bad = run_table_case(suite, suite.cases[1]);
  ASSERT_FALSE(bad.passed);
  const std::string text = outcome_text(suite, bad, false);
  EXPECT_NE(text.find("(ignored: public routes do not authenticate)"), std::string::npos) << text;
  EXPECT_NE(text.find("✗ authenticated_user: true   authenticated = false"), std::string::npos)
      << text;

  const TableTestSuite locked = load_ok(
      "config: gateway.yaml\nroute: locked\n"
      "cases: [{name: no policy, identity: {sub: a}, expect: allow}]\n");
  const TableTestOutcome none = run_table_case(locked, locked.cases[0]);
  EXPECT_FALSE(none.passed);
  EXPECT_EQ(none.actual.decision.reason, "route has no policy");
  EXPECT_NE(outcome_text(locked, none, false).find("(the route has no policy)"), std::string::npos);

  const TableTestSuite admin = load_ok(
      "config: gateway.yaml\nroute: admin\n"
      "cases: [{name: anonymous, identity: null, expect: allow}]\n");
  const std::string gated = outcome_text(admin, run_table_case(admin, admin.cases[0]), false);
  EXPECT_NE(gated.find("    gate:     no identity: the route needs a bearer token"),
            std::string::npos)
      << gated;
}

}  // namespace
}  // namespace portcullis
