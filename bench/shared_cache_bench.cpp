// The shared (Redis) cache as the introspection path uses it, next to the in-process cache:
// what one lookup costs with Redis up (a hit), and with Redis down (fails fast, then the IdP
// is asked). Needs a redis-server: bench/redis_cache.sh starts one and sets
// PORTCULLIS_BENCH_REDIS=127.0.0.1:PORT; without it these benchmarks report an error.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "cache/redis_shared_cache.hpp"

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
  if (expect_hit) cache->put("pc:bench:key", std::string(600, 'v'), std::chrono::minutes(5));
  // Let it connect (and store) first.
  asio::steady_timer settle(io, std::chrono::milliseconds(300));
  settle.async_wait([](auto) {});
  io.run_for(std::chrono::milliseconds(400));
  io.restart();
  bool failed = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
          auto v = co_await cache->get("pc:bench:key");
          if (v.has_value() != expect_hit) failed = true;
        }
      },
      asio::detached);
  io.run();
  cache->stop();
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  if (failed) state.SkipWithError(expect_hit ? "expected hits" : "expected misses");
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
