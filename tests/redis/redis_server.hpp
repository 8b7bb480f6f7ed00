#pragma once
// RedisServer: a throwaway redis-server for these tests (the C++ twin of
// tests/support/redis.mjs). Starts `redis-server --port P --bind 127.0.0.1 --save ''
// --appendonly no` plus extra arguments in a temporary directory, waits until it answers, and
// stops it by pid (SIGTERM on destruction, kill9() as a crash). Also: a free port, a blocking
// one-off command for setting up and checking state, and run_until() to drive an io_context
// until a condition holds (with a generous limit; nothing asserts how long things took).
//
//   RedisServer redis({"--requirepass", "secret"});
//   auto r = redis_sync_command(redis.port(), {"PUBLISH", "ch", "m"}, "secret");
//   ASSERT_TRUE(run_until(io, [&] { return client.state() == RedisState::ready; }));
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cache/redis_reply.hpp"

namespace portcullis::test {

class RedisServer {
 public:
  // port 0: a free one. Throws std::runtime_error when it cannot start.
  explicit RedisServer(std::vector<std::string> extra_args = {}, std::uint16_t port = 0);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void kill9();  // SIGKILL and reap, as a crash
  void stop();   // SIGTERM and reap

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
  std::string dir_;
};

// The redis-server binary ($REDIS_SERVER or redis-server on PATH); empty when not found.
std::string redis_server_binary();

std::uint16_t free_port();

// One command on a fresh blocking connection (AUTH first when `password` is set).
RedisReply redis_sync_command(std::uint16_t port, const std::vector<std::string>& args,
                              const std::string& password = "");

// Runs handlers on `io` until pred() holds or `limit` passes; false on the limit.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds limit = std::chrono::milliseconds(10000));

// Runs handlers on `io` for `d` (letting late replies and retries happen).
void run_for(boost::asio::io_context& io, std::chrono::milliseconds d);

}  // namespace portcullis::test
