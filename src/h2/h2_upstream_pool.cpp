#include "h2/h2_upstream_pool.hpp"

namespace portcullis {

boost::asio::awaitable<Expected<std::shared_ptr<H2UpstreamSession>, UpstreamFailure>>
H2UpstreamPool::acquire(const UpstreamConfig& upstream, UpstreamMetrics& metrics, UpstreamPool& tcp,
                        std::string& address) {
  auto& list = sessions_[upstream.name];
  // Sessions that closed or were told to go away finish their streams by themselves.
  std::erase_if(list, [](const auto& s) { return s->gone(); });
  for (const auto& s : list) {
    if (s->usable()) {
      address = s->endpoint_key();
      metrics.connections_reused.fetch_add(1, std::memory_order_relaxed);
      co_return s;
    }
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
    sessions_[upstream.name].push_back(session);
    co_return session;
  }
  co_return unexpected(failure.value_or(UpstreamFailure::connect_failed));
}

void H2UpstreamPool::close_all() {
  for (auto& [name, list] : sessions_) {
    for (auto& s : list) s->close_when_idle();
  }
  sessions_.clear();
}

}  // namespace portcullis
