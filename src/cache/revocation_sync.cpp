#include "cache/revocation_sync.hpp"

#include <algorithm>
#include <charconv>

#include "core/log.hpp"

#include <spdlog/spdlog.h>

namespace portcullis {

std::string revocation_field(const Revocation& r) {
  std::string out(revocation_kind_name(r.kind));
  out += ' ';
  out += r.value;
  return out;
}

std::optional<Revocation> revocation_from_entry(std::string_view field, std::string_view until) {
  // The wire format's parser does all the checking: "v1 <kind> <until> <value>".
  const auto space = field.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string message = "v1 ";
  message += field.substr(0, space);
  message += ' ';
  message += until;
  message += field.substr(space);
  return parse_revocation(message);
}

RevocationSync::RevocationSync(boost::asio::any_io_executor executor, const RedisConfig& config,
                               RevocationList& revocations)
    : revocations_(revocations),
      // HGETALL is off the request path and may return many entries: a generous timeout, so
      // a briefly slow Redis does not make a replica re-read the hash again and again.
      client_(executor,
              [&config] {
                RedisConfig c = config;
                c.command_timeout = std::max(c.command_timeout, std::chrono::milliseconds(5000));
                return c;
              }()),
      subscriber_(executor, config, std::string(kRevocationsChannel),
                  RedisSubscriber::Handlers{
                      [this](std::string_view, std::string_view message) {
                        if (auto r = parse_revocation(message)) {
                          if (revocations_.apply(*r)) {
                            applied_.fetch_add(1, std::memory_order_relaxed);
                            app_log()->info("revocation applied: {} {}",
                                            revocation_kind_name(r->kind),
                                            escape_for_log(r->value));
                          }
                        } else {
                          app_log()->warn("ignoring a malformed revocation message");
                        }
                      },
                      [this](std::uint64_t) { reload_all(); },
                      [this](RedisState state) {
                        if (state != RedisState::ready && synced_.exchange(false)) {
                          app_log()->warn(
                              "Redis unreachable: keeping the {} known revocations, new ones "
                              "arrive when it is back",
                              revocations_.snapshot()->size());
                        }
                      }}),
      prune_timer_(executor) {}

RevocationSync::~RevocationSync() {
  stop();
}

void RevocationSync::start() {
  client_.start();
  subscriber_.start();
  schedule_prune();
}

void RevocationSync::stop() {
  *alive_ = false;
  prune_timer_.cancel();
  subscriber_.stop();
  client_.stop();
  synced_.store(false);
}

// After each (re)subscription: messages published while this replica was away are in the
// hash. The subscription comes first, so nothing published after the read is missed.
void RevocationSync::reload_all() {
  client_.command(
      {"HGETALL", std::string(kRevocationsKey)}, [this, alive = alive_](RedisResult result) {
        if (!*alive) return;
        if (!result || result->type != RedisReply::Type::array) {
          app_log()->warn("cannot read the revocations from Redis: {}",
                          result ? result->str : std::string(to_string(result.error())));
          // The client may still be connecting: try again shortly.
          auto retry = std::make_shared<boost::asio::steady_timer>(prune_timer_.get_executor(),
                                                                   std::chrono::milliseconds(200));
          retry->async_wait([this, retry, alive](boost::system::error_code ec) {
            if (!ec && *alive) reload_all();
          });
          return;
        }
        const auto& e = result->elements;
        std::size_t applied = 0;
        for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
          if (auto r = revocation_from_entry(e[i].str, e[i + 1].str)) {
            if (revocations_.apply(*r)) ++applied;
          }
        }
        synced_.store(true);
        app_log()->info("revocations synced from Redis ({} new)", applied);
      });
}

void RevocationSync::schedule_prune() {
  prune_timer_.expires_after(std::chrono::seconds(60));
  prune_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    revocations_.prune();
    schedule_prune();
  });
}

}  // namespace portcullis
