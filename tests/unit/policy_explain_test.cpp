// Tracing evaluator tests: the trace decides exactly as Policy::evaluate over a table of
// policies x identities x requests, records short-circuits, inputs, expression text and
// positions; explain_route follows the gateway's authentication gate and route defaults.
#include "authz/policy_explain.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

#include "authz/policy_parser.hpp"

namespace portcullis {
namespace {

std::shared_ptr<const Policy> compile(const std::string& yaml) {
  PolicyParseResult r = parse_policy_string(yaml, "explain.yaml");
  for (const ConfigError& e : r.errors) ADD_FAILURE() << e.to_string() << "\n" << yaml;
  return r.policy;
}

std::shared_ptr<const boost::json::object> claims(const char* json) {
  return std::make_shared<const boost::json::object>(boost::json::parse(json).as_object());
}

Identity identity(const char* json) {
  return map_identity(ClaimsMapping{}, claims(json), "test", "jwt");
}

struct Request {
  std::string method = "GET";
  std::string path = "/";
  std::string grpc;
  std::string ip = "10.1.2.3";
  RequestAttributes view() const { return {method, path, grpc, boost::asio::ip::make_address(ip)}; }
};

// Policies covering every operator, criterion, matcher and deny/allow/default outcome.
const std::vector<std::string> kPolicies = {
    "allow: {group: {has: admins}}",
    "allow:\n  or:\n    - and:\n        - scope: {has: \"orders:read\"}\n"
    "        - http_method: {in: [GET, HEAD]}\n    - scope: {has: \"orders:write\"}\n"
    "deny:\n  or:\n    - email: {ends_with: \"@contractors.example.com\"}\n",
    "allow: {nor: [{authenticated_user: false}, {subject: {starts_with: svc-}}]}",
    "allow: {not: {domain: {in: [evil.example, bad.example]}}}\n"
    "deny: {and: [{http_path: {starts_with: /admin}}, {not: {group: {has: admins}}}]}",
    "allow:\n  or:\n    - claim/realm_access.roles: {has: manager}\n"
    "    - claim/level: {is: \"3\"}\n    - claim/active: {is: \"true\"}\n"
    "    - claim/dept: {contains: ale}\n",
    "allow: {source_ip: {in: [10.0.0.0/8, \"::1/128\"]}}\n"
    "deny: {source_ip: {is: 10.9.0.0/16}}",
    "allow:\n  or:\n    - grpc_method: {starts_with: /orders.v1.Orders/}\n"
    "    - client_id: {is: web-app}\n    - issuer: {ends_with: example.com/}\n",
    "allow: {spiffe_id: {is: \"\"}}",
    "allow: {authenticated_user: true}\ndeny: {or: [{subject: {is: banned}}, {email: {is: "
    "X@Y.COM}}]}",
    "deny: {http_method: {is: DELETE}}",
    "allow: {and: [{or: [{group: {has: a}}, {group: {has: b}}]}, {nor: [{scope: {has: "
    "x}}]}, {not: {not: {http_path: {is: /ok}}}}]}",
};

const std::vector<const char*> kIdentities = {
    nullptr,
    R"({"sub": "alice", "email": "alice@example.com", "groups": ["admins", "a"],
        "scope": "orders:read profile", "client_id": "web-app",
        "iss": "https://idp.example.com/", "realm_access": {"roles": ["manager"]},
        "level": 3, "active": true, "dept": "sales"})",
    R"({"sub": "svc-batch", "email": "bot@contractors.example.com", "scp": ["orders:write"],
        "groups": ["b"]})",
    R"({"sub": "banned", "email": "x@y.com", "groups": [], "level": "4"})",
    R"({"sub": "eve", "email": "eve@evil.example", "groups": ["b"], "scope": "x"})",
};

const std::vector<Request> kRequests = {
    {},
    {"HEAD", "/ok", "", "127.0.0.1"},
    {"POST", "/admin/users", "/orders.v1.Orders/Create", "10.9.1.1"},
    {"DELETE", "/ok", "", "::1"},
    {"GET", "/admin", "/other.Svc/M", "192.0.2.1"},
};

void expect_same(const PolicyDecision& a, const PolicyDecision& b, const std::string& what) {
  EXPECT_EQ(a.allow, b.allow) << what;
  EXPECT_EQ(a.section, b.section) << what;
  EXPECT_EQ(a.rule_index, b.rule_index) << what;
  EXPECT_EQ(a.reason, b.reason) << what;
  EXPECT_EQ(a.source, b.source) << what;
}

TEST(PolicyExplain, DecidesExactlyAsEvaluateOverATable) {
  int allows = 0, denies = 0, defaults = 0;
  for (const std::string& yaml : kPolicies) {
    auto policy = compile(yaml);
    ASSERT_TRUE(policy);
    for (const char* json : kIdentities) {
      std::optional<Identity> id;
      if (json) id = identity(json);
      for (const Request& req : kRequests) {
        const RequestAttributes attrs = req.view();
        const Identity* who = id ? &*id : nullptr;
        const PolicyDecision expected = policy->evaluate(who, attrs);
        const PolicyTrace trace = explain_policy(*policy, who, attrs);
        expect_same(trace.decision, expected,
                    yaml + " | " + (json ? json : "anonymous") + " | " + req.method + " " +
                        req.path + " " + req.ip);
        // The deciding rule is the last evaluated one, and it matched.
        if (expected.rule_index >= 0) {
          const std::size_t at = (expected.section == "deny" ? 0 : policy->deny_rules.size()) +
                                 static_cast<std::size_t>(expected.rule_index);
          EXPECT_TRUE(trace.rules[at].root.evaluated && trace.rules[at].root.matched);
          for (std::size_t i = at + 1; i < trace.rules.size(); ++i) {
            EXPECT_FALSE(trace.rules[i].root.evaluated) << yaml;
          }
        }
        allows += expected.allow;
        denies += expected.section == "deny";
        defaults += expected.section == "default";
      }
    }
  }
  // The table exercises every outcome.
  EXPECT_GT(allows, 20);
  EXPECT_GT(denies, 10);
  EXPECT_GT(defaults, 20);
}

TEST(PolicyExplain, RulesInEvaluationOrderWithSkippedOnesMarked) {
  auto policy = compile(
      "allow:\n  or:\n    - group: {has: a}\n    - group: {has: b}\n"
      "deny:\n  or:\n    - subject: {is: banned}\n    - subject: {is: alice}\n");
  const Identity id = identity(R"({"sub": "alice", "groups": ["b"]})");
  const PolicyTrace t = explain_policy(*policy, &id, Request{}.view());
  ASSERT_EQ(t.rules.size(), 4u);
  EXPECT_EQ(t.rules[0].section, "deny");
  EXPECT_EQ(t.rules[0].index, 0);
  EXPECT_TRUE(t.rules[0].root.evaluated);
  EXPECT_FALSE(t.rules[0].root.matched);
  EXPECT_TRUE(t.rules[1].root.evaluated);
  EXPECT_TRUE(t.rules[1].root.matched);
  EXPECT_EQ(t.rules[2].section, "allow");
  EXPECT_EQ(t.rules[2].index, 0);
  EXPECT_FALSE(t.rules[2].root.evaluated);
  EXPECT_FALSE(t.rules[3].root.evaluated);
  EXPECT_EQ(rule_name(t.decision), "deny[1]");
  EXPECT_EQ(qualified_rule(t.decision), "explain.yaml#deny[1]");
  EXPECT_EQ(t.policy, policy.get());
}

TEST(PolicyExplain, OperatorsShortCircuitLikeEvaluate) {
  auto policy = compile(
      "allow:\n  or:\n"
      "    - and: [{group: {has: x}}, {group: {has: a}}]\n"   // first child false
      "    - nor: [{group: {has: a}}, {group: {has: x}}]\n"   // first child true
      "    - or: [{group: {has: a}}, {group: {has: b}}]\n");  // first child true
  const Identity id = identity(R"({"sub": "u", "groups": ["a"]})");
  const PolicyTrace t = explain_policy(*policy, &id, Request{}.view());
  ASSERT_EQ(t.rules.size(), 3u);
  const TraceNode& and_node = t.rules[0].root;
  EXPECT_TRUE(and_node.evaluated);
  EXPECT_FALSE(and_node.matched);
  EXPECT_TRUE(and_node.children[0].evaluated);
  EXPECT_FALSE(and_node.children[1].evaluated);
  const TraceNode& nor_node = t.rules[1].root;
  EXPECT_FALSE(nor_node.matched);
  EXPECT_TRUE(nor_node.children[0].matched);
  EXPECT_FALSE(nor_node.children[1].evaluated);
  const TraceNode& or_node = t.rules[2].root;
  EXPECT_TRUE(or_node.matched);
  EXPECT_TRUE(or_node.children[0].matched);
  EXPECT_FALSE(or_node.children[1].evaluated);
  EXPECT_EQ(rule_name(t.decision), "allow[2]");
}

TEST(PolicyExplain, ChildrenRunInTheGatewaysCheapestFirstOrder) {
  // http_method (one compare) runs before group (a list scan) although written second.
  auto policy = compile("allow: {and: [{group: {has: admins}}, {http_method: {is: POST}}]}");
  const PolicyNode& and_node = policy->allow_rules[0];
  ASSERT_EQ(and_node.eval_order, (std::vector<std::uint16_t>{1, 0}));
  const Identity id = identity(R"({"sub": "u", "groups": ["admins"]})");
  const PolicyTrace t = explain_policy(*policy, &id, Request{"GET", "/", "", "10.0.0.1"}.view());
  const TraceNode& n = t.rules[0].root;
  EXPECT_EQ(n.children[0].expression, "group: {has: admins}");  // written order kept
  EXPECT_FALSE(n.children[0].evaluated);
  EXPECT_TRUE(n.children[1].evaluated);
  EXPECT_FALSE(n.children[1].matched);
  EXPECT_FALSE(n.matched);

  // A hand-built node without eval_order runs in written order, as evaluate() does.
  PolicyNode group;
  group.field = PolicyField::kGroup;
  group.matcher.op = MatchOp::kHas;
  group.matcher.values = {"nobody"};
  PolicyNode method;
  method.field = PolicyField::kHttpMethod;
  method.matcher.values = {"GET"};
  PolicyNode either;
  either.kind = PolicyNode::Kind::kOr;
  either.children = {method, group};
  Policy manual;
  manual.source = "manual";
  manual.allow_rules = {either};
  const PolicyTrace m = explain_policy(manual, &id, Request{}.view());
  expect_same(m.decision, manual.evaluate(&id, Request{}.view()), "manual");
  EXPECT_TRUE(m.rules[0].root.children[0].matched);
  EXPECT_FALSE(m.rules[0].root.children[1].evaluated);
}

TEST(PolicyExplain, NotInvertsItsChild) {
  auto policy = compile("allow: {not: {group: {has: banned}}}");
  const Identity id = identity(R"({"sub": "u", "groups": ["a"]})");
  const PolicyTrace t = explain_policy(*policy, &id, Request{}.view());
  const TraceNode& n = t.rules[0].root;
  EXPECT_EQ(n.expression, "not");
  EXPECT_TRUE(n.matched);
  ASSERT_EQ(n.children.size(), 1u);
  EXPECT_TRUE(n.children[0].evaluated);
  EXPECT_FALSE(n.children[0].matched);
  EXPECT_TRUE(t.decision.allow);
}

const PolicyNode& first_rule(const std::string& yaml, std::shared_ptr<const Policy>& keep) {
  keep = compile(yaml);
  return keep->allow_rules.front();
}

TEST(PolicyExplain, ExpressionTextIsFlowYaml) {
  struct Case {
    const char* policy;
    const char* text;
  };
  const Case cases[] = {
      {"allow: {group: {has: orders-readers}}", "group: {has: orders-readers}"},
      {"allow: {scope: {has: \"orders:read\"}}", "scope: {has: \"orders:read\"}"},
      {"allow: {http_method: {in: [get, HEAD]}}", "http_method: {in: [GET, HEAD]}"},
      {"allow: {email: {ends_with: \"@Contractors.example.com\"}}",
       "email: {ends_with: \"@contractors.example.com\"}"},
      {"allow: {domain: {is: Example.COM}}", "domain: {is: example.com}"},
      {"allow: {subject: {starts_with: svc-}}", "subject: {starts_with: svc-}"},
      {"allow: {http_path: {contains: \"a b\"}}", "http_path: {contains: \"a b\"}"},
      {"allow: {issuer: {is: \"true\"}}", "issuer: {is: \"true\"}"},
      {"allow: {client_id: {is: \"\"}}", "client_id: {is: \"\"}"},
      {"allow: {claim/realm_access.roles: {has: manager}}",
       "claim/realm_access.roles: {has: manager}"},
      {"allow: {grpc_method: {is: /pkg.Svc/M}}", "grpc_method: {is: /pkg.Svc/M}"},
      {"allow: {spiffe_id: {starts_with: \"spiffe://corp/\"}}",
       "spiffe_id: {starts_with: \"spiffe://corp/\"}"},
      {"allow: {source_ip: {is: 10.0.0.0/8}}", "source_ip: {is: 10.0.0.0/8}"},
      {"allow: {source_ip: {in: [10.0.0.0/8, \"::1/128\"]}}",
       "source_ip: {in: [10.0.0.0/8, \"::1/128\"]}"},
      {"allow: {authenticated_user: true}", "authenticated_user: true"},
      {"allow: {authenticated_user: false}", "authenticated_user: false"},
      {"allow: {and: [{group: {has: a}}]}", "and"},
      {"allow: {or: [{or: [{group: {has: a}}]}]}", "or"},  // a top-level `or` is split
      {"allow: {nor: [{group: {has: a}}]}", "nor"},
      {"allow: {not: {group: {has: a}}}", "not"},
  };
  for (const Case& c : cases) {
    std::shared_ptr<const Policy> keep;
    EXPECT_EQ(expression_text(first_rule(c.policy, keep)), c.text) << c.policy;
  }
}

TEST(PolicyExplain, CriteriaRecordWhatTheyLookedAt) {
  auto policy = compile(
      "allow:\n  and:\n"
      "    - group: {has: admins}\n"
      "    - http_method: {is: POST}\n"
      "    - claim/realm_access.roles: {has: manager}\n"
      "    - claim/missing: {is: x}\n"
      "    - source_ip: {is: 10.0.0.0/8}\n"
      "    - domain: {is: example.com}\n"
      "    - spiffe_id: {is: \"\"}\n"
      "    - authenticated_user: true\n");
  const Identity id = identity(
      R"({"sub": "alice", "email": "a@example.com", "groups": ["admins", "ops"],
          "realm_access": {"roles": ["manager"]}})");
  // The absent claim is the only false child; claims are evaluated last (the costliest), so
  // every other child was evaluated first.
  const PolicyTrace t = explain_policy(*policy, &id, Request{"POST", "/x", "", "10.0.0.7"}.view());
  const auto& c = t.rules[0].root.children;
  ASSERT_EQ(c.size(), 8u);
  EXPECT_EQ(c[0].input_name, "groups");
  EXPECT_EQ(boost::json::serialize(c[0].input), R"(["admins","ops"])");
  EXPECT_TRUE(c[0].matched);
  EXPECT_EQ(c[1].input_name, "method");
  EXPECT_EQ(c[1].input, "POST");
  EXPECT_TRUE(c[1].matched);
  EXPECT_EQ(c[2].input_name, "claim realm_access.roles");
  EXPECT_EQ(boost::json::serialize(c[2].input), R"(["manager"])");
  EXPECT_TRUE(c[2].matched);
  EXPECT_EQ(c[3].input_name, "claim missing");
  EXPECT_TRUE(c[3].input.is_null());
  EXPECT_EQ(c[3].note, "claim absent");
  EXPECT_TRUE(c[3].evaluated);
  EXPECT_FALSE(c[3].matched);
  for (std::size_t i = 4; i < c.size(); ++i) {
    EXPECT_TRUE(c[i].evaluated && c[i].matched) << c[i].expression;
  }
  EXPECT_EQ(c[4].input, "10.0.0.7");
  EXPECT_EQ(c[5].input, "example.com");
  EXPECT_EQ(c[6].input, "");  // spiffe_id: {is: ""} matches the empty id, as in evaluate()
  EXPECT_EQ(c[7].input, true);
  EXPECT_FALSE(t.decision.allow);

  // The same criteria failing, each as its own rule of an `or`.
  auto each = compile(
      "allow:\n  or:\n"
      "    - source_ip: {is: 10.0.0.0/8}\n"
      "    - domain: {is: example.org}\n"
      "    - spiffe_id: {is: spiffe://x}\n"
      "    - authenticated_user: false\n");
  const PolicyTrace u = explain_policy(*each, &id, Request{"GET", "/", "", "192.0.2.1"}.view());
  ASSERT_EQ(u.rules.size(), 4u);
  EXPECT_EQ(u.rules[0].root.input_name, "source_ip");
  EXPECT_EQ(u.rules[0].root.input, "192.0.2.1");
  EXPECT_EQ(u.rules[1].root.input_name, "domain");
  EXPECT_EQ(u.rules[1].root.input, "example.com");
  EXPECT_EQ(u.rules[2].root.input_name, "spiffe_id");
  EXPECT_EQ(u.rules[2].root.note, "identities carry no SPIFFE id in this build");
  EXPECT_FALSE(u.rules[2].root.matched);
  EXPECT_EQ(u.rules[3].root.input_name, "authenticated");
  EXPECT_EQ(u.rules[3].root.input, true);
  EXPECT_FALSE(u.rules[3].root.matched);
}

TEST(PolicyExplain, AnonymousInputsSayAnonymous) {
  auto policy = compile(
      "allow:\n  or:\n    - subject: {is: \"\"}\n    - group: {has: a}\n"
      "    - claim/x: {is: y}\n    - authenticated_user: false\n");
  const PolicyTrace t = explain_policy(*policy, nullptr, Request{}.view());
  // subject: {is: ""} matches the empty subject of an anonymous request, as evaluate() does.
  EXPECT_TRUE(t.rules[0].root.matched);
  EXPECT_EQ(t.rules[0].root.note, "anonymous");
  EXPECT_TRUE(t.rules[0].root.input.is_null());
  EXPECT_EQ(rule_name(t.decision), "allow[0]");
  EXPECT_EQ(rule_name(policy->evaluate(nullptr, Request{}.view())), "allow[0]");
}

TEST(PolicyExplain, NodesCarryTheirSourcePositions) {
  auto policy = compile(
      "allow:\n"                         // 1
      "  or:\n"                          // 2
      "    - and:\n"                     // 3
      "        - group: {has: a}\n"      // 4
      "        - not:\n"                 // 5
      "            scope: {has: b}\n");  // 6
  const PolicyTrace t = explain_policy(*policy, nullptr, Request{}.view());
  const TraceNode& and_node = t.rules[0].root;
  EXPECT_EQ(and_node.line, 3);
  EXPECT_EQ(and_node.column, 7);
  EXPECT_EQ(and_node.children[0].line, 4);
  EXPECT_EQ(and_node.children[0].column, 11);
  EXPECT_EQ(and_node.children[1].line, 5);
  EXPECT_EQ(and_node.children[1].children[0].line, 6);
  EXPECT_EQ(and_node.children[1].children[0].column, 13);
}

TEST(PolicyExplain, TraceTextIsAnIndentedTree) {
  auto policy = compile(
      "allow:\n  or:\n    - and:\n        - group: {has: admins}\n"
      "        - http_method: {in: [GET]}\n    - scope: {has: \"orders:write\"}\n"
      "deny: {email: {ends_with: \"@contractors.example.com\"}}\n");
  const Identity id = identity(R"({"sub": "a", "email": "a@example.com", "groups": ["admins"]})");
  const std::string text = trace_text(explain_policy(*policy, &id, Request{}.view()), "  ");
  EXPECT_EQ(text,
            "  deny[0]  no match\n"
            "    ✗ email: {ends_with: \"@contractors.example.com\"}   email = \"a@example.com\"   "
            "(7:8)\n"
            "  allow[0]  MATCH\n"
            "    ✓ and   (3:7)\n"
            "      ✓ group: {has: admins}   groups = [\"admins\"]   (4:11)\n"
            "      ✓ http_method: {in: [GET]}   method = \"GET\"   (5:11)\n"
            "  allow[1]  not evaluated\n"
            "    · scope: {has: \"orders:write\"}   (6:7)\n");
}

TEST(PolicyExplain, TraceJsonHasDecisionRulesAndNodes) {
  auto policy = compile("allow: {and: [{group: {has: a}}, {group: {has: b}}]}");
  const Identity id = identity(R"({"sub": "u", "groups": ["a"]})");
  const boost::json::object o = trace_json(explain_policy(*policy, &id, Request{}.view()));
  EXPECT_EQ(o.at("source"), "explain.yaml");
  EXPECT_EQ(o.at("version").as_string().size(), 16u);
  EXPECT_EQ(o.at("decision").at("decision"), "deny");
  EXPECT_EQ(o.at("decision").at("rule"), "explain.yaml#default");
  EXPECT_EQ(o.at("decision").at("reason"), "no rule matched");
  const auto& rule = o.at("rules").as_array().at(0).as_object();
  EXPECT_EQ(rule.at("rule"), "allow[0]");
  EXPECT_EQ(rule.at("matched"), false);
  const auto& node = rule.at("node").as_object();
  EXPECT_EQ(node.at("expression"), "and");
  const auto& kids = node.at("children").as_array();
  EXPECT_EQ(kids.at(0).at("input").at("name"), "groups");
  EXPECT_EQ(kids.at(0).at("matched"), true);
  EXPECT_EQ(kids.at(1).at("evaluated"), true);
  EXPECT_EQ(kids.at(1).at("matched"), false);
  EXPECT_EQ(kids.at(1).at("line"), 1);
}

// A route as the config loader would build it.
RouteConfig route(AuthMode auth, std::shared_ptr<const Policy> policy = nullptr,
                  std::shared_ptr<const Policy> shadow = nullptr) {
  RouteConfig r;
  r.name = "r";
  r.auth = auth;
  if (policy) r.policy = PolicyBinding{"p.yaml", "p.yaml", std::move(policy), 1};
  if (shadow) r.shadow_policy = PolicyBinding{"s.yaml", "s.yaml", std::move(shadow), 2};
  return r;
}

TEST(ExplainRoute, RoutesWithoutPolicyFollowTheGatewayDefaults) {
  const Identity id = identity(R"({"sub": "u"})");
  const RouteExplanation pub =
      explain_route(route(AuthMode::public_access), nullptr, Request{}.view());
  EXPECT_TRUE(pub.decision.allow);
  EXPECT_EQ(rule_name(pub.decision), "public");
  EXPECT_EQ(pub.decision.reason, "public route");
  EXPECT_EQ(pub.status, 0u);
  EXPECT_FALSE(pub.policy);

  const RouteExplanation none = explain_route(route(AuthMode::bearer), &id, Request{}.view());
  EXPECT_FALSE(none.decision.allow);
  EXPECT_EQ(rule_name(none.decision), "default");
  EXPECT_EQ(none.decision.reason, "route has no policy");
  EXPECT_EQ(none.status, 403u);
  EXPECT_TRUE(none.gate.empty());
}

TEST(ExplainRoute, BearerRoutesRefuseAnonymousAndMissingScopesBeforeThePolicy) {
  auto allow_all = compile("allow: {authenticated_user: false}");
  RouteConfig r = route(AuthMode::bearer, allow_all);
  const RouteExplanation anon = explain_route(r, nullptr, Request{}.view());
  EXPECT_FALSE(anon.decision.allow);
  EXPECT_EQ(anon.status, 401u);
  EXPECT_EQ(rule_name(anon.decision), "authentication");
  EXPECT_FALSE(anon.policy);
  EXPECT_NE(anon.gate.find("401"), std::string::npos);

  r.required_scopes = {"orders:read", "orders:admin"};
  const Identity reader = identity(R"({"sub": "u", "scope": "orders:read"})");
  const RouteExplanation scoped = explain_route(r, &reader, Request{}.view());
  EXPECT_EQ(scoped.status, 403u);
  EXPECT_EQ(rule_name(scoped.decision), "authentication");
  EXPECT_NE(scoped.gate.find("orders:admin"), std::string::npos);
  EXPECT_FALSE(scoped.policy);

  const Identity admin = identity(R"({"sub": "u", "scope": "orders:read orders:admin"})");
  const RouteExplanation passed = explain_route(r, &admin, Request{}.view());
  ASSERT_TRUE(passed.policy);
  EXPECT_EQ(rule_name(passed.decision), "default");  // authenticated_user: false never matches
  EXPECT_TRUE(passed.gate.empty());
}

TEST(ExplainRoute, PublicRoutesIgnoreTheIdentityAndShadowsAreEvaluated) {
  auto needs_user = compile("allow: {authenticated_user: true}");
  auto shadow = compile("allow: {http_method: {is: GET}}");
  const Identity id = identity(R"({"sub": "u"})");
  const RouteExplanation e =
      explain_route(route(AuthMode::public_access, needs_user, shadow), &id, Request{}.view());
  EXPECT_TRUE(e.identity_ignored);
  EXPECT_FALSE(e.decision.allow);  // the policy saw an anonymous request
  EXPECT_EQ(e.policy->rules[0].root.input, false);
  ASSERT_TRUE(e.shadow);
  EXPECT_TRUE(e.shadow->decision.allow);
  EXPECT_EQ(e.shadow->policy, shadow.get());
  EXPECT_EQ(e.status, 403u);
}

TEST(IdentityForRoute, UsesTheProviderTheGatewayWouldPick) {
  Config config;
  IdentityProviderConfig corp;
  corp.name = "corp";
  corp.issuer = "https://corp";
  corp.claims.groups = "realm_access.roles";
  IdentityProviderConfig partner;
  partner.name = "partner";
  partner.issuer = "https://partner";
  partner.claims.subject = "uid";
  config.identity_providers = {corp, partner};
  RouteConfig r = route(AuthMode::bearer);

  const auto by_iss = identity_for_route(
      config, r, claims(R"({"iss": "https://partner", "uid": "p1", "sub": "x"})"));
  EXPECT_EQ(by_iss.provider, "partner");
  EXPECT_EQ(by_iss.subject, "p1");

  const auto first = identity_for_route(
      config, r, claims(R"({"sub": "c1", "realm_access": {"roles": ["admins"]}})"));
  EXPECT_EQ(first.provider, "corp");
  EXPECT_EQ(first.groups, std::vector<std::string>{"admins"});

  r.providers = {"partner"};
  const auto restricted =
      identity_for_route(config, r, claims(R"({"iss": "https://corp", "uid": "p2"})"));
  EXPECT_EQ(restricted.provider, "partner");
  EXPECT_EQ(restricted.subject, "p2");

  const auto defaults = identity_for_route(Config{}, r, claims(R"({"sub": "d", "groups": ["g"]})"));
  EXPECT_EQ(defaults.provider, "");
  EXPECT_EQ(defaults.subject, "d");
  EXPECT_EQ(defaults.groups, std::vector<std::string>{"g"});
}

TEST(PolicyExplain, IdentityTextAndJson) {
  EXPECT_EQ(identity_text(nullptr), "anonymous");
  EXPECT_TRUE(identity_json(nullptr).is_null());
  const Identity id = identity(
      R"({"sub": "alice", "email": "a@x.com", "groups": ["g"], "scope": "s1 s2", "azp": "app",
          "iss": "https://i"})");
  EXPECT_EQ(identity_text(&id),
            "subject \"alice\", email \"a@x.com\", groups [\"g\"], scopes [\"s1\",\"s2\"], "
            "client_id \"app\", issuer \"https://i\"");
  const auto j = identity_json(&id);
  EXPECT_EQ(j.at("provider"), "test");
  EXPECT_EQ(j.at("scopes").as_array().size(), 2u);
}

}  // namespace
}  // namespace portcullis
