#pragma once
// Policy table tests (`portcullis policy test`): YAML files listing identities and requests
// with the decision a policy must reach, run in CI before a deploy like `opa test`.
// docs/policy-testing.md is the user's guide; the format in short:
//
//   policy: ../policies/orders.yaml   # a file relative to this one, or inline {allow:, deny:}
//   claims: {groups: realm_access.roles}  # optional, `policy:` suites only: the claims
//                                         # mapping (keys as a provider's `claims:`)
//   # or, instead of policy/claims, test a route of a config as the gateway decides it:
//   # config: ../config/demo.yaml        # relative to this file
//   # route: orders-api
//   cases:                            # at least one
//     - name: reader can GET          # required, a non-empty string
//       identity:                     # required: a token's claims (any JSON shape), or null
//         sub: alice                  #   for an anonymous request
//         scope: "orders:read"
//       request: {method: GET, path: /orders/1, source_ip: 10.0.0.1, grpc_method: ""}
//                                     # optional; defaults GET, /, 0.0.0.0, ""
//       expect: {decision: allow, rule: "allow[0]"}   # or just `expect: allow`
//
// `rule` is optional: "allow[N]", "deny[N]", "default", and for `config:` suites also
// "public" (public route without a policy) and "authentication" (refused before the policy:
// no identity on a non-public route, or a missing required scope); prefixed with "SOURCE#"
// it is compared with the full rule ("policies/orders.yaml#allow[0]").
//
// Identities are mapped with ClaimsMapping (defaults, `claims:`, or for `config:` suites the
// mapping of the provider the gateway would pick) via map_identity, so they read like real
// access-token payloads. Plain YAML scalars keep their JSON type (3, true, null); quote them
// for strings. Paths are normalised as the gateway does; a path it refuses is a load error.
// Route suites follow explain_route(): a public route ignores the identity.
#include <boost/asio/ip/address.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authn/identity.hpp"
#include "authz/policy.hpp"
#include "authz/policy_explain.hpp"
#include "core/config.hpp"
#include "core/config_loader.hpp"

namespace portcullis {

// One row of a table test: who asks, what, and the expected outcome.
struct TableTestCase {
  std::string name;
  int line = 0;  // of the case in the test file
  int column = 0;
  std::shared_ptr<const boost::json::object> claims;  // null: anonymous
  std::string method = "GET";
  std::string path = "/";  // normalised
  std::string grpc_method;
  boost::asio::ip::address source_ip;  // 0.0.0.0 unless given
  bool expect_allow = false;
  std::string expect_rule;  // "" = any rule

  RequestAttributes request() const { return {method, path, grpc_method, source_ip}; }
};

// A loaded test file: what is tested (a policy, or a route of a config) and its cases.
struct TableTestSuite {
  std::string file;
  std::shared_ptr<const Policy> policy;  // `policy:` suites
  ClaimsMapping mapping;                 // `policy:` suites
  std::shared_ptr<const Config> config;  // `config:` suites
  std::size_t route_index = 0;           // `config:` suites: index into config->routes
  std::vector<TableTestCase> cases;

  const RouteConfig* route() const { return config ? &config->routes[route_index] : nullptr; }
};

struct TableTestLoad {
  std::optional<TableTestSuite> suite;  // absent when errors is non-empty
  std::vector<ConfigError> errors;      // file:line:column: message
  bool ok() const { return suite.has_value(); }
};

TableTestLoad load_table_test(const std::string& path);

// `source_name` labels messages and inline policies; `base_dir` resolves relative files.
TableTestLoad load_table_test_string(std::string_view yaml, const std::string& source_name,
                                     const std::string& base_dir);

// The result of one case (refers to the suite, which must outlive it).
struct TableTestOutcome {
  const TableTestCase* test = nullptr;
  bool passed = false;
  Identity identity;  // as mapped (empty when anonymous)
  RouteExplanation actual;
};

TableTestOutcome run_table_case(const TableTestSuite& suite, const TableTestCase& test);

std::vector<TableTestOutcome> run_table_test(const TableTestSuite& suite);

// "PASS FILE:LINE: NAME\n", or for a failure "FAIL FILE:LINE: NAME\n" followed by the
// expected and actual decision and rule and the trace, indented. `verbose` adds the trace to
// passing cases too.
std::string outcome_text(const TableTestSuite& suite, const TableTestOutcome& outcome,
                         bool verbose);

}  // namespace portcullis
