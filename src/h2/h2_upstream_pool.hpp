#pragma once
// H2UpstreamPool: a worker's HTTP/2 sessions to its upstreams (h2c, or h2 over TLS). Streams
// are multiplexed on the first session of the upstream that can take one; another session is
// opened (through the worker's UpstreamPool: same endpoint choice, ejection and connect timeout
// as HTTP/1.1) when all are full (the peer's MAX_CONCURRENT_STREAMS), closed or going away.
// For protocol h2 the new connection then does a TLS handshake (bounded by the connect
// timeout) that must verify the upstream's certificate and negotiate h2 by ALPN; a failure
// counts against the endpoint like a failed connect. Only the owning worker's thread may use
// it.
//
//   auto session = co_await worker.h2_pool().acquire(upstream, ctx.upstream_tls, metrics,
//                                                    worker.pool(), address);
#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "h2/h2_upstream_session.hpp"
#include "proxy/upstream_pool.hpp"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace portcullis {

class H2UpstreamPool {
 public:
  // `tls`: the upstream's client context (protocol h2), null for h2c.
  boost::asio::awaitable<Expected<std::shared_ptr<H2UpstreamSession>, UpstreamFailure>> acquire(
      const UpstreamConfig& upstream, boost::asio::ssl::context* tls, UpstreamMetrics& metrics,
      UpstreamPool& tcp, std::string& address);
  void close_all();  // drain: idle sessions close now, busy ones after their last stream

 private:
  // A TLS handshake on a fresh connection; null (after logging why) when it fails.
  boost::asio::awaitable<std::unique_ptr<H2Pump>> handshake(const UpstreamConfig& upstream,
                                                            boost::asio::ssl::context& tls,
                                                            UpstreamConnection& conn);

  // Keyed by upstream name and TLS settings, so a reload that changes an upstream's TLS
  // settings never reuses a session made under the old ones.
  std::map<std::string, std::vector<std::shared_ptr<H2UpstreamSession>>, std::less<>> sessions_;
};

}  // namespace portcullis
