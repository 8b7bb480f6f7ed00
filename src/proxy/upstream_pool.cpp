#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/ssl/stream_base.hpp>
#include <cerrno>
#include <cstdio>

#include "core/log.hpp"
#include "http/tls_context.hpp"

namespace portcullis {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::string endpoint_key(const UpstreamConfig& up, const SocketAddress& a) {
  return up.name + "|" + a.to_string();
}

// A pooled connection is usable when the peer has not closed it and sent nothing unasked.
bool still_open(tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamConnection::UpstreamConnection(asio::any_io_executor ex, UpstreamMetrics& m)
    : stream(ex), metrics(m) {
  // Beast sizes each socket read by the buffer's free capacity: without room, a response body
  // would be read 512 bytes per syscall.
  buffer.reserve(64 * 1024);
  metrics.connections_active.fetch_add(1, std::memory_order_relaxed);
}

UpstreamConnection::~UpstreamConnection() {
  metrics.connections_active.fetch_sub(1, std::memory_order_relaxed);
}

UpstreamPool::UpstreamPool(asio::io_context& io, const Clock& clock) : io_(io), clock_(clock) {}

UpstreamPool::UpstreamState& UpstreamPool::state_for(const UpstreamConfig& upstream) {
  auto it = upstreams_.find(upstream.name);
  if (it == upstreams_.end()) {
    it = upstreams_.emplace(upstream.name, UpstreamState{}).first;
  }
  if (!it->second.picker || !it->second.picker->same_shape(upstream)) {
    it->second.picker = std::make_unique<EndpointPicker>(upstream);
  }
  it->second.idle_timeout = upstream.timeouts.idle;
  return it->second;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::take_idle(
    const std::string& key, std::chrono::steady_clock::time_point now, Duration idle_timeout) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& list = it->second;
  while (!list.empty()) {
    auto conn = std::move(list.back());
    list.pop_back();
    if (now - conn->idle_since < idle_timeout && still_open(conn->stream.socket())) {
      conn->reused = true;
      return conn;
    }
  }
  return nullptr;
}

asio::awaitable<Expected<std::unique_ptr<UpstreamConnection>, UpstreamFailure>>
UpstreamPool::acquire(const UpstreamConfig& upstream, UpstreamMetrics& metrics,
                      std::uint64_t& exclude, asio::ssl::context* tls) {
  auto& state = state_for(upstream);
  auto now = clock_.steady_now();
  int index = state.picker->pick(now, exclude);
  if (index < 0) {
    metrics.error(UpstreamErrorKind::no_healthy);
    co_return unexpected(UpstreamFailure::no_healthy_endpoint);
  }
  const auto& address = upstream.endpoints[index].address;
  std::string key = endpoint_key(upstream, address);
  if (tls != nullptr) {
    // A reload builds new contexts (CA, client certificate): never reuse a connection that
    // was verified under the old one.
    char tag[32];
    std::snprintf(tag, sizeof tag, "|tls@%p", static_cast<void*>(tls));
    key += tag;
  }
  if (auto conn = take_idle(key, now, state.idle_timeout)) {
    conn->endpoint_index = index;
    metrics.connections_reused.fetch_add(1, std::memory_order_relaxed);
    co_return conn;
  }

  auto conn = std::make_unique<UpstreamConnection>(io_.get_executor(), metrics);
  conn->endpoint_key = key;
  conn->endpoint_index = index;
  conn->address = address.to_string();
  conn->stream.expires_after(upstream.timeouts.connect);
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  if (!ec) {
    std::tie(ec) =
        co_await conn->stream.async_connect(tcp::endpoint(ip, address.port), use_nothrow);
  } else {
    tcp::resolver resolver(io_);
    auto [rec, results] =
        co_await resolver.async_resolve(address.host, std::to_string(address.port), use_nothrow);
    ec = rec;
    if (!ec) {
      auto [cec, ep] = co_await conn->stream.async_connect(results, use_nothrow);
      ec = cec;
    }
  }
  if (ec) {
    bool timed_out = ec == boost::beast::error::timeout;
    metrics.error(timed_out ? UpstreamErrorKind::timeout : UpstreamErrorKind::connect);
    state.picker->record_failure(index, clock_.steady_now());
    if (index < 64) exclude |= std::uint64_t{1} << index;
    co_return unexpected(timed_out ? UpstreamFailure::connect_timeout
                                   : UpstreamFailure::connect_failed);
  }
  conn->stream.socket().set_option(tcp::no_delay(true), ec);
  if (tls != nullptr) {
    std::string why = co_await handshake(upstream, *tls, *conn);
    if (!why.empty()) {
      app_log()->warn("upstream {} ({}): {}", upstream.name, conn->address, why);
      state.picker->record_failure(index, clock_.steady_now());
      if (index < 64) exclude |= std::uint64_t{1} << index;
      co_return unexpected(UpstreamFailure::connect_failed);
    }
  }
  conn->stream.expires_never();
  metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
  co_return conn;
}

asio::awaitable<std::string> UpstreamPool::handshake(const UpstreamConfig& upstream,
                                                     asio::ssl::context& tls,
                                                     UpstreamConnection& conn) {
  const std::string& name = upstream_tls_name(upstream, conn.endpoint_index);
  auto stream = std::make_unique<beast::ssl_stream<beast::tcp_stream&>>(conn.stream, tls);
  if (!prepare_upstream_tls(stream->native_handle(), name)) {
    conn.metrics.error(UpstreamErrorKind::tls);
    co_return "cannot use " + escape_for_log(name) + " as the TLS server name";
  }
  conn.stream.expires_after(upstream.timeouts.connect);  // the handshake shares it
  auto [ec] = co_await stream->async_handshake(asio::ssl::stream_base::client, use_nothrow);
  if (ec) {
    conn.metrics.error(ec == beast::error::timeout ? UpstreamErrorKind::timeout
                                                   : UpstreamErrorKind::tls);
    co_return "TLS handshake failed for " + escape_for_log(name) + ": " +
        tls_handshake_failure(ec, stream->native_handle());
  }
  conn.tls = std::move(stream);
  co_return std::string();
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> conn,
                           const UpstreamConfig& upstream) {
  if (!conn || upstream.pool.max_idle_per_endpoint == 0) return;
  auto& list = idle_[conn->endpoint_key];
  if (list.size() >= upstream.pool.max_idle_per_endpoint) return;
  conn->stream.expires_never();
  conn->idle_since = clock_.steady_now();
  list.push_back(std::move(conn));
}

void UpstreamPool::record_success(const UpstreamConfig& upstream, int endpoint_index) {
  auto& state = state_for(upstream);
  if (endpoint_index >= 0 && static_cast<std::size_t>(endpoint_index) < state.picker->size()) {
    state.picker->record_success(endpoint_index);
  }
}

void UpstreamPool::record_failure(const UpstreamConfig& upstream, int endpoint_index) {
  auto& state = state_for(upstream);
  if (endpoint_index >= 0 && static_cast<std::size_t>(endpoint_index) < state.picker->size()) {
    state.picker->record_failure(endpoint_index, clock_.steady_now());
  }
}

void UpstreamPool::sweep() {
  auto now = clock_.steady_now();
  for (auto& [key, list] : idle_) {
    auto upstream_name = std::string_view(key).substr(0, key.find('|'));
    auto st = upstreams_.find(upstream_name);
    Duration timeout = st != upstreams_.end() ? st->second.idle_timeout : Duration{0};
    std::erase_if(list, [&](const std::unique_ptr<UpstreamConnection>& c) {
      return now - c->idle_since >= timeout || !still_open(c->stream.socket());
    });
  }
}

void UpstreamPool::close_idle() {
  idle_.clear();
}

}  // namespace portcullis
