#include "h2/h2_upstream_pool.hpp"

#include <openssl/ssl.h>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "core/log.hpp"
#include "http/tls_context.hpp"

namespace portcullis {
namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::string session_key(const UpstreamConfig& upstream) {
  std::string key = upstream.name;
  if (const auto& t = upstream.tls) {
    for (const std::string* part :
         {&t->ca_file, &t->server_name, &t->cert_file, &t->key_file, &t->min_version}) {
      key += '\n';
      key += *part;
    }
  }
  return key;
}

}  // namespace

asio::awaitable<Expected<std::shared_ptr<H2UpstreamSession>, UpstreamFailure>>
H2UpstreamPool::acquire(const UpstreamConfig& upstream, asio::ssl::context* tls,
                        UpstreamMetrics& metrics, UpstreamPool& tcp, std::string& address) {
  const std::string key = session_key(upstream);
  auto& list = sessions_[key];
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
    std::unique_ptr<H2Pump> pump;
    if (tls != nullptr) {
      pump = co_await handshake(upstream, *tls, **conn);
      if (!pump) {
        const int index = (*conn)->endpoint_index;
        tcp.record_failure(upstream, index);
        if (index >= 0 && index < 64) exclude |= std::uint64_t{1} << index;
        failure = UpstreamFailure::connect_failed;
        continue;
      }
    } else {
      pump = make_h2_pump(std::move((*conn)->stream));
    }
    auto session = H2UpstreamSession::start(std::move(pump), address, upstream.timeouts, metrics);
    sessions_[key].push_back(session);
    co_return session;
  }
  co_return unexpected(failure.value_or(UpstreamFailure::connect_failed));
}

asio::awaitable<std::unique_ptr<H2Pump>> H2UpstreamPool::handshake(const UpstreamConfig& upstream,
                                                                   asio::ssl::context& tls,
                                                                   UpstreamConnection& conn) {
  const std::string& name = upstream_tls_name(upstream, conn.endpoint_index);
  beast::ssl_stream<beast::tcp_stream> stream(std::move(conn.stream), tls);
  if (!prepare_upstream_tls(stream.native_handle(), name)) {
    conn.metrics.error(UpstreamErrorKind::tls);
    app_log()->warn("upstream {} ({}): cannot use {} as the TLS server name", upstream.name,
                    conn.address, escape_for_log(name));
    co_return nullptr;
  }
  beast::get_lowest_layer(stream).expires_after(upstream.timeouts.connect);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_nothrow);
  beast::get_lowest_layer(stream).expires_never();
  if (ec) {
    conn.metrics.error(ec == beast::error::timeout ? UpstreamErrorKind::timeout
                                                   : UpstreamErrorKind::tls);
    app_log()->warn("upstream {} ({}): TLS handshake failed for {}: {}", upstream.name,
                    conn.address, escape_for_log(name),
                    tls_handshake_failure(ec, stream.native_handle()));
    co_return nullptr;
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(stream.native_handle(), &alpn, &alpn_len);
  if (alpn_len != 2 || alpn[0] != 'h' || alpn[1] != '2') {
    conn.metrics.error(UpstreamErrorKind::protocol);
    app_log()->warn(
        "upstream {} ({}): the server did not choose h2 by ALPN (protocol h2 needs "
        "HTTP/2 over TLS)",
        upstream.name, conn.address);
    co_return nullptr;
  }
  co_return make_h2_pump(std::move(stream));
}

void H2UpstreamPool::close_all() {
  for (auto& [name, list] : sessions_) {
    for (auto& s : list) s->close_when_idle();
  }
  sessions_.clear();
}

}  // namespace portcullis
