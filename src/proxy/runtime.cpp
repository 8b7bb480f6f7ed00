#include "proxy/runtime.hpp"

#include "authn/authenticator.hpp"
#include "authz/assertion_keys.hpp"
#include "http/tls_context.hpp"
#include "sso/sso_flow.hpp"

#include <map>

namespace portcullis {

std::shared_ptr<const Runtime> Runtime::build(std::shared_ptr<const Config> config,
                                              std::uint64_t generation, AuthnServices* authn,
                                              AssertionKeys* assertion_keys) {
  auto rt = std::make_shared<Runtime>();
  rt->config = std::move(config);
  rt->generation = generation;
  rt->router = std::make_unique<Router>(rt->config->routes);
  auto& registry = MetricsRegistry::instance();
  std::map<std::string, std::shared_ptr<boost::asio::ssl::context>> tls_by_upstream;
  for (const auto& up : rt->config->upstreams) {
    if (up.tls) {
      tls_by_upstream[up.name] =
          make_upstream_tls_context(*up.tls, up.protocol == UpstreamProtocol::http1);
    }
  }
  for (const auto& route : rt->config->routes) {
    const UpstreamConfig* up = rt->config->find_upstream(route.upstream);
    rt->route_upstream.push_back(up);
    auto tls = up ? tls_by_upstream.find(up->name) : tls_by_upstream.end();
    rt->route_upstream_tls.push_back(tls == tls_by_upstream.end() ? nullptr : tls->second);
    rt->route_metrics.push_back(&registry.route(route.name));
    rt->route_upstream_metrics.push_back(up ? &registry.upstream(up->name) : nullptr);
  }
  constexpr std::string_view kDecisions = "portcullis_policy_decisions_total";
  constexpr std::string_view kDecisionsHelp =
      "Policy decisions by route; mode=shadow counts what a shadow_policy would have decided";
  for (const auto& route : rt->config->routes) {
    auto counter = [&](std::string_view mode, std::string_view decision) {
      return &registry.counter(
          kDecisions, kDecisionsHelp,
          prometheus_labels({{"route", route.name}, {"mode", mode}, {"decision", decision}}));
    };
    RoutePolicyMetrics m{counter("enforced", "allow"), counter("enforced", "deny")};
    if (route.shadow_policy) {
      m.shadow_allow = counter("shadow", "allow");
      m.shadow_deny = counter("shadow", "deny");
      m.shadow_mismatch = &registry.counter(
          "portcullis_policy_shadow_mismatch_total",
          "Requests where the shadow_policy decided differently from the enforced policy",
          prometheus_labels({{"route", route.name}}));
    }
    rt->route_policy_metrics.push_back(m);
  }
  for (const auto& listener : rt->config->listeners) registry.listener(listener.name);
  rt->unmatched_metrics = &registry.route("");
  if (authn && !rt->config->identity_providers.empty()) {
    rt->authenticator = Authenticator::build(*rt->config, *authn, generation);
  }
  if (rt->config->sso) rt->sso = std::make_shared<const SsoFlow>(*rt->config->sso);
  if (assertion_keys) rt->assertion_signer = assertion_keys->signer_for(rt->config->assertion);
  return rt;
}

bool Runtime::peer_is_trusted(const boost::asio::ip::address& peer) const {
  for (const auto& cidr : config->server.trusted_proxies) {
    if (cidr.contains(peer)) return true;
  }
  return false;
}

void RuntimeHolder::publish(std::shared_ptr<const Runtime> runtime) {
  std::lock_guard lock(mutex_);
  auto generation = runtime->generation;
  runtime_ = std::move(runtime);
  generation_.store(generation, std::memory_order_release);
}

std::shared_ptr<const Runtime> RuntimeHolder::current() const {
  std::lock_guard lock(mutex_);
  return runtime_;
}

}  // namespace portcullis
