// Policy evaluation cost: a 50-rule policy (deny rules first, the matching allow rule last),
// evaluated for an authenticated identity. Issue 4 asks for well under 1 us per decision.
#include <benchmark/benchmark.h>

#include <string>

#include "authn/identity.hpp"
#include "authz/policy.hpp"
#include "authz/policy_parser.hpp"
#include "alloc_counter.hpp"

namespace {

std::string fifty_rule_policy() {
  std::string y = "deny:\n  or:\n";
  for (int i = 0; i < 10; ++i) {
    y += "    - email: {ends_with: \"@contractor" + std::to_string(i) + ".example.com\"}\n";
  }
  y += "allow:\n  or:\n";
  for (int i = 0; i < 39; ++i) {
    y += "    - and:\n        - group: {has: team-" + std::to_string(i) +
         "}\n        - http_method: {in: [GET, HEAD]}\n        - http_path: {starts_with: /svc" +
         std::to_string(i) + "/}\n";
  }
  y += "    - and:\n        - group: {has: orders-readers}\n        - scope: {has: "
       "\"orders:read\"}\n"
       "        - http_path: {starts_with: /orders/}\n";
  return y;
}

// Evaluates the 50-rule policy for `path`; reports allocations per decision (must be 0).
void run(benchmark::State& state, const char* path, bool expect_allow) {
  auto parsed = portcullis::parse_policy_string(fifty_rule_policy(), "bench.yaml");
  if (!parsed.ok()) {
    state.SkipWithError("policy did not parse");
    return;
  }
  portcullis::Identity id;
  id.subject = "alice";
  id.email = "alice@example.com";
  id.groups = {"staff", "orders-readers", "oncall"};
  id.scopes = {"openid", "orders:read"};
  portcullis::RequestAttributes req{"GET", path, "", boost::asio::ip::make_address("10.1.2.3")};
  const std::uint64_t before = portcullis::bench::allocations();
  for (auto _ : state) {
    auto d = parsed.policy->evaluate(&id, req);
    benchmark::DoNotOptimize(d.allow);
    if (d.allow != expect_allow) state.SkipWithError("unexpected decision");
  }
  const double allocations = static_cast<double>(portcullis::bench::allocations() - before);
  state.counters["allocs_per_decision"] =
      benchmark::Counter(allocations / static_cast<double>(state.iterations()));
}

// The matching allow rule is the last of 50.
void BM_Policy50Rules(benchmark::State& state) {
  run(state, "/orders/42", true);
}
BENCHMARK(BM_Policy50Rules);

// No rule matches: every rule is evaluated, then default deny.
void BM_Policy50RulesDefaultDeny(benchmark::State& state) {
  run(state, "/nowhere", false);
}
BENCHMARK(BM_Policy50RulesDefaultDeny);

}  // namespace
