// RedisClient: commands over a RedisLink. Each command is a Pending entry in send order (the
// order replies come back in); hiredis' reply callback owns the entry's removal, so a
// timed-out entry stays (finished) until its late reply or the connection's end drops it.
// Completions are collected while hiredis runs and delivered after it returns (RedisLink's
// after_io hook), so user code never runs inside hiredis.
#include "cache/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <list>
#include <stdexcept>

namespace portcullis {
namespace asio = boost::asio;

struct RedisClient::Impl : std::enable_shared_from_this<Impl> {
  struct Pending {
    Impl* owner = nullptr;
    Callback done;
    std::chrono::steady_clock::time_point sent;
    std::chrono::steady_clock::time_point deadline;
    bool finished = false;  // done has been called (or queued): a late reply is dropped
    std::list<Pending>::iterator self;
  };
  struct Completion {
    Callback done;
    RedisResult result;
    std::chrono::nanoseconds round_trip{-1};
  };

  Impl(asio::any_io_executor ex, RedisConfig cfg, std::string password, RandomSource* random,
       Hooks h, const Clock& c)
      : executor(ex),
        config(cfg),
        hooks(std::move(h)),
        clock(c),
        link(RedisLink::create(ex, std::move(cfg), std::move(password), random)),
        timeout_timer(ex) {}

  void attach() {
    link->set_events(
        {.on_state = [this](RedisState s) { on_state(s); }, .after_io = [this] { drain(); }});
  }

  void on_state(RedisState s) {
    if (s == RedisState::ready) ++stats.connects;
    if (hooks.on_state) hooks.on_state(s);
  }

  void fail_fast(Callback done, RedisError e) {
    ++stats.failed;
    asio::post(executor, [done = std::move(done), e] { done(unexpected(e)); });
  }

  void command(std::vector<std::string> args, Callback done) {
    if (stopped) return fail_fast(std::move(done), RedisError::shutdown);
    if (args.empty()) return fail_fast(std::move(done), RedisError::invalid_argument);
    redisAsyncContext* ac = link->context();
    if (!ac) return fail_fast(std::move(done), RedisError::unavailable);
    if (inflight.size() >= config.max_in_flight) {
      return fail_fast(std::move(done), RedisError::overloaded);
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    const auto now = clock.steady_now();
    auto& p = inflight.emplace_back();
    p.owner = this;
    p.done = std::move(done);
    p.sent = now;
    p.deadline = now + config.command_timeout;
    p.self = std::prev(inflight.end());
    // Only appends to hiredis' output buffer and asks for write interest: no callback runs.
    if (redisAsyncCommandArgv(ac, on_reply, &p, static_cast<int>(argv.size()), argv.data(),
                              lens.data()) != REDIS_OK) {
      auto failed = std::move(p.done);
      inflight.erase(p.self);
      return fail_fast(std::move(failed), RedisError::unavailable);
    }
    ++stats.sent;
    if (!timer_armed) arm_timer(p.deadline);
  }

  static void on_reply(redisAsyncContext*, void* reply, void* privdata) {
    auto* p = static_cast<Pending*>(privdata);
    p->owner->reply(p, static_cast<redisReply*>(reply));
  }

  void reply(Pending* p, const redisReply* r) {
    if (!p->finished) {
      p->finished = true;
      if (r) {
        ++stats.replies;
        if (r->type == REDIS_REPLY_ERROR) ++stats.error_replies;
        completions.push_back(
            {std::move(p->done), RedisReply::from_hiredis(*r), clock.steady_now() - p->sent});
      } else {  // hiredis is freeing the context: the connection broke or was closed
        ++stats.failed;
        completions.push_back({std::move(p->done), unexpected(RedisError::connection_lost)});
      }
    }
    inflight.erase(p->self);
  }

  // One timer for all commands: deadlines grow in send order, so it only ever needs to wait
  // for the oldest unfinished command.
  void arm_timer(std::chrono::steady_clock::time_point deadline) {
    timer_armed = true;
    timeout_timer.expires_after(deadline - clock.steady_now());
    timeout_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      self->timer_armed = false;
      if (ec || self->stopped) return;
      self->expire();
    });
  }

  void expire() {
    const auto now = clock.steady_now();
    for (auto& p : inflight) {
      if (p.finished) continue;
      if (p.deadline > now) {
        arm_timer(p.deadline);
        break;
      }
      p.finished = true;
      ++stats.timeouts;
      completions.push_back({std::move(p.done), unexpected(RedisError::timeout)});
    }
    drain();
  }

  void drain() {
    if (draining) return;
    draining = true;
    auto self = shared_from_this();  // a callback may destroy the RedisClient
    while (!completions.empty()) {
      auto batch = std::move(completions);
      completions.clear();
      for (auto& c : batch) {
        if (c.round_trip.count() >= 0 && hooks.on_round_trip) hooks.on_round_trip(c.round_trip);
        c.done(std::move(c.result));
      }
    }
    draining = false;
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    auto self = shared_from_this();
    link->set_events({});
    link->stop();  // hiredis completes what was in flight with null replies: connection_lost
    timeout_timer.cancel();
    for (auto& c : completions) {
      asio::post(executor, [done = std::move(c.done), result = std::move(c.result)]() mutable {
        done(std::move(result));
      });
    }
    completions.clear();
  }

  asio::any_io_executor executor;
  RedisConfig config;
  Hooks hooks;
  const Clock& clock;
  std::shared_ptr<RedisLink> link;
  std::list<Pending> inflight;
  std::vector<Completion> completions;
  asio::steady_timer timeout_timer;
  bool timer_armed = false;
  bool draining = false;
  bool stopped = false;
  RedisClientStats stats;
};

namespace {

std::string password_or_throw(const RedisConfig& config) {
  auto password = resolve_redis_password(config);
  if (!password) throw std::runtime_error(password.error());
  return std::move(*password);
}

}  // namespace

RedisClient::RedisClient(asio::any_io_executor executor, RedisConfig config, RandomSource* random,
                         Hooks hooks, const Clock& clock) {
  auto password = password_or_throw(config);
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(config), std::move(password),
                                 random, std::move(hooks), clock);
  impl_->attach();
}

RedisClient::~RedisClient() {
  impl_->stop();
}

void RedisClient::start() {
  impl_->link->start();
}

void RedisClient::stop() {
  impl_->stop();
}

void RedisClient::command(std::vector<std::string> args, Callback done) {
  impl_->command(std::move(args), std::move(done));
}

// The initiation of async_command, a named type rather than a lambda: GCC 12 destroys a
// lambda temporary inside a co_await expression twice (its captured shared_ptr<Impl> was
// released one time too many per call, freeing the client under its in-flight commands).
struct RedisClient::CommandInitiation {
  std::shared_ptr<Impl> impl;

  template <typename Handler>
  void operator()(Handler handler, std::vector<std::string> args) const {
    // Callback is a std::function (copyable); the coroutine's handler is move-only.
    auto h = std::make_shared<Handler>(std::move(handler));
    auto ex = asio::get_associated_executor(*h, impl->executor);
    impl->command(std::move(args), [h, ex](RedisResult r) {
      asio::dispatch(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
    });
  }
};

// Not a coroutine itself: it returns the awaitable that async_initiate builds.
asio::awaitable<RedisResult> RedisClient::async_command(std::vector<std::string> args) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(RedisResult)>(
      CommandInitiation{impl_}, asio::use_awaitable, std::move(args));
}

RedisState RedisClient::state() const {
  return impl_->link->state();
}

const std::string& RedisClient::last_error() const {
  return impl_->link->last_error();
}

const RedisClientStats& RedisClient::stats() const {
  return impl_->stats;
}

std::size_t RedisClient::in_flight() const {
  return impl_->inflight.size();
}

}  // namespace portcullis
