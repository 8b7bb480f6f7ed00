#include "proxy/runtime.hpp"

#include "authn/authenticator.hpp"

namespace portcullis {

std::shared_ptr<const Runtime> Runtime::build(std::shared_ptr<const Config> config,
                                              std::uint64_t generation, AuthnServices* authn) {
  auto rt = std::make_shared<Runtime>();
  rt->config = std::move(config);
  rt->generation = generation;
  rt->router = std::make_unique<Router>(rt->config->routes);
  auto& registry = MetricsRegistry::instance();
  for (const auto& route : rt->config->routes) {
    const UpstreamConfig* up = rt->config->find_upstream(route.upstream);
    rt->route_upstream.push_back(up);
    rt->route_metrics.push_back(&registry.route(route.name));
    rt->route_upstream_metrics.push_back(up ? &registry.upstream(up->name) : nullptr);
  }
  for (const auto& listener : rt->config->listeners) registry.listener(listener.name);
  rt->unmatched_metrics = &registry.route("");
  if (authn && !rt->config->identity_providers.empty()) {
    rt->authenticator = Authenticator::build(*rt->config, *authn, generation);
  }
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
