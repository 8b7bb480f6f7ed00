#pragma once
// H2UpstreamSession: one multiplexed HTTP/2 client connection (h2c or h2) to an upstream endpoint,
// owned by a worker and used only on its thread. Streams are submitted with a handler that
// receives the response head, body chunks, trailers and the end; the request body is pulled
// from the handler (read_body) whenever the peer's flow-control window allows, and resume()
// wakes a stream whose body was not ready. Flow control towards the upstream is manual: the
// handler calls consume() once it has passed received bytes on, so a slow client slows the
// upstream instead of growing a buffer.
//
//   auto s = H2UpstreamSession::start(make_h2_pump(std::move(stream)), "orders|10.0.0.5:50051",
//                                     upstream.timeouts, metrics);
//   int32_t id = s->submit(headers, &handler, /*has_body=*/true);
//   s->resume(id);  s->reset(id, NGHTTP2_CANCEL);  s->consume(id, n);
#include <nghttp2/nghttp2.h>

#include <boost/beast/core/tcp_stream.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "admin/metrics.hpp"
#include "core/config.hpp"
#include "h2/h2_header.hpp"
#include "h2/h2_pump.hpp"

namespace portcullis {

// H2UpstreamHandler::on_close's code when the connection failed at the TLS layer before the
// upstream sent a byte: TLS 1.3 refuses a client certificate with an alert just after the
// client considers the handshake done. Handlers answer it as a failed connect (502
// upstream_connect_failed), like the same refusal inside a TLS 1.2 handshake. Not an HTTP/2
// error code; never sent on the wire.
inline constexpr uint32_t kUpstreamTlsRefused = 0x10000;

// Receives one upstream stream's events, on the worker's thread.
class H2UpstreamHandler {
 public:
  virtual ~H2UpstreamHandler() = default;
  virtual void on_response(int status, H2Headers headers, bool end_stream) = 0;
  virtual void on_data(const uint8_t* data, std::size_t len) = 0;
  virtual void on_trailers(H2Headers trailers) = 0;
  // The stream is over: error_code 0 after a complete response, else an HTTP/2 error code
  // (the connection failing reports NGHTTP2_INTERNAL_ERROR, or kUpstreamTlsRefused when TLS
  // refused it before the upstream's first byte). Called once, last.
  virtual void on_close(uint32_t error_code) = 0;
  // Copies up to `len` request-body bytes into `buf`. Returns the count, sets *eof at the
  // end, or returns NGHTTP2_ERR_DEFERRED when nothing is ready yet (then call resume()).
  virtual ssize_t read_body(uint8_t* buf, std::size_t len, bool* eof) = 0;
};

class H2UpstreamSession : public std::enable_shared_from_this<H2UpstreamSession> {
 public:
  // Takes over a connected stream (TCP for h2c, TLS with h2 negotiated for h2). The session
  // counts itself in metrics.connections_active while open and PINGs a quiet upstream
  // (timeouts.ping_interval / ping_timeout).
  static std::shared_ptr<H2UpstreamSession> start(std::unique_ptr<H2Pump> pump,
                                                  std::string endpoint_key,
                                                  const UpstreamTimeouts& timeouts,
                                                  UpstreamMetrics& metrics);
  ~H2UpstreamSession();

  // The stream id, or -1 when the session cannot take a stream (closed, going away, full).
  int32_t submit(const H2Headers& headers, H2UpstreamHandler* handler, bool has_body);
  void resume(int32_t stream_id);
  void reset(int32_t stream_id, uint32_t error_code);
  void consume(int32_t stream_id, std::size_t n);
  // Removes the handler: no more events for this stream (the caller is going away).
  void detach(int32_t stream_id);

  bool usable() const;  // open, not told to go away, below the peer's stream limit
  bool gone() const;    // closed or told to go away: takes no new streams ever
  std::size_t active_streams() const { return handlers_.size(); }
  const std::string& endpoint_key() const { return endpoint_key_; }
  void close();
  // Drain: no new streams; closes once the open ones are done (at once when there are none).
  void close_when_idle();

 private:
  H2UpstreamSession(std::unique_ptr<H2Pump> pump, std::string endpoint_key,
                    UpstreamMetrics& metrics);
  void run();
  H2UpstreamHandler* handler(int32_t id) const;

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                       const uint8_t*, size_t, uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t read_callback(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                               nghttp2_data_source*, void*);

  struct Pending {  // the response head or trailers being received
    int status = 0;
    H2Headers headers;
  };

  std::unique_ptr<H2Pump> pump_;
  nghttp2_session* session_ = nullptr;
  std::string endpoint_key_;
  UpstreamMetrics& metrics_;
  std::map<int32_t, H2UpstreamHandler*> handlers_;
  std::map<int32_t, Pending> pending_;
  bool goaway_ = false;
  bool closed_ = false;
  bool draining_ = false;
};

}  // namespace portcullis
