#include "cache/redis_shared_cache.hpp"

#include "cache/revocation_sync.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace portcullis {

namespace asio = boost::asio;

RedisSharedCache::RedisSharedCache(asio::any_io_executor control, const RedisConfig& config)
    : control_(control),
      client_(control, config, nullptr,
              RedisClient::Hooks{
                  .on_state = [this](RedisState s) { connected_ = s == RedisState::ready; },
                  .on_round_trip =
                      [this](std::chrono::nanoseconds rtt) {
                        round_trip_.observe(std::chrono::duration<double>(rtt).count());
                      },
              }) {}

void RedisSharedCache::start() {
  asio::post(control_, [self = shared_from_this()] { self->client_.start(); });
}

void RedisSharedCache::stop() {
  asio::post(control_, [self = shared_from_this()] { self->client_.stop(); });
}

asio::awaitable<std::optional<std::string>> RedisSharedCache::get(std::string key) {
  auto self = shared_from_this();
  // The client belongs to the control executor: run the command there, resume here.
  co_return co_await asio::co_spawn(control_, self->run_get(std::move(key)), asio::use_awaitable);
}

asio::awaitable<std::optional<std::string>> RedisSharedCache::run_get(std::string key) {
  std::vector<std::string> args{"GET", std::move(key)};
  RedisResult result = co_await client_.async_command(std::move(args));
  if (!result || result->is_error()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    co_return std::nullopt;
  }
  if (!result->is_string()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    co_return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  co_return std::move(result->str);
}

asio::awaitable<std::optional<RedisReply>> RedisSharedCache::run(std::vector<std::string> args) {
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(control_, self->run_on_control(std::move(args)),
                                    asio::use_awaitable);
}

asio::awaitable<std::optional<RedisReply>> RedisSharedCache::run_on_control(
    std::vector<std::string> args) {
  RedisResult r = co_await client_.async_command(std::move(args));
  if (!r) co_return std::nullopt;
  co_return std::move(*r);
}

void RedisSharedCache::send(std::vector<std::string> args) {
  asio::post(control_, [self = shared_from_this(), args = std::move(args)]() mutable {
    self->client_.command(std::move(args), [](RedisResult) {});
  });
}

void RedisSharedCache::put(std::string key, std::string value, std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return;
  asio::post(control_,
             [self = shared_from_this(), key = std::move(key), value = std::move(value), ttl] {
               self->client_.command({"SET", key, value, "PX", std::to_string(ttl.count())},
                                     [self](RedisResult r) {
                                       if (r && !r->is_error()) {
                                         self->puts_.fetch_add(1, std::memory_order_relaxed);
                                       } else {
                                         self->put_errors_.fetch_add(1, std::memory_order_relaxed);
                                       }
                                     });
             });
}

void RedisSharedCache::publish_revocation(Revocation r) {
  asio::post(control_, [self = shared_from_this(), r = std::move(r)] {
    const auto until = std::chrono::duration_cast<std::chrono::seconds>(r.until.time_since_epoch());
    self->client_.command(
        {"HSET", std::string(kRevocationsKey), revocation_field(r), std::to_string(until.count())},
        [](RedisResult) {});
    self->client_.command({"PUBLISH", std::string(kRevocationsChannel), encode_revocation(r)},
                          [](RedisResult) {});
  });
}

RedisSharedCache::Stats RedisSharedCache::stats() const {
  return {hits_.load(), misses_.load(),     errors_.load(),
          puts_.load(), put_errors_.load(), connected_.load()};
}

}  // namespace portcullis
