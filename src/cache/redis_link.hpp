#pragma once
// RedisLink: one hiredis asynchronous connection (redisAsyncContext) driven by an Asio executor,
// that reconnects by itself. It resolves the address (Asio's resolver, so no blocking DNS),
// connects, sends AUTH and SELECT, and only then reports `ready`; a failed or lost connection
// reports `disconnected` and the next attempt starts after an exponential backoff. The
// connect timeout covers resolve + TCP connect + AUTH + SELECT.
//
// The owner (RedisClient, RedisSubscriber) sends its commands on context() while ready. Owner
// code never runs inside hiredis: hiredis callbacks record what happened, and the owner's
// `after_io` hook runs once hiredis has returned, where it may call back into the link, issue
// commands or stop. Everything happens on the executor's thread; nothing blocks it.
//
//   auto link = RedisLink::create(io.get_executor(), config, password, &random);
//   link->set_events({.on_state = [&](RedisState s) { ... }, .after_io = [&] { ... }});
//   link->start();
//   if (auto* ac = link->context()) redisAsyncCommandArgv(ac, fn, privdata, argc, argv, lens);
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/redis_backoff.hpp"
#include "cache/redis_config.hpp"

struct redisAsyncContext;

namespace portcullis {

enum class RedisState { disconnected, connecting, ready };
std::string_view to_string(RedisState s);

class RedisLink : public std::enable_shared_from_this<RedisLink> {
 public:
  struct Events {
    std::function<void(RedisState)> on_state;  // every transition, in order
    std::function<void()> after_io;            // after each call into hiredis returned
  };

  // `password` as resolved by resolve_redis_password (empty: no AUTH). `random` (may be null:
  // no jitter) must outlive the link.
  static std::shared_ptr<RedisLink> create(boost::asio::any_io_executor executor,
                                           RedisConfig config, std::string password,
                                           RandomSource* random);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void set_events(Events events) { events_ = std::move(events); }
  void start();
  // Closes the connection (hiredis completes its pending callbacks with a null reply) and stops
  // reconnecting. Events are not called from here on.
  void stop();

  RedisState state() const { return state_; }
  redisAsyncContext* context() const;  // non-null only while ready
  const std::string& last_error() const { return last_error_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }
  const RedisConfig& config() const { return config_; }

 private:
  struct Conn;
  RedisLink(boost::asio::any_io_executor executor, RedisConfig config, std::string password,
            RandomSource* random);

  void connect();
  void open(const std::string& ip);
  void fail_attempt(std::string error);
  void schedule_reconnect();
  void transition(RedisState s);
  void flush();
  void free_context();

  void arm_read(const std::shared_ptr<Conn>& conn);
  void arm_write(const std::shared_ptr<Conn>& conn);
  void context_gone(Conn* conn);
  void handshake_reply(Conn* conn, void* reply, int step);

  // hiredis hooks (C callbacks)
  static void hook_add_read(void* data);
  static void hook_del_read(void* data);
  static void hook_add_write(void* data);
  static void hook_del_write(void* data);
  static void hook_cleanup(void* data);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_handshake(redisAsyncContext* ac, void* reply, void* privdata);

  boost::asio::any_io_executor executor_;
  RedisConfig config_;
  std::string host_;
  int port_ = 6379;
  std::string password_;
  RedisBackoff backoff_;
  Events events_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer reconnect_timer_;
  std::shared_ptr<Conn> conn_;
  RedisState state_ = RedisState::disconnected;
  std::vector<RedisState> transitions_;  // not yet reported
  std::string last_error_;
  std::uint64_t attempt_ = 0;  // generation: stale timer and resolver callbacks compare it
  bool started_ = false;
  bool stopped_ = false;
  bool flushing_ = false;
};

}  // namespace portcullis
