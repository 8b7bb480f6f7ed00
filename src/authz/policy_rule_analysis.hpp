#pragma once
// Rule analysis for the policy linter: what a compiled PolicyNode tree certainly means, on one
// route (whose auth, methods, paths and gRPC service limit what requests can carry) or on any
// route (route == nullptr). Every answer is "certainly" or "don't know": Truth::unknown and a
// `false` from implies() / constrains_identity() mean "not known", never "no", so callers may
// report only what these functions affirm.
//
//   namespace ra = portcullis::rule_analysis;
//   ra::Analyzer on_route(&route);  // or ra::Analyzer(nullptr): what holds on every route
//   if (ra::same(later, earlier) || on_route.implies(later, earlier)) ...  // later is shadowed
//   std::string why;
//   if (ra::criterion_truth(n, &route, why) == ra::Truth::never) report(ra::describe(n), why);
//   ra::walk(rule, true, [](const PolicyNode& criterion, bool positive) { ... });
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy.hpp"
#include "core/config.hpp"

namespace portcullis::rule_analysis {

// ---------------------------------------------------------------------------------------
// Facts about criteria

// The criterion compares one string of the request or identity ("" when absent).
bool single_valued(PolicyField f);

// An empty starts_with / ends_with / contains pattern: every value matches.
bool matches_everything(const StringMatcher& m);

// The free mail domain whose every address the criterion admits ("gmail.com"), or "".
std::string_view public_domain_of(const PolicyNode& n);

// ---------------------------------------------------------------------------------------
// Text for findings

std::string_view op_name(MatchOp op);  // "is", "in", "starts_with", ...

// The criterion as it reads in YAML, e.g. `email: {ends_with: "@gmail.com"}`.
std::string describe(const PolicyNode& n);

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// ---------------------------------------------------------------------------------------
// Truth, equality and implication of rules

enum class Truth { unknown, always, never };

// Whether a criterion matches every request / no request on `route` (null: no route, so only
// what holds on every route). When it never matches, `why` says why, e.g. "the route is
// `auth: public`, so requests carry no identity".
Truth criterion_truth(const PolicyNode& n, const RouteConfig* route, std::string& why);

// Structurally equal trees (same criteria, in the same order).
bool same(const PolicyNode& a, const PolicyNode& b);

// Rule reasoning in one context (a route, or none). Conservative: "false" means "not known".
class Analyzer {
 public:
  explicit Analyzer(const RouteConfig* route) : route_(route) {}

  Truth truth(const PolicyNode& n) const;

  // Every request `a` matches, `b` matches too. Gives up (false) after a fixed number of
  // steps, so deep or wide trees cannot make it slow.
  bool implies(const PolicyNode& a, const PolicyNode& b);

 private:
  // `decisive`: one child with it decides; `neutral`: all children with it decide the other.
  Truth combine(const PolicyNode& n, Truth decisive, Truth neutral) const;

  const RouteConfig* route_;
  int budget_ = 20000;
};

// Every way to satisfy the rule (in this polarity) constrains who the caller is. With
// `strict`, a free mail domain (anyone can sign up) does not count as a constraint.
bool constrains_identity(const PolicyNode& n, bool positive, bool strict);

// Calls f(criterion, positive) for every criterion under `n`; `positive` is false under an
// odd number of `not` / `nor`.
template <class F>
void walk(const PolicyNode& n, bool positive, F&& f) {
  using Kind = PolicyNode::Kind;
  if (n.kind == Kind::kCriterion) {
    f(n, positive);
    return;
  }
  const bool child = (n.kind == Kind::kNot || n.kind == Kind::kNor) ? !positive : positive;
  for (const PolicyNode& c : n.children) walk(c, child, f);
}

}  // namespace portcullis::rule_analysis
