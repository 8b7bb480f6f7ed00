#pragma once
// H2Pump: moves bytes between one Asio stream and one nghttp2 session, on the stream's
// executor. A read loop feeds nghttp2_session_mem_recv; a write loop drains
// nghttp2_session_mem_send, batching frames up to 64 KiB per write, and sleeps until kick().
// The owner (server or client session) installs nghttp2 callbacks, submits frames, then calls
// kick(). run() returns when the peer closes, an I/O error happens, nghttp2 reports a fatal
// error, a keepalive PING goes unanswered, or close() is called; the owner then fails whatever
// streams are left.
//
//   auto pump = make_h2_pump(std::move(stream));   // beast::tcp_stream or ssl_stream
//   co_await pump->run(session, preface_bytes_already_read);
#include <nghttp2/nghttp2.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace portcullis {

class H2Pump {
 public:
  virtual ~H2Pump() = default;
  // Runs until the connection ends. `already_read`: bytes consumed before (the h2c preface).
  virtual boost::asio::awaitable<void> run(nghttp2_session* session,
                                           std::string already_read = {}) = 0;
  // Liveness: after `interval` without a byte from the peer, send a PING; when nothing arrives
  // within `timeout` after it, close the connection (error() says why). Call before run();
  // a zero interval (the default) sends no PINGs.
  virtual void set_keepalive(std::chrono::milliseconds interval,
                             std::chrono::milliseconds timeout) = 0;
  virtual void kick() = 0;   // frames were submitted: write them out
  virtual void close() = 0;  // ends run() soon: cancels I/O and closes the socket
  virtual bool closed() const = 0;
  virtual boost::asio::any_io_executor executor() = 0;
  virtual const std::string& error() const = 0;  // why run() ended ("" on a clean close)
  virtual bool tls_error() const = 0;     // that reason came from TLS (an alert, a bad record)
  virtual bool received_any() const = 0;  // any byte of the peer's arrived (TLS: application data)
};

std::unique_ptr<H2Pump> make_h2_pump(boost::beast::tcp_stream stream);
std::unique_ptr<H2Pump> make_h2_pump(boost::beast::ssl_stream<boost::beast::tcp_stream> stream);

}  // namespace portcullis
