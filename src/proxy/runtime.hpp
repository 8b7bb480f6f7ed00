#pragma once
// Runtime: an immutable snapshot of everything a request needs from the config (routes
// compiled into a Router, upstream lookups, metric families). A reload builds a new Runtime
// and publishes it through RuntimeHolder; requests keep the snapshot they started with.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "admin/metrics.hpp"
#include "core/config.hpp"
#include "proxy/router.hpp"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace portcullis {
class AssertionKeys;
class AssertionSigner;
class Authenticator;
class AuthnServices;
class SsoFlow;
}  // namespace portcullis

namespace portcullis {

// Per-route policy decision counters (portcullis_policy_decisions_total).
struct RoutePolicyMetrics {
  LabeledCounter* allow = nullptr;
  LabeledCounter* deny = nullptr;
  LabeledCounter* shadow_allow = nullptr;  // null when the route has no shadow_policy
  LabeledCounter* shadow_deny = nullptr;
  LabeledCounter* shadow_mismatch = nullptr;
};

struct Runtime {
  std::shared_ptr<const Config> config;
  std::uint64_t generation = 0;
  std::unique_ptr<Router> router;
  // Indexed by route index.
  std::vector<const UpstreamConfig*> route_upstream;
  // TLS client contexts of protocol-h2 upstreams (null for cleartext ones), built at load.
  std::vector<std::shared_ptr<boost::asio::ssl::context>> route_upstream_tls;
  std::vector<RouteMetrics*> route_metrics;
  std::vector<UpstreamMetrics*> route_upstream_metrics;
  std::vector<RoutePolicyMetrics> route_policy_metrics;
  RouteMetrics* unmatched_metrics = nullptr;
  std::shared_ptr<const Authenticator> authenticator;       // null when no identity providers
  std::shared_ptr<const AssertionSigner> assertion_signer;  // null: no X-Portcullis-Assertion
  std::shared_ptr<const SsoFlow> sso;                       // null without config.sso

  // Throws std::runtime_error when an identity provider or the assertion key cannot be set
  // up (start-up, reload). Null services leave that part out (tests, tools).
  static std::shared_ptr<const Runtime> build(std::shared_ptr<const Config> config,
                                              std::uint64_t generation, AuthnServices* authn,
                                              AssertionKeys* assertion_keys);
  bool peer_is_trusted(const boost::asio::ip::address& peer) const;
};

// The current Runtime. Workers check generation() (one relaxed atomic load) per request and
// take a new shared_ptr only when it changed.
class RuntimeHolder {
 public:
  void publish(std::shared_ptr<const Runtime> runtime);
  std::shared_ptr<const Runtime> current() const;
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Runtime> runtime_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace portcullis
