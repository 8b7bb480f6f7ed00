// Policy lint: rule analysis (truth of criteria in a route's context, structural equality,
// a conservative implication test), config-level checks, and the least-privilege report.
// Every helper answers "certainly" or "don't know"; only certainties become findings.
#include "authz/policy_lint.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "authz/policy_parser.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;
using Kind = PolicyNode::Kind;

// ---------------------------------------------------------------------------------------
// Facts about fields and matchers

// The criterion compares one string of the request or identity ("" when absent).
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
  switch (n.field) {
    case PolicyField::kAuthenticatedUser:
      return "authenticated_user";
    case PolicyField::kSubject:
      return "subject";
    case PolicyField::kEmail:
      return "email";
    case PolicyField::kDomain:
      return "domain";
    case PolicyField::kGroup:
      return "group";
    case PolicyField::kScope:
      return "scope";
    case PolicyField::kClientId:
      return "client_id";
    case PolicyField::kIssuer:
      return "issuer";
    case PolicyField::kClaim:
      return "claim/" + n.claim_path;
    case PolicyField::kSpiffeId:
      return "spiffe_id";
    case PolicyField::kHttpMethod:
      return "http_method";
    case PolicyField::kHttpPath:
      return "http_path";
    case PolicyField::kGrpcMethod:
      return "grpc_method";
    case PolicyField::kSourceIp:
      return "source_ip";
  }
  return "?";
}

std::string_view op_name(MatchOp op) {
  switch (op) {
    case MatchOp::kIs:
      return "is";
    case MatchOp::kIn:
      return "in";
    case MatchOp::kStartsWith:
      return "starts_with";
    case MatchOp::kEndsWith:
      return "ends_with";
    case MatchOp::kContains:
      return "contains";
    case MatchOp::kHas:
      return "has";
  }
  return "?";
}

std::string yaml_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

// The criterion as it reads in YAML, e.g. `email: {ends_with: "@gmail.com"}`.
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

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
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

// The free mail domain whose every address the criterion admits, or "".
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

enum class Truth { unknown, always, never };

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

// `route` null: no context (only what holds on every route). `why` says why it never matches.
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

bool same_cidr(const Cidr& a, const Cidr& b) {
  return a.network == b.network && a.prefix_length == b.prefix_length;
}

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

// Rule reasoning in one context (a route, or none). Conservative: "false" means "not known".
class Analyzer {
 public:
  explicit Analyzer(const RouteConfig* route) : route_(route) {}

  Truth truth(const PolicyNode& n) const {
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

  // Every request `a` matches, `b` matches too.
  bool implies(const PolicyNode& a, const PolicyNode& b) {
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

 private:
  static Truth flip(Truth t) {
    return t == Truth::always ? Truth::never : t == Truth::never ? Truth::always : Truth::unknown;
  }
  // `decisive`: one child with it decides; `neutral`: all children with it decide the other.
  Truth combine(const PolicyNode& n, Truth decisive, Truth neutral) const {
    bool all_neutral = true;
    for (const PolicyNode& c : n.children) {
      const Truth t = truth(c);
      if (t == decisive) return decisive;
      if (t != neutral) all_neutral = false;
    }
    return all_neutral ? neutral : Truth::unknown;
  }

  const RouteConfig* route_;
  int budget_ = 20000;
};

// Every way to satisfy the rule (in this polarity) constrains who the caller is. With
// `strict`, a free mail domain (anyone can sign up) does not count as a constraint.
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

// Calls f(criterion, positive) for every criterion under `n`.
template <class F>
void walk(const PolicyNode& n, bool positive, F&& f) {
  if (n.kind == Kind::kCriterion) {
    f(n, positive);
    return;
  }
  const bool child = (n.kind == Kind::kNot || n.kind == Kind::kNor) ? !positive : positive;
  for (const PolicyNode& c : n.children) walk(c, child, f);
}

std::string rule_name(std::string_view section, std::size_t i) {
  return std::string(section) + "[" + std::to_string(i) + "]";
}

// ---------------------------------------------------------------------------------------
// Positions of config keys the model keeps only the line of

// Lines of the config file, to give route findings a column.
class SourceLines {
 public:
  explicit SourceLines(const std::string& file) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
  }
  // Column of `key:` on `line` (not part of a longer key); else of the first item there.
  int column(int line, std::string_view key) const {
    if (line <= 0 || static_cast<std::size_t>(line) > lines_.size()) return 1;
    const std::string& text = lines_[static_cast<std::size_t>(line) - 1];
    if (!key.empty()) {
      const std::string k = std::string(key) + ":";
      for (auto at = text.find(k); at != std::string::npos; at = text.find(k, at + 1)) {
        const char before = at == 0 ? ' ' : text[at - 1];
        if (before == ' ' || before == '{' || before == ',' || before == '-') {
          return static_cast<int>(at) + 1;
        }
      }
    }
    const auto at = text.find_first_not_of(" -");
    return at == std::string::npos ? 1 : static_cast<int>(at) + 1;
  }

 private:
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------------------
// The linter

// One compiled policy and the routes binding it (as policy or shadow_policy).
struct PolicyUse {
  const Policy* policy = nullptr;
  std::string file;
  std::vector<const RouteConfig*> routes;
};

// Collects findings for a config or a lone policy.
class Linter {
 public:
  std::vector<LintFinding> findings;

  void add(LintSeverity s, const std::string& file, int line, int column, std::string code,
           std::string message) {
    findings.push_back({s, file, line, column, std::move(code), std::move(message)});
  }
  void add(LintSeverity s, const std::string& file, const PolicyNode& at, std::string code,
           std::string message) {
    add(s, file, at.line, at.column, std::move(code), std::move(message));
  }

  void lint_rules(const PolicyUse& use) {
    const Policy& p = *use.policy;
    contexts_ = use.routes;
    if (contexts_.empty()) contexts_.push_back(nullptr);
    check_denied_allows(use.file, p);  // first: its rules are not reported again below
    check_section(use.file, "allow", p.allow_rules);
    check_section(use.file, "deny", p.deny_rules);
    check_identity(use, p);
    check_criteria(use, p);
  }

 private:
  bool implies_everywhere(const PolicyNode& a, const PolicyNode& b) const {
    return std::all_of(contexts_.begin(), contexts_.end(),
                       [&](const RouteConfig* r) { return Analyzer(r).implies(a, b); });
  }

  // Duplicates and rules earlier rules of the same section make unreachable: one of them, or
  // (failing that) all of them together.
  void check_section(const std::string& file, std::string_view section,
                     const std::vector<PolicyNode>& rules) {
    const bool allow = section == "allow";
    for (std::size_t j = 0; j < rules.size(); ++j) {
      const bool denied = allow && denied_allows_.count(&rules[j]) > 0;
      const std::string name = rule_name(section, j);
      const auto shadowed = [&](const std::string& by, bool plural) {
        add(LintSeverity::warning, file, rules[j], "shadowed-rule",
            allow ? name + " is never reached: " + by + (plural ? " match" : " matches") +
                        " every request it matches"
                  : name + " is redundant: " + by + (plural ? " already deny" : " already denies") +
                        " every request it matches");
      };
      bool reported = false;
      for (std::size_t i = 0; i < j && !reported; ++i) {
        const std::string earlier =
            rule_name(section, i) + " (line " + std::to_string(rules[i].line) + ")";
        if (same(rules[i], rules[j])) {
          add(LintSeverity::warning, file, rules[j], "duplicate-rule",
              name + " duplicates " + earlier);
          reported = true;
        } else if (!denied && implies_everywhere(rules[j], rules[i])) {
          shadowed(earlier, false);
          reported = true;
        }
      }
      if (!reported && !denied && j >= 2 && implies_everywhere(rules[j], any_of(rules, j))) {
        shadowed(rule_name(section, 0) + " .. " + rule_name(section, j - 1) + " together", true);
      }
    }
  }

  // An `or` of the first `n` rules.
  static PolicyNode any_of(const std::vector<PolicyNode>& rules, std::size_t n) {
    PolicyNode any;
    any.kind = Kind::kOr;
    any.children.assign(rules.begin(), rules.begin() + static_cast<std::ptrdiff_t>(n));
    return any;
  }

  // Allow rules a deny rule always overrides (deny overrides allow).
  void check_denied_allows(const std::string& file, const Policy& p) {
    denied_allows_.clear();
    for (std::size_t i = 0; i < p.allow_rules.size(); ++i) {
      const PolicyNode& a = p.allow_rules[i];
      for (std::size_t k = 0; k < p.deny_rules.size(); ++k) {
        const PolicyNode& d = p.deny_rules[k];
        const std::string deny = rule_name("deny", k) + " (line " + std::to_string(d.line) + ")";
        const bool identical = same(a, d);
        if (!identical && !implies_everywhere(a, d)) continue;
        denied_allows_.insert(&a);
        add(LintSeverity::warning, file, a, "shadowed-by-deny",
            identical ? rule_name("allow", i) + " is identical to " + deny +
                            ": deny overrides allow, so it never allows anything"
                      : rule_name("allow", i) + " never allows anything: " + deny +
                            " denies every request it matches (deny overrides allow)");
        break;
      }
      const std::size_t n = p.deny_rules.size();
      if (!denied_allows_.count(&a) && n >= 2 && implies_everywhere(a, any_of(p.deny_rules, n))) {
        denied_allows_.insert(&a);
        add(LintSeverity::warning, file, a, "shadowed-by-deny",
            rule_name("allow", i) + " never allows anything: deny[0] .. " +
                rule_name("deny", n - 1) +
                " together deny every request it matches (deny overrides allow)");
      }
    }
  }

  void check_identity(const PolicyUse& use, const Policy& p) {
    const bool authenticated =
        use.routes.empty() ||
        std::any_of(use.routes.begin(), use.routes.end(),
                    [](const RouteConfig* r) { return r->auth != AuthMode::public_access; });
    if (!authenticated) return;  // on public routes anonymous access is the point
    for (std::size_t i = 0; i < p.allow_rules.size(); ++i) {
      const PolicyNode& rule = p.allow_rules[i];
      if (constrains_identity(rule, true, true)) continue;
      if (constrains_identity(rule, true, false)) {
        // Only a free mail domain limits who: name each such criterion.
        walk(rule, true, [&](const PolicyNode& n, bool positive) {
          const std::string_view d = public_domain_of(n);
          if (!positive || d.empty()) return;
          add(LintSeverity::warning, use.file, n, "public-email-domain",
              rule_name("allow", i) + " admits anyone with a " + std::string(d) +
                  " address: " + describe(n) +
                  " names a public mail provider (anyone can sign up) and nothing else in the "
                  "rule limits who");
        });
        continue;
      }
      const bool bare = rule.kind == Kind::kCriterion &&
                        rule.field == PolicyField::kAuthenticatedUser && rule.authenticated;
      add(LintSeverity::warning, use.file, rule, "allow-any-identity",
          rule_name("allow", i) +
              (bare ? " is `authenticated_user: true` alone: it allows anyone who can log in"
                    : " allows anyone who can log in: no subject, email, domain, group, "
                      "scope, client_id or claim criterion limits who"));
    }
  }

  void check_criteria(const PolicyUse& use, const Policy& p) {
    // (node, code, reason) -> routes, so a file shared by routes gets one finding per reason.
    std::map<std::tuple<const PolicyNode*, std::string, std::string>, std::vector<std::string>>
        by_route;
    std::vector<std::tuple<const PolicyNode*, std::string, std::string>> order;
    const auto note_route = [&](const PolicyNode& n, std::string code, std::string reason,
                                const std::string& route) {
      auto key = std::make_tuple(&n, std::move(code), std::move(reason));
      auto [it, fresh] = by_route.try_emplace(key);
      if (fresh) order.push_back(key);
      it->second.push_back("'" + route + "'");
    };
    const auto check = [&](const PolicyNode& n) {
      check_patterns(use.file, n);
      std::string why;
      if (criterion_truth(n, nullptr, why) == Truth::never) {
        add(LintSeverity::warning, use.file, n, "never-matches",
            describe(n) + " never matches: " + why);
        return;
      }
      for (const RouteConfig* r : use.routes) {
        why.clear();
        if (criterion_truth(n, r, why) == Truth::never) {
          note_route(n, "never-matches", why, r->name);
        } else if (n.field == PolicyField::kHttpMethod && !r->match.methods.empty() &&
                   n.matcher.op != MatchOp::kStartsWith && n.matcher.op != MatchOp::kEndsWith &&
                   n.matcher.op != MatchOp::kContains) {
          for (const std::string& v : n.matcher.values) {
            const auto& ms = r->match.methods;
            if (std::find(ms.begin(), ms.end(), v) == ms.end()) {
              note_route(n, "method-not-routed",
                         "http_method " + v + " never reaches it (match.methods: " + join(ms) + ")",
                         r->name);
            }
          }
        }
      }
    };
    for (const auto* rules : {&p.allow_rules, &p.deny_rules}) {
      for (const PolicyNode& rule : *rules) {
        walk(rule, true, [&](const PolicyNode& n, bool) { check(n); });
      }
    }
    for (const auto& key : order) {
      const auto& [node, code, reason] = key;
      const auto& routes = by_route[key];
      const std::string where = (routes.size() == 1 ? "route " : "routes ") + join(routes);
      if (code == "never-matches") {
        add(LintSeverity::warning, use.file, *node, code,
            describe(*node) + " never matches on " + where + ": " + reason);
      } else {
        add(LintSeverity::info, use.file, *node, code, "on " + where + ", " + reason);
      }
    }
  }

  // Over-broad matchers: patterns that match every value.
  void check_patterns(const std::string& file, const PolicyNode& n) {
    if (n.field == PolicyField::kSourceIp) {
      for (const Cidr& c : n.cidrs) {
        if (c.prefix_length != 0) continue;
        add(LintSeverity::warning, file, n, "match-all-pattern",
            describe(n) + ": " + c.to_string() + " matches every " +
                (c.network.is_v4() ? "IPv4 address" : "address"));
      }
      return;
    }
    if (n.field == PolicyField::kAuthenticatedUser) return;
    if (matches_everything(n.matcher)) {
      add(LintSeverity::warning, file, n, "match-all-pattern",
          describe(n) + ": an empty " + std::string(op_name(n.matcher.op)) + " pattern matches " +
              (single_valued(n.field) ? "every value" : "anyone with at least one value"));
    }
  }

  std::vector<const RouteConfig*> contexts_;
  std::set<const PolicyNode*> denied_allows_;
};

// ---------------------------------------------------------------------------------------
// Config-level checks

std::vector<PolicyUse> policy_uses(const Config& config) {
  std::vector<PolicyUse> uses;
  std::map<const Policy*, std::size_t> index;
  for (const RouteConfig& r : config.routes) {
    for (const auto* b : {&r.policy, &r.shadow_policy}) {
      if (!b->has_value() || !(*b)->compiled) continue;
      const Policy* p = (*b)->compiled.get();
      auto [it, fresh] = index.try_emplace(p, uses.size());
      if (fresh) uses.push_back({p, (*b)->file.empty() ? config.source_file : (*b)->file, {}});
      auto& routes = uses[it->second].routes;
      if (std::find(routes.begin(), routes.end(), &r) == routes.end()) routes.push_back(&r);
    }
  }
  return uses;
}

std::string canonical(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(path, ec);
  return ec ? fs::path(path).lexically_normal().string() : p.string();
}

std::string read_text(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  ok = static_cast<bool>(in) || in.eof();
  return text.str();
}

// A `policy test` table (cases: ...) rather than a policy: not a policy file at all.
bool is_table_test(const std::string& text) {
  try {
    const YAML::Node doc = YAML::Load(text);
    return doc.IsMap() && doc["cases"] && !doc["allow"] && !doc["deny"];
  } catch (const YAML::Exception&) {
    return false;  // the policy parser reports the syntax error
  }
}

void lint_policy_dir(const Config& config, Linter& linter) {
  std::error_code ec;
  if (config.policy_dir.empty() || !fs::is_directory(config.policy_dir, ec)) return;
  std::set<std::string> bound;
  for (const RouteConfig& r : config.routes) {
    for (const auto* b : {&r.policy, &r.shadow_policy}) {
      if (b->has_value() && !(*b)->file.empty()) bound.insert(canonical((*b)->file));
    }
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(config.policy_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& f = it->path();
    const std::string ext = f.extension().string();
    if ((ext == ".yaml" || ext == ".yml") && !f.filename().string().starts_with('.') &&
        it->is_regular_file(ec)) {
      files.push_back(f.lexically_normal());
    }
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    const std::string path = f.string();
    if (bound.count(canonical(path))) continue;
    bool ok = false;
    const std::string text = read_text(path, ok);
    if (ok && is_table_test(text)) continue;
    linter.add(LintSeverity::warning, path, 1, 1, "unused-policy",
               "no route uses this policy (as policy or shadow_policy)");
    PolicyParseResult parsed = ok ? parse_policy_string(text, path) : PolicyParseResult{};
    if (!ok) parsed.errors.push_back({path, 0, 0, "cannot read the policy file"});
    for (const ConfigError& e : parsed.errors) {
      linter.add(LintSeverity::error, e.file, e.line, e.column, "policy-error", e.message);
    }
    if (parsed.ok()) {
      linter.lint_rules({parsed.policy.get(), path, {}});
    }
  }
}

void lint_routes(const Config& config, const SourceLines& lines, Linter& linter) {
  for (const RouteConfig& r : config.routes) {
    if (r.auth == AuthMode::public_access || r.policy) continue;
    linter.add(LintSeverity::warning, config.source_file, r.line, lines.column(r.line, "name"),
               "route-without-policy",
               "route '" + r.name +
                   "' requires authentication but has no policy: every request to it is "
                   "denied (\"route has no policy\")");
  }
}

// ---------------------------------------------------------------------------------------
// Least privilege: grants with no allowed call in the audit records

struct Grant {
  std::string kind;  // "subject" | "email" | "group"
  std::string value;
  const PolicyNode* node;
};

std::vector<Grant> explicit_grants(const Policy& p) {
  std::vector<Grant> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const PolicyNode& rule : p.allow_rules) {
    walk(rule, true, [&](const PolicyNode& n, bool positive) {
      if (!positive) return;
      const MatchOp op = n.matcher.op;
      if (op != MatchOp::kIs && op != MatchOp::kIn && op != MatchOp::kHas) return;
      std::string kind = n.field == PolicyField::kSubject ? "subject"
                         : n.field == PolicyField::kEmail ? "email"
                         : n.field == PolicyField::kGroup ? "group"
                                                          : "";
      if (kind.empty()) return;
      for (const std::string& v : n.matcher.values) {
        if (seen.emplace(kind, v).second) out.push_back({kind, v, &n});
      }
    });
  }
  return out;
}

void lint_audit(const Config& config, const AuditLog& audit, const std::vector<PolicyUse>& uses,
                Linter& linter) {
  struct Calls {
    std::set<std::string> subject, email, group;
  };
  std::map<std::string, Calls> calls;
  bool has_subject = false, has_email = false, has_groups = false;
  for (const AuditRecord& rec : audit.records) {
    has_email = has_email || rec.has_email;
    has_groups = has_groups || rec.has_groups;
    has_subject = has_subject || !rec.subject.empty();
    if (!rec.allowed) continue;
    Calls& c = calls[rec.route];
    c.subject.insert(rec.subject);
    c.email.insert(rec.email);
    c.group.insert(rec.groups.begin(), rec.groups.end());
  }
  const std::string window =
      audit.first_time.empty() ? "the audit records"
                               : "the audit window " + audit.first_time + " .. " + audit.last_time;
  std::set<std::string> unchecked;
  for (const RouteConfig& r : config.routes) {
    // Public routes see no identity: their identity criteria are reported as never-matches.
    if (!r.policy || !r.policy->compiled || r.auth == AuthMode::public_access) continue;
    const auto use = std::find_if(uses.begin(), uses.end(), [&](const PolicyUse& u) {
      return u.policy == r.policy->compiled.get();
    });
    if (use == uses.end()) continue;
    const std::string& file = use->file;
    const Calls& c = calls[r.name];
    for (const Grant& g : explicit_grants(*r.policy->compiled)) {
      const bool known = g.kind == "subject" ? has_subject
                         : g.kind == "email" ? has_email
                                             : has_groups;
      if (!known) {
        unchecked.insert(g.kind);
        continue;
      }
      const auto& used = g.kind == "subject" ? c.subject : g.kind == "email" ? c.email : c.group;
      if (used.count(g.value)) continue;
      linter.add(LintSeverity::info, file, *g.node, "unused-grant",
                 "route '" + r.name + "': " + g.kind + " '" + g.value +
                     "' is granted but made no allowed call to the route in " + window);
    }
  }
  const std::string at = audit.files.empty() ? config.source_file : audit.files.front();
  for (const std::string& kind : unchecked) {
    const std::string field = kind == "group" ? "groups" : kind;
    linter.add(
        LintSeverity::info, at, 0, 0, "audit-missing-field",
        "no audit record carries \"" + field + "\": " + kind + " grants were not checked for use");
  }
}

void sort_findings(std::vector<LintFinding>& f, const std::string& config_file) {
  const auto key = [&](const LintFinding& x) {
    return std::make_tuple(x.file != config_file, std::cref(x.file), x.line, x.column);
  };
  std::stable_sort(f.begin(), f.end(),
                   [&](const LintFinding& a, const LintFinding& b) { return key(a) < key(b); });
  const auto equal = [](const LintFinding& a, const LintFinding& b) {
    return a.file == b.file && a.line == b.line && a.column == b.column && a.code == b.code &&
           a.message == b.message;
  };
  f.erase(std::unique(f.begin(), f.end(), equal), f.end());
}

std::string iso_time(double epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

std::string_view severity_name(LintSeverity s) {
  switch (s) {
    case LintSeverity::error:
      return "error";
    case LintSeverity::warning:
      return "warning";
    case LintSeverity::info:
      return "info";
  }
  return "?";
}

std::string LintFinding::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column > 0 ? column : 1);
  return out + ": " + std::string(severity_name(severity)) + ": [" + code + "] " + message;
}

void AuditLog::add_text(std::string_view text, const std::string& file) {
  if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    const auto bad = [&](std::string why) {
      problems.push_back({LintSeverity::warning, file, line_no, 1, "audit-bad-line",
                          "not an audit record: " + why});
    };
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    if (ec) {
      bad("invalid JSON (" + ec.message() + ")");
      continue;
    }
    if (!v.is_object()) {
      bad("expected a JSON object");
      continue;
    }
    const boost::json::object& o = v.get_object();
    const auto str = [&](std::string_view key) -> const boost::json::string* {
      const boost::json::value* x = o.if_contains(key);
      return x && x->is_string() ? &x->get_string() : nullptr;
    };
    // The audit log's own records (genesis, start, rotate, checkpoint, lost) are not calls.
    if (const auto* type = str("type"); type && *type != "request") continue;
    const boost::json::string* decision = str("decision");
    if (!decision) {
      bad("no \"decision\" string");
      continue;
    }
    AuditRecord r;
    r.allowed = *decision == "allow";
    if (const auto* s = str("route")) r.route = std::string(*s);
    if (const auto* s = str("subject")) r.subject = std::string(*s);
    if (const auto* s = str("email")) {
      r.has_email = true;
      r.email = lower(std::string(*s));
    }
    if (const boost::json::value* g = o.if_contains("groups"); g && g->is_array()) {
      r.has_groups = true;
      for (const boost::json::value& item : g->get_array()) {
        if (item.is_string()) r.groups.emplace_back(item.get_string());
      }
    }
    if (const boost::json::value* t = o.if_contains("time")) {
      if (t->is_string()) r.time = std::string(t->get_string());
      if (t->is_number()) r.time = iso_time(t->to_number<double>());
    }
    if (!r.time.empty()) {
      if (first_time.empty() || r.time < first_time) first_time = r.time;
      if (last_time.empty() || r.time > last_time) last_time = r.time;
    }
    records.push_back(std::move(r));
  }
}

void AuditLog::add_file(const std::string& path) {
  std::error_code ec;
  bool ok = fs::is_regular_file(path, ec);
  const std::string text = ok ? read_text(path, ok) : std::string{};
  if (!ok) {
    if (std::find(files.begin(), files.end(), path) == files.end()) files.push_back(path);
    problems.push_back(
        {LintSeverity::error, path, 0, 0, "audit-unreadable", "cannot read the audit file"});
    return;
  }
  add_text(text, path);
}

std::vector<LintFinding> lint_config(const Config& config, const LintOptions& options) {
  Linter linter;
  const SourceLines lines(config.source_file);
  lint_routes(config, lines, linter);
  const std::vector<PolicyUse> uses = policy_uses(config);
  for (const PolicyUse& use : uses) linter.lint_rules(use);
  lint_policy_dir(config, linter);
  if (options.audit) {
    lint_audit(config, *options.audit, uses, linter);
    for (const LintFinding& f : options.audit->problems) linter.findings.push_back(f);
  }
  sort_findings(linter.findings, config.source_file);
  return std::move(linter.findings);
}

std::vector<LintFinding> lint_policy(const Policy& policy, const std::string& file) {
  Linter linter;
  linter.lint_rules({&policy, file, {}});
  sort_findings(linter.findings, file);
  return std::move(linter.findings);
}

}  // namespace portcullis
