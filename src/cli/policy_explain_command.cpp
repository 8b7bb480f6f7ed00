// `portcullis policy explain`: how a route of a config decides one request, criterion by
// criterion, as the gateway would (authentication gate, policy, public / no-policy defaults,
// shadow policy). Exit 0 allowed, 1 denied, 2 usage or load errors.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>

#include "authz/policy_explain.hpp"
#include "cli/policy_commands.hpp"
#include "core/config_loader.hpp"
#include "http/path_normalizer.hpp"
#include "proxy/router.hpp"

namespace portcullis {
namespace {

constexpr std::string_view kUsage =
    "usage: portcullis policy explain --config FILE --route NAME\n"
    "                                 (--identity ID.json|- | --anonymous)\n"
    "                                 --method M --path P [--source-ip IP]\n"
    "                                 [--grpc-method /pkg.Svc/M] [--format text|json]\n"
    "\n"
    "Shows how route NAME of the config decides one request, as the gateway would: the\n"
    "authentication gate, then the route's policy criterion by criterion (deny rules first,\n"
    "then allow rules; ✓ matched, ✗ not matched, · not evaluated), the decision with its rule\n"
    "and reason, and the shadow policy's decision. ID.json is a JSON object of claims (a\n"
    "decoded access token payload; '-' reads standard input), mapped with the claims mapping\n"
    "of the route's provider whose issuer is the claims' iss (else its first provider).\n"
    "--anonymous explains a request without a token. The path is normalised as the gateway\n"
    "does; --source-ip defaults to 0.0.0.0. Exit 0 allowed, 1 denied, 2 usage or load error.\n";

// The command line, parsed.
struct ExplainArgs {
  std::string config, route, identity, method, path, grpc_method;
  std::string source_ip = "0.0.0.0";
  std::string format = "text";
  bool anonymous = false;
};

int usage_error(const std::string& message) {
  std::cerr << "portcullis: " << message << "\n\n" << kUsage;
  return 2;
}

int load_error(const std::string& message) {
  std::cerr << "portcullis: " << message << "\n";
  return 2;
}

// nullopt when parsed, else the exit code (help: 0 after printing it, errors: 2).
std::optional<int> parse_args(const std::vector<std::string_view>& args, ExplainArgs& out) {
  const std::pair<std::string_view, std::string*> options[] = {
      {"--config", &out.config},
      {"--route", &out.route},
      {"--identity", &out.identity},
      {"--method", &out.method},
      {"--path", &out.path},
      {"--source-ip", &out.source_ip},
      {"--grpc-method", &out.grpc_method},
      {"--format", &out.format},
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--anonymous") {
      out.anonymous = true;
      continue;
    }
    bool known = false;
    for (const auto& [name, target] : options) {
      if (a == name) {
        if (i + 1 >= args.size()) return usage_error(std::string(name) + " needs a value");
        *target = args[++i];
        known = true;
      } else if (a.size() > name.size() && a.starts_with(name) && a[name.size()] == '=') {
        *target = a.substr(name.size() + 1);
        known = true;
      }
      if (known) break;
    }
    if (!known) return usage_error("unexpected argument '" + std::string(a) + "'");
  }
  if (out.config.empty()) return usage_error("policy explain needs --config FILE");
  if (out.route.empty()) return usage_error("policy explain needs --route NAME");
  if (out.anonymous == !out.identity.empty()) {
    return usage_error("policy explain needs exactly one of --identity ID.json and --anonymous");
  }
  if (out.method.empty()) return usage_error("policy explain needs --method M");
  if (out.path.empty()) return usage_error("policy explain needs --path P");
  if (out.format != "text" && out.format != "json") {
    return usage_error("--format must be text or json");
  }
  return std::nullopt;
}

std::optional<std::string> read_identity(const std::string& file) {
  if (file == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Why the router would not send this request to `route` ("" when it would match; the host
// is not known here, so only path and method are checked).
std::string route_mismatch(const RouteConfig& route, std::string_view method,
                           std::string_view path) {
  const RouteMatch& m = route.match;
  if (!m.path.empty() && m.path != path) {
    return "route '" + route.name + "' matches only the path " + m.path;
  }
  if (!m.path_prefix.empty() && !path_has_prefix(path, m.path_prefix)) {
    return "route '" + route.name + "' matches only paths under " + m.path_prefix;
  }
  if (!m.methods.empty() &&
      std::find(m.methods.begin(), m.methods.end(), method) == m.methods.end()) {
    return "route '" + route.name + "' does not match the method " + std::string(method);
  }
  return {};
}

std::string policy_heading(const PolicyBinding& binding) {
  const Policy& p = *binding.compiled;
  return p.source + " (version " + p.version + ")";
}

std::string decision_line(const PolicyDecision& d) {
  return std::string(d.allow ? "ALLOW" : "DENY") + " by " + qualified_rule(d) + " (" +
         std::string(d.reason) + ")";
}

// Everything the report needs, gathered once for both formats.
struct Report {
  const RouteConfig* route = nullptr;
  std::optional<Identity> identity;
  RequestAttributes request;
  std::string path_note;  // how the path was normalised ("" when unchanged)
  std::string warning;    // route_mismatch()
  RouteExplanation result;
};

void print_text(const Report& r) {
  const RouteConfig& route = *r.route;
  const Identity* id = r.identity ? &*r.identity : nullptr;
  std::cout << "route:    " << route.name << " (auth: " << to_string(route.auth) << ")\n";
  std::cout << "policy:   "
            << (route.policy ? policy_heading(*route.policy)
                : route.auth == AuthMode::public_access
                    ? std::string("none (public route: everyone is allowed)")
                    : std::string("none (the route denies everything)"))
            << "\n";
  std::cout << "identity: " << identity_text(id) << "\n";
  if (id) {
    std::cout << "          "
              << (id->provider.empty()
                      ? std::string("mapped with the default claims mapping")
                      : "mapped with the claims mapping of provider '" + id->provider + "'")
              << "\n";
  }
  if (r.result.identity_ignored) {
    std::cout << "          ignored: public routes do not authenticate, the policy sees an "
                 "anonymous request\n";
  }
  std::cout << "request:  " << r.request.method << " " << r.request.path;
  if (!r.request.grpc_method.empty()) std::cout << " grpc " << r.request.grpc_method;
  std::cout << " from " << r.request.source_ip.to_string() << "\n";
  if (!r.path_note.empty()) std::cout << "          " << r.path_note << "\n";
  if (!r.warning.empty()) std::cout << "warning:  " << r.warning << "\n";
  if (!r.result.gate.empty()) std::cout << "gate:     " << r.result.gate << "\n";
  if (r.result.policy) std::cout << "trace:\n" << trace_text(*r.result.policy, "  ");
  std::cout << "decision: " << decision_line(r.result.decision) << "\n";
  if (r.result.shadow) {
    std::cout << "shadow:   " << policy_heading(*route.shadow_policy) << "\n"
              << trace_text(*r.result.shadow, "  ") << "shadow decision: would "
              << decision_line(r.result.shadow->decision) << "\n";
  }
}

void print_json(const Report& r) {
  const Identity* id = r.identity ? &*r.identity : nullptr;
  boost::json::object o;
  o["route"] = r.route->name;
  o["auth"] = to_string(r.route->auth);
  o["identity"] = identity_json(id);
  o["identity_ignored"] = r.result.identity_ignored;
  o["request"] = boost::json::object{{"method", r.request.method},
                                     {"path", r.request.path},
                                     {"grpc_method", r.request.grpc_method},
                                     {"source_ip", r.request.source_ip.to_string()}};
  if (!r.warning.empty()) o["warning"] = r.warning;
  if (!r.result.gate.empty()) o["gate"] = r.result.gate;
  o["status"] = r.result.status;
  o["decision"] = decision_json(r.result.decision);
  if (r.result.policy) {
    o["policy"] = trace_json(*r.result.policy);
  } else if (r.route->policy) {
    o["policy"] = boost::json::object{{"source", r.route->policy->compiled->source},
                                      {"version", r.route->policy->compiled->version}};
  } else {
    o["policy"] = nullptr;
  }
  if (r.result.shadow) o["shadow"] = trace_json(*r.result.shadow);
  std::cout << boost::json::serialize(o) << "\n";
}

}  // namespace

int run_policy_explain(const std::vector<std::string_view>& args) {
  ExplainArgs a;
  if (auto code = parse_args(args, a)) return *code;

  boost::system::error_code ec;
  const auto source_ip = boost::asio::ip::make_address(a.source_ip, ec);
  if (ec) return usage_error("--source-ip '" + a.source_ip + "' is not an IP address");

  std::shared_ptr<const boost::json::object> claims;
  if (!a.anonymous) {
    auto text = read_identity(a.identity);
    if (!text) return load_error(a.identity + ": cannot read the identity file");
    boost::system::error_code jec;
    boost::json::value v = boost::json::parse(*text, jec);
    if (jec) return load_error(a.identity + ": not valid JSON: " + jec.message());
    if (!v.is_object()) {
      return load_error(a.identity + ": the identity must be a JSON object of claims");
    }
    claims = std::make_shared<const boost::json::object>(std::move(v.as_object()));
  }

  const ConfigLoadResult loaded = load_config_file(a.config);
  if (!loaded.ok()) {
    for (const ConfigError& e : loaded.errors) std::cerr << e.to_string() << "\n";
    return load_error(a.config + " has errors");
  }
  const Config& config = *loaded.config;
  const RouteConfig* route = nullptr;
  std::string names;
  for (const RouteConfig& r : config.routes) {
    if (r.name == a.route) route = &r;
    names += (names.empty() ? "" : ", ") + r.name;
  }
  if (!route) return load_error("no route named '" + a.route + "' (routes: " + names + ")");

  PathNormalizeOptions options;
  options.allow_encoded_slash = route->allow_encoded_slash;
  auto normalized = normalize_target(a.path, options);
  if (!normalized) {
    return load_error("the gateway refuses the path '" + a.path +
                      "' (400 bad_path: " + std::string(to_string(normalized.error())) + ")");
  }

  Report report;
  report.route = route;
  if (claims) report.identity = identity_for_route(config, *route, claims);
  report.request = {a.method, normalized->path, a.grpc_method, source_ip};
  if (normalized->path != a.path) {
    report.path_note = "normalised from " + a.path + " as the gateway does";
  }
  report.warning = route_mismatch(*route, a.method, normalized->path);
  report.result =
      explain_route(*route, report.identity ? &*report.identity : nullptr, report.request);

  if (a.format == "json") {
    print_json(report);
  } else {
    print_text(report);
  }
  return report.result.decision.allow ? 0 : 1;
}

}  // namespace portcullis
