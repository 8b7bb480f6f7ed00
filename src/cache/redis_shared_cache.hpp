#pragma once
// RedisSharedCache: SharedCache over one RedisClient on the control io_context (GET; SET PX).
// Callers on worker executors hop to the control executor for the command and back; a slow
// or down Redis costs at most the command timeout (25 ms by default) and reads as a miss.
// Counts hits, misses and errors and the Redis round trips for /metrics (cache_metrics.hpp).
//
//   auto cache = std::make_shared<RedisSharedCache>(control.get_executor(), redis_config);
//   cache->start();
//   auto v = co_await cache->get("pc:i:v1:...");
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <memory>

#include "admin/metrics.hpp"
#include "cache/redis_client.hpp"
#include "cache/revocations.hpp"
#include "cache/shared_cache.hpp"

namespace portcullis {

class RedisSharedCache final : public SharedCache,
                               public std::enable_shared_from_this<RedisSharedCache> {
 public:
  struct Stats {
    std::uint64_t hits = 0, misses = 0, errors = 0, puts = 0, put_errors = 0;
    bool connected = false;
  };

  // Throws std::runtime_error when the password file cannot be read (start-up only).
  RedisSharedCache(boost::asio::any_io_executor control, const RedisConfig& config);
  void start();
  void stop();

  boost::asio::awaitable<std::optional<std::string>> get(std::string key) override;
  void put(std::string key, std::string value, std::chrono::milliseconds ttl) override;
  // Any command, on the control executor's connection; resumes on the caller's executor.
  // The reply, or nullopt when Redis did not give one (not connected, timeout); GET/SET
  // counters are not touched.
  boost::asio::awaitable<std::optional<RedisReply>> run(std::vector<std::string> args);
  // Fire and forget, from any thread.
  void send(std::vector<std::string> args);
  // Records a revocation for every replica, as `portcullis revoke` does (HSET into the
  // revocations hash, then PUBLISH); fire and forget, from any thread.
  void publish_revocation(Revocation r);
  Stats stats() const;
  const Histogram& round_trip() const { return round_trip_; }  // GET/SET answered in time

 private:
  // On the control executor (the client's).
  boost::asio::awaitable<std::optional<std::string>> run_get(std::string key);
  boost::asio::awaitable<std::optional<RedisReply>> run_on_control(std::vector<std::string> args);

  boost::asio::any_io_executor control_;
  Histogram round_trip_{Histogram::kRedisBounds};  // before client_: its hooks feed it
  RedisClient client_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, errors_{0}, puts_{0}, put_errors_{0};
};

}  // namespace portcullis
