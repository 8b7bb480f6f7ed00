#pragma once
// SharedCache: what the replicas share to avoid learning the same expensive thing twice
// (introspection results now; SSO sessions later). A miss and an unreachable backend look
// the same to the caller, which then asks the source itself: the cache can only save work,
// never change an answer. Values are short strings the caller versions and validates.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace portcullis {

class SharedCache {
 public:
  virtual ~SharedCache() = default;
  // The value, or nullopt for a miss, a timeout or an unreachable backend. Any executor.
  virtual boost::asio::awaitable<std::optional<std::string>> get(std::string key) = 0;
  // Fire and forget; failures are counted, never reported to the caller. Any thread.
  virtual void put(std::string key, std::string value, std::chrono::milliseconds ttl) = 0;
};

}  // namespace portcullis
