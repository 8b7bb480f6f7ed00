#include "authz/policy_table_test.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "authz/policy_parser.hpp"
#include "http/path_normalizer.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "allow[3]" -> section "allow", index 3; false when malformed.
bool split_rule(std::string_view rule, std::string_view& section, bool& indexed) {
  const std::size_t open = rule.find('[');
  if (open == std::string_view::npos) {
    section = rule;
    indexed = false;
    return true;
  }
  if (rule.back() != ']') return false;
  section = rule.substr(0, open);
  indexed = true;
  return is_digits(rule.substr(open + 1, rule.size() - open - 2));
}

// A plain (untagged, unquoted) YAML scalar as JSON: null, booleans and numbers keep their
// type, everything else is a string.
boost::json::value plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view digits = s;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) digits.remove_prefix(1);
  const char* begin = s.data() + (s.front() == '+' ? 1 : 0);
  const char* end = s.data() + s.size();
  if (is_digits(digits)) {
    std::int64_t i = 0;
    if (auto r = std::from_chars(begin, end, i); r.ec == std::errc{} && r.ptr == end) return i;
    std::uint64_t u = 0;
    if (auto r = std::from_chars(begin, end, u); r.ec == std::errc{} && r.ptr == end) return u;
  }
  const bool numeric = !digits.empty() && std::any_of(digits.begin(), digits.end(), [](char c) {
    return c >= '0' && c <= '9';
  }) && std::all_of(digits.begin(), digits.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
  });
  if (numeric) {
    double d = 0;
    if (auto r = std::from_chars(begin, end, d); r.ec == std::errc{} && r.ptr == end) return d;
  }
  return boost::json::string(s);
}

// Builds one suite from a document, collecting every error with its position.
class SuiteLoader {
 public:
  SuiteLoader(std::string source, std::string base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  TableTestLoad load(const YAML::Node& doc) {
    TableTestSuite suite;
    suite.file = source_;
    if (!doc.IsMap()) {
      error(doc, "a table test must be a map with `policy` (or `config` and `route`) and `cases`");
      return finish(std::move(suite));
    }
    if (!check_keys(doc, {"policy", "claims", "config", "route", "cases"}, "a table test")) {
      return finish(std::move(suite));
    }
    const YAML::Node policy = doc["policy"];
    const YAML::Node config = doc["config"];
    if (policy && config) {
      error(key_of(doc, "config"), "`policy` and `config` are mutually exclusive");
    } else if (policy) {
      load_policy(doc, policy, suite);
    } else if (config) {
      load_config(doc, config, suite);
    } else {
      error(doc, "a table test needs `policy` (a file or an inline policy) or `config` + `route`");
    }
    const YAML::Node cases = doc["cases"];
    if (!cases) {
      error(doc, "a table test needs `cases`, a list of cases");
    } else if (!cases.IsSequence() || cases.size() == 0) {
      error(key_of(doc, "cases"), "`cases` needs a list of at least one case");
    } else if (errors_.empty()) {
      std::set<std::string> names;
      for (const YAML::Node& c : cases) {
        auto test = load_case(c, suite);
        if (!test) continue;
        if (!names.insert(test->name).second) {
          error(c["name"], "duplicate case name \"" + test->name + "\"");
          continue;
        }
        suite.cases.push_back(std::move(*test));
      }
    }
    return finish(std::move(suite));
  }

 private:
  TableTestLoad finish(TableTestSuite suite) {
    TableTestLoad r;
    if (errors_.empty()) r.suite = std::move(suite);
    r.errors = std::move(errors_);
    return r;
  }

  void error(const YAML::Node& at, std::string message) {
    ConfigError e{source_, 0, 0, std::move(message)};
    const YAML::Mark m = at.Mark();
    if (m.line >= 0 && m.column >= 0) {
      e.line = m.line + 1;
      e.column = m.column + 1;
    }
    errors_.push_back(std::move(e));
  }

  // The key node of `map[name]` (for positions); the map itself when absent.
  static YAML::Node key_of(const YAML::Node& map, std::string_view name) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == name) return kv.first;
    }
    return map;
  }

  bool check_keys(const YAML::Node& map, const std::vector<std::string_view>& allowed,
                  std::string_view what) {
    bool ok = true;
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string{};
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        error(kv.first, "unknown key `" + key + "` in " + std::string(what) +
                            " (valid: " + join(allowed) + ")");
        ok = false;
      } else if (!seen.insert(key).second) {
        error(kv.first, "duplicate key `" + key + "`");
        ok = false;
      }
    }
    return ok;
  }

  std::optional<std::string> string_value(const YAML::Node& value, const YAML::Node& at,
                                          std::string_view what, bool allow_empty = false) {
    if (!value.IsScalar() || (!allow_empty && value.Scalar().empty())) {
      error(value.IsDefined() && !value.IsNull() ? value : at,
            std::string(what) + " needs " + (allow_empty ? "a string" : "a non-empty string"));
      return std::nullopt;
    }
    return value.Scalar();
  }

  std::string resolve(const std::string& path) const {
    if (path.empty() || fs::path(path).is_absolute() || base_dir_.empty()) return path;
    return (fs::path(base_dir_) / path).lexically_normal().string();
  }

  bool readable_file(const YAML::Node& at, std::string_view what, const std::string& path) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return true;
    error(at, std::string(what) + " file '" + path + "' " +
                  (fs::exists(path, ec) ? "is not a regular file" : "does not exist"));
    return false;
  }

  void load_policy(const YAML::Node& doc, const YAML::Node& policy, TableTestSuite& suite) {
    if (doc["route"]) error(key_of(doc, "route"), "`route` needs `config` (not `policy`)");
    if (const YAML::Node claims = doc["claims"]) load_mapping(claims, key_of(doc, "claims"), suite);
    PolicyParseResult parsed;
    if (policy.IsMap()) {
      parsed = parse_policy(policy, source_);
    } else {
      auto ref = string_value(policy, key_of(doc, "policy"),
                              "`policy` (a file relative to this one, or an inline policy)");
      if (!ref) return;
      const std::string file = resolve(*ref);
      if (!readable_file(policy, "policy", file)) return;
      parsed = parse_policy_file(file);
    }
    for (ConfigError& e : parsed.errors) errors_.push_back(std::move(e));
    suite.policy = std::move(parsed.policy);
  }

  void load_mapping(const YAML::Node& claims, const YAML::Node& key, TableTestSuite& suite) {
    if (!claims.IsMap()) {
      error(key, "`claims` needs a map (subject, email, groups, scopes, client_id)");
      return;
    }
    if (!check_keys(claims, {"subject", "email", "groups", "scopes", "client_id"}, "`claims`")) {
      return;
    }
    ClaimsMapping& m = suite.mapping;
    for (const auto& kv : claims) {
      const std::string name = kv.first.Scalar();
      auto value = string_value(kv.second, kv.first, "`claims." + name + "`");
      if (!value) continue;
      (name == "subject"  ? m.subject
       : name == "email"  ? m.email
       : name == "groups" ? m.groups
       : name == "scopes" ? m.scopes
                          : m.client_id) = *value;
    }
  }

  void load_config(const YAML::Node& doc, const YAML::Node& config, TableTestSuite& suite) {
    if (doc["claims"]) {
      error(key_of(doc, "claims"),
            "`claims` is for `policy:` suites; with `config` the route's provider maps claims");
    }
    const YAML::Node route = doc["route"];
    if (!route) error(doc, "`config` needs `route`, the name of the route to test");
    auto ref =
        string_value(config, key_of(doc, "config"), "`config` (a file relative to this one)");
    if (!ref || !route) return;
    auto name = string_value(route, key_of(doc, "route"), "`route`");
    const std::string file = resolve(*ref);
    if (!name || !readable_file(config, "config", file)) return;
    ConfigLoadResult loaded = load_config_file(file);
    if (!loaded.ok()) {
      for (ConfigError& e : loaded.errors) errors_.push_back(std::move(e));
      error(config, "config '" + file + "' has errors (listed above)");
      return;
    }
    const auto& routes = loaded.config->routes;
    const auto it = std::find_if(routes.begin(), routes.end(),
                                 [&](const RouteConfig& r) { return r.name == *name; });
    if (it == routes.end()) {
      std::vector<std::string_view> names;
      for (const RouteConfig& r : routes) names.push_back(r.name);
      error(route, "no route named '" + *name + "' in " + file + " (routes: " + join(names) + ")");
      return;
    }
    suite.config = std::move(loaded.config);
    suite.route_index = static_cast<std::size_t>(it - routes.begin());
  }

  std::optional<boost::json::value> to_json(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return boost::json::value(nullptr);
      case YAML::NodeType::Scalar:
        if (node.Tag() == "?") return plain_scalar(node.Scalar());
        return boost::json::value(boost::json::string(node.Scalar()));
      case YAML::NodeType::Sequence: {
        boost::json::array a;
        for (const YAML::Node& item : node) {
          auto v = to_json(item);
          if (!v) return std::nullopt;
          a.push_back(std::move(*v));
        }
        return boost::json::value(std::move(a));
      }
      case YAML::NodeType::Map: {
        boost::json::object o;
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            error(kv.first, "claim names must be strings");
            return std::nullopt;
          }
          auto v = to_json(kv.second);
          if (!v) return std::nullopt;
          o[kv.first.Scalar()] = std::move(*v);
        }
        return boost::json::value(std::move(o));
      }
    }
    return std::nullopt;
  }

  bool load_request(const YAML::Node& request, const YAML::Node& key, const TableTestSuite& suite,
                    TableTestCase& test) {
    if (!request.IsMap()) {
      error(key, "`request` needs a map (method, path, grpc_method, source_ip)");
      return false;
    }
    if (!check_keys(request, {"method", "path", "grpc_method", "source_ip"}, "`request`")) {
      return false;
    }
    bool ok = true;
    for (const auto& kv : request) {
      const std::string name = kv.first.Scalar();
      auto value =
          string_value(kv.second, kv.first, "`request." + name + "`", name == "grpc_method");
      if (!value) {
        ok = false;
      } else if (name == "method") {
        test.method = *value;
      } else if (name == "grpc_method") {
        test.grpc_method = *value;
      } else if (name == "path") {
        PathNormalizeOptions options;
        if (const RouteConfig* route = suite.route()) {
          options.allow_encoded_slash = route->allow_encoded_slash;
        }
        auto normalized = normalize_target(*value, options);
        if (!normalized) {
          error(kv.second, "path '" + *value + "' is refused by the gateway (400 bad_path: " +
                               std::string(to_string(normalized.error())) + ")");
          ok = false;
        } else {
          test.path = std::move(normalized->path);
        }
      } else {
        boost::system::error_code ec;
        test.source_ip = boost::asio::ip::make_address(*value, ec);
        if (ec) {
          error(kv.second, "`request.source_ip` '" + *value + "' is not an IP address");
          ok = false;
        }
      }
    }
    return ok;
  }

  bool load_expect(const YAML::Node& expect, const YAML::Node& key, const TableTestSuite& suite,
                   TableTestCase& test) {
    // (YAML::Node assignment writes through to the document, so nothing is reassigned.)
    if (expect.IsMap() && !check_keys(expect, {"decision", "rule"}, "`expect`")) return false;
    const YAML::Node decision = expect.IsMap() ? expect["decision"] : expect;
    const YAML::Node rule = expect.IsMap() ? expect["rule"] : YAML::Node(YAML::NodeType::Undefined);
    if (!decision) {
      error(key, "`expect` needs `decision: allow|deny`");
      return false;
    }
    if (!decision.IsScalar() || (decision.Scalar() != "allow" && decision.Scalar() != "deny")) {
      error(decision.IsScalar() ? decision : key,
            "`expect` needs a decision: allow or deny (or {decision: allow|deny, rule: R})");
      return false;
    }
    test.expect_allow = decision.Scalar() == "allow";
    if (!rule) return true;
    auto text = string_value(rule, key, "`expect.rule`");
    if (!text) return false;
    const std::size_t hash = text->rfind('#');
    const std::string_view bare = hash == std::string::npos
                                      ? std::string_view(*text)
                                      : std::string_view(*text).substr(hash + 1);
    std::string_view section;
    bool indexed = false;
    const bool well_formed = split_rule(bare, section, indexed);
    const bool known =
        well_formed &&
        (indexed ? (section == "allow" || section == "deny")
                 : (section == "default" || section == "public" || section == "authentication"));
    if (!known) {
      error(rule, "`expect.rule` '" + *text +
                      "' is not a rule (valid: allow[N], deny[N], default, public, "
                      "authentication; optionally prefixed by the policy file and '#')");
      return false;
    }
    if (!suite.config && (section == "public" || section == "authentication")) {
      error(rule, "rule '" + std::string(section) + "' exists only for `config` + `route` suites");
      return false;
    }
    const bool allows = section == "allow" || section == "public";
    if (allows != test.expect_allow) {
      error(rule, "rule '" + *text + "' cannot make the decision " +
                      (test.expect_allow ? "allow" : "deny"));
      return false;
    }
    test.expect_rule = *text;
    return true;
  }

  std::optional<TableTestCase> load_case(const YAML::Node& node, const TableTestSuite& suite) {
    if (!node.IsMap()) {
      error(node, "a case must be a map with name, identity, request and expect");
      return std::nullopt;
    }
    if (!check_keys(node, {"name", "identity", "request", "expect"}, "a case")) return std::nullopt;
    TableTestCase test;
    const YAML::Mark mark = node.Mark();
    test.line = mark.line + 1;
    test.column = mark.column + 1;
    bool ok = true;
    if (const YAML::Node name = node["name"]) {
      auto s = string_value(name, key_of(node, "name"), "`name`");
      if (s) test.name = *s;
      ok = ok && s.has_value();
    } else {
      error(node, "a case needs `name`");
      ok = false;
    }
    if (const YAML::Node identity = node["identity"]) {
      if (!identity.IsNull()) {
        if (!identity.IsMap()) {
          error(key_of(node, "identity"),
                "`identity` needs a map of claims (a token payload), or null for anonymous");
          ok = false;
        } else if (auto v = to_json(identity)) {
          test.claims = std::make_shared<const boost::json::object>(std::move(v->as_object()));
        } else {
          ok = false;
        }
      }
    } else {
      error(node, "a case needs `identity` (a map of claims, or null for anonymous)");
      ok = false;
    }
    if (const YAML::Node request = node["request"]) {
      ok = load_request(request, key_of(node, "request"), suite, test) && ok;
    }
    if (const YAML::Node expect = node["expect"]) {
      ok = load_expect(expect, key_of(node, "expect"), suite, test) && ok;
    } else {
      error(node, "a case needs `expect` (allow, deny or {decision: ..., rule: ...})");
      ok = false;
    }
    if (!ok) return std::nullopt;
    return test;
  }

  std::string source_;
  std::string base_dir_;
  std::vector<ConfigError> errors_;
};

bool rule_matches(std::string_view expected, const PolicyDecision& actual) {
  const std::size_t hash = expected.rfind('#');
  if (hash == std::string_view::npos) return expected == rule_name(actual);
  if (expected.substr(hash + 1) != rule_name(actual)) return false;
  const std::string_view file = expected.substr(0, hash);
  const std::string_view source = actual.source;
  return source == file || (source.size() > file.size() && source.ends_with(file) &&
                            source[source.size() - file.size() - 1] == '/');
}

}  // namespace

TableTestLoad load_table_test_string(std::string_view yaml, const std::string& source_name,
                                     const std::string& base_dir) {
  try {
    const YAML::Node doc = YAML::Load(std::string(yaml));
    return SuiteLoader(source_name, base_dir).load(doc);
  } catch (const YAML::Exception& e) {
    TableTestLoad r;
    r.errors.push_back(yaml_syntax_error(e, source_name));
    return r;
  }
}

TableTestLoad load_table_test(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    TableTestLoad r;
    r.errors.push_back(ConfigError{path, 0, 0, "cannot read the table test file"});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_table_test_string(text.str(), path, fs::path(path).parent_path().string());
}

TableTestOutcome run_table_case(const TableTestSuite& suite, const TableTestCase& test) {
  TableTestOutcome out;
  out.test = &test;
  const RequestAttributes request = test.request();
  const Identity* identity = nullptr;
  if (const RouteConfig* route = suite.route()) {
    if (test.claims) {
      out.identity = identity_for_route(*suite.config, *route, test.claims);
      identity = &out.identity;
    }
    out.actual = explain_route(*route, identity, request);
  } else {
    if (test.claims) {
      out.identity = map_identity(suite.mapping, test.claims, {}, "jwt");
      identity = &out.identity;
    }
    out.actual.policy = explain_policy(*suite.policy, identity, request);
    out.actual.decision = out.actual.policy->decision;
    out.actual.status = out.actual.decision.allow ? 0 : 403;
  }
  const PolicyDecision& d = out.actual.decision;
  out.passed = d.allow == test.expect_allow &&
               (test.expect_rule.empty() || rule_matches(test.expect_rule, d));
  return out;
}

std::vector<TableTestOutcome> run_table_test(const TableTestSuite& suite) {
  std::vector<TableTestOutcome> out;
  out.reserve(suite.cases.size());
  for (const TableTestCase& test : suite.cases) out.push_back(run_table_case(suite, test));
  return out;
}

std::string outcome_text(const TableTestSuite& suite, const TableTestOutcome& outcome,
                         bool verbose) {
  const TableTestCase& test = *outcome.test;
  const PolicyDecision& d = outcome.actual.decision;
  std::string out = outcome.passed ? "PASS " : "FAIL ";
  out += suite.file + ":" + std::to_string(test.line) + ": " + test.name + "\n";
  if (outcome.passed && !verbose) return out;
  out += "    expected: ";
  out += test.expect_allow ? "allow" : "deny";
  if (!test.expect_rule.empty()) out += " by " + test.expect_rule;
  out += "\n    actual:   ";
  out += d.allow ? "allow" : "deny";
  out += " by " + qualified_rule(d) + " (" + std::string(d.reason) + ")\n";
  out += "    identity: " + identity_text(test.claims ? &outcome.identity : nullptr);
  if (outcome.actual.identity_ignored) out += " (ignored: public routes do not authenticate)";
  out += "\n    request:  " + test.method + " " + test.path;
  if (!test.grpc_method.empty()) out += " grpc " + test.grpc_method;
  out += " from " + test.source_ip.to_string() + "\n";
  if (!outcome.actual.gate.empty()) out += "    gate:     " + outcome.actual.gate + "\n";
  if (outcome.actual.policy) {
    out += "    trace:\n" + trace_text(*outcome.actual.policy, "      ");
  } else if (outcome.actual.gate.empty()) {
    out += "    trace:    (the route has no policy)\n";
  }
  return out;
}

}  // namespace portcullis
