#pragma once
// BufferedUpstreamStream: an upstream HTTP/2 stream driven by a coroutine that is not itself
// an HTTP/2 stream (an HTTP/1.1 client relayed to an h2c upstream). The coroutine pushes the
// request body into `request` and calls the session's resume(); the upstream's answer lands
// in `status`/`headers`/`response`, and wait() returns whenever something happened (or after
// a second, so the caller can check its deadlines). Trailers are kept in `trailers`: an
// HTTP/1.1 client gets them only as gRPC-Web's trailer frame. Only the worker's thread may
// use it.
//
//   auto b = std::make_shared<BufferedUpstreamStream>(executor);
//   int32_t id = session->submit(headers, b.get(), has_body);
//   while (!b->head && !b->closed) co_await b->wait();
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "h2/byte_queue.hpp"
#include "h2/h2_upstream_session.hpp"

namespace portcullis {

class BufferedUpstreamStream final : public H2UpstreamHandler {
 public:
  explicit BufferedUpstreamStream(boost::asio::any_io_executor ex) : wake_(std::move(ex)) {}

  boost::asio::awaitable<void> wait();
  void notify() { wake_.cancel(); }

  ByteQueue request;         // body bytes not yet taken by the upstream
  bool request_end = false;  // the client's body is complete
  int status = 0;            // the response head, once `head`
  H2Headers headers;
  bool head = false;
  ByteQueue response;         // body bytes not yet written to the client
  H2Headers trailers;         // the upstream's trailers (relayed only to gRPC-Web clients)
  bool response_end = false;  // the upstream ended the response cleanly
  bool closed = false;        // the stream is over (cleanly or not)
  uint32_t error_code = 0;    // HTTP/2 error code when it ended badly

  void on_response(int s, H2Headers h, bool end_stream) override;
  void on_data(const uint8_t* data, std::size_t len) override;
  void on_trailers(H2Headers t) override { trailers = std::move(t); }
  void on_close(uint32_t code) override;
  ssize_t read_body(uint8_t* buf, std::size_t len, bool* eof) override;

 private:
  boost::asio::steady_timer wake_;
};

}  // namespace portcullis
