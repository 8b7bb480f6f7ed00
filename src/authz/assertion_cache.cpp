#include "authz/assertion_cache.hpp"

#include <algorithm>
#include <functional>

namespace portcullis {

std::size_t AssertionCache::KeyHash::operator()(const Key& k) const noexcept {
  std::size_t h = std::hash<const void*>{}(k.identity);
  h ^= std::hash<const void*>{}(k.signer) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h ^= k.audience_hash + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

Expected<std::string_view, std::string> AssertionCache::get(
    const AssertionSigner& signer, const std::shared_ptr<const Identity>& identity,
    std::string_view audience, const AssertionConfig& config) {
  using namespace std::chrono;
  const std::int64_t now =
      duration_cast<seconds>(clock_.system_now().time_since_epoch()).count();
  const Key key{identity.get(), &signer, std::hash<std::string_view>{}(audience)};
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    Entry& e = it->second;
    if (e.identity.lock() == identity && e.audience == audience && e.kid == signer.kid() &&
        now < e.refresh_at) {
      return std::string_view(e.token);
    }
    entries_.erase(it);
  }
  std::int64_t ttl = duration_cast<seconds>(config.ttl).count();
  if (identity->expires_at > 0) {
    // Never past the token's expiry; but a token the authenticator accepted within its
    // clock_skew (exp just passed) still gets a few seconds to carry this one request.
    ttl = std::min(ttl, std::max(identity->expires_at - now, kMinTtlSeconds));
  }
  auto token = signer.sign(*identity, audience, config.issuer, seconds(ttl), clock_, random_);
  if (!token) return unexpected(std::move(token.error()));
  ++signatures_;
  if (entries_.size() >= capacity_) entries_.clear();  // bounded; refilled on demand
  Entry& e = entries_[key];
  e.identity = identity;
  e.audience = std::string(audience);
  e.kid = signer.kid();
  e.token = std::move(*token);
  e.refresh_at = now + std::max<std::int64_t>(1, ttl / 2);
  return std::string_view(e.token);
}

}  // namespace portcullis
