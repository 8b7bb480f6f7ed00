#pragma once
// Per-worker cache of verified bearer tokens: raw token -> Identity, so a repeated token costs
// one hash and one comparison instead of a signature check. The map key is the token itself
// (compared in full, so a hash collision can never alias two tokens); entries carry the
// provider that verified them and the authenticator generation, and expire at the token's exp.
// Bounded: when full, expired entries are swept, then an arbitrary entry is evicted.
// Not thread-safe: one per worker.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "authn/identity.hpp"

namespace portcullis {

class TokenCache {
 public:
  explicit TokenCache(std::size_t max_entries = 10000) : max_entries_(max_entries) {}

  struct Hit {
    std::shared_ptr<const Identity> identity;
    int provider_index = -1;
  };
  // A live entry made under `generation`, or an empty Hit.
  Hit find(std::string_view token, std::uint64_t generation, std::int64_t now_seconds);
  void insert(std::string_view token, std::shared_ptr<const Identity> identity, int provider_index,
              std::uint64_t generation, std::int64_t expires_at, std::int64_t now_seconds);
  std::size_t size() const { return map_.size(); }
  // Lookups so far; written by the owning worker only, readable from any thread (metrics).
  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  void clear() { map_.clear(); }

 private:
  struct Entry {
    std::shared_ptr<const Identity> identity;
    int provider_index;
    std::uint64_t generation;
    std::int64_t expires_at;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
  std::size_t max_entries_;
  std::atomic<std::uint64_t> hits_{0}, misses_{0};  // single writer: no contention
};

}  // namespace portcullis
