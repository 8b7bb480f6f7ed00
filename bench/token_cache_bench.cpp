// The cached bearer-token check: what a request with an already-verified token costs
// (TokenCache lookup of an ~800-byte token among 10k entries, full-token comparison).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "authn/token_cache.hpp"

namespace {

std::string make_token(int i) {
  std::string t = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.";
  t.append(700, 'x');
  t += "." + std::to_string(i) + std::string(80, 's');
  return t;
}

void BM_CachedTokenCheck(benchmark::State& state) {
  portcullis::TokenCache cache(20000);
  std::vector<std::string> tokens;
  for (int i = 0; i < 10000; ++i) {
    tokens.push_back(make_token(i));
    auto id = std::make_shared<portcullis::Identity>();
    id->subject = "user" + std::to_string(i);
    cache.insert(tokens.back(), id, 0, 1, 2'000'000'000, 1'700'000'000);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto hit = cache.find(tokens[i++ % tokens.size()], 1, 1'700'000'001);
    benchmark::DoNotOptimize(hit.identity.get());
  }
}
BENCHMARK(BM_CachedTokenCheck);

}  // namespace
