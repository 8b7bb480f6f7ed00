#pragma once
// H2UpstreamPool: a worker's HTTP/2 (h2c) sessions to its upstreams, one multiplexed session
// per upstream, opened on first use through the worker's UpstreamPool (same endpoint choice,
// ejection and connect timeout as HTTP/1.1) and replaced when it closes, goes away or is full.
// Only the owning worker's thread may use it.
//
//   auto session = co_await worker.h2_pool().acquire(upstream, metrics, worker.pool());
#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <string>

#include "core/expected.hpp"
#include "h2/h2_upstream_session.hpp"
#include "proxy/upstream_pool.hpp"

namespace portcullis {

class H2UpstreamPool {
 public:
  boost::asio::awaitable<Expected<std::shared_ptr<H2UpstreamSession>, UpstreamFailure>> acquire(
      const UpstreamConfig& upstream, UpstreamMetrics& metrics, UpstreamPool& tcp,
      std::string& address);
  void close_all();

 private:
  std::map<std::string, std::shared_ptr<H2UpstreamSession>, std::less<>> sessions_;
};

}  // namespace portcullis
