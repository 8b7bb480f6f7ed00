#pragma once
// Per-worker upstream connections: picks an endpoint (weighted, skipping ejected ones),
// reuses an idle keep-alive connection when one is healthy, otherwise connects with the
// upstream's connect timeout. State survives config reloads when an upstream keeps its
// shape (same endpoints and weights). Only the owning worker's thread may use it.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "admin/metrics.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/expected.hpp"
#include "proxy/endpoint_picker.hpp"

namespace portcullis {

struct UpstreamConnection;

// The bytes of an upstream connection for Beast's HTTP operations: the TCP stream, or TLS
// over it (an `http1` upstream with `tls:`). Deadlines stay on the TCP stream
// (conn.stream.expires_after), which the TLS layer reads and writes through.
//   co_await http::async_write(conn->io, serializer, token);
class UpstreamIo {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  explicit UpstreamIo(UpstreamConnection& conn) : conn_(conn) {}
  executor_type get_executor();

  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& buffers, Handler&& handler);
  template <class Buffers, class Handler>
  auto async_write_some(const Buffers& buffers, Handler&& handler);

 private:
  UpstreamConnection& conn_;
};

// One connection to an upstream endpoint, with the read buffer that belongs to it.
struct UpstreamConnection {
  UpstreamConnection(boost::asio::any_io_executor ex, UpstreamMetrics& m);
  ~UpstreamConnection();
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  boost::beast::tcp_stream stream;
  // TLS over `stream` (http1 upstreams with tls:), set once the handshake succeeded.
  std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream&>> tls;
  UpstreamIo io{*this};  // what HTTP reads and writes go through
  boost::beast::flat_buffer buffer;
  UpstreamMetrics& metrics;
  std::string endpoint_key;  // "upstream|host:port" (+ "|tls@<context>")
  int endpoint_index = -1;
  std::string address;  // "host:port" for logs
  std::chrono::steady_clock::time_point idle_since{};
  bool reused = false;
};

inline UpstreamIo::executor_type UpstreamIo::get_executor() {
  return conn_.stream.get_executor();
}

template <class Buffers, class Handler>
auto UpstreamIo::async_read_some(const Buffers& buffers, Handler&& handler) {
  if (conn_.tls) return conn_.tls->async_read_some(buffers, std::forward<Handler>(handler));
  return conn_.stream.async_read_some(buffers, std::forward<Handler>(handler));
}

template <class Buffers, class Handler>
auto UpstreamIo::async_write_some(const Buffers& buffers, Handler&& handler) {
  if (conn_.tls) return conn_.tls->async_write_some(buffers, std::forward<Handler>(handler));
  return conn_.stream.async_write_some(buffers, std::forward<Handler>(handler));
}

enum class UpstreamFailure { connect_failed, connect_timeout, no_healthy_endpoint };

class UpstreamPool {
 public:
  UpstreamPool(boost::asio::io_context& io, const Clock& clock);

  // A connection to an endpoint of `upstream` not in `exclude` (bit per endpoint index) when
  // possible. On failure the endpoint's failure is recorded and its bit set in `exclude`.
  // With `tls` (an http1 upstream's client context) the connection speaks TLS: the handshake
  // (verified, SNI, within the connect timeout) is part of connecting, and its failure counts
  // against the endpoint like a failed connect.
  boost::asio::awaitable<Expected<std::unique_ptr<UpstreamConnection>, UpstreamFailure>> acquire(
      const UpstreamConfig& upstream, UpstreamMetrics& metrics, std::uint64_t& exclude,
      boost::asio::ssl::context* tls = nullptr);

  // Returns a connection after a complete exchange; kept if there is room and it is healthy.
  void release(std::unique_ptr<UpstreamConnection> conn, const UpstreamConfig& upstream);

  void record_success(const UpstreamConfig& upstream, int endpoint_index);
  void record_failure(const UpstreamConfig& upstream, int endpoint_index);

  // Closes idle connections older than their upstream's idle timeout (called by a timer).
  void sweep();
  // Closes every idle connection (drain).
  void close_idle();

 private:
  struct UpstreamState {
    std::unique_ptr<EndpointPicker> picker;
    Duration idle_timeout{};
  };
  UpstreamState& state_for(const UpstreamConfig& upstream);
  // TLS over a fresh connection; "" on success, else why (logged by the caller).
  boost::asio::awaitable<std::string> handshake(const UpstreamConfig& upstream,
                                                boost::asio::ssl::context& tls,
                                                UpstreamConnection& conn);
  std::unique_ptr<UpstreamConnection> take_idle(const std::string& key,
                                                std::chrono::steady_clock::time_point now,
                                                Duration idle_timeout);

  boost::asio::io_context& io_;
  const Clock& clock_;
  std::map<std::string, UpstreamState, std::less<>> upstreams_;
  std::map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>, std::less<>> idle_;
};

}  // namespace portcullis
