#include "authn/introspection.hpp"

#include "net/form_encoding.hpp"

#include "cache/cache_metrics.hpp"
#include "core/sha256.hpp"

#include <boost/json/serialize.hpp>

#include <openssl/evp.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "authn/audience.hpp"
#include "core/log.hpp"

namespace portcullis {
namespace asio = boost::asio;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

using FetchOutcome = Expected<HttpResult, std::string>;
using Outcome = Expected<IntrospectionResult, IntrospectionError>;

void append_field(std::string& out, std::string_view field) {
  const std::uint64_t n = field.size();
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(field);
}

std::int64_t unix_now(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.system_now().time_since_epoch())
      .count();
}

// A NumericDate as whole seconds (rounded down); nullopt when not a finite number.
std::optional<std::int64_t> numeric_date(const boost::json::value& v) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    return v.get_uint64() > static_cast<std::uint64_t>(kMax)
               ? kMax
               : static_cast<std::int64_t>(v.get_uint64());
  }
  if (!v.is_double() || !std::isfinite(v.get_double())) return std::nullopt;
  const double d = std::floor(v.get_double());
  if (d >= 9.2e18) return kMax;
  if (d <= -9.2e18) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}

// The introspection response judged against the provider's settings at `now`.
Outcome check_response(const HttpResult& response, const IntrospectionOptions& options,
                       std::int64_t now) {
  if (response.status != 200) return unexpected(IntrospectionError::unavailable);
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(response.body, ec);
  if (ec || !body.is_object()) return unexpected(IntrospectionError::unavailable);
  auto claims = std::make_shared<boost::json::object>(std::move(body.get_object()));

  const boost::json::value* active = claims->if_contains("active");
  if (!active || !active->is_bool() || !active->get_bool()) {
    return unexpected(IntrospectionError::inactive);
  }
  // A refresh or ID token is never a bearer access token, whatever the IdP says about it.
  if (const boost::json::value* type = claims->if_contains("token_type")) {
    if (type->is_string() &&
        (type->get_string() == "refresh_token" || type->get_string() == "id_token")) {
      return unexpected(IntrospectionError::inactive);
    }
  }
  if (const boost::json::value* iss = claims->if_contains("iss")) {
    if (!iss->is_string() || iss->get_string() != options.issuer) {
      return unexpected(IntrospectionError::wrong_issuer);
    }
  }
  const boost::json::value* aud = claims->if_contains("aud");
  const bool audience_required = !options.audiences.empty() && !options.audience_waived;
  if (!options.audiences.empty() && (aud || audience_required)) {
    if (!aud || !audience_matches(*aud, options.audiences)) {
      return unexpected(IntrospectionError::wrong_audience);
    }
  }
  std::int64_t exp = 0;
  if (const boost::json::value* exp_value = claims->if_contains("exp")) {
    const auto seconds = numeric_date(*exp_value);
    if (!seconds) return unexpected(IntrospectionError::inactive);
    if (*seconds <= now) return unexpected(IntrospectionError::expired);
    exp = *seconds;
  }
  return IntrospectionResult{std::move(claims), exp, false};
}

// Runs on the control executor; an exception from the fetcher becomes an error value.
// (co_spawn needs a default-constructible result, hence the optional.)
asio::awaitable<std::optional<FetchOutcome>> fetch_on_control(std::shared_ptr<HttpFetcher> fetcher,
                                                              HttpRequestSpec request) {
  try {
    co_return co_await fetcher->fetch(std::move(request));
  } catch (const std::exception& e) {
    co_return FetchOutcome(unexpected(std::string("introspection request failed: ") + e.what()));
  }
}

}  // namespace

std::string_view to_string(IntrospectionError e) {
  switch (e) {
    case IntrospectionError::inactive:
      return "inactive";
    case IntrospectionError::wrong_issuer:
      return "wrong_issuer";
    case IntrospectionError::wrong_audience:
      return "wrong_audience";
    case IntrospectionError::expired:
      return "expired";
    case IntrospectionError::unavailable:
      return "unavailable";
  }
  return "unknown";
}

// Results by SHA-256 of (provider identity, token): never the raw token. Thread-safe; bounded,
// evicting the oldest insertion first; entries expire on the steady clock.
struct Introspector::Cache {
  using Key = std::array<unsigned char, 32>;
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      std::size_t h;
      std::memcpy(&h, k.data(), sizeof h);
      return h;
    }
  };
  struct Entry {
    std::shared_ptr<const boost::json::object> claims;  // null: a negative entry
    std::int64_t exp = 0;
    IntrospectionError error = IntrospectionError::inactive;
    std::chrono::steady_clock::time_point expires;
    std::list<Key>::iterator order;
  };

  std::string key_prefix;  // immutable after construction
  std::size_t max_entries = 0;
  mutable std::mutex mutex;
  std::unordered_map<Key, Entry, KeyHash> entries;
  std::list<Key> order;  // oldest first

  std::optional<Key> key_for(std::string_view token) const {
    Key key{};
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    const bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, key_prefix.data(), key_prefix.size()) == 1 &&
                    EVP_DigestUpdate(ctx, token.data(), token.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, key.data(), &n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok || n != key.size()) return std::nullopt;
    return key;
  }

  std::optional<Outcome> find(const Key& key, std::chrono::steady_clock::time_point now,
                              std::int64_t unix_now) {
    std::lock_guard lock(mutex);
    auto it = entries.find(key);
    if (it == entries.end()) return std::nullopt;
    const Entry& e = it->second;
    if (now >= e.expires) {
      erase(it);
      return std::nullopt;
    }
    if (!e.claims) return Outcome(unexpected(e.error));
    if (e.exp != 0 && e.exp <= unix_now) {  // the wall clock moved past exp
      erase(it);
      return Outcome(unexpected(IntrospectionError::expired));
    }
    return Outcome(IntrospectionResult{e.claims, e.exp, true});
  }

  void store(const Key& key, Entry entry) {
    if (max_entries == 0) return;
    std::lock_guard lock(mutex);
    if (auto it = entries.find(key); it != entries.end()) erase(it);
    order.push_back(key);
    entry.order = std::prev(order.end());
    entries.emplace(key, std::move(entry));
    while (entries.size() > max_entries) erase(entries.find(order.front()));
  }

  std::size_t size() const {
    std::lock_guard lock(mutex);
    return entries.size();
  }

 private:
  void erase(std::unordered_map<Key, Entry, KeyHash>::iterator it) {
    order.erase(it->second.order);
    entries.erase(it);
  }
};

Introspector::Introspector(asio::any_io_executor control, std::shared_ptr<HttpFetcher> fetcher,
                           const Clock& clock, IntrospectionOptions options)
    : options_(std::move(options)),
      control_(std::move(control)),
      fetcher_(std::move(fetcher)),
      clock_(clock),
      cache_(std::make_shared<Cache>()) {
  // Every field that decides whether a token is accepted is part of the key, length-prefixed
  // so no two settings can spell the same bytes.
  std::vector<std::string> audiences = options_.audiences;
  std::sort(audiences.begin(), audiences.end());
  std::string& prefix = cache_->key_prefix;
  append_field(prefix, "portcullis-introspection-v1");
  append_field(prefix, options_.issuer);
  append_field(prefix, options_.endpoint);
  append_field(prefix, options_.client_id);
  append_field(prefix, options_.audience_waived ? "waived" : "required");
  append_field(prefix, std::to_string(audiences.size()));
  for (const auto& a : audiences) append_field(prefix, a);
  cache_->max_entries = options_.max_cache_entries;
}

std::size_t Introspector::cache_size() const {
  return cache_->size();
}

std::optional<Outcome> Introspector::accept_shared(const std::string& value, Cache& cache,
                                                   const std::array<unsigned char, 32>& key) {
  if (!value.starts_with("v1|")) return std::nullopt;
  HttpResult stored;
  stored.status = 200;
  stored.body = value.substr(3);
  const std::int64_t now = unix_now(clock_);
  Outcome outcome = check_response(stored, options_, now);
  if (!outcome) return std::nullopt;  // expired or not acceptable here: ask the IdP
  auto ttl = options_.cache_ttl;
  if (outcome->exp != 0) ttl = std::min(ttl, std::chrono::seconds(outcome->exp - now));
  if (ttl.count() > 0) {
    cache.store(
        key,
        {.claims = outcome->claims, .exp = outcome->exp, .expires = clock_.steady_now() + ttl});
  }
  outcome->from_cache = true;
  return outcome;
}

asio::awaitable<Expected<IntrospectionResult, IntrospectionError>> Introspector::introspect(
    std::string token) {
  const auto keep_alive = weak_from_this().lock();  // null when not owned by a shared_ptr
  const std::shared_ptr<Cache> cache = cache_;
  const std::optional<Cache::Key> key = cache->key_for(token);
  if (!key) co_return unexpected(IntrospectionError::unavailable);
  if (auto hit = cache->find(*key, clock_.steady_now(), unix_now(clock_))) {
    introspection_l1_counters().hit();
    co_return std::move(*hit);
  }
  introspection_l1_counters().miss();

  // The replicas' shared cache: a result another gateway learned, validated again here.
  const std::shared_ptr<SharedCache> shared = shared_;
  const std::string shared_key = shared ? "pc:i:v1:" + to_hex(key->data(), key->size()) : "";
  std::optional<std::string> shared_value;
  if (shared) shared_value = co_await shared->get(shared_key);
  if (shared_value) {
    if (auto outcome = accept_shared(*shared_value, *cache, *key)) co_return std::move(*outcome);
  }

  HttpRequestSpec request;
  request.method = "POST";
  request.url = options_.endpoint;
  request.headers = {
      {"Content-Type", "application/x-www-form-urlencoded"},
      {"Accept", "application/json"},
      {"Authorization", "Basic " + base64_encode(form_encode(options_.client_id) + ":" +
                                                 form_encode(options_.client_secret))},
  };
  request.body = "token=" + form_encode(token) + "&token_type_hint=access_token";

  auto [failure, fetched] = co_await asio::co_spawn(
      control_, fetch_on_control(fetcher_, std::move(request)), use_nothrow);
  if (failure || !fetched || !fetched->has_value()) {
    const std::string reason = fetched && !fetched->has_value() ? fetched->error() : "no response";
    app_log()->warn("introspection at {} for provider {} failed: {}",
                    escape_for_log(options_.endpoint), escape_for_log(options_.provider_name),
                    escape_for_log(reason));
    co_return unexpected(IntrospectionError::unavailable);
  }

  const auto steady = clock_.steady_now();
  const std::int64_t now = unix_now(clock_);
  const HttpResult& response = fetched->value();
  Outcome outcome = check_response(response, options_, now);
  if (outcome) {
    auto ttl = options_.cache_ttl;
    if (outcome->exp != 0) ttl = std::min(ttl, std::chrono::seconds(outcome->exp - now));
    if (ttl.count() > 0) {
      cache->store(*key, {.claims = outcome->claims, .exp = outcome->exp, .expires = steady + ttl});
      if (shared) {
        shared->put(shared_key, "v1|" + boost::json::serialize(*outcome->claims),
                    std::chrono::duration_cast<std::chrono::milliseconds>(ttl));
      }
    }
  } else if (outcome.error() == IntrospectionError::unavailable) {
    app_log()->warn("introspection at {} for provider {}: HTTP {} or unparsable body",
                    escape_for_log(options_.endpoint), escape_for_log(options_.provider_name),
                    response.status);
  } else if (options_.negative_ttl.count() > 0) {
    cache->store(*key, {.error = outcome.error(), .expires = steady + options_.negative_ttl});
  }
  co_return outcome;
}

}  // namespace portcullis
