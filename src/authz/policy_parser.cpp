#include "authz/policy_parser.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "core/sha256.hpp"
#include "core/units.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kValidExpressions =
    "and, or, not, nor, authenticated_user, subject, email, domain, group, scope, client_id, "
    "issuer, claim/<dotted.path>, spiffe_id, http_method, http_path, grpc_method, source_ip";
constexpr std::string_view kValidMatchers = "is, in, starts_with, ends_with, contains, has";

struct StringCriterion {
  std::string_view name;
  PolicyField field;
};
constexpr std::array<StringCriterion, 11> kStringCriteria{{
    {"subject", PolicyField::kSubject},
    {"email", PolicyField::kEmail},
    {"domain", PolicyField::kDomain},
    {"group", PolicyField::kGroup},
    {"scope", PolicyField::kScope},
    {"client_id", PolicyField::kClientId},
    {"issuer", PolicyField::kIssuer},
    {"spiffe_id", PolicyField::kSpiffeId},
    {"http_method", PolicyField::kHttpMethod},
    {"http_path", PolicyField::kHttpPath},
    {"grpc_method", PolicyField::kGrpcMethod},
}};

struct MatcherName {
  std::string_view name;
  MatchOp op;
};
constexpr std::array<MatcherName, 6> kMatchers{{
    {"is", MatchOp::kIs},
    {"in", MatchOp::kIn},
    {"starts_with", MatchOp::kStartsWith},
    {"ends_with", MatchOp::kEndsWith},
    {"contains", MatchOp::kContains},
    {"has", MatchOp::kHas},
}};

std::string to_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string to_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// Builds the tree for one document, collecting every error.
class Parser {
 public:
  Parser(std::string source, std::string label)
      : source_(std::move(source)), label_(std::move(label)) {}

  PolicyParseResult parse(const YAML::Node& doc) {
    auto policy = std::make_shared<Policy>();
    policy->source = label_.empty() ? source_ : label_;
    // yaml-cpp expands aliases: `&a {not: *a}` is an infinite tree and nested aliases grow
    // exponentially. Bound the document before anything walks it (found by the fuzzer).
    std::size_t nodes = 0;
    if (!within_limits(doc, 0, nodes)) {
      error(doc, "the policy is nested deeper than " + std::to_string(kMaxDepth) +
                     " levels or has more than " + std::to_string(kMaxNodes) +
                     " YAML nodes (a self-referencing or nested YAML alias expands without end)");
      return finish(nullptr);
    }
    policy->version = sha256_hex(policy->source + '\n' + YAML::Dump(doc)).substr(0, 16);
    if (!doc.IsMap()) {
      error(doc, "a policy must be a map with `allow` and/or `deny`");
      return finish(nullptr);
    }
    bool any_section = false;
    for (const auto& kv : doc) {
      const std::string key = kv.first.Scalar();
      if (key == "allow") {
        any_section = true;
        parse_section(kv.second, policy->allow_rules);
      } else if (key == "deny") {
        any_section = true;
        parse_section(kv.second, policy->deny_rules);
      } else {
        error(kv.first, "unknown key `" + key + "` (valid: allow, deny)");
      }
    }
    if (!any_section) error(doc, "a policy needs `allow` and/or `deny`");
    for (auto& rule : policy->deny_rules) order_by_cost(rule);
    for (auto& rule : policy->allow_rules) order_by_cost(rule);
    return finish(std::move(policy));
  }

 private:
  PolicyParseResult finish(std::shared_ptr<Policy> policy) {
    PolicyParseResult r;
    if (errors_.empty()) r.policy = std::move(policy);
    r.errors = std::move(errors_);
    return r;
  }

  void error(const YAML::Node& at, std::string message) {
    const YAML::Mark m = at.Mark();
    ConfigError e{source_, 0, 0, std::move(message)};
    if (m.line >= 0 && m.column >= 0) {
      e.line = m.line + 1;
      e.column = m.column + 1;
    }
    errors_.push_back(std::move(e));
  }

  static void place(PolicyNode& n, const YAML::Node& at) {
    const YAML::Mark m = at.Mark();
    if (m.line >= 0 && m.column >= 0) {
      n.line = m.line + 1;
      n.column = m.column + 1;
    }
  }

  // A top-level `or` contributes one rule per item; any other expression is one rule.
  void parse_section(const YAML::Node& node, std::vector<PolicyNode>& rules) {
    if (node.IsMap() && node.size() == 1 && node.begin()->first.Scalar() == "or") {
      const auto kv = *node.begin();
      if (!check_list(kv.first, kv.second)) return;
      for (const YAML::Node& item : kv.second) {
        if (auto n = parse_expr(item)) rules.push_back(std::move(*n));
      }
      return;
    }
    if (auto n = parse_expr(node)) rules.push_back(std::move(*n));
  }

  bool check_list(const YAML::Node& key, const YAML::Node& value) {
    if (!value.IsSequence()) {
      error(key, "`" + key.Scalar() + "` needs a list of expressions");
      return false;
    }
    if (value.size() == 0) {
      error(key, "`" + key.Scalar() + "` needs at least one expression");
      return false;
    }
    return true;
  }

  std::optional<PolicyNode> parse_expr(const YAML::Node& node) {
    if (!node.IsMap() || node.size() != 1) {
      error(node, "an expression must be a map with exactly one key (one of: " +
                      std::string(kValidExpressions) + ")");
      return std::nullopt;
    }
    const auto kv = *node.begin();
    const YAML::Node& key = kv.first;
    const YAML::Node& value = kv.second;
    const std::string name = key.Scalar();
    PolicyNode n;
    place(n, key);
    if (name == "and" || name == "or" || name == "nor") {
      n.kind = name == "and"  ? PolicyNode::Kind::kAnd
               : name == "or" ? PolicyNode::Kind::kOr
                              : PolicyNode::Kind::kNor;
      if (!check_list(key, value)) return std::nullopt;
      bool ok = true;
      for (const YAML::Node& item : value) {
        if (auto c = parse_expr(item)) {
          n.children.push_back(std::move(*c));
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return n;
    }
    if (name == "not") {
      n.kind = PolicyNode::Kind::kNot;
      auto c = parse_expr(value);
      if (!c) return std::nullopt;
      n.children.push_back(std::move(*c));
      return n;
    }
    n.kind = PolicyNode::Kind::kCriterion;
    if (name == "authenticated_user") {
      n.field = PolicyField::kAuthenticatedUser;
      if (!value.IsScalar() || !YAML::convert<bool>::decode(value, n.authenticated)) {
        error(key, "`authenticated_user` needs true or false");
        return std::nullopt;
      }
      return n;
    }
    if (name == "source_ip") return parse_source_ip(key, value, std::move(n));
    if (name.starts_with("claim/")) {
      n.field = PolicyField::kClaim;
      n.claim_path = name.substr(6);
      if (n.claim_path.empty()) {
        error(key, "`claim/` needs a claim name, e.g. claim/realm_access.roles");
        return std::nullopt;
      }
      if (!parse_matcher(key, value, n.matcher)) return std::nullopt;
      return n;
    }
    const auto it = std::find_if(kStringCriteria.begin(), kStringCriteria.end(),
                                 [&](const StringCriterion& c) { return c.name == name; });
    if (it == kStringCriteria.end()) {
      error(key, "unknown operator or criterion `" + name +
                     "` (valid: " + std::string(kValidExpressions) + ")");
      return std::nullopt;
    }
    n.field = it->field;
    if (!parse_matcher(key, value, n.matcher)) return std::nullopt;
    normalise(n);
    return n;
  }

  static constexpr int kMaxDepth = 64;
  static constexpr std::size_t kMaxNodes = 20000;

  static bool within_limits(const YAML::Node& n, int depth, std::size_t& count) {
    if (++count > kMaxNodes || depth > kMaxDepth) return false;
    if (n.IsMap()) {
      for (const auto& kv : n) {
        if (!within_limits(kv.first, depth + 1, count) ||
            !within_limits(kv.second, depth + 1, count)) {
          return false;
        }
      }
    } else if (n.IsSequence()) {
      for (const YAML::Node& item : n) {
        if (!within_limits(item, depth + 1, count)) return false;
      }
    }
    return true;
  }

  // A rough cost of evaluating a node: one string compare for scalar criteria, a scan for
  // lists (groups, scopes), a JSON lookup for claims.
  static int cost(const PolicyNode& n) {
    switch (n.kind) {
      case PolicyNode::Kind::kCriterion:
        switch (n.field) {
          case PolicyField::kAuthenticatedUser:
            return 0;
          case PolicyField::kGroup:
          case PolicyField::kScope:
            return 4;
          case PolicyField::kClaim:
            return 8;
          default:
            return n.matcher.op == MatchOp::kIn ? 2 : 1;
        }
      default: {
        int sum = 0;
        for (const PolicyNode& c : n.children) sum += cost(c);
        return sum;
      }
    }
  }

  // Evaluation short-circuits, and criteria have no side effects, so the children of
  // and/or/nor can run cheapest first without changing any decision: a rule like
  // `group has X and http_method in [GET] and http_path starts_with /svc/` then rejects on
  // the path before scanning the groups. `children` keep the written order (for explain and
  // lint); `eval_order` is the order evaluate() uses. Stable: equal costs keep written order.
  static void order_by_cost(PolicyNode& n) {
    for (PolicyNode& c : n.children) order_by_cost(c);
    n.eval_order.clear();
    for (std::size_t i = 0; i < n.children.size(); ++i) {
      n.eval_order.push_back(static_cast<std::uint16_t>(i));
    }
    std::stable_sort(n.eval_order.begin(), n.eval_order.end(),
                     [&](std::uint16_t a, std::uint16_t b) {
                       return cost(n.children[a]) < cost(n.children[b]);
                     });
  }

  static void normalise(PolicyNode& n) {
    const bool ci = n.field == PolicyField::kEmail || n.field == PolicyField::kDomain;
    n.matcher.case_insensitive = ci;
    for (std::string& v : n.matcher.values) {
      if (ci) v = to_lower(std::move(v));
      if (n.field == PolicyField::kHttpMethod) v = to_upper(std::move(v));
    }
  }

  // A map with exactly one matcher key; `criterion` names the key for messages.
  std::optional<std::pair<YAML::Node, YAML::Node>> matcher_entry(const YAML::Node& criterion,
                                                                 const YAML::Node& value) {
    if (!value.IsMap() || value.size() != 1) {
      error(value.IsMap() ? value : criterion,
            "`" + criterion.Scalar() + "` needs a matcher: a map with exactly one key (one of: " +
                std::string(kValidMatchers) + ")");
      return std::nullopt;
    }
    const auto kv = *value.begin();
    return std::make_pair(kv.first, kv.second);
  }

  bool parse_matcher(const YAML::Node& criterion, const YAML::Node& value, StringMatcher& out) {
    const auto entry = matcher_entry(criterion, value);
    if (!entry) return false;
    const auto& [key, arg] = *entry;
    const std::string name = key.Scalar();
    const auto it = std::find_if(kMatchers.begin(), kMatchers.end(),
                                 [&](const MatcherName& m) { return m.name == name; });
    if (it == kMatchers.end()) {
      error(key, "unknown matcher `" + name + "` (valid: " + std::string(kValidMatchers) + ")");
      return false;
    }
    out.op = it->op;
    if (out.op == MatchOp::kIn) return parse_string_list(key, arg, out.values);
    if (!arg.IsScalar()) {
      error(key, "matcher `" + name + "` needs a string");
      return false;
    }
    out.values.push_back(arg.Scalar());
    return true;
  }

  bool parse_string_list(const YAML::Node& key, const YAML::Node& arg,
                         std::vector<std::string>& out) {
    if (!arg.IsSequence()) {
      error(key, "matcher `" + key.Scalar() + "` needs a list of strings");
      return false;
    }
    bool ok = true;
    for (const YAML::Node& item : arg) {
      if (!item.IsScalar()) {
        error(item, "matcher `" + key.Scalar() + "` needs a list of strings");
        ok = false;
        continue;
      }
      out.push_back(item.Scalar());
    }
    return ok;
  }

  std::optional<PolicyNode> parse_source_ip(const YAML::Node& criterion, const YAML::Node& value,
                                            PolicyNode n) {
    n.field = PolicyField::kSourceIp;
    const auto entry = matcher_entry(criterion, value);
    if (!entry) return std::nullopt;
    const auto& [key, arg] = *entry;
    const std::string name = key.Scalar();
    std::vector<std::pair<std::string, YAML::Node>> texts;
    if (name == "is") {
      if (!arg.IsScalar()) {
        error(key, "matcher `is` needs a CIDR");
        return std::nullopt;
      }
      texts.emplace_back(arg.Scalar(), arg);
    } else if (name == "in") {
      std::vector<std::string> list;
      if (!parse_string_list(key, arg, list)) return std::nullopt;
      std::size_t i = 0;
      for (const YAML::Node& item : arg) texts.emplace_back(list[i++], item);
    } else {
      error(key, "`source_ip` supports only the matchers is, in (got `" + name + "`)");
      return std::nullopt;
    }
    bool ok = true;
    for (const auto& [text, at] : texts) {
      auto cidr = parse_cidr(text);
      if (!cidr) {
        error(at, "bad CIDR `" + text + "`: " + cidr.error());
        ok = false;
        continue;
      }
      n.cidrs.push_back(*cidr);
    }
    if (!ok) return std::nullopt;
    return n;
  }

  std::string source_;
  std::string label_;
  std::vector<ConfigError> errors_;
};

}  // namespace

PolicyParseResult parse_policy(const YAML::Node& node, const std::string& source_name,
                               const std::string& label) {
  return Parser(source_name, label).parse(node);
}

PolicyParseResult parse_policy_string(std::string_view yaml, const std::string& source_name,
                                      const std::string& label) {
  try {
    const YAML::Node doc = YAML::Load(std::string(yaml));
    return parse_policy(doc, source_name, label);
  } catch (const YAML::Exception& e) {
    PolicyParseResult r;
    r.errors.push_back(yaml_syntax_error(e, source_name));
    return r;
  }
}

ConfigError yaml_syntax_error(const YAML::Exception& e, const std::string& file) {
  ConfigError err{file, 0, 0, e.msg};
  if (e.mark.line >= 0) {
    err.line = e.mark.line + 1;
    err.column = e.mark.column + 1;
  }
  return err;
}

PolicyParseResult parse_policy_file(const std::string& path, const std::string& label) {
  std::ifstream in(path);
  if (!in) {
    PolicyParseResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "cannot read the policy file"});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_policy_string(text.str(), path, label);
}

}  // namespace portcullis
