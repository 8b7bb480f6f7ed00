#include "authn/token_cache.hpp"

namespace portcullis {

TokenCache::Hit TokenCache::find(std::string_view token, std::uint64_t generation,
                                 std::int64_t now_seconds) {
  const auto miss = [this] {
    misses_.store(misses_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return Hit{};
  };
  auto it = map_.find(token);
  if (it == map_.end()) return miss();
  if (it->second.generation != generation || it->second.expires_at <= now_seconds) {
    map_.erase(it);
    return miss();
  }
  hits_.store(hits_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return {it->second.identity, it->second.provider_index};
}

void TokenCache::insert(std::string_view token, std::shared_ptr<const Identity> identity,
                        int provider_index, std::uint64_t generation, std::int64_t expires_at,
                        std::int64_t now_seconds) {
  if (max_entries_ == 0 || expires_at <= now_seconds) return;
  if (map_.size() >= max_entries_) {
    std::erase_if(map_, [&](const auto& kv) { return kv.second.expires_at <= now_seconds; });
    if (map_.size() >= max_entries_) map_.erase(map_.begin());
  }
  map_.insert_or_assign(std::string(token),
                        Entry{std::move(identity), provider_index, generation, expires_at});
}

}  // namespace portcullis
