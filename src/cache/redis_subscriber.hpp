#pragma once
// RedisSubscriber: a dedicated connection in SUBSCRIBE mode on one channel (e.g. token and
// session revocations), on the worker's io_context. Messages go to on_message in the order
// published. After every (re)connect it subscribes again and, once Redis confirms, calls
// on_subscribed(n) (n = 1 for the first time, 2 after the first reconnect, ...): anything
// published while it was disconnected is lost, so the caller re-reads the state it mirrors
// there. Callbacks run on the io_context's thread, never inside hiredis. Single-threaded like
// RedisClient; stop() (or destruction) is final.
//
//   RedisSubscriber revocations(io.get_executor(), config, "portcullis:revocations",
//       {.on_message = [&](std::string_view, std::string_view m) { cache.revoke(m); },
//        .on_subscribed = [&](std::uint64_t) { cache.resync(); }});
//   revocations.start();
#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cache/redis_config.hpp"
#include "cache/redis_link.hpp"

namespace portcullis {

class RandomSource;

class RedisSubscriber {
 public:
  struct Handlers {
    std::function<void(std::string_view channel, std::string_view message)> on_message;
    std::function<void(std::uint64_t subscription)> on_subscribed;
    std::function<void(RedisState)> on_state;  // the connection's state changes
  };

  // Throws std::runtime_error when the password file cannot be read (start-up only).
  RedisSubscriber(boost::asio::any_io_executor executor, RedisConfig config, std::string channel,
                  Handlers handlers, RandomSource* random = nullptr);
  ~RedisSubscriber();
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  void start();
  void stop();

  RedisState state() const;
  bool subscribed() const;              // ready and confirmed by Redis
  std::uint64_t subscriptions() const;  // confirmed (re)subscriptions so far
  std::uint64_t messages() const;       // messages delivered so far
  const std::string& last_error() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace portcullis
