#include "h2/h2_pump.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <vector>

#include "net/tls_error.hpp"

namespace portcullis {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kWriteBatch = 64 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

namespace beast = boost::beast;

template <class Stream>
tcp::socket& lowest(Stream& s) {
  return beast::get_lowest_layer(s).socket();
}

template <class Stream>
class PumpImpl final : public H2Pump {
 public:
  explicit PumpImpl(Stream stream) : stream_(std::move(stream)), wake_(stream_.get_executor()) {}

  asio::awaitable<void> run(nghttp2_session* session, std::string already_read) override {
    session_ = session;
    running_ = true;
    writer_done_ = false;
    // The writer runs beside the reader; both end when the connection does.
    asio::co_spawn(
        stream_.get_executor(),
        [this]() -> asio::awaitable<void> {
          co_await write_loop();
          writer_done_ = true;
          finished_.cancel();
        },
        asio::detached);
    if (ping_interval_.count() > 0) {
      keepalive_done_ = false;
      asio::co_spawn(stream_.get_executor(), keepalive_loop(), asio::detached);
    }
    if (!already_read.empty() && !feed(already_read.data(), already_read.size())) {
      close();
    }
    kick();
    std::array<char, kReadChunk> buf;
    while (!closed_) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) {
        if (error_.empty() && ec != asio::error::eof && ec != asio::error::operation_aborted) {
          error_ = ec.message();
          tls_error_ = is_tls_error(ec);
        }
        break;
      }
      ++reads_;
      if (!feed(buf.data(), n)) break;
      kick();
    }
    if (!flush_then_close_) close();  // else the writer flushes the GOAWAY, then closes
    // Wait for the writer to notice (it holds references to this object).
    while (!writer_done_ || !keepalive_done_) {
      finished_.expires_at(asio::steady_timer::time_point::max());
      co_await finished_.async_wait(use_nothrow);
    }
    running_ = false;
  }

  void set_keepalive(std::chrono::milliseconds interval,
                     std::chrono::milliseconds timeout) override {
    ping_interval_ = interval;
    ping_timeout_ = timeout;
  }

  void kick() override {
    if (!closed_) wake_.cancel();
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    lowest(stream_).cancel(ignored);
    lowest(stream_).shutdown(tcp::socket::shutdown_both, ignored);
    lowest(stream_).close(ignored);
    wake_.cancel();
    keepalive_.cancel();
  }

  bool closed() const override { return closed_; }
  asio::any_io_executor executor() override { return stream_.get_executor(); }
  const std::string& error() const override { return error_; }
  bool tls_error() const override { return tls_error_; }
  bool received_any() const override { return reads_ > 0; }

 private:
  bool feed(const char* data, std::size_t n) {
    const auto rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), n);
    if (rv < 0) {
      if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(rv));
      // A fatal error does not always queue a GOAWAY (callback failures, CONTINUATION
      // floods): queue one, so the peer learns why before the connection closes.
      nghttp2_session_terminate_session(session_, rv == NGHTTP2_ERR_CALLBACK_FAILURE
                                                      ? NGHTTP2_ENHANCE_YOUR_CALM
                                                      : NGHTTP2_PROTOCOL_ERROR);
      // Let the GOAWAY nghttp2 queued go out before closing.
      flush_then_close_ = true;
      kick();
      return false;
    }
    return true;
  }

  // Sends a PING when the peer has been quiet for ping_interval_; any bytes from the peer
  // (its PING ACK or anything else) within ping_timeout_ prove it alive.
  asio::awaitable<void> keepalive_loop() {
    std::uint64_t seen = reads_;
    while (!closed_) {
      keepalive_.expires_after(ping_interval_);
      co_await keepalive_.async_wait(use_nothrow);
      if (closed_) break;
      if (reads_ != seen) {
        seen = reads_;
        continue;
      }
      nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
      kick();
      keepalive_.expires_after(ping_timeout_);
      co_await keepalive_.async_wait(use_nothrow);
      if (closed_) break;
      if (reads_ == seen) {
        if (error_.empty()) error_ = "no answer to a keepalive PING";
        // Say why with a GOAWAY (RFC 9113 6.8), then close; a peer that does not even read
        // gets one more ping_timeout for the GOAWAY to leave.
        nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
        flush_then_close_ = true;
        kick();
        keepalive_.expires_after(ping_timeout_);
        co_await keepalive_.async_wait(use_nothrow);
        flush_then_close_ = false;
        close();
        break;
      }
      seen = reads_;
    }
    keepalive_done_ = true;
    finished_.cancel();
  }

  asio::awaitable<void> write_loop() {
    std::vector<char> out;
    out.reserve(kWriteBatch);
    for (;;) {
      if (closed_ && !flush_then_close_) break;
      out.clear();
      while (out.size() < kWriteBatch) {
        const uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
          if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(n));
          close();
          co_return;
        }
        if (n == 0) break;
        out.insert(out.end(), data, data + n);
      }
      if (!out.empty()) {
        auto [ec, written] = co_await asio::async_write(stream_, asio::buffer(out), use_nothrow);
        (void)written;
        if (ec) {
          if (error_.empty() && ec != asio::error::operation_aborted) {
            error_ = ec.message();
            tls_error_ = is_tls_error(ec);
          }
          flush_then_close_ = false;
          close();
          co_return;
        }
        continue;
      }
      if (flush_then_close_ ||
          (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))) {
        // Nothing more to say (GOAWAY sent and streams done, or a fatal error flushed).
        flush_then_close_ = false;
        close();
        co_return;
      }
      if (closed_) co_return;
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(use_nothrow);
    }
  }

  Stream stream_;
  asio::steady_timer wake_;
  asio::steady_timer finished_{stream_.get_executor()};
  asio::steady_timer keepalive_{stream_.get_executor()};
  std::chrono::milliseconds ping_interval_{0};
  std::chrono::milliseconds ping_timeout_{0};
  std::uint64_t reads_ = 0;
  bool keepalive_done_ = true;
  nghttp2_session* session_ = nullptr;
  std::string error_;
  bool tls_error_ = false;
  bool closed_ = false;
  bool running_ = false;
  bool writer_done_ = true;
  bool flush_then_close_ = false;
};

}  // namespace

std::unique_ptr<H2Pump> make_h2_pump(beast::tcp_stream stream) {
  return std::make_unique<PumpImpl<beast::tcp_stream>>(std::move(stream));
}

std::unique_ptr<H2Pump> make_h2_pump(beast::ssl_stream<beast::tcp_stream> stream) {
  return std::make_unique<PumpImpl<beast::ssl_stream<beast::tcp_stream>>>(std::move(stream));
}

}  // namespace portcullis
