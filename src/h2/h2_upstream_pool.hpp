#pragma once
// H2UpstreamPool: a worker's HTTP/2 (h2c) sessions to its upstreams. Streams are multiplexed
// on the first session of the upstream that can take one; another session is opened (through
// the worker's UpstreamPool: same endpoint choice, ejection and connect timeout as HTTP/1.1)
// when all are full (the peer's MAX_CONCURRENT_STREAMS), closed or going away.
// Only the owning worker's thread may use it.
//
//   auto session = co_await worker.h2_pool().acquire(upstream, metrics, worker.pool());
#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "h2/h2_upstream_session.hpp"
#include "proxy/upstream_pool.hpp"

namespace portcullis {

class H2UpstreamPool {
 public:
  boost::asio::awaitable<Expected<std::shared_ptr<H2UpstreamSession>, UpstreamFailure>> acquire(
      const UpstreamConfig& upstream, UpstreamMetrics& metrics, UpstreamPool& tcp,
      std::string& address);
  void close_all();  // drain: idle sessions close now, busy ones after their last stream

 private:
  std::map<std::string, std::vector<std::shared_ptr<H2UpstreamSession>>, std::less<>> sessions_;
};

}  // namespace portcullis
