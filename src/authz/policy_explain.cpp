#include "authz/policy_explain.hpp"

#include "authz/route_decision.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace portcullis {
namespace {

constexpr std::string_view kMatchedDeny = "matched deny rule";
constexpr std::string_view kMatchedAllow = "matched allow rule";
constexpr std::string_view kNoRule = "no rule matched";

bool plain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '/' || c == '@' || c == '+';
}

// A value as a YAML flow scalar: plain when unambiguous, else double-quoted (JSON escapes).
std::string yaml_scalar(std::string_view s) {
  bool plain = !s.empty() && s.front() != '@' && s.front() != '-' && s.front() != '.';
  for (char c : s) plain = plain && plain_char(c);
  for (std::string_view word : {"true", "false", "null", "yes", "no", "on", "off", "~"}) {
    if (s.size() == word.size()) {
      bool same = true;
      for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = (s[i] >= 'A' && s[i] <= 'Z') ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
        same = same && c == word[i];
      }
      plain = plain && !same;
    }
  }
  return plain ? std::string(s) : boost::json::serialize(boost::json::value(s));
}

std::string matcher_text(MatchOp op, const std::vector<std::string>& values) {
  std::string out = "{";
  out += to_string(op);
  out += ": ";
  if (op == MatchOp::kIn) {
    out += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ", ";
      out += yaml_scalar(values[i]);
    }
    out += ']';
  } else {
    out += yaml_scalar(values.empty() ? std::string_view{} : std::string_view(values.front()));
  }
  out += '}';
  return out;
}

boost::json::array string_array(const std::vector<std::string>& list) {
  boost::json::array a;
  for (const std::string& s : list) a.emplace_back(s);
  return a;
}

// Records what a criterion looks at: the same attribute match_criterion reads.
void record_input(const PolicyNode& n, const Identity* id, const RequestAttributes& r,
                  TraceNode& t) {
  const auto identity_string = [&](std::string_view name, const std::string* value) {
    t.input_name = name;
    if (id) {
      t.input = boost::json::string(*value);
    } else {
      t.note = "anonymous";
    }
  };
  switch (n.field) {
    case PolicyField::kAuthenticatedUser:
      t.input_name = "authenticated";
      t.input = id != nullptr;
      return;
    case PolicyField::kSubject:
      return identity_string("subject", id ? &id->subject : nullptr);
    case PolicyField::kEmail:
      return identity_string("email", id ? &id->email : nullptr);
    case PolicyField::kDomain: {
      t.input_name = "domain";
      if (!id) {
        t.note = "anonymous";
        return;
      }
      const std::size_t at = id->email.rfind('@');
      t.input =
          boost::json::string(at == std::string::npos ? std::string_view{}
                                                      : std::string_view(id->email).substr(at + 1));
      if (at == std::string::npos) t.note = "no '@' in the email";
      return;
    }
    case PolicyField::kGroup:
      t.input_name = "groups";
      if (id) {
        t.input = string_array(id->groups);
      } else {
        t.note = "anonymous";
      }
      return;
    case PolicyField::kScope:
      t.input_name = "scopes";
      if (id) {
        t.input = string_array(id->scopes);
      } else {
        t.note = "anonymous";
      }
      return;
    case PolicyField::kClientId:
      return identity_string("client_id", id ? &id->client_id : nullptr);
    case PolicyField::kIssuer:
      return identity_string("issuer", id ? &id->issuer : nullptr);
    case PolicyField::kClaim: {
      t.input_name = "claim " + n.claim_path;
      if (!id) {
        t.note = "anonymous";
      } else if (!id->claims) {
        t.note = "no claims";
      } else if (const boost::json::value* v = find_claim(*id->claims, n.claim_path)) {
        t.input = *v;
        if (v->is_object() || v->is_null()) t.note = "not a string, number or boolean";
      } else {
        t.note = "claim absent";
      }
      return;
    }
    case PolicyField::kSpiffeId:
      t.input_name = "spiffe_id";
      t.input = boost::json::string();
      t.note = "identities carry no SPIFFE id in this build";
      return;
    case PolicyField::kHttpMethod:
      t.input_name = "method";
      t.input = boost::json::string(r.method);
      return;
    case PolicyField::kHttpPath:
      t.input_name = "path";
      t.input = boost::json::string(r.path);
      return;
    case PolicyField::kGrpcMethod:
      t.input_name = "grpc_method";
      t.input = boost::json::string(r.grpc_method);
      if (r.grpc_method.empty()) t.note = "not a gRPC request";
      return;
    case PolicyField::kSourceIp:
      t.input_name = "source_ip";
      t.input = boost::json::string(r.source_ip.to_string());
      return;
  }
}

// The tree of a node with nothing evaluated yet.
TraceNode skeleton(const PolicyNode& n) {
  TraceNode t;
  t.expression = expression_text(n);
  t.line = n.line;
  t.column = n.column;
  t.children.reserve(n.children.size());
  for (const PolicyNode& c : n.children) t.children.push_back(skeleton(c));
  return t;
}

// Mirrors PolicyNode::evaluate: operators visit their children in eval_order (cheapest
// first; written order when empty) and stop where it stops; criteria are decided by
// PolicyNode::evaluate itself, so the leaves cannot drift from the hot path. Traces stay in
// written order, so a child written earlier may be the one left unevaluated.
bool walk(const PolicyNode& n, TraceNode& t, const Identity* id, const RequestAttributes& r) {
  t.evaluated = true;
  if (n.kind == PolicyNode::Kind::kCriterion) {
    record_input(n, id, r, t);
    t.matched = n.evaluate(id, r);
    return t.matched;
  }
  if (n.kind == PolicyNode::Kind::kNot) {
    t.matched = !walk(n.children.front(), t.children.front(), id, r);
    return t.matched;
  }
  // and: stops at the first false child; or / nor: at the first true one.
  const bool stop_on = n.kind != PolicyNode::Kind::kAnd;
  t.matched = n.kind != PolicyNode::Kind::kOr;
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    const std::size_t c = n.eval_order.empty() ? i : n.eval_order[i];
    if (walk(n.children[c], t.children[c], id, r) == stop_on) {
      t.matched = n.kind == PolicyNode::Kind::kOr;
      break;
    }
  }
  return t.matched;
}

std::string position(const TraceNode& t) {
  if (t.line <= 0) return {};
  return "(" + std::to_string(t.line) + ":" + std::to_string(t.column) + ")";
}

// `under_skipped`: an ancestor is already marked "not evaluated" (said once per subtree).
void node_text(std::string& out, const TraceNode& t, const std::string& indent,
               bool under_skipped) {
  out += indent;
  out += !t.evaluated ? "· " : t.matched ? "✓ " : "✗ ";
  out += t.expression;
  if (t.evaluated && !t.input_name.empty()) {
    out += "   ";
    out += t.input_name;
    out += " = ";
    if (t.input.is_null()) {
      out += "(" + (t.note.empty() ? std::string("null") : t.note) + ")";
    } else {
      out += boost::json::serialize(t.input);
      if (!t.note.empty()) out += " (" + t.note + ")";
    }
  }
  if (!t.evaluated && !under_skipped) out += "   (not evaluated)";
  if (const std::string p = position(t); !p.empty()) out += "   " + p;
  out += '\n';
  for (const TraceNode& c : t.children) {
    node_text(out, c, indent + "  ", under_skipped || !t.evaluated);
  }
}

boost::json::object node_json(const TraceNode& t) {
  boost::json::object o;
  o["expression"] = t.expression;
  o["line"] = t.line;
  o["column"] = t.column;
  o["evaluated"] = t.evaluated;
  o["matched"] = t.evaluated && t.matched;
  if (t.evaluated && !t.input_name.empty()) {
    o["input"] = boost::json::object{{"name", t.input_name}, {"value", t.input}};
  }
  if (!t.note.empty()) o["note"] = t.note;
  if (!t.children.empty()) {
    boost::json::array children;
    for (const TraceNode& c : t.children) children.push_back(node_json(c));
    o["children"] = std::move(children);
  }
  return o;
}

}  // namespace

std::string expression_text(const PolicyNode& n) {
  switch (n.kind) {
    case PolicyNode::Kind::kAnd:
      return "and";
    case PolicyNode::Kind::kOr:
      return "or";
    case PolicyNode::Kind::kNor:
      return "nor";
    case PolicyNode::Kind::kNot:
      return "not";
    case PolicyNode::Kind::kCriterion:
      break;
  }
  std::string out(to_string(n.field));
  switch (n.field) {
    case PolicyField::kAuthenticatedUser:
      return out + (n.authenticated ? ": true" : ": false");
    case PolicyField::kClaim:
      out += n.claim_path;
      break;
    case PolicyField::kSourceIp: {
      std::vector<std::string> cidrs;
      for (const Cidr& c : n.cidrs) cidrs.push_back(c.to_string());
      return out + ": " + matcher_text(cidrs.size() == 1 ? MatchOp::kIs : MatchOp::kIn, cidrs);
    }
    default:
      break;
  }
  return out + ": " + matcher_text(n.matcher.op, n.matcher.values);
}

PolicyTrace explain_policy(const Policy& policy, const Identity* identity,
                           const RequestAttributes& request) {
  PolicyTrace trace;
  trace.policy = &policy;
  trace.decision = {false, "default", -1, kNoRule, policy.source};
  trace.rules.reserve(policy.deny_rules.size() + policy.allow_rules.size());
  for (std::size_t i = 0; i < policy.deny_rules.size(); ++i) {
    trace.rules.push_back({"deny", static_cast<int>(i), skeleton(policy.deny_rules[i])});
  }
  for (std::size_t i = 0; i < policy.allow_rules.size(); ++i) {
    trace.rules.push_back({"allow", static_cast<int>(i), skeleton(policy.allow_rules[i])});
  }
  // Deny rules come first in `rules`, in the same order as in the policy.
  for (std::size_t i = 0; i < policy.deny_rules.size(); ++i) {
    if (walk(policy.deny_rules[i], trace.rules[i].root, identity, request)) {
      trace.decision = {false, "deny", static_cast<int>(i), kMatchedDeny, policy.source};
      return trace;
    }
  }
  const std::size_t first_allow = policy.deny_rules.size();
  for (std::size_t i = 0; i < policy.allow_rules.size(); ++i) {
    if (walk(policy.allow_rules[i], trace.rules[first_allow + i].root, identity, request)) {
      trace.decision = {true, "allow", static_cast<int>(i), kMatchedAllow, policy.source};
      return trace;
    }
  }
  return trace;
}

ClaimsMapping claims_mapping(const ClaimsConfig& c) {
  return ClaimsMapping{c.subject, c.email, c.groups, c.scopes, c.client_id};
}

Identity identity_for_route(const Config& config, const RouteConfig& route,
                            std::shared_ptr<const boost::json::object> claims) {
  std::string_view iss;
  if (claims) {
    if (const boost::json::value* v = claims->if_contains("iss"); v && v->is_string()) {
      iss = v->get_string();
    }
  }
  const IdentityProviderConfig* chosen = nullptr;
  for (const IdentityProviderConfig& p : config.identity_providers) {
    const bool accepted =
        route.providers.empty() ||
        std::find(route.providers.begin(), route.providers.end(), p.name) != route.providers.end();
    if (!accepted) continue;
    if (!chosen) chosen = &p;
    if (!iss.empty() && p.issuer == iss) {
      chosen = &p;
      break;
    }
  }
  if (!chosen) return map_identity(ClaimsMapping{}, std::move(claims), {}, "jwt");
  return map_identity(claims_mapping(chosen->claims), std::move(claims), chosen->name, "jwt");
}

RouteExplanation explain_route(const RouteConfig& route, const Identity* identity,
                               const RequestAttributes& request) {
  RouteExplanation e;
  if (route.auth == AuthMode::public_access) {
    e.identity_ignored = identity != nullptr;
    identity = nullptr;
  } else if (route.auth != AuthMode::bearer) {
    // admit() refuses modes this build cannot authenticate.
    e.decision = {false, "authentication", -1, "authentication mode not available", {}};
    e.status = 403;
    e.gate = "the route's authentication mode is not available in this build (403)";
    return e;
  } else if (identity == nullptr) {
    e.decision = {false, "authentication", -1, "a bearer token is required", {}};
    e.status = 401;
    e.gate = "no identity: the route needs a bearer token (401, the policy is not consulted)";
    return e;
  } else {
    for (const std::string& scope : route.required_scopes) {
      if (identity->has_scope(scope)) continue;
      e.decision = {false, "authentication", -1, "the token lacks a scope this route requires", {}};
      e.status = 403;
      e.gate = "missing required scope \"" + scope +
               "\" (403 insufficient_scope, the policy is not consulted)";
      return e;
    }
  }
  if (route.policy) {
    e.policy = explain_policy(*route.policy->compiled, identity, request);
    e.decision = e.policy->decision;
  } else {
    e.decision = decide_route_policy(route, identity, request);  // the gateway's defaults
  }
  if (route.shadow_policy) {
    e.shadow = explain_policy(*route.shadow_policy->compiled, identity, request);
  }
  e.status = e.decision.allow ? 0 : 403;
  return e;
}

std::string identity_text(const Identity* id) {
  if (!id) return "anonymous";
  const auto str = [](const std::string& s) {
    return boost::json::serialize(boost::json::value(boost::json::string(s)));
  };
  std::string out = "subject " + str(id->subject) + ", email " + str(id->email) + ", groups " +
                    boost::json::serialize(string_array(id->groups)) + ", scopes " +
                    boost::json::serialize(string_array(id->scopes)) + ", client_id " +
                    str(id->client_id) + ", issuer " + str(id->issuer);
  return out;
}

boost::json::value identity_json(const Identity* id) {
  if (!id) return nullptr;
  return boost::json::object{
      {"provider", id->provider},
      {"subject", id->subject},
      {"email", id->email},
      {"groups", string_array(id->groups)},
      {"scopes", string_array(id->scopes)},
      {"client_id", id->client_id},
      {"issuer", id->issuer},
  };
}

std::string rule_name(const PolicyDecision& d) {
  std::string out(d.section);
  if (d.rule_index >= 0) out += "[" + std::to_string(d.rule_index) + "]";
  return out;
}

std::string qualified_rule(const PolicyDecision& d) {
  if (d.source.empty()) return rule_name(d);
  return std::string(d.source) + "#" + rule_name(d);
}

std::string trace_text(const PolicyTrace& trace, std::string_view indent) {
  std::string out;
  const std::string inner = std::string(indent) + "  ";
  for (const RuleTrace& rule : trace.rules) {
    out += indent;
    out += rule.section;
    out += "[" + std::to_string(rule.index) + "]  ";
    out += !rule.root.evaluated ? "not evaluated" : rule.root.matched ? "MATCH" : "no match";
    out += '\n';
    node_text(out, rule.root, inner, !rule.root.evaluated);
  }
  if (trace.rules.empty()) out += std::string(indent) + "(the policy has no rules)\n";
  return out;
}

boost::json::object decision_json(const PolicyDecision& d) {
  boost::json::object o;
  o["allow"] = d.allow;
  o["decision"] = d.allow ? "allow" : "deny";
  o["rule"] = qualified_rule(d);
  o["section"] = d.section;
  o["index"] = d.rule_index;
  o["reason"] = d.reason;
  return o;
}

boost::json::object trace_json(const PolicyTrace& trace) {
  boost::json::object o;
  if (trace.policy) {
    o["source"] = trace.policy->source;
    o["version"] = trace.policy->version;
  }
  o["decision"] = decision_json(trace.decision);
  boost::json::array rules;
  for (const RuleTrace& rule : trace.rules) {
    boost::json::object r;
    r["rule"] = std::string(rule.section) + "[" + std::to_string(rule.index) + "]";
    r["evaluated"] = rule.root.evaluated;
    r["matched"] = rule.root.evaluated && rule.root.matched;
    r["node"] = node_json(rule.root);
    rules.push_back(std::move(r));
  }
  o["rules"] = std::move(rules);
  return o;
}

}  // namespace portcullis
