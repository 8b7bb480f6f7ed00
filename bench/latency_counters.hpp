#pragma once
// Per-operation latencies of a benchmark as p50_us / p99_us counters (the benchmarks that wait
// for a round trip record each one; Google Benchmark itself only reports the mean).
//   std::vector<double> us; ... us.push_back(elapsed_us); ...
//   set_latency_counters(state, us);
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <vector>

inline void set_latency_counters(benchmark::State& state, std::vector<double>& latencies_us) {
  if (latencies_us.empty()) return;
  std::sort(latencies_us.begin(), latencies_us.end());
  const auto at = [&](double p) {
    return latencies_us[std::min(latencies_us.size() - 1,
                                 static_cast<std::size_t>(p * latencies_us.size()))];
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
}
