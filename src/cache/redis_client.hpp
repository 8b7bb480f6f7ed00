#pragma once
// RedisClient: a worker's pipelined Redis connection on its io_context (hiredis' async API
// through RedisLink). Many commands may be in flight; each completes exactly once, on the
// io_context's thread, with a reply or a RedisError:
//   - not connected (or still connecting/authenticating): RedisError::unavailable, at once;
//   - more than config.max_in_flight outstanding: RedisError::overloaded, at once;
//   - no reply within config.command_timeout: RedisError::timeout (the late reply is dropped);
//   - connection lost before the reply: RedisError::connection_lost.
// A server error reply (-WRONGTYPE ...) is a reply: RedisReply::Type::error. The connection
// reconnects by itself with backoff; AUTH and SELECT are sent before anything else.
// Single-threaded: construct, call and destroy it on the io_context's thread. stop() (or
// destruction) completes the outstanding commands with connection_lost (posted, not inline);
// commands after stop() fail with RedisError::shutdown. stop() is final.
//
//   RedisClient redis(io.get_executor(), config, &worker.random());
//   redis.start();
//   redis.command({"GET", key}, [](Expected<RedisReply, RedisError> r) { ... });
//   auto r = co_await redis.async_command({"SET", key, value, "PX", "60000"});
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/redis_config.hpp"
#include "cache/redis_link.hpp"
#include "cache/redis_reply.hpp"
#include "core/clock.hpp"
#include "core/expected.hpp"

namespace portcullis {

class RandomSource;

using RedisResult = Expected<RedisReply, RedisError>;

// Counters for metrics; read them on the io_context's thread.
struct RedisClientStats {
  std::uint64_t sent = 0;           // commands written to the connection
  std::uint64_t replies = 0;        // replies received in time (including error replies)
  std::uint64_t error_replies = 0;  // of those, server error replies
  std::uint64_t failed = 0;         // unavailable + overloaded + connection_lost + shutdown
  std::uint64_t timeouts = 0;
  std::uint64_t connects = 0;  // times the connection became ready
  std::uint64_t reconnects() const { return connects > 0 ? connects - 1 : 0; }
};

class RedisClient {
 public:
  using Callback = std::function<void(RedisResult)>;

  // Optional hooks, called on the io_context's thread.
  struct Hooks {
    std::function<void(RedisState)> on_state;                     // every state change
    std::function<void(std::chrono::nanoseconds)> on_round_trip;  // per reply received in time
  };

  // Throws std::runtime_error when the password file cannot be read (start-up only).
  // `random` (null: no jitter) and `clock` must outlive the client.
  RedisClient(boost::asio::any_io_executor executor, RedisConfig config,
              RandomSource* random = nullptr, Hooks hooks = {},
              const Clock& clock = SystemClock::instance());
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();  // begins connecting; commands fail fast (unavailable) until ready
  void stop();   // closes the connection for good; see above

  // Binary-safe: each argument is sent as-is. `done` is never called from inside this call.
  void command(std::vector<std::string> args, Callback done);
  boost::asio::awaitable<RedisResult> async_command(std::vector<std::string> args);

  RedisState state() const;
  const std::string& last_error() const;  // why the last connect failed or the connection broke
  const RedisClientStats& stats() const;
  std::size_t in_flight() const;  // sent, not yet answered (timed-out ones included)

 private:
  struct Impl;
  struct CommandInitiation;
  std::shared_ptr<Impl> impl_;
};

}  // namespace portcullis
