// Parser tests: the compiled shape of valid policies and every load error with file:line:column.
#include "authz/policy_parser.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json/object.hpp>

#include <cstdio>
#include <fstream>
#include <string>

namespace portcullis {
namespace {

struct ErrorCase {
  const char* yaml;
  int line;
  int column;
  const char* message_part;
};

TEST(PolicyParser, ReportsEachErrorWithPosition) {
  const ErrorCase cases[] = {
      {"allow: {group: {has: a}}\nallowed: x\n", 2, 1,
       "unknown key `allowed` (valid: allow, deny)"},
      {"{}\n", 1, 1, "a policy needs `allow` and/or `deny`"},
      {"just text\n", 1, 1, "a policy must be a map"},
      {"allow:\n  or:\n    - groups: {has: a}\n", 3, 7,
       "unknown operator or criterion `groups` (valid: and, or, not, nor, authenticated_user"},
      {"allow: {xor: [{group: {has: a}}]}\n", 1, 9, "unknown operator or criterion `xor`"},
      {"allow: {group: {}}\n", 1, 16, "`group` needs a matcher: a map with exactly one key"},
      {"allow: {group: {is: a, has: b}}\n", 1, 16, "exactly one key (one of: is, in,"},
      {"allow: {group: admins}\n", 1, 9, "`group` needs a matcher"},
      {"allow: {group: {equals: a}}\n", 1, 17,
       "unknown matcher `equals` (valid: is, in, starts_with, ends_with, contains, has)"},
      {"allow: {group: {is: [a]}}\n", 1, 17, "matcher `is` needs a string"},
      {"allow: {email: {in: a}}\n", 1, 17, "matcher `in` needs a list of strings"},
      {"allow: {email: {in: [a, [b]]}}\n", 1, 25, "matcher `in` needs a list of strings"},
      {"allow: {authenticated_user: maybe}\n", 1, 9, "`authenticated_user` needs true or false"},
      {"allow: {and: []}\n", 1, 9, "`and` needs at least one expression"},
      {"allow: {nor: []}\n", 1, 9, "`nor` needs at least one expression"},
      {"deny:\n  or: []\n", 2, 3, "`or` needs at least one expression"},
      {"allow: {and: {group: {has: a}}}\n", 1, 9, "`and` needs a list of expressions"},
      {"allow: [a]\n", 1, 8, "an expression must be a map with exactly one key"},
      {"allow: {group: {has: a}, scope: {has: b}}\n", 1, 8, "exactly one key"},
      {"allow: {not: {grp: {is: a}}}\n", 1, 15, "unknown operator or criterion `grp`"},
      {"allow: {claim/: {is: x}}\n", 1, 9, "`claim/` needs a claim name"},
      {"allow:\n  source_ip: {in: [10.0.0.0/8, 300.1.1.1/8]}\n", 2, 32, "bad CIDR `300.1.1.1/8`"},
      {"allow: {source_ip: {is: nonsense}}\n", 1, 25, "bad CIDR `nonsense`"},
      {"allow:\n  source_ip: {starts_with: '10.'}\n", 2, 15,
       "`source_ip` supports only the matchers is, in (got `starts_with`)"},
      {"allow: {group: [\n", 2, 1, ""},  // YAML syntax error
  };
  for (const ErrorCase& c : cases) {
    const PolicyParseResult r = parse_policy_string(c.yaml, "p.yaml");
    EXPECT_FALSE(r.ok()) << c.yaml;
    ASSERT_EQ(r.errors.size(), 1u) << c.yaml;
    const ConfigError& e = r.errors[0];
    EXPECT_EQ(e.file, "p.yaml");
    EXPECT_EQ(e.line, c.line) << c.yaml << e.to_string();
    EXPECT_EQ(e.column, c.column) << c.yaml << e.to_string();
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << e.to_string();
  }
}

TEST(PolicyParser, CollectsAllErrors) {
  const PolicyParseResult r = parse_policy_string(R"(allow:
  or:
    - group: {equals: a}
    - and: []
    - source_ip: {in: [bad, 10.0.0.0/33]}
deny:
  bogus: {is: x}
extra: 1
)",
                                                  "p.yaml");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 6u);
  EXPECT_EQ(r.errors[0].to_string().rfind("p.yaml:3:15: unknown matcher `equals`", 0), 0u)
      << r.errors[0].to_string();
  EXPECT_EQ(r.errors[1].line, 4);
  EXPECT_EQ(r.errors[2].line, 5);
  EXPECT_EQ(r.errors[2].column, 24);
  EXPECT_EQ(r.errors[3].column, 29);
  EXPECT_EQ(r.errors[4].line, 7);
  EXPECT_EQ(r.errors[4].column, 3);
  EXPECT_EQ(r.errors[5].line, 8);
}

TEST(PolicyParser, CompilesRulesAndNormalisesPatterns) {
  const PolicyParseResult r = parse_policy_string(R"(allow:
  or:
    - and:
        - group: {has: orders-readers}
        - http_method: {in: [get, Head]}
    - email: {ends_with: "@Example.COM"}
    - claim/realm_access.roles: {has: Manager}
deny:
  source_ip: {in: [10.0.0.0/8, "::1"]}
)",
                                                  "p.yaml");
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  const Policy& p = *r.policy;
  EXPECT_EQ(p.source, "p.yaml");
  ASSERT_EQ(p.allow_rules.size(), 3u);
  ASSERT_EQ(p.deny_rules.size(), 1u);
  const PolicyNode& first = p.allow_rules[0];
  EXPECT_EQ(first.kind, PolicyNode::Kind::kAnd);
  ASSERT_EQ(first.children.size(), 2u);
  EXPECT_EQ(first.children[1].field, PolicyField::kHttpMethod);
  EXPECT_EQ(first.children[1].matcher.values, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(p.allow_rules[1].matcher.values[0], "@example.com");
  EXPECT_TRUE(p.allow_rules[1].matcher.case_insensitive);
  EXPECT_EQ(p.allow_rules[2].claim_path, "realm_access.roles");
  EXPECT_EQ(p.allow_rules[2].matcher.values[0], "Manager");  // claims are case-sensitive
  EXPECT_FALSE(p.allow_rules[2].matcher.case_insensitive);
  EXPECT_EQ(p.allow_rules[2].line, 7);
  EXPECT_EQ(p.allow_rules[2].column, 7);
  EXPECT_EQ(p.deny_rules[0].field, PolicyField::kSourceIp);
  EXPECT_EQ(p.deny_rules[0].cidrs.size(), 2u);
  EXPECT_EQ(p.deny_rules[0].line, 9);
}

TEST(PolicyParser, AcceptsAYamlNodeInlineInARoute) {
  const YAML::Node route =
      YAML::Load("name: orders\npolicy:\n  allow: {authenticated_user: true}\n");
  const PolicyParseResult r = parse_policy(route["policy"], "route orders");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.policy->source, "route orders");
  EXPECT_EQ(r.policy->allow_rules.size(), 1u);
}

TEST(PolicyParser, ReadsFiles) {
  const std::string path = ::testing::TempDir() + "policy_parser_test.yaml";
  {
    std::ofstream out(path);
    out << "deny:\n  subject: {is: x}\nallow:\n  group: {nope: y}\n";
  }
  const PolicyParseResult r = parse_policy_file(path);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string().rfind(path + ":4:11: unknown matcher `nope`", 0), 0u)
      << r.errors[0].to_string();
  std::remove(path.c_str());

  const PolicyParseResult missing = parse_policy_file(path + ".missing");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].file, path + ".missing");
}

}  // namespace
}  // namespace portcullis

namespace portcullis {
namespace {

TEST(PolicyParser, EvaluationOrderIsCheapestFirstAndKeepsTheWrittenOrder) {
  const PolicyParseResult r = parse_policy_string(R"(allow:
  and:
    - claim/tier: {is: gold}
    - group: {has: a}
    - http_method: {in: [GET, HEAD]}
    - http_path: {starts_with: /svc/}
    - authenticated_user: true
)",
                                                  "p.yaml");
  ASSERT_TRUE(r.ok());
  const PolicyNode& rule = r.policy->allow_rules.at(0);
  ASSERT_EQ(rule.children.size(), 5u);
  EXPECT_EQ(rule.children[0].field, PolicyField::kClaim);  // written order kept
  EXPECT_EQ(rule.eval_order, (std::vector<std::uint16_t>{4, 3, 2, 1, 0}));

  // The order changes the cost, never the result.
  Identity id;
  id.subject = "alice";
  id.groups = {"a"};
  id.claims = std::make_shared<const boost::json::object>(boost::json::object{{"tier", "gold"}});
  const auto ip = boost::asio::ip::make_address("10.0.0.1");
  for (const char* method : {"GET", "POST"}) {
    for (const char* path : {"/svc/x", "/other"}) {
      const RequestAttributes req{method, path, "", ip};
      PolicyNode written = rule;
      written.eval_order.clear();
      EXPECT_EQ(rule.evaluate(&id, req), written.evaluate(&id, req)) << method << path;
      EXPECT_EQ(rule.evaluate(nullptr, req), written.evaluate(nullptr, req)) << method << path;
    }
  }
}

}  // namespace
}  // namespace portcullis

namespace portcullis {
namespace {

// Found by the fuzzer: yaml-cpp expands aliases, so these were an infinite tree (stack
// overflow) and an exponential one (3 GB from 509 bytes).
TEST(PolicyParser, RefusesSelfReferencingAndExplodingAliases) {
  for (const char* text : {"deny: &a {not: *a}\n", "allow: &a {and: [*a]}\n"}) {
    const PolicyParseResult r = parse_policy_string(text, "p.yaml");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.errors.front().message.find("alias"), std::string::npos);
  }
  std::string bomb = "a0: &a0 {group: {has: x}}\n";
  for (int i = 1; i <= 7; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " {or: [";
    for (int j = 0; j < 10; ++j) bomb += (j ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]}\n";
  }
  bomb += "allow: *a7\n";
  const PolicyParseResult r = parse_policy_string(bomb, "p.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors.front().message.find("20000 YAML nodes"), std::string::npos);
  // A modest alias (reuse of a small block) is still fine.
  const PolicyParseResult ok = parse_policy_string(
      "allow:\n  or:\n    - &readers {group: {has: readers}}\n    - and: [*readers, {http_method: {is: GET}}]\n",
      "p.yaml");
  EXPECT_TRUE(ok.ok());
}

}  // namespace
}  // namespace portcullis
