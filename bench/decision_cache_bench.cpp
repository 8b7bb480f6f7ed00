// The decision cache's hot path (issue 5): per-request key derivation, L1 hit and miss among
// 10k entries, the whole "key + L1 hit" a cached request pays (compare BM_Policy50Rules), the
// once-per-identity digest, and the revocation check (per-worker view, empty and 10k entries,
// and the shared list's atomic snapshot load under 4 threads). Reports allocations per op.
#include <benchmark/benchmark.h>

#include <boost/json/parse.hpp>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "authn/identity.hpp"
#include "cache/decision_cache.hpp"
#include "cache/decision_key.hpp"
#include "cache/revocations.hpp"

namespace {

using namespace portcullis;
using namespace std::chrono_literals;

constexpr std::string_view kVersion = "0123456789abcdef";

class FixedClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override { return {}; }
  std::chrono::system_clock::time_point system_now() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  }
};
const FixedClock g_clock;

Identity make_identity(int i) {
  Identity id;
  id.issuer = "https://idp.example.com/oauth2/default";
  id.subject = "user" + std::to_string(i);
  id.email = id.subject + "@example.com";
  id.groups = {"staff", "orders-readers", "oncall"};
  id.scopes = {"openid", "orders:read"};
  id.client_id = "portal";
  id.token_id = "jti-" + std::to_string(i);
  id.expires_at = 1'700'003'600;
  id.claims = std::make_shared<const boost::json::object>(
      boost::json::parse(
          R"({"iss":"https://idp.example.com/oauth2/default","sub":")" + id.subject +
          R"(","aud":"api://mesh","iat":1700000000,"exp":1700003600,"jti":")" + id.token_id +
          R"(","groups":["staff","orders-readers","oncall"],"scp":["openid","orders:read"],"cid":"portal"})")
          .as_object());
  return id;
}

DecisionKeyInput make_input(const IdentityDigest* idd) {
  DecisionKeyInput in;
  in.identity = idd;
  in.route = "orders-api";
  in.method = "GET";
  in.path = "/orders/42";
  in.source_ip = boost::asio::ip::make_address("10.1.2.3");
  in.scope = {true, false};
  in.policy_version = kVersion;
  return in;
}

void report_allocations(benchmark::State& state, std::uint64_t before) {
  const double a = static_cast<double>(bench::allocations() - before);
  state.counters["allocs_per_op"] = benchmark::Counter(
      a / static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1)));
}

struct Fixture {
  std::vector<IdentityDigest> digests;
  std::vector<DecisionKey> keys;
  DecisionCache cache{g_clock, 60s, 20000};
  Fixture() {
    const Identity one = make_identity(0);
    for (int i = 0; i < 10000; ++i) {
      IdentityDigest d = identity_digest(one);
      d[0] = static_cast<std::uint8_t>(i);  // 10k distinct identities, cheaply
      d[1] = static_cast<std::uint8_t>(i >> 8);
      digests.push_back(d);
    }
    for (const auto& d : digests) keys.push_back(make_decision_key(make_input(&d)));
    const CachedDecision value{
        *make_verdict({true, "allow", 3, "matched allow rule", {}}, kVersion), std::nullopt};
    for (const auto& k : keys) cache.insert(k, value, &one, 0);
  }
};

void BM_IdentityDigest(benchmark::State& state) {
  const Identity id = make_identity(1);
  const std::uint64_t before = bench::allocations();
  for (auto _ : state) benchmark::DoNotOptimize(identity_digest(id));
  report_allocations(state, before);
}
BENCHMARK(BM_IdentityDigest);

void BM_DecisionKey(benchmark::State& state) {
  const IdentityDigest idd = identity_digest(make_identity(1));
  const DecisionKeyInput in = make_input(&idd);
  const std::uint64_t before = bench::allocations();
  for (auto _ : state) benchmark::DoNotOptimize(make_decision_key(in));
  report_allocations(state, before);
}
BENCHMARK(BM_DecisionKey);

void BM_L1Hit(benchmark::State& state) {
  Fixture f;
  const DecisionCache::Current cur{kVersion, "", 0};
  std::size_t i = 0;
  const std::uint64_t before = bench::allocations();
  for (auto _ : state) {
    auto hit = f.cache.lookup(f.keys[i++ % f.keys.size()], cur);
    if (!hit) state.SkipWithError("miss");
    benchmark::DoNotOptimize(hit);
  }
  report_allocations(state, before);
}
BENCHMARK(BM_L1Hit);

void BM_L1Miss(benchmark::State& state) {
  Fixture f;
  std::vector<DecisionKey> absent;
  for (const auto& k : f.keys) {
    DecisionKey m = k;
    m.bytes[31] ^= 0xFF;
    absent.push_back(m);
  }
  const DecisionCache::Current cur{kVersion, "", 0};
  std::size_t i = 0;
  const std::uint64_t before = bench::allocations();
  for (auto _ : state) {
    auto hit = f.cache.lookup(absent[i++ % absent.size()], cur);
    benchmark::DoNotOptimize(hit);
  }
  report_allocations(state, before);
}
BENCHMARK(BM_L1Miss);

// What a request answered from L1 pays in total: derive the key, then look it up.
void BM_KeyAndL1Hit(benchmark::State& state) {
  Fixture f;
  const DecisionCache::Current cur{kVersion, "", 0};
  std::size_t i = 0;
  const std::uint64_t before = bench::allocations();
  for (auto _ : state) {
    const DecisionKey k = make_decision_key(make_input(&f.digests[i++ % f.digests.size()]));
    auto hit = f.cache.lookup(k, cur);
    if (!hit) state.SkipWithError("miss");
    benchmark::DoNotOptimize(hit);
  }
  report_allocations(state, before);
}
BENCHMARK(BM_KeyAndL1Hit);

void revocation_check(benchmark::State& state, int entries) {
  RevocationList list(g_clock);
  for (int i = 0; i < entries; ++i) {
    list.revoke(RevocationKind::kSubject, "revoked" + std::to_string(i), g_clock.system_now() + 1h);
  }
  RevocationView view(list);
  const Identity id = make_identity(1);
  const std::uint64_t before = bench::allocations();
  for (auto _ : state) benchmark::DoNotOptimize(view.is_revoked(&id, "session-1"));
  report_allocations(state, before);
}
void BM_RevocationCheckEmpty(benchmark::State& state) {
  revocation_check(state, 0);
}
BENCHMARK(BM_RevocationCheckEmpty);
void BM_RevocationCheck10k(benchmark::State& state) {
  revocation_check(state, 10000);
}
BENCHMARK(BM_RevocationCheck10k);

// The shared list's convenience check (atomic shared_ptr load per call) vs a per-worker view,
// with 4 threads checking at once.
// One revoked subject, built once (function-local statics are initialised thread-safely).
const RevocationList& shared_list() {
  static RevocationList list(g_clock);
  static const bool filled =
      list.revoke(RevocationKind::kSubject, "someone", g_clock.system_now() + 1h);
  (void)filled;
  return list;
}
void BM_RevocationCheckSharedList(benchmark::State& state) {
  const RevocationList& list = shared_list();
  const Identity id = make_identity(1);
  for (auto _ : state) benchmark::DoNotOptimize(list.is_revoked(&id, "session-1"));
}
BENCHMARK(BM_RevocationCheckSharedList)->Threads(1)->Threads(4);
void BM_RevocationCheckView(benchmark::State& state) {
  RevocationView view(shared_list());
  const Identity id = make_identity(1);
  for (auto _ : state) benchmark::DoNotOptimize(view.is_revoked(&id, "session-1"));
}
BENCHMARK(BM_RevocationCheckView)->Threads(1)->Threads(4);

}  // namespace
