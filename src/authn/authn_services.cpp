#include "authn/authn_services.hpp"

#include <algorithm>

namespace portcullis {
namespace {

std::string key_store_signature(const IdentityProviderConfig& p) {
  return p.name + '\n' + p.issuer + '\n' + p.jwks_file + '\n' + p.jwks_uri + '\n' + p.ca_file +
         '\n' + std::to_string(p.jwks.default_refresh.count()) + '/' +
         std::to_string(p.jwks.min_refresh.count()) + '/' +
         std::to_string(p.jwks.max_refresh.count()) + '/' +
         std::to_string(p.jwks.unknown_kid_cooldown.count()) + '/' +
         std::to_string(p.jwks.fetch_timeout.count());
}

std::chrono::seconds seconds(Duration d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d);
}

}  // namespace

AuthnServices::AuthnServices(boost::asio::any_io_executor control, const Clock& clock)
    : control_(std::move(control)), clock_(clock) {}

AuthnServices::~AuthnServices() {
  stop();
}

void AuthnServices::stop() {
  std::lock_guard lock(mutex_);
  for (auto& [key, store] : key_stores_) store->stop();
}

std::shared_ptr<HttpFetcher> AuthnServices::fetcher_for(const std::string& ca_file,
                                                        Duration timeout) {
  std::string key = ca_file + '\n' + std::to_string(timeout.count());
  auto it = fetchers_.find(key);
  if (it != fetchers_.end()) return it->second;
  HttpClientOptions options;
  options.ca_file = ca_file;
  options.timeout = timeout;
  auto fetcher = std::make_shared<HttpClient>(control_, options);
  fetchers_.emplace(key, fetcher);
  return fetcher;
}

std::shared_ptr<KeyStore> AuthnServices::key_store(const IdentityProviderConfig& p) {
  std::lock_guard lock(mutex_);
  auto signature = key_store_signature(p);
  auto it = key_stores_.find(signature);
  // A jwks_file is re-read on every reload (the file may have changed); fetched sets are kept.
  if (it != key_stores_.end() && p.jwks_file.empty()) return it->second;
  KeyStoreOptions options;
  options.provider_name = p.name;
  options.issuer = p.issuer;
  options.jwks_file = p.jwks_file;
  options.jwks_uri = p.jwks_uri;
  options.default_refresh = seconds(p.jwks.default_refresh);
  options.min_refresh = seconds(p.jwks.min_refresh);
  options.max_refresh = seconds(p.jwks.max_refresh);
  options.unknown_kid_cooldown = seconds(p.jwks.unknown_kid_cooldown);
  // Discovery + JWKS are two requests, each bounded by the fetch timeout.
  options.fetch_wait = 2 * p.jwks.fetch_timeout;
  auto store = std::make_shared<KeyStore>(control_, fetcher_for(p.ca_file, p.jwks.fetch_timeout),
                                          clock_, options);
  store->start();
  if (it != key_stores_.end()) {
    it->second->stop();
    it->second = store;
  } else {
    key_stores_.emplace(signature, store);
  }
  return store;
}

std::shared_ptr<Introspector> AuthnServices::introspector(const IdentityProviderConfig& p) {
  if (!p.introspection || p.introspection->mode == IntrospectionMode::never) return nullptr;
  std::lock_guard lock(mutex_);
  const auto& in = *p.introspection;
  std::vector<std::string> audiences = p.audiences;
  std::sort(audiences.begin(), audiences.end());
  std::string signature = p.name + '\n' + p.issuer + '\n' + in.endpoint + '\n' + in.client_id +
                          '\n' + in.client_secret + '\n' + std::to_string(in.cache_ttl.count()) +
                          '\n' + (p.allow_any_audience ? "*" : "");
  for (const auto& a : audiences) signature += '\n' + a;
  auto it = introspectors_.find(signature);
  if (it != introspectors_.end()) return it->second;
  IntrospectionOptions options;
  options.provider_name = p.name;
  options.issuer = p.issuer;
  options.endpoint = in.endpoint;
  options.client_id = in.client_id;
  options.client_secret = in.client_secret;
  options.audiences = p.audiences;
  options.audience_waived = p.allow_any_audience;
  options.cache_ttl = seconds(in.cache_ttl);
  auto introspector = std::make_shared<Introspector>(
      control_, fetcher_for(p.ca_file, p.jwks.fetch_timeout), clock_, options);
  introspector->set_shared_cache(shared_cache_);
  introspectors_.emplace(signature, introspector);
  return introspector;
}

}  // namespace portcullis
