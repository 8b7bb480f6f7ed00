#include "h2/h2_upstream_pool.hpp"

namespace portcullis {

boost::asio::awaitable<Expected<std::shared_ptr<H2UpstreamSession>, UpstreamFailure>>
H2UpstreamPool::acquire(const UpstreamConfig& upstream, UpstreamMetrics& metrics, UpstreamPool& tcp,
                        std::string& address) {
  if (auto it = sessions_.find(upstream.name); it != sessions_.end()) {
    if (it->second->usable()) {
      address = it->second->endpoint_key();
      metrics.connections_reused.fetch_add(1, std::memory_order_relaxed);
      co_return it->second;
    }
    sessions_.erase(it);  // it finishes its streams and closes by itself
  }
  std::uint64_t exclude = 0;
  std::optional<UpstreamFailure> failure;
  const unsigned attempts = 1 + upstream.retries;
  for (unsigned i = 0; i < attempts; ++i) {
    auto conn = co_await tcp.acquire(upstream, metrics, exclude);
    if (!conn) {
      failure = conn.error();
      if (failure == UpstreamFailure::no_healthy_endpoint) break;
      continue;
    }
    address = (*conn)->address;
    auto session = H2UpstreamSession::start(std::move((*conn)->stream), address);
    sessions_[upstream.name] = session;
    co_return session;
  }
  co_return unexpected(failure.value_or(UpstreamFailure::connect_failed));
}

void H2UpstreamPool::close_all() {
  for (auto& [name, s] : sessions_) s->close();
  sessions_.clear();
}

}  // namespace portcullis
