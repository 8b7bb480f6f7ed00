// libFuzzer target: arbitrary bytes as a policy document (parse_policy_string), and every
// policy that compiles evaluated against fixed identities and requests, so that both the
// parser and the evaluator are fuzzed. Parse errors are expected; crashes, leaks, sanitizer
// reports and broken contracts (checked below, reported with __builtin_trap) are not.
// Built and run by scripts/fuzz.sh; see tests/fuzz/README.md.
#include <yaml-cpp/yaml.h>

#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "authn/identity.hpp"
#include "authz/policy.hpp"
#include "authz/policy_parser.hpp"

namespace {

using portcullis::Identity;
using portcullis::Policy;
using portcullis::PolicyDecision;
using portcullis::PolicyParseResult;
using portcullis::RequestAttributes;

constexpr const char* kSource = "fuzz.yaml";

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Claims of every JSON shape: nested objects, arrays of mixed scalars, a literal key with a
// dot that shadows a nested path, numbers of each kind, null.
constexpr const char* kAliceClaims = R"({
    "realm_access": {"roles": ["admin", "user", 7, true, 1.5, null, {"x": 1}, ["y"]]},
    "tenant.id": "acme",
    "tenant": {"id": "other", "tier": 3},
    "age": 42, "neg": -3, "big": 18446744073709551615, "ratio": 0.1, "huge": 1e308,
    "flag": false, "nul": null, "empty": "", "obj": {},
    "nested": {"a": {"b": {"c": "deep"}}},
    "amr": ["pwd", "mfa"]
})";

// A human user with every field set.
Identity make_alice() {
  Identity id;
  id.provider = "corp";
  id.issuer = "https://idp.example.com/realms/corp";
  id.subject = "f3c1a9e2-alice";
  id.email = "Alice.Liddell@Example.COM";
  id.groups = {"admins", "dev", "Engineering/Platform"};
  id.scopes = {"openid", "orders:read", "orders:write"};
  id.client_id = "web-console";
  id.token_id = "jti-1";
  id.expires_at = 4102444800;
  id.method = "jwt";
  id.claims =
      std::make_shared<const boost::json::object>(boost::json::parse(kAliceClaims).as_object());
  return id;
}

// A service account: no email, no groups, no claims object at all.
Identity make_service() {
  Identity id;
  id.provider = "machines";
  id.issuer = "https://sts.example.net";
  id.subject = "svc-batch";
  id.scopes = {"orders:write"};
  id.client_id = "batch";
  id.method = "introspection";
  return id;
}

struct Fixtures {
  Identity alice = make_alice();
  Identity service = make_service();
  std::vector<const Identity*> identities{nullptr, &alice, &service};
  std::vector<RequestAttributes> requests{
      {"GET", "/admin/users/42", "", boost::asio::ip::make_address("10.1.2.3")},
      {"POST", "/orders.v1.Orders/Create", "/orders.v1.Orders/Create",
       boost::asio::ip::make_address("::ffff:192.168.1.20")},
      {"DELETE", "/", "", boost::asio::ip::make_address("2001:db8::1")},
  };
};

void check_decision(const Policy& policy, const PolicyDecision& d) {
  check(d.source == policy.source);
  if (d.section == "deny") {
    check(!d.allow && d.rule_index >= 0 &&
          static_cast<std::size_t>(d.rule_index) < policy.deny_rules.size());
  } else if (d.section == "allow") {
    check(d.allow && d.rule_index >= 0 &&
          static_cast<std::size_t>(d.rule_index) < policy.allow_rules.size());
  } else {
    check(d.section == "default" && !d.allow && d.rule_index == -1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Fixtures fixtures;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const PolicyParseResult r = portcullis::parse_policy_string(text, kSource);
  // Contract: a policy exactly when there are no errors; every error names the source.
  check(r.ok() == r.errors.empty());
  for (const portcullis::ConfigError& e : r.errors) {
    check(e.file == kSource && e.line >= 0 && e.column >= 0);
  }
  if (!r.ok()) return 0;

  const Policy& policy = *r.policy;
  check(policy.source == kSource && policy.version.size() == 16);
  // A document without a section is an error, and a present section holds at least one rule.
  check(!policy.allow_rules.empty() || !policy.deny_rules.empty());

  // A request made of the input itself, so matchers also see strings related to their patterns.
  const std::string_view head = text.substr(0, 64);
  const RequestAttributes echo{head, text.substr(head.size() / 2), head.substr(head.size() / 3),
                               boost::asio::ip::address_v6::any()};

  for (const Identity* id : fixtures.identities) {
    for (const RequestAttributes& req : fixtures.requests) {
      const PolicyDecision d = policy.evaluate(id, req);
      check_decision(policy, d);
      check(policy.evaluate(id, req).allow == d.allow);  // deterministic
    }
    check_decision(policy, policy.evaluate(id, echo));
  }
  return 0;
}
