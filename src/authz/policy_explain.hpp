#pragma once
// Policy explanation: a second, tracing evaluator for the operator's tools (`policy explain`,
// `policy test`). It walks a compiled Policy exactly as Policy::evaluate does (deny rules,
// then allow rules, default deny; the same short-circuits) and records, per node, the
// expression rebuilt as text, the value it looked at, whether it matched and its source
// position. It allocates freely; the gateway's hot path stays Policy::evaluate.
//
// Operators visit their children in the compiled eval_order (cheapest first) as the gateway
// does; traces list children in written order, so which ones show as not evaluated follows
// the gateway, not the text.
//
// explain_route() adds what the gateway does around the policy for one route: the
// authentication gate (no identity on a non-public route is a 401, a missing required scope a
// 403; the policy is then not consulted), a public route's identity being ignored, the
// defaults for routes without a policy (public: allow; otherwise deny "route has no policy")
// and the shadow policy.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "authz/policy.hpp"
#include "core/config.hpp"

namespace portcullis {

// One evaluated (or skipped) node of a policy tree.
struct TraceNode {
  std::string expression;  // "group: {has: orders-readers}", "and", "not", ...
  int line = 0;            // source position of the node; 0 when unknown
  int column = 0;
  bool evaluated = false;    // false: skipped by a short-circuit or an earlier decision
  bool matched = false;      // meaningful only when evaluated
  std::string input_name;    // criteria: what was looked at ("groups", "method", "claim dept")
  boost::json::value input;  // its value (null when absent or anonymous)
  std::string note;          // "anonymous", "claim absent", ... ("" when nothing to say)
  std::vector<TraceNode> children;
};

// One top-level rule of a section and its tree.
struct RuleTrace {
  std::string_view section;  // "deny" | "allow"
  int index = 0;
  TraceNode root;
};

// The evaluation of a whole policy: rules in evaluation order (deny then allow), every rule
// present (unevaluated ones have evaluated == false), and the decision.
struct PolicyTrace {
  const Policy* policy = nullptr;  // the evaluated policy (the caller keeps it alive)
  PolicyDecision decision;
  std::vector<RuleTrace> rules;
};

// Same decision as policy.evaluate(identity, request), with the trace.
PolicyTrace explain_policy(const Policy& policy, const Identity* identity,
                           const RequestAttributes& request);

// The expression of one node as policy YAML in flow style: `scope: {has: "orders:read"}`,
// `http_method: {in: [GET, HEAD]}`, `authenticated_user: true`; operators are their name.
std::string expression_text(const PolicyNode& node);

// What the gateway decides for one route and request, with the evidence.
struct RouteExplanation {
  PolicyDecision decision;            // the enforced decision
  unsigned status = 0;                // 0 when allowed, else 401 / 403
  std::string gate;                   // why authentication refused before the policy ("" none)
  bool identity_ignored = false;      // public route: the gateway does not authenticate
  std::optional<PolicyTrace> policy;  // absent: no policy, or not consulted (gate)
  std::optional<PolicyTrace> shadow;  // the shadow policy, when consulted
};

// The Identity the gateway would build from a token's claims on `route`: mapped with the
// claims mapping of the provider it would pick (the route's provider whose issuer equals the
// claims' `iss`, else the route's first provider); ClaimsMapping defaults when the config has
// no provider the route accepts. Identity::provider names the provider ("" for defaults).
Identity identity_for_route(const Config& config, const RouteConfig& route,
                            std::shared_ptr<const boost::json::object> claims);

ClaimsMapping claims_mapping(const ClaimsConfig& claims);

// `identity` is null for anonymous requests.
RouteExplanation explain_route(const RouteConfig& route, const Identity* identity,
                               const RequestAttributes& request);

// What a policy sees of an identity, on one line: `subject "alice", email "a@x.com",
// groups ["a"], scopes ["orders:read"], client_id "", issuer "..."`; "anonymous" for null.
std::string identity_text(const Identity* identity);

// {"provider","subject","email","groups":[..],"scopes":[..],"client_id","issuer"}, or null.
boost::json::value identity_json(const Identity* identity);

// "allow[2]", "deny[0]", "default", "public", "authentication" (no file name).
std::string rule_name(const PolicyDecision& d);

// "policies/orders.yaml#allow[2]", or rule_name() when the decision has no source.
std::string qualified_rule(const PolicyDecision& d);

// The trace as an indented tree, one line per node (✓ matched, ✗ not matched, · not
// evaluated), each rule headed by its name and outcome. Every line starts with `indent`.
std::string trace_text(const PolicyTrace& trace, std::string_view indent);

// {"allow":bool,"decision":"allow"|"deny","rule":"file#allow[0]","section","index","reason"}
boost::json::object decision_json(const PolicyDecision& d);

// {"source","version","decision":{...},"rules":[{"rule":"deny[0]","evaluated","matched",
// "node":{"expression","line","column","evaluated","matched","input":{"name","value"},"note",
// "children":[...]}}]}
boost::json::object trace_json(const PolicyTrace& trace);

}  // namespace portcullis
