// Evaluator tests: every criterion x matcher, operators, deny-overrides, default deny, claims,
// CIDRs and a zero-allocation check during evaluate.
#include "authz/policy.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <cstdlib>
#include <new>
#include <string>

#include "authz/policy_parser.hpp"

namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<long> g_allocations{0};
}  // namespace

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
// Counts allocations while g_count_allocations is set (for the zero-allocation test).
void* operator new(std::size_t n) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace portcullis {
namespace {

std::shared_ptr<const Policy> compile(const std::string& yaml) {
  PolicyParseResult r = parse_policy_string(yaml, "test.yaml");
  for (const ConfigError& e : r.errors) ADD_FAILURE() << e.to_string() << "\n" << yaml;
  return r.policy;
}

std::shared_ptr<int> g_keep;

Identity make_identity() {
  Identity id;
  id.provider = "corp";
  id.issuer = "https://idp.example.com/";
  id.subject = "user-1";
  id.email = "Alice@Example.COM";
  id.groups = {"orders-readers", "admins"};
  id.scopes = {"orders:read", "profile"};
  id.client_id = "web-app";
  id.claims = std::make_shared<const boost::json::object>(
      boost::json::parse(R"({"realm_access": {"roles": ["manager", "viewer"]},
                             "dept": "sales", "level": 3, "active": true, "ratio": 1.5,
                             "big": 18446744073709551615, "mixed": ["x", 7, false],
                             "tenant.id": "t1", "obj": {"a": 1}})")
          .as_object());
  return id;
}

RequestAttributes make_request() {
  RequestAttributes r;
  r.method = "GET";
  r.path = "/api/orders/42";
  r.grpc_method = "/orders.v1.Orders/Get";
  r.source_ip = boost::asio::ip::make_address("10.1.2.3");
  return r;
}

struct Case {
  const char* expr;  // one expression in YAML flow style
  bool expected;
};

void run_cases(const std::vector<Case>& cases, const Identity* id, const RequestAttributes& req) {
  for (const Case& c : cases) {
    auto policy = compile(std::string("allow: ") + c.expr);
    if (!policy) continue;
    EXPECT_EQ(policy->evaluate(id, req).allow, c.expected) << c.expr;
  }
}

TEST(PolicyEvaluate, StringCriteriaWithEveryMatcher) {
  const Identity id = make_identity();
  run_cases(
      {
          {"{subject: {is: user-1}}", true},
          {"{subject: {is: USER-1}}", false},
          {"{subject: {in: [x, user-1]}}", true},
          {"{subject: {in: [x, y]}}", false},
          {"{subject: {starts_with: user-}}", true},
          {"{subject: {starts_with: u2}}", false},
          {"{subject: {ends_with: '-1'}}", true},
          {"{subject: {ends_with: '-2'}}", false},
          {"{subject: {contains: ser}}", true},
          {"{subject: {contains: xyz}}", false},
          {"{subject: {has: user-1}}", true},
          {"{subject: {has: user}}", false},
          {"{client_id: {is: web-app}}", true},
          {"{client_id: {starts_with: cli}}", false},
          {"{issuer: {is: 'https://idp.example.com/'}}", true},
          {"{issuer: {ends_with: 'evil.com/'}}", false},
          {"{spiffe_id: {is: ''}}", true},
          {"{spiffe_id: {starts_with: 'spiffe://'}}", false},
          {"{authenticated_user: true}", true},
          {"{authenticated_user: false}", false},
      },
      &id, make_request());
}

TEST(PolicyEvaluate, EmailAndDomainAreCaseInsensitive) {
  const Identity id = make_identity();
  run_cases(
      {
          {"{email: {is: alice@example.com}}", true},
          {"{email: {is: ALICE@EXAMPLE.COM}}", true},
          {"{email: {in: [bob@example.com, Alice@example.com]}}", true},
          {"{email: {starts_with: ALI}}", true},
          {"{email: {ends_with: '@EXAMPLE.com'}}", true},
          {"{email: {ends_with: '@contractors.example.com'}}", false},
          {"{email: {contains: 'E@eX'}}", true},
          {"{email: {has: alice@example.com}}", true},
          {"{domain: {is: example.com}}", true},
          {"{domain: {is: EXAMPLE.COM}}", true},
          {"{domain: {in: [a.com, Example.Com]}}", true},
          {"{domain: {is: other.com}}", false},
          {"{domain: {starts_with: exa}}", true},
          {"{domain: {ends_with: .COM}}", true},
          {"{domain: {contains: MPLE}}", true},
          {"{domain: {has: example.com}}", true},
      },
      &id, make_request());
}

TEST(PolicyEvaluate, ListCriteriaMatchAnyElement) {
  const Identity id = make_identity();
  run_cases(
      {
          {"{group: {has: admins}}", true},
          {"{group: {has: admin}}", false},
          {"{group: {is: orders-readers}}", true},
          {"{group: {is: Admins}}", false},
          {"{group: {in: [x, admins]}}", true},
          {"{group: {in: [x, y]}}", false},
          {"{group: {starts_with: orders-}}", true},
          {"{group: {starts_with: billing-}}", false},
          {"{group: {ends_with: -readers}}", true},
          {"{group: {ends_with: -writers}}", false},
          {"{group: {contains: dmi}}", true},
          {"{group: {contains: zzz}}", false},
          {"{scope: {has: 'orders:read'}}", true},
          {"{scope: {has: 'orders:write'}}", false},
          {"{scope: {is: profile}}", true},
          {"{scope: {in: ['a', 'profile']}}", true},
          {"{scope: {starts_with: 'orders:'}}", true},
          {"{scope: {ends_with: ':write'}}", false},
          {"{scope: {contains: 'rs:r'}}", true},
      },
      &id, make_request());
}

TEST(PolicyEvaluate, ClaimsByDottedPathArraysAndScalars) {
  const Identity id = make_identity();
  run_cases(
      {
          {"{claim/realm_access.roles: {has: manager}}", true},
          {"{claim/realm_access.roles: {has: admin}}", false},
          {"{claim/realm_access.roles: {in: [x, viewer]}}", true},
          {"{claim/realm_access.roles: {starts_with: man}}", true},
          {"{claim/realm_access.roles: {ends_with: wer}}", true},
          {"{claim/realm_access.roles: {contains: nag}}", true},
          {"{claim/realm_access.roles: {is: manager}}", true},
          {"{claim/dept: {is: sales}}", true},
          {"{claim/dept: {has: sales}}", true},
          {"{claim/dept: {is: Sales}}", false},
          {"{claim/dept: {contains: al}}", true},
          {"{claim/level: {is: '3'}}", true},
          {"{claim/level: {in: ['1', '2']}}", false},
          {"{claim/active: {is: 'true'}}", true},
          {"{claim/ratio: {is: '1.5'}}", true},
          {"{claim/big: {is: '18446744073709551615'}}", true},
          {"{claim/mixed: {has: '7'}}", true},
          {"{claim/mixed: {has: 'false'}}", true},
          {"{claim/mixed: {has: x}}", true},
          {"{claim/tenant.id: {is: t1}}", true},
          {"{claim/obj: {is: ''}}", false},
          {"{claim/obj.a: {is: '1'}}", true},
          {"{claim/missing: {is: ''}}", false},
          {"{claim/realm_access.missing: {has: x}}", false},
      },
      &id, make_request());
}

TEST(PolicyEvaluate, RequestCriteria) {
  const Identity id = make_identity();
  run_cases(
      {
          {"{http_method: {is: GET}}", true},
          {"{http_method: {is: get}}", true},  // patterns are upper-cased at load
          {"{http_method: {in: [HEAD, POST]}}", false},
          {"{http_method: {in: [get, head]}}", true},
          {"{http_method: {starts_with: G}}", true},
          {"{http_method: {ends_with: T}}", true},
          {"{http_method: {contains: E}}", true},
          {"{http_method: {has: GET}}", true},
          {"{http_path: {is: /api/orders/42}}", true},
          {"{http_path: {starts_with: /api/}}", true},
          {"{http_path: {starts_with: /admin/}}", false},
          {"{http_path: {ends_with: /42}}", true},
          {"{http_path: {contains: orders}}", true},
          {"{http_path: {in: [/a, /b]}}", false},
          {"{http_path: {has: /api/orders/42}}", true},
          {"{grpc_method: {is: /orders.v1.Orders/Get}}", true},
          {"{grpc_method: {starts_with: /orders.v1.Orders/}}", true},
          {"{grpc_method: {ends_with: /Delete}}", false},
          {"{grpc_method: {contains: v1}}", true},
          {"{grpc_method: {in: [/a/B]}}", false},
          {"{grpc_method: {has: /orders.v1.Orders/Get}}", true},
      },
      &id, make_request());
  RequestAttributes req = make_request();
  req.method = "get";  // the request side is compared exactly
  run_cases({{"{http_method: {is: GET}}", false}}, &id, req);
}

TEST(PolicyEvaluate, SourceIpCidrs) {
  const Identity id = make_identity();
  struct IpCase {
    const char* ip;
    const char* expr;
    bool expected;
  };
  const std::vector<IpCase> cases = {
      {"10.1.2.3", "{source_ip: {in: [10.0.0.0/8]}}", true},
      {"11.1.2.3", "{source_ip: {in: [10.0.0.0/8, 192.168.0.0/16]}}", false},
      {"192.168.4.5", "{source_ip: {in: [10.0.0.0/8, 192.168.0.0/16]}}", true},
      {"10.1.2.3", "{source_ip: {is: 10.1.2.3}}", true},
      {"10.1.2.4", "{source_ip: {is: 10.1.2.3/32}}", false},
      {"::ffff:10.1.2.3", "{source_ip: {in: [10.0.0.0/8]}}", true},
      {"::ffff:11.1.2.3", "{source_ip: {in: [10.0.0.0/8]}}", false},
      {"2001:db8::1", "{source_ip: {in: ['2001:db8::/32']}}", true},
      {"2001:db9::1", "{source_ip: {in: ['2001:db8::/32']}}", false},
      {"::1", "{source_ip: {is: '::1'}}", true},
      {"2001:db8::1", "{source_ip: {in: [10.0.0.0/8]}}", false},
      {"10.1.2.3", "{source_ip: {in: ['::/0']}}", true},
  };
  for (const IpCase& c : cases) {
    RequestAttributes req = make_request();
    req.source_ip = boost::asio::ip::make_address(c.ip);
    auto policy = compile(std::string("allow: ") + c.expr);
    ASSERT_TRUE(policy);
    EXPECT_EQ(policy->evaluate(&id, req).allow, c.expected) << c.ip << " " << c.expr;
  }
}

TEST(PolicyEvaluate, Operators) {
  const Identity id = make_identity();
  run_cases(
      {
          {"{and: [{group: {has: admins}}, {http_method: {is: GET}}]}", true},
          {"{and: [{group: {has: admins}}, {http_method: {is: POST}}]}", false},
          {"{or: [{group: {has: nope}}, {http_method: {is: GET}}]}", true},
          {"{or: [{group: {has: nope}}, {http_method: {is: POST}}]}", false},
          {"{not: {group: {has: nope}}}", true},
          {"{not: {group: {has: admins}}}", false},
          {"{nor: [{group: {has: nope}}, {http_method: {is: POST}}]}", true},
          {"{nor: [{group: {has: nope}}, {http_method: {is: GET}}]}", false},
          {"{and: [{or: [{subject: {is: x}}, {not: {subject: {is: y}}}]}, "
           "{nor: [{scope: {has: z}}]}]}",
           true},
      },
      &id, make_request());
}

TEST(PolicyEvaluate, UnauthenticatedRequests) {
  run_cases(
      {
          {"{authenticated_user: false}", true},
          {"{authenticated_user: true}", false},
          {"{group: {has: admins}}", false},
          {"{not: {group: {has: admins}}}", true},
          {"{subject: {is: ''}}", true},
          {"{email: {ends_with: '@example.com'}}", false},
          {"{claim/dept: {is: sales}}", false},
          {"{http_path: {starts_with: /api/}}", true},
      },
      nullptr, make_request());
}

TEST(PolicyEvaluate, DenyOverridesAllowAndRuleIndexes) {
  auto policy = compile(R"(
allow:
  or:
    - group: {has: nope}
    - and:
        - group: {has: orders-readers}
        - http_method: {in: [GET, HEAD]}
    - scope: {has: "orders:write"}
deny:
  or:
    - email: {ends_with: "@contractors.example.com"}
    - http_path: {starts_with: /api/admin}
)");
  ASSERT_TRUE(policy);
  ASSERT_EQ(policy->allow_rules.size(), 3u);
  ASSERT_EQ(policy->deny_rules.size(), 2u);
  EXPECT_EQ(policy->allow_rules[1].line, 5);
  EXPECT_EQ(policy->allow_rules[1].column, 7);
  Identity id = make_identity();
  RequestAttributes req = make_request();

  PolicyDecision d = policy->evaluate(&id, req);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.section, "allow");
  EXPECT_EQ(d.rule_index, 1);
  EXPECT_EQ(d.reason, "matched allow rule");
  EXPECT_EQ(d.source, "test.yaml");

  req.path = "/api/admin/users";
  d = policy->evaluate(&id, req);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.section, "deny");
  EXPECT_EQ(d.rule_index, 1);
  EXPECT_EQ(d.reason, "matched deny rule");

  req = make_request();
  id.email = "bob@Contractors.Example.com";
  d = policy->evaluate(&id, req);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.section, "deny");
  EXPECT_EQ(d.rule_index, 0);

  id = make_identity();
  req.method = "DELETE";
  d = policy->evaluate(&id, req);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.section, "default");
  EXPECT_EQ(d.rule_index, -1);
  EXPECT_EQ(d.reason, "no rule matched");
}

TEST(PolicyEvaluate, DefaultDenyWithOnlyDenySection) {
  auto policy = compile("deny: {group: {has: nope}}");
  ASSERT_TRUE(policy);
  const Identity id = make_identity();
  const PolicyDecision d = policy->evaluate(&id, make_request());
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.section, "default");
}

TEST(PolicyEvaluate, SingleExpressionIsRuleZero) {
  auto policy = compile("allow: {and: [{group: {has: admins}}, {scope: {has: profile}}]}");
  ASSERT_TRUE(policy);
  ASSERT_EQ(policy->allow_rules.size(), 1u);
  const Identity id = make_identity();
  const PolicyDecision d = policy->evaluate(&id, make_request());
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule_index, 0);
}

TEST(PolicyEvaluate, FiftyRulesAllocateNothing) {
  std::string yaml = "deny:\n  or:\n";
  for (int i = 0; i < 10; ++i) {
    yaml += "    - and: [{email: {ends_with: '@bad" + std::to_string(i) +
            ".com'}}, {source_ip: {in: [10.0.0.0/8, '2001:db8::/32']}}]\n";
  }
  yaml += "allow:\n  or:\n";
  for (int i = 0; i < 40; ++i) {
    const std::string n = std::to_string(i);
    yaml += "    - and: [{group: {has: g" + n + "}}, {claim/realm_access.roles: {in: [r" + n +
            ", s" + n + "]}}, {claim/level: {is: '" + n + "'}}, {domain: {contains: d" + n +
            "}}, {not: {http_method: {in: [POST]}}}, {nor: [{http_path: {starts_with: /x" + n +
            "}}]}]\n";
  }
  yaml += "    - claim/ratio: {is: '1.5'}\n";  // rule 40 matches after all others miss
  auto policy = compile(yaml);
  ASSERT_TRUE(policy);
  ASSERT_EQ(policy->allow_rules.size() + policy->deny_rules.size(), 51u);
  const Identity id = make_identity();
  const RequestAttributes req = make_request();
  PolicyDecision d;
  g_count_allocations = true;  // the counter itself works
  g_keep = std::make_shared<int>(1);
  g_count_allocations = false;
  EXPECT_GT(g_allocations.load(), 0);
  g_allocations = 0;
  g_count_allocations = true;
  for (int i = 0; i < 100; ++i) d = policy->evaluate(&id, req);
  g_count_allocations = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule_index, 40);
}

}  // namespace
}  // namespace portcullis
