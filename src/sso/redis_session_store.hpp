#pragma once
// RedisSessionStore: SessionStore over the shared cache's Redis connection (cache.redis), so
// that browser sessions, their indexes and their revocations are shared by every replica.
// Commands: GET / GETEX PX (Redis >= 6.2), SET PX [NX], SADD + PEXPIRE, SMEMBERS, DEL, and the
// revocation HSET + PUBLISH of RedisSharedCache::publish_revocation.
//
//   RedisSessionStore store(shared_cache);   // shared_cache outlives the store
//   worker.set_session_store(&store);
#include <memory>

#include "sso/session_store.hpp"

namespace portcullis {

class RedisSharedCache;

class RedisSessionStore final : public SessionStore {
 public:
  explicit RedisSessionStore(std::shared_ptr<RedisSharedCache> redis);

  boost::asio::awaitable<Loaded> load(std::string key, std::chrono::milliseconds touch) override;
  boost::asio::awaitable<bool> save(std::string key, std::string value,
                                    std::chrono::milliseconds ttl) override;
  boost::asio::awaitable<std::optional<bool>> claim(std::string key,
                                                    std::chrono::milliseconds ttl) override;
  void add_to_index(std::string index, std::string member, std::chrono::milliseconds ttl) override;
  boost::asio::awaitable<std::optional<std::vector<std::string>>> index_members(
      std::string index) override;
  void remove(std::vector<std::string> keys) override;
  boost::asio::awaitable<std::optional<std::size_t>> remove_now(
      std::vector<std::string> keys) override;
  void revoke_session(const std::string& sid, std::int64_t until_unix) override;

 private:
  std::shared_ptr<RedisSharedCache> redis_;
};

}  // namespace portcullis
