#pragma once
// SessionStore: the replicas' shared state for browser sessions (Redis through cache.redis).
// With `session_store: redis` SsoFlow keeps each session here (sealed and bound to its id)
// and the cookie holds only a sealed reference; in both modes logout and back-channel
// logout end sessions through it. Every call may fail (Redis down): a load then finds
// nothing (no session: sign in again), a save returns false (the sign-in is refused with
// 503), fire-and-forget calls are dropped. Nothing here can create a session that SsoFlow
// did not seal. Callers run on any executor; implementations hop to their own.
//
//   auto v = co_await store.load(SessionStore::session_key(sid), idle);  // GETEX .. PX idle
//   bool ok = co_await store.save(key, sealed, ttl);                     // SET .. PX ttl
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis {

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  struct Loaded {
    std::optional<std::string> value;  // nullopt: no such key, or the store cannot be reached
    bool unreachable = false;          // the store did not answer (not the same as no key)
  };
  // The value, its time to live reset to `touch` when > 0 (idle expiry).
  virtual boost::asio::awaitable<Loaded> load(std::string key, std::chrono::milliseconds touch) = 0;
  // True once the store confirmed the write.
  virtual boost::asio::awaitable<bool> save(std::string key, std::string value,
                                            std::chrono::milliseconds ttl) = 0;
  // True when `key` did not exist and now does for `ttl` (SET NX): a lock or a replay guard;
  // false when it existed; nullopt when the store cannot be reached.
  virtual boost::asio::awaitable<std::optional<bool>> claim(std::string key,
                                                            std::chrono::milliseconds ttl) = 0;
  // Adds `member` to the set `index`, which then lives `ttl` (fire and forget).
  virtual void add_to_index(std::string index, std::string member,
                            std::chrono::milliseconds ttl) = 0;
  // The set's members; nullopt when the store cannot be reached.
  virtual boost::asio::awaitable<std::optional<std::vector<std::string>>> index_members(
      std::string index) = 0;
  // Deletes keys (fire and forget).
  virtual void remove(std::vector<std::string> keys) = 0;
  // Deletes keys and answers how many existed; nullopt when the store cannot be reached.
  virtual boost::asio::awaitable<std::optional<std::size_t>> remove_now(
      std::vector<std::string> keys) = 0;
  // Revokes a session id on every replica until `until_unix` (the revocations hash and
  // channel `portcullis revoke` uses; fire and forget).
  virtual void revoke_session(const std::string& sid, std::int64_t until_unix) = 0;

  // Key names (stable: other replicas and versions read them).
  static std::string session_key(std::string_view sid);
  // Sessions of a subject / of an IdP session (back-channel logout), by a digest of
  // issuer and value so that keys carry no personal data.
  static std::string subject_index(std::string_view issuer, std::string_view subject);
  static std::string idp_session_index(std::string_view issuer, std::string_view idp_sid);
  static std::string refresh_lock_key(std::string_view sid);
  static std::string logout_jti_key(std::string_view issuer, std::string_view jti);
};

}  // namespace portcullis
