// RedisSubscriber: SUBSCRIBE on a RedisLink each time it becomes ready. hiredis keeps the
// subscription callback for the channel and calls it for the confirmation, for every message
// and (with a null reply) when the context goes away; we queue what it reports and deliver it
// from the link's after_io hook.
#include "cache/redis_subscriber.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <stdexcept>
#include <vector>

namespace portcullis {
namespace asio = boost::asio;

struct RedisSubscriber::Impl : std::enable_shared_from_this<Impl> {
  struct Event {
    bool confirmation = false;
    std::string channel;
    std::string message;
  };

  Impl(asio::any_io_executor ex, RedisConfig config, std::string password, std::string ch,
       Handlers h, RandomSource* random)
      : link(RedisLink::create(std::move(ex), std::move(config), std::move(password), random)),
        channel(std::move(ch)),
        handlers(std::move(h)) {}

  void attach() {
    link->set_events(
        {.on_state = [this](RedisState s) { on_state(s); }, .after_io = [this] { drain(); }});
  }

  void on_state(RedisState s) {
    if (s == RedisState::ready) {
      subscribe();
    } else {
      is_subscribed = false;
    }
    if (handlers.on_state) handlers.on_state(s);
  }

  void subscribe() {
    redisAsyncContext* ac = link->context();
    if (!ac) return;
    const char* argv[2] = {"SUBSCRIBE", channel.data()};
    const std::size_t lens[2] = {9, channel.size()};
    if (redisAsyncCommandArgv(ac, on_reply, this, 2, argv, lens) != REDIS_OK) {
      error = "redis: cannot queue SUBSCRIBE";
    }
  }

  static void on_reply(redisAsyncContext*, void* reply, void* privdata) {
    static_cast<Impl*>(privdata)->reply(static_cast<const redisReply*>(reply));
  }

  void reply(const redisReply* r) {
    if (!r) return;  // the context is going away; the link reconnects and we subscribe again
    if (r->type == REDIS_REPLY_ERROR) {
      error = "redis SUBSCRIBE failed: " + std::string(r->str, r->len);
      return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const redisReply* kind = r->element[0];
    if (!kind || kind->type != REDIS_REPLY_STRING) return;
    const std::string_view k(kind->str, kind->len);
    if (k == "subscribe") {
      events.push_back({.confirmation = true});
    } else if (k == "message") {
      const redisReply* ch = r->element[1];
      const redisReply* msg = r->element[2];
      if (!ch || !msg || ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING) return;
      events.push_back({.confirmation = false,
                        .channel = std::string(ch->str, ch->len),
                        .message = std::string(msg->str, msg->len)});
    }
  }

  void drain() {
    if (draining) return;
    draining = true;
    auto self = shared_from_this();  // a handler may destroy the RedisSubscriber
    while (!events.empty() && !stopped) {
      auto batch = std::move(events);
      events.clear();
      for (auto& e : batch) {
        if (stopped) break;
        if (e.confirmation) {
          is_subscribed = true;
          error.clear();
          ++subscriptions;
          if (handlers.on_subscribed) handlers.on_subscribed(subscriptions);
        } else {
          ++messages;
          if (handlers.on_message) handlers.on_message(e.channel, e.message);
        }
      }
    }
    draining = false;
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    auto self = shared_from_this();
    link->set_events({});
    link->stop();
    is_subscribed = false;
    events.clear();
  }

  std::shared_ptr<RedisLink> link;
  std::string channel;
  Handlers handlers;
  std::vector<Event> events;
  std::string error;
  bool is_subscribed = false;
  bool draining = false;
  bool stopped = false;
  std::uint64_t subscriptions = 0;
  std::uint64_t messages = 0;
};

RedisSubscriber::RedisSubscriber(asio::any_io_executor executor, RedisConfig config,
                                 std::string channel, Handlers handlers, RandomSource* random) {
  auto password = resolve_redis_password(config);
  if (!password) throw std::runtime_error(password.error());
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(config), std::move(*password),
                                 std::move(channel), std::move(handlers), random);
  impl_->attach();
}

RedisSubscriber::~RedisSubscriber() {
  impl_->stop();
}

void RedisSubscriber::start() {
  impl_->link->start();
}

void RedisSubscriber::stop() {
  impl_->stop();
}

RedisState RedisSubscriber::state() const {
  return impl_->link->state();
}

bool RedisSubscriber::subscribed() const {
  return impl_->is_subscribed;
}

std::uint64_t RedisSubscriber::subscriptions() const {
  return impl_->subscriptions;
}

std::uint64_t RedisSubscriber::messages() const {
  return impl_->messages;
}

const std::string& RedisSubscriber::last_error() const {
  return impl_->error.empty() ? impl_->link->last_error() : impl_->error;
}

}  // namespace portcullis
