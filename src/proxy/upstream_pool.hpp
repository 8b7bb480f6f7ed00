#pragma once
// Per-worker upstream connections: picks an endpoint (weighted, skipping ejected ones),
// reuses an idle keep-alive connection when one is healthy, otherwise connects with the
// upstream's connect timeout. State survives config reloads when an upstream keeps its
// shape (same endpoints and weights). Only the owning worker's thread may use it.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
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

// One connection to an upstream endpoint, with the read buffer that belongs to it.
struct UpstreamConnection {
  UpstreamConnection(boost::asio::any_io_executor ex, UpstreamMetrics& m);
  ~UpstreamConnection();
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;
  UpstreamMetrics& metrics;
  std::string endpoint_key;  // "upstream|host:port"
  int endpoint_index = -1;
  std::string address;  // "host:port" for logs
  std::chrono::steady_clock::time_point idle_since{};
  bool reused = false;
};

enum class UpstreamFailure { connect_failed, connect_timeout, no_healthy_endpoint };

class UpstreamPool {
 public:
  UpstreamPool(boost::asio::io_context& io, const Clock& clock);

  // A connection to an endpoint of `upstream` not in `exclude` (bit per endpoint index) when
  // possible. On failure the endpoint's failure is recorded and its bit set in `exclude`.
  boost::asio::awaitable<Expected<std::unique_ptr<UpstreamConnection>, UpstreamFailure>> acquire(
      const UpstreamConfig& upstream, UpstreamMetrics& metrics, std::uint64_t& exclude);

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
  std::unique_ptr<UpstreamConnection> take_idle(const std::string& key,
                                                std::chrono::steady_clock::time_point now,
                                                Duration idle_timeout);

  boost::asio::io_context& io_;
  const Clock& clock_;
  std::map<std::string, UpstreamState, std::less<>> upstreams_;
  std::map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>, std::less<>> idle_;
};

}  // namespace portcullis
