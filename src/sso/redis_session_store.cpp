#include "sso/redis_session_store.hpp"

#include <algorithm>

#include "cache/redis_shared_cache.hpp"
#include "cache/revocations.hpp"

namespace portcullis {

namespace asio = boost::asio;

namespace {

std::string millis(std::chrono::milliseconds ms) {
  return std::to_string(std::max<std::int64_t>(1, ms.count()));
}

}  // namespace

RedisSessionStore::RedisSessionStore(std::shared_ptr<RedisSharedCache> redis)
    : redis_(std::move(redis)) {}

asio::awaitable<SessionStore::Loaded> RedisSessionStore::load(std::string key,
                                                              std::chrono::milliseconds touch) {
  std::vector<std::string> args;
  if (touch.count() > 0) {
    args = {"GETEX", std::move(key), "PX", millis(touch)};
  } else {
    args = {"GET", std::move(key)};
  }
  std::optional<RedisReply> r = co_await redis_->run(std::move(args));
  Loaded out;
  if (!r || r->is_error()) {
    out.unreachable = true;
  } else if (r->is_string()) {
    out.value = std::move(r->str);
  }
  co_return out;
}

asio::awaitable<bool> RedisSessionStore::save(std::string key, std::string value,
                                              std::chrono::milliseconds ttl) {
  std::vector<std::string> args{"SET", std::move(key), std::move(value), "PX", millis(ttl)};
  std::optional<RedisReply> r = co_await redis_->run(std::move(args));
  co_return r && r->is_string() && r->str == "OK";
}

asio::awaitable<std::optional<bool>> RedisSessionStore::claim(std::string key,
                                                              std::chrono::milliseconds ttl) {
  std::vector<std::string> args{"SET", std::move(key), "1", "NX", "PX", millis(ttl)};
  std::optional<RedisReply> r = co_await redis_->run(std::move(args));
  if (!r || r->is_error()) co_return std::nullopt;
  co_return r->is_string() && r->str == "OK";  // nil: the key existed
}

void RedisSessionStore::add_to_index(std::string index, std::string member,
                                     std::chrono::milliseconds ttl) {
  redis_->send({"SADD", index, std::move(member)});
  // Every session of an index lives at most session_ttl from its last save: the newest
  // save's expiry is the latest one.
  redis_->send({"PEXPIRE", std::move(index), millis(ttl)});
}

asio::awaitable<std::optional<std::vector<std::string>>> RedisSessionStore::index_members(
    std::string index) {
  std::vector<std::string> args{"SMEMBERS", std::move(index)};
  std::optional<RedisReply> r = co_await redis_->run(std::move(args));
  if (!r || r->type != RedisReply::Type::array) co_return std::nullopt;
  std::vector<std::string> out;
  for (auto& e : r->elements) {
    if (e.is_string()) out.push_back(std::move(e.str));
  }
  co_return out;
}

void RedisSessionStore::remove(std::vector<std::string> keys) {
  if (keys.empty()) return;
  keys.insert(keys.begin(), "DEL");
  redis_->send(std::move(keys));
}

asio::awaitable<std::optional<std::size_t>> RedisSessionStore::remove_now(
    std::vector<std::string> keys) {
  if (keys.empty()) co_return std::size_t{0};
  keys.insert(keys.begin(), "DEL");
  std::optional<RedisReply> r = co_await redis_->run(std::move(keys));
  if (!r || r->type != RedisReply::Type::integer) co_return std::nullopt;
  co_return static_cast<std::size_t>(std::max<std::int64_t>(0, r->integer));
}

void RedisSessionStore::revoke_session(const std::string& sid, std::int64_t until_unix) {
  redis_->publish_revocation(
      Revocation{RevocationKind::kSession, sid,
                 std::chrono::system_clock::time_point(std::chrono::seconds(until_unix))});
}

}  // namespace portcullis
