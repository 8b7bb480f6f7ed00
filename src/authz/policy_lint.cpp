// Policy lint: the findings over a Config (rule-level checks per policy and route,
// config-level checks, the least-privilege report), built on the rule analysis of
// policy_rule_analysis.hpp. Only certainties become findings.
#include "authz/policy_lint.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "authz/lint_audit_reader.hpp"
#include "authz/policy_parser.hpp"
#include "authz/policy_rule_analysis.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;
using Kind = PolicyNode::Kind;
using rule_analysis::Analyzer;
using rule_analysis::constrains_identity;
using rule_analysis::criterion_truth;
using rule_analysis::describe;
using rule_analysis::join;
using rule_analysis::matches_everything;
using rule_analysis::op_name;
using rule_analysis::public_domain_of;
using rule_analysis::same;
using rule_analysis::single_valued;
using rule_analysis::Truth;
using rule_analysis::walk;

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

// "allow[2]"
std::string rule_name(std::string_view section, std::size_t i) {
  return std::string(section) + "[" + std::to_string(i) + "]";
}

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
    const std::string text = read_lint_input(path, ok);
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

void lint_audit(const Config& config, const LintAuditRecords& audit,
                const std::vector<PolicyUse>& uses, Linter& linter) {
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