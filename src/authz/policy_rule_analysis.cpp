// Rule analysis of compiled policies for the linter: facts about fields and matchers, the
// truth of criteria in a route's context, structural equality, a conservative implication
// test and identity constraints. Every helper answers "certainly" or "don't know".
#include "authz/policy_rule_analysis.hpp"

#include <algorithm>
#include <cstddef>

namespace portcullis::rule_analysis {

using Kind = PolicyNode::Kind;

// ---------------------------------------------------------------------------------------
// Facts about fields and matchers

namespace {

// Says who the caller is (issuer alone does not: anyone the provider lets log in has it).
bool identity_field(PolicyField f) {
  switch (f) {
    case PolicyField::kSubject:
    case PolicyField::kEmail:
    case PolicyField::kDomain:
    case PolicyField::kGroup:
    case PolicyField::kScope:
    case PolicyField::kClientId:
    case PolicyField::kClaim:
    case PolicyField::kSpiffeId:
      return true;
    default:
      return false;
  }
}

// Read from the Identity (so absent on anonymous requests).
bool from_identity(PolicyField f) {
  return identity_field(f) || f == PolicyField::kIssuer;
}

std::string field_name(const PolicyNode& n) {
  std::string out(to_string(n.field));
  if (n.field == PolicyField::kClaim) out += n.claim_path;
  return out;
}

std::string yaml_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

// `in: []`: no value can match.
bool matches_nothing(const PolicyNode& n) {
  if (n.field == PolicyField::kSourceIp) return n.cidrs.empty();
  if (n.field == PolicyField::kAuthenticatedUser) return false;
  return n.matcher.op == MatchOp::kIn && n.matcher.values.empty();
}

bool safe_match(const StringMatcher& m, std::string_view s) {
  if (m.op != MatchOp::kIn && m.values.empty()) return false;
  return m.match(s);
}

// Free mail providers: a domain criterion naming one admits anyone who signs up.
constexpr std::string_view kPublicMailDomains[] = {
    "gmail.com",      "googlemail.com", "outlook.com",  "hotmail.com",  "live.com", "msn.com",
    "yahoo.com",      "ymail.com",      "icloud.com",   "me.com",       "mac.com",  "proton.me",
    "protonmail.com", "pm.me",          "aol.com",      "gmx.com",      "gmx.net",  "gmx.de",
    "mail.com",       "yandex.com",     "yandex.ru",    "mail.ru",      "zoho.com", "qq.com",
    "163.com",        "web.de",         "tutanota.com", "fastmail.com", "hey.com",  "inbox.com",
    "hotmail.co.uk",  "yahoo.co.uk",
};

// The public mail domain a matcher value stands for ("@gmail.com", "gmail.com"), or "".
std::string_view public_domain_in(std::string_view value) {
  if (value.starts_with('@')) value.remove_prefix(1);
  for (std::string_view d : kPublicMailDomains) {
    if (value == d) return d;
  }
  return {};
}

}  // namespace

bool single_valued(PolicyField f) {
  switch (f) {
    case PolicyField::kSubject:
    case PolicyField::kEmail:
    case PolicyField::kDomain:
    case PolicyField::kClientId:
    case PolicyField::kIssuer:
    case PolicyField::kSpiffeId:
    case PolicyField::kHttpMethod:
    case PolicyField::kHttpPath:
    case PolicyField::kGrpcMethod:
      return true;
    default:
      return false;
  }
}

std::string_view op_name(MatchOp op) {
  return to_string(op);
}

std::string describe(const PolicyNode& n) {
  std::string out = "`" + field_name(n) + ": ";
  if (n.field == PolicyField::kAuthenticatedUser)
    return out + (n.authenticated ? "true`" : "false`");
  std::vector<std::string> values;
  std::string_view op = op_name(n.matcher.op);
  if (n.field == PolicyField::kSourceIp) {
    for (const Cidr& c : n.cidrs) values.push_back(c.to_string());
    op = values.size() == 1 ? "is" : "in";
  } else {
    for (const std::string& v : n.matcher.values) values.push_back(yaml_quoted(v));
  }
  out += "{" + std::string(op) + ": ";
  if (op == "in") {
    out += "[";
    for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + values[i];
    out += "]";
  } else if (!values.empty()) {
    out += values.front();
  }
  return out + "}`";
}

bool matches_everything(const StringMatcher& m) {
  return (m.op == MatchOp::kStartsWith || m.op == MatchOp::kEndsWith ||
          m.op == MatchOp::kContains) &&
         m.values.front().empty();
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
}

std::string_view public_domain_of(const PolicyNode& n) {
  const MatchOp op = n.matcher.op;
  const bool whole_domain = n.field == PolicyField::kDomain
                                ? (op == MatchOp::kIs || op == MatchOp::kIn ||
                                   op == MatchOp::kHas || op == MatchOp::kEndsWith)
                                : n.field == PolicyField::kEmail &&
                                      (op == MatchOp::kEndsWith || op == MatchOp::kContains);
  if (!whole_domain) return {};
  for (const std::string& v : n.matcher.values) {
    if (n.field == PolicyField::kEmail && op == MatchOp::kContains && !v.starts_with('@')) continue;
    if (const std::string_view d = public_domain_in(v); !d.empty()) return d;
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// Truth of criteria in a route's context

namespace {

Truth of_empty(const StringMatcher& m) {
  return safe_match(m, "") ? Truth::always : Truth::never;
}

Truth path_truth(const RouteMatch& match, const StringMatcher& m, std::string& why) {
  if (!match.path.empty()) {
    why = "the route only routes the path " + match.path + " (match.path)";
    return safe_match(m, match.path) ? Truth::always : Truth::never;
  }
  const std::string& p = match.path_prefix;
  if (p.empty()) return Truth::unknown;
  why = "every path on the route starts with " + p + " (match.path_prefix)";
  switch (m.op) {
    case MatchOp::kIs:
    case MatchOp::kHas:
    case MatchOp::kIn:
      return std::none_of(m.values.begin(), m.values.end(),
                          [&](const std::string& v) { return v.starts_with(p); })
                 ? Truth::never
                 : Truth::unknown;
    case MatchOp::kStartsWith:
      if (p.starts_with(m.values.front())) return Truth::always;
      return m.values.front().starts_with(p) ? Truth::unknown : Truth::never;
    case MatchOp::kContains:
      return p.find(m.values.front()) != std::string::npos ? Truth::always : Truth::unknown;
    case MatchOp::kEndsWith:
      return Truth::unknown;
  }
  return Truth::unknown;
}

}  // namespace

Truth criterion_truth(const PolicyNode& n, const RouteConfig* route, std::string& why) {
  const StringMatcher& m = n.matcher;
  if (matches_nothing(n)) {
    why = "`in: []` lists nothing";
    return Truth::never;
  }
  if (n.field == PolicyField::kSourceIp) {
    const bool all = std::any_of(n.cidrs.begin(), n.cidrs.end(), [](const Cidr& c) {
      return c.prefix_length == 0 && c.network.is_v6();
    });
    return all ? Truth::always : Truth::unknown;
  }
  if (n.field == PolicyField::kAuthenticatedUser) {
    if (route == nullptr) return Truth::unknown;
    const bool has_identity = route->auth != AuthMode::public_access;
    if (n.authenticated == has_identity) return Truth::always;
    why = has_identity ? "the route requires authentication, so every request has an identity"
                       : "the route is `auth: public`, so requests carry no identity";
    return Truth::never;
  }
  if (single_valued(n.field) && matches_everything(m)) return Truth::always;
  if (route == nullptr) return Truth::unknown;
  const RouteConfig& r = *route;
  if (r.auth == AuthMode::public_access && from_identity(n.field)) {
    why = "the route is `auth: public`, so requests carry no identity";
    return single_valued(n.field) ? of_empty(m) : Truth::never;
  }
  switch (n.field) {
    case PolicyField::kSpiffeId:
      if (r.auth == AuthMode::mtls) return Truth::unknown;
      why = "the route's auth is not mtls, so requests carry no SPIFFE id";
      return of_empty(m);
    case PolicyField::kGrpcMethod:
      if (!r.match.grpc_service.empty()) return Truth::unknown;
      why = "the route matches no grpc_service, so its HTTP requests carry no gRPC method";
      return of_empty(m);
    case PolicyField::kHttpMethod: {
      const auto& ms = r.match.methods;
      if (ms.empty()) return Truth::unknown;
      const auto hits = std::count_if(ms.begin(), ms.end(),
                                      [&](const std::string& x) { return safe_match(m, x); });
      why = "the route only routes " + join(ms) + " (match.methods)";
      if (hits == 0) return Truth::never;
      return static_cast<std::size_t>(hits) == ms.size() ? Truth::always : Truth::unknown;
    }
    case PolicyField::kHttpPath:
      return path_truth(r.match, m, why);
    default:
      return Truth::unknown;
  }
}

// ---------------------------------------------------------------------------------------
// Rule analysis: truth of trees, equality, implication, identity constraints

namespace {

bool same_cidr(const Cidr& a, const Cidr& b) {
  return a.network == b.network && a.prefix_length == b.prefix_length;
}

// Every value `a` accepts is accepted by `b` (pointwise, so also sound for any-of fields).
bool matcher_implies(const StringMatcher& a, const StringMatcher& b) {
  if (a.case_insensitive != b.case_insensitive) return false;
  switch (a.op) {
    case MatchOp::kIs:
    case MatchOp::kHas:
    case MatchOp::kIn:
      return !a.values.empty() && std::all_of(a.values.begin(), a.values.end(),
                                              [&](const auto& v) { return safe_match(b, v); });
    default:
      break;
  }
  if (b.values.empty()) return false;
  const std::string& p = a.values.front();
  const std::string& q = b.values.front();
  if (b.op == MatchOp::kContains) return p.find(q) != std::string::npos;
  if (a.op == MatchOp::kStartsWith && b.op == MatchOp::kStartsWith) return p.starts_with(q);
  if (a.op == MatchOp::kEndsWith && b.op == MatchOp::kEndsWith) return p.ends_with(q);
  return false;
}

bool cidr_within(const Cidr& inner, const Cidr& outer) {
  if (outer.prefix_length == 0 && outer.network.is_v6()) return true;
  return inner.network.is_v4() == outer.network.is_v4() &&
         inner.prefix_length >= outer.prefix_length && outer.contains(inner.network);
}

bool criterion_implies(const PolicyNode& a, const PolicyNode& b) {
  if (a.field != b.field || a.claim_path != b.claim_path) return false;
  if (a.field == PolicyField::kAuthenticatedUser) return a.authenticated == b.authenticated;
  if (a.field == PolicyField::kSourceIp) {
    return !a.cidrs.empty() && std::all_of(a.cidrs.begin(), a.cidrs.end(), [&](const Cidr& c) {
      return std::any_of(b.cidrs.begin(), b.cidrs.end(),
                         [&](const Cidr& o) { return cidr_within(c, o); });
    });
  }
  return matcher_implies(a.matcher, b.matcher);
}

Truth flip(Truth t) {
  return t == Truth::always ? Truth::never : t == Truth::never ? Truth::always : Truth::unknown;
}

}  // namespace

bool same(const PolicyNode& a, const PolicyNode& b) {
  if (a.kind != b.kind || a.children.size() != b.children.size()) return false;
  if (a.kind == Kind::kCriterion) {
    if (a.field != b.field || a.authenticated != b.authenticated || a.claim_path != b.claim_path ||
        a.matcher.op != b.matcher.op || a.matcher.values != b.matcher.values ||
        a.matcher.case_insensitive != b.matcher.case_insensitive ||
        !std::equal(a.cidrs.begin(), a.cidrs.end(), b.cidrs.begin(), b.cidrs.end(), same_cidr)) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.children.size(); ++i) {
    if (!same(a.children[i], b.children[i])) return false;
  }
  return true;
}

Truth Analyzer::truth(const PolicyNode& n) const {
  std::string why;
  switch (n.kind) {
    case Kind::kCriterion:
      return criterion_truth(n, route_, why);
    case Kind::kNot:
      return flip(truth(n.children.front()));
    case Kind::kAnd:
      return combine(n, Truth::never, Truth::always);
    case Kind::kOr:
      return combine(n, Truth::always, Truth::never);
    case Kind::kNor:
      return flip(combine(n, Truth::always, Truth::never));
  }
  return Truth::unknown;
}

bool Analyzer::implies(const PolicyNode& a, const PolicyNode& b) {
  if (--budget_ < 0) return false;
  if (truth(b) == Truth::always || same(a, b)) return true;
  if (truth(a) == Truth::never) return false;  // vacuous; reported as never-matches instead
  const auto all = [](const std::vector<PolicyNode>& v, auto&& f) {
    return std::all_of(v.begin(), v.end(), f);
  };
  const auto any = [](const std::vector<PolicyNode>& v, auto&& f) {
    return std::any_of(v.begin(), v.end(), f);
  };
  if (b.kind == Kind::kAnd) return all(b.children, [&](const auto& c) { return implies(a, c); });
  if (a.kind == Kind::kOr) return all(a.children, [&](const auto& c) { return implies(c, b); });
  if (a.kind == Kind::kAnd && any(a.children, [&](const auto& c) { return implies(c, b); })) {
    return true;
  }
  if (b.kind == Kind::kOr && any(b.children, [&](const auto& c) { return implies(a, c); })) {
    return true;
  }
  // Negations: `not x` => `not y` when y => x; nor(A) => nor(B) when each b => some a.
  const bool a_neg = a.kind == Kind::kNot || a.kind == Kind::kNor;
  const bool b_neg = b.kind == Kind::kNot || b.kind == Kind::kNor;
  if (a_neg && b_neg) {
    return all(b.children, [&](const auto& y) {
      return any(a.children, [&](const auto& x) { return implies(y, x); });
    });
  }
  if (a.kind == Kind::kCriterion && b.kind == Kind::kCriterion) return criterion_implies(a, b);
  return false;
}

Truth Analyzer::combine(const PolicyNode& n, Truth decisive, Truth neutral) const {
  bool all_neutral = true;
  for (const PolicyNode& c : n.children) {
    const Truth t = truth(c);
    if (t == decisive) return decisive;
    if (t != neutral) all_neutral = false;
  }
  return all_neutral ? neutral : Truth::unknown;
}

bool constrains_identity(const PolicyNode& n, bool positive, bool strict) {
  const auto all = [&](bool p) {
    return std::all_of(n.children.begin(), n.children.end(),
                       [&](const PolicyNode& c) { return constrains_identity(c, p, strict); });
  };
  const auto any = [&](bool p) {
    return std::any_of(n.children.begin(), n.children.end(),
                       [&](const PolicyNode& c) { return constrains_identity(c, p, strict); });
  };
  switch (n.kind) {
    case Kind::kCriterion:
      return positive && identity_field(n.field) && !matches_everything(n.matcher) &&
             !(strict && !public_domain_of(n).empty());
    case Kind::kNot:
      return constrains_identity(n.children.front(), !positive, strict);
    case Kind::kAnd:
      return positive ? any(true) : all(false);
    case Kind::kOr:
      return positive ? all(true) : any(false);
    case Kind::kNor:
      return positive ? any(false) : all(true);
  }
  return false;
}

}  // namespace portcullis::rule_analysis
