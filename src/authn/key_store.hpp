#pragma once
// KeyStore: the signing keys of one identity provider, as an immutable JwkSet snapshot that is
// swapped atomically. Sources: a JWKS file (read at start and on reload), a jwks_uri, or OIDC
// discovery from the issuer (GET {issuer}/.well-known/openid-configuration, whose "issuer" must
// equal ours, then its jwks_uri).
//
// Fetching runs on the control executor given at construction, never on a worker's loop:
//  - start(): first fetch, then background refresh after the response's Cache-Control max-age
//    clamped to [min_refresh, max_refresh] (default_refresh when absent); failures retry with
//    backoff (1s doubling up to min_refresh) and never drop the last good set;
//  - refresh_for_unknown_kid(): called from a worker when a token names a kid we do not have;
//    starts at most one fetch per unknown_kid_cooldown (concurrent callers share it), waits for
//    it (bounded by fetch_wait) and resumes on the caller's executor; returns true when a
//    new set was installed (within the cooldown, without a fetch: when one was installed since
//    the cooldown began, so a caller that looked just before the install looks again).
// A fetched document that fails to parse, is empty, or carries no usable key is a failure:
// the last good set stays. current() is lock-light and safe from any thread.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "authn/jwk.hpp"
#include "core/clock.hpp"
#include "net/http_client.hpp"

namespace portcullis {

struct KeyStoreOptions {
  std::string provider_name;
  std::string issuer;
  std::string jwks_file;  // one of jwks_file / jwks_uri, or neither for discovery
  std::string jwks_uri;
  std::chrono::seconds default_refresh{3600};
  std::chrono::seconds min_refresh{60};
  std::chrono::seconds max_refresh{86400};
  std::chrono::seconds unknown_kid_cooldown{30};
  // How long refresh_for_unknown_kid() waits for the fetch (discovery + JWKS) before it gives up
  // waiting (the fetch itself goes on and installs its result); about twice the fetch timeout.
  std::chrono::milliseconds fetch_wait{10000};
};

struct KeyStoreStatus {
  bool has_keys = false;
  std::uint64_t fetches_ok = 0;
  std::uint64_t fetches_failed = 0;
  std::string last_error;
  std::string jwks_uri;                // resolved (from discovery when used)
  std::string introspection_endpoint;  // from discovery, when advertised
  std::string authorization_endpoint;  // likewise (browser sign-in)
  std::string token_endpoint;
  std::string end_session_endpoint;
  std::chrono::seconds next_refresh{0};  // delay chosen after the last fetch (0: none scheduled)
};

class KeyStore : public std::enable_shared_from_this<KeyStore> {
 public:
  KeyStore(boost::asio::any_io_executor control, std::shared_ptr<HttpFetcher> fetcher,
           const Clock& clock, KeyStoreOptions options);
  ~KeyStore();

  // Loads a jwks_file synchronously (throws std::runtime_error with the reason: start-up and
  // reload only), or schedules the first fetch on the control executor.
  void start();
  void stop();  // cancels background refresh

  // The current set; an empty set (no keys) before the first successful load.
  std::shared_ptr<const JwkSet> current() const;

  boost::asio::awaitable<bool> refresh_for_unknown_kid();

  KeyStoreStatus status() const;
  const KeyStoreOptions& options() const { return options_; }

  // For tests and `token inspect`: fetch now (on the control executor) and wait.
  boost::asio::awaitable<bool> refresh_now();

 private:
  struct State;
  KeyStoreOptions options_;
  std::shared_ptr<State> state_;
};

}  // namespace portcullis
