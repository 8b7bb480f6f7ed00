#include "h2/buffered_upstream_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

namespace portcullis {

boost::asio::awaitable<void> BufferedUpstreamStream::wait() {
  wake_.expires_after(std::chrono::seconds(1));  // a safety net; notify() cancels it
  co_await wake_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

void BufferedUpstreamStream::on_response(int s, H2Headers h, bool end_stream) {
  status = s;
  headers = std::move(h);
  head = true;
  if (end_stream) response_end = true;
  notify();
}

void BufferedUpstreamStream::on_data(const uint8_t* data, std::size_t len) {
  response.append(reinterpret_cast<const char*>(data), len);
  notify();
}

void BufferedUpstreamStream::on_close(uint32_t code) {
  closed = true;
  error_code = code;
  if (code == 0 && head) response_end = true;
  notify();
}

ssize_t BufferedUpstreamStream::read_body(uint8_t* buf, std::size_t len, bool* eof) {
  const std::size_t n = std::min(len, request.size());
  if (n > 0) {
    std::memcpy(buf, request.data(), n);
    request.consume(n);
    notify();  // room for more of the client's body
  }
  if (request.empty() && request_end) {
    *eof = true;
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return static_cast<ssize_t>(n);
}

}  // namespace portcullis
