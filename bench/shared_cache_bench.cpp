// The shared (Redis) cache as the introspection path uses it, next to the in-process cache:
// what one lookup costs with Redis up (a hit), and with Redis down (fails fast, then the IdP
// is asked). Needs a redis-server: bench/redis_cache.sh starts one and sets
// PORTCULLIS_BENCH_REDIS=127.0.0.1:PORT; without it these benchmarks report an error.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cache/redis_shared_cache.hpp"
#include "latency_counters.hpp"

namespace {

namespace asio = boost::asio;

// Runs `state` iterations of GET key on one io_context (the control thread and the caller
// are the same loop here), waiting for each answer.
void run_gets(benchmark::State& state, const std::string& address, bool expect_hit) {
  asio::io_context io;
  portcullis::RedisConfig config;
  config.address = address;
  auto cache = std::make_shared<portcullis::RedisSharedCache>(io.get_executor(), config);
  cache->start();
  // Let it connect, then store the value the hits read.
  io.run_for(std::chrono::milliseconds(300));
  io.restart();
  if (expect_hit) cache->put("pc:bench:key", std::string(600, 'v'), std::chrono::minutes(5));
  io.run_for(std::chrono::milliseconds(100));
  io.restart();
  bool failed = false;
  std::vector<double> latencies_us;
  latencies_us.reserve(1 << 16);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
          const auto started = std::chrono::steady_clock::now();
          auto v = co_await cache->get("pc:bench:key");
          latencies_us.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started)
                  .count());
          if (v.has_value() != expect_hit) failed = true;
        }
        cache->stop();  // the connection is the io_context's last work: run() returns
      },
      asio::detached);
  io.run();
  if (failed) state.SkipWithError(expect_hit ? "expected hits" : "expected misses");
  set_latency_counters(state, latencies_us);
}

void BM_SharedCacheHitRedisUp(benchmark::State& state) {
  const char* address = std::getenv("PORTCULLIS_BENCH_REDIS");
  if (address == nullptr) {
    state.SkipWithError("set PORTCULLIS_BENCH_REDIS (bench/redis_cache.sh does)");
    return;
  }
  run_gets(state, address, true);
}
BENCHMARK(BM_SharedCacheHitRedisUp)->UseRealTime();

void BM_SharedCacheRedisDown(benchmark::State& state) {
  // A port nothing listens on: every lookup fails fast (unavailable) and reads as a miss.
  run_gets(state, "127.0.0.1:1", false);
}
BENCHMARK(BM_SharedCacheRedisDown)->UseRealTime();

}  // namespace
