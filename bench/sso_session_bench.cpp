// What a request on an `auth: sso` route pays to find its session (SsoFlow::session), for the
// two stores: the sealed session in the cookie (AES-256-GCM open + JSON), and the session in
// Redis (open the reference, GETEX round trip on loopback, open the stored value). Needs a
// redis-server for the second: bench/sso_session.sh starts one and sets
// PORTCULLIS_BENCH_REDIS=127.0.0.1:PORT.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/redis_shared_cache.hpp"
#include "latency_counters.hpp"
#include "sso/redis_session_store.hpp"
#include "sso/session_store.hpp"
#include "sso/sso_flow.hpp"

namespace {

namespace asio = boost::asio;
using namespace portcullis;

constexpr const char* kKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

class BenchRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(n_++ * 131u);
  }

 private:
  unsigned n_ = 7;
};

SsoConfig bench_config(SessionStoreKind store) {
  SsoConfig c;
  c.provider = "idp";
  c.client_id = "portcullis-sso";
  c.client_secret = "s";
  c.cookie_secrets = {kKey};
  c.session_store = store;
  c.idle_timeout = std::chrono::minutes(30);
  return c;
}

SessionRecord bench_record(std::int64_t now) {
  SessionRecord r;
  r.sid = "bench-session-0001";
  r.provider = "idp";
  r.issuer = "https://idp.example";
  r.subject = "00u1a2b3c4d5e6f7g8h9";
  r.email = "alice@example.com";
  r.groups = {"engineering", "platform", "oncall", "payments-readers", "everyone"};
  r.idp_sid = "idp-sid-1";
  r.issued_at = now;
  r.seen_at = now;
  r.expires_at = now + 8 * 3600;
  return r;
}

// Runs `state` lookups of one session on one io_context; p50/p99 per lookup in counters.
// `done` runs on the loop after the last lookup (it stops what keeps the loop busy).
void run_lookups(benchmark::State& state, const SsoFlow& flow, const std::string& cookie,
                 SessionStore* store, asio::io_context& io, std::int64_t now,
                 const std::function<void()>& done = {}) {
  BenchRandom random;
  const SsoServices svc{nullptr, random, store};
  SsoRequest req;
  req.method = "GET";
  req.path = "/app";
  req.host = "gw.example";
  req.tls = true;
  req.accept = "text/html";
  req.cookies = {cookie};
  bool failed = false;
  std::vector<double> latencies_us;
  latencies_us.reserve(1 << 16);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
          const auto started = std::chrono::steady_clock::now();
          SessionResult r = co_await flow.session(req, now, svc);
          latencies_us.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started)
                  .count());
          if (!r.identity) failed = true;
        }
        if (done) done();
      },
      asio::detached);
  io.run();
  if (failed) state.SkipWithError("the session did not open");
  set_latency_counters(state, latencies_us);
}

void BM_SsoSessionInCookie(benchmark::State& state) {
  const std::int64_t now = 1'800'000'000;
  SsoFlow flow(bench_config(SessionStoreKind::cookie));
  BenchRandom random;
  CookieSealer sealer({*CookieKey::from_file_contents(kKey)}, random);
  const std::string cookie =
      "__Host-portcullis=" + sealer.seal(bench_record(now).to_json(), "session", now + 8 * 3600);
  asio::io_context io;
  run_lookups(state, flow, cookie, nullptr, io, now);
}
BENCHMARK(BM_SsoSessionInCookie)->UseRealTime();

void BM_SsoSessionInRedis(benchmark::State& state) {
  const char* address = std::getenv("PORTCULLIS_BENCH_REDIS");
  if (address == nullptr) {
    state.SkipWithError("set PORTCULLIS_BENCH_REDIS (bench/sso_session.sh does)");
    return;
  }
  const std::int64_t now = 1'800'000'000;
  asio::io_context io;
  RedisConfig config;
  config.address = address;
  auto redis = std::make_shared<RedisSharedCache>(io.get_executor(), config);
  redis->start();
  io.run_for(std::chrono::milliseconds(300));
  io.restart();
  RedisSessionStore store(redis);
  SsoFlow flow(bench_config(SessionStoreKind::redis));
  BenchRandom random;
  CookieSealer sealer({*CookieKey::from_file_contents(kKey)}, random);
  const SessionRecord record = bench_record(now);
  redis->put(SessionStore::session_key(record.sid),
             sealer.seal(record.to_json(), "session:" + record.sid, record.expires_at),
             std::chrono::minutes(5));
  io.run_for(std::chrono::milliseconds(100));
  io.restart();
  const std::string cookie =
      "__Host-portcullis=" +
      sealer.seal(R"({"sid":")" + record.sid + R"("})", "session-ref", record.expires_at);
  run_lookups(state, flow, cookie, &store, io, now, [&] { redis->stop(); });
}
BENCHMARK(BM_SsoSessionInRedis)->UseRealTime();

}  // namespace
