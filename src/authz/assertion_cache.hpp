#pragma once
// AssertionCache: per-worker reuse of signed X-Portcullis-Assertion tokens, so an ES256
// signature is paid once per (identity, route) every ttl/2 instead of on every request.
// Not thread-safe: one per worker. Entries are checked against the identity (weak_ptr), the
// route name and the signer's kid, so a freed identity, a renamed route or a new key is a miss.
//
//   AssertionCache cache(clock, random);
//   auto jwt = cache.get(signer, identity_ptr, route.name, config.assertion);
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "authz/assertion_signer.hpp"
#include "core/config.hpp"

namespace portcullis {

class AssertionCache {
 public:
  AssertionCache(const Clock& clock, RandomSource& random, std::size_t capacity = 10000)
      : clock_(clock), random_(random), capacity_(capacity) {}

  // The assertion for `identity` with aud = `audience`; its lifetime is the configured ttl,
  // cut to the identity's own expiry (but at least kMinTtlSeconds, or the ttl when shorter:
  // the authenticator may accept a token within clock_skew after its exp). The view stays
  // valid until the next get().
  Expected<std::string_view, std::string> get(const AssertionSigner& signer,
                                              const std::shared_ptr<const Identity>& identity,
                                              std::string_view audience,
                                              const AssertionConfig& config);

  // The shortest lifetime an assertion gets (for tokens accepted within clock skew).
  static constexpr std::int64_t kMinTtlSeconds = 5;

  std::size_t size() const { return entries_.size(); }
  std::uint64_t signatures() const { return signatures_; }  // how many were made (for tests)

 private:
  struct Key {
    const Identity* identity;
    const AssertionSigner* signer;
    std::size_t audience_hash;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    std::weak_ptr<const Identity> identity;
    std::string audience;
    std::string kid;
    std::string token;
    std::int64_t refresh_at = 0;  // unix seconds
  };

  const Clock& clock_;
  RandomSource& random_;
  std::size_t capacity_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
  std::uint64_t signatures_ = 0;
};

}  // namespace portcullis
