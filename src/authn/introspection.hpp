#pragma once
// RFC 7662 token introspection for one identity provider, for opaque access tokens (Okta org
// authorization servers, many Auth0/Keycloak set-ups). POSTs token=...&token_type_hint=
// access_token with client_secret_basic to the endpoint, on the control executor.
//
// A response counts only when HTTP 200, JSON, "active": true, its "iss" (when present) equals
// the provider's issuer, its "aud" (when present, or when audiences are required) contains a
// configured audience, and "exp" (when present) is in the future. Results, positive and
// negative, are cached by SHA-256 of (issuer, endpoint, audiences, token) so a token accepted
// by one provider is never a cache hit for another (Oathkeeper CVE-2026-33496); positive
// entries live until min(exp, cache_ttl), negative ones for negative_ttl. The cache is bounded
// (oldest entries evicted). Scopes are re-checked by the caller on every use, cached or not
// (Oathkeeper CVE-2021-32701): the cache stores claims, never a route decision.
#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/shared_cache.hpp"
#include "core/clock.hpp"
#include "core/expected.hpp"
#include "net/http_client.hpp"

namespace portcullis {

struct IntrospectionOptions {
  std::string provider_name;
  std::string issuer;
  std::string endpoint;
  std::string client_id;
  std::string client_secret;  // read from the configured file at config load
  std::vector<std::string> audiences;
  bool audience_waived = false;
  std::chrono::seconds cache_ttl{300};
  std::chrono::seconds negative_ttl{10};
  std::size_t max_cache_entries = 100000;
};

enum class IntrospectionError {
  inactive,  // the IdP says the token is not active (or it expired / wrong iss or aud)
  wrong_issuer,
  wrong_audience,
  expired,
  unavailable,  // endpoint unreachable, timeout, non-200, unparsable body
};
std::string_view to_string(IntrospectionError e);

struct IntrospectionResult {
  std::shared_ptr<const boost::json::object> claims;  // the introspection response
  std::int64_t exp = 0;
  bool from_cache = false;
};

class Introspector : public std::enable_shared_from_this<Introspector> {
 public:
  Introspector(boost::asio::any_io_executor control, std::shared_ptr<HttpFetcher> fetcher,
               const Clock& clock, IntrospectionOptions options);
  boost::asio::awaitable<Expected<IntrospectionResult, IntrospectionError>> introspect(
      std::string token);
  const IntrospectionOptions& options() const { return options_; }

  // Results shared with the other replicas (Redis): consulted after this process's cache and
  // before the IdP; a positive result is stored there for min(exp, cache_ttl). A shared
  // value is checked exactly like a fresh IdP response (active, iss, aud, exp), and a miss,
  // an error or a slow Redis just means asking the IdP. Set before use (start-up).
  void set_shared_cache(std::shared_ptr<SharedCache> shared) { shared_ = std::move(shared); }
  std::size_t cache_size() const;

 private:
  struct Cache;
  IntrospectionOptions options_;
  boost::asio::any_io_executor control_;
  std::shared_ptr<HttpFetcher> fetcher_;
  const Clock& clock_;
  std::shared_ptr<Cache> cache_;
  std::shared_ptr<SharedCache> shared_;

  // A value from the shared cache, checked like an IdP response and kept in this process's
  // cache; nullopt when it is not acceptable here.
  std::optional<Expected<IntrospectionResult, IntrospectionError>> accept_shared(
      const std::string& value, Cache& cache, const std::array<unsigned char, 32>& key);
};

}  // namespace portcullis
