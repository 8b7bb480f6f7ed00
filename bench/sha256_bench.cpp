// SHA-256 of one audit-sized line (hash chain, policy versions): the per-record hashing cost.
#include <benchmark/benchmark.h>

#include <string>

#include "core/sha256.hpp"

namespace {

void BM_Sha256AuditLine(benchmark::State& state) {
  const std::string line(700, 'x');
  for (auto _ : state) {
    auto d = portcullis::sha256(line);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_Sha256AuditLine);

}  // namespace
