#pragma once
// The long-lived authentication machinery shared by every config snapshot: one KeyStore and
// one Introspector per identity provider definition, kept across reloads while the provider's
// key source is unchanged (so a reload does not refetch keys), created and started when a new
// definition appears. Owned by the Server; fetches run on its control executor.
#include <boost/asio/any_io_executor.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "authn/introspection.hpp"
#include "authn/key_store.hpp"
#include "core/config.hpp"

namespace portcullis {

class AuthnServices {
 public:
  AuthnServices(boost::asio::any_io_executor control, const Clock& clock);
  ~AuthnServices();

  // Throws std::runtime_error (start-up / reload only), e.g. an unreadable CA file.
  std::shared_ptr<KeyStore> key_store(const IdentityProviderConfig& provider);
  std::shared_ptr<Introspector> introspector(const IdentityProviderConfig& provider);

  // Results the replicas share (Redis), given to every introspector; set at start-up.
  void set_shared_cache(std::shared_ptr<SharedCache> shared) { shared_cache_ = std::move(shared); }

  const Clock& clock() const { return clock_; }
  boost::asio::any_io_executor control() const { return control_; }
  void stop();

  // One HTTP client per (CA file, timeout), on the control executor (JWKS, introspection and
  // the SSO token endpoint share them).
  std::shared_ptr<HttpFetcher> fetcher_for(const std::string& ca_file, Duration timeout);

 private:
  boost::asio::any_io_executor control_;
  const Clock& clock_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<KeyStore>> key_stores_;
  std::map<std::string, std::shared_ptr<Introspector>> introspectors_;
  std::map<std::string, std::shared_ptr<HttpFetcher>> fetchers_;
  std::shared_ptr<SharedCache> shared_cache_;
};

}  // namespace portcullis
