#include "h2/h2_upstream_session.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <charconv>

#include "core/log.hpp"

#include <spdlog/spdlog.h>

namespace portcullis {
namespace asio = boost::asio;

namespace {

constexpr int32_t kWindow = 1 << 20;  // per stream; the connection gets 16 streams' worth

nghttp2_nv make_nv(const H2Header& h) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
          h.value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

std::shared_ptr<H2UpstreamSession> H2UpstreamSession::start(std::unique_ptr<H2Pump> pump,
                                                            std::string endpoint_key,
                                                            const UpstreamTimeouts& timeouts,
                                                            UpstreamMetrics& metrics) {
  pump->set_keepalive(timeouts.ping_interval, timeouts.ping_timeout);
  auto self = std::shared_ptr<H2UpstreamSession>(
      new H2UpstreamSession(std::move(pump), std::move(endpoint_key), metrics));
  self->run();
  return self;
}

H2UpstreamSession::H2UpstreamSession(std::unique_ptr<H2Pump> pump, std::string endpoint_key,
                                     UpstreamMetrics& metrics)
    : pump_(std::move(pump)), endpoint_key_(std::move(endpoint_key)), metrics_(metrics) {
  metrics_.connections_active.fetch_add(1, std::memory_order_relaxed);
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 16 * kWindow);
}

H2UpstreamSession::~H2UpstreamSession() {
  nghttp2_session_del(session_);
}

void H2UpstreamSession::run() {
  // The coroutine keeps the session alive until the connection ends, then fails the streams
  // still open (nghttp2_session_del does not report them).
  asio::co_spawn(
      pump_->executor(),
      [self = shared_from_this()]() -> asio::awaitable<void> {
        co_await self->pump_->run(self->session_);
        self->closed_ = true;
        self->metrics_.connections_active.fetch_sub(1, std::memory_order_relaxed);
        const bool tls_refused = self->pump_->tls_error() && !self->pump_->received_any();
        if (tls_refused) {
          self->metrics_.error(UpstreamErrorKind::tls);
          app_log()->warn("upstream HTTP/2 connection {} refused at the TLS layer: {}",
                          escape_for_log(self->endpoint_key_), self->pump_->error());
        } else if (!self->pump_->error().empty()) {
          self->metrics_.error(self->pump_->tls_error() ? UpstreamErrorKind::tls
                                                        : UpstreamErrorKind::reset);
          app_log()->warn("upstream HTTP/2 connection {} ended: {}",
                          escape_for_log(self->endpoint_key_), self->pump_->error());
        }
        auto handlers = std::move(self->handlers_);
        self->handlers_.clear();
        for (auto& [id, h] : handlers) {
          if (h) h->on_close(tls_refused ? kUpstreamTlsRefused : uint32_t{NGHTTP2_INTERNAL_ERROR});
        }
      },
      asio::detached);
}

bool H2UpstreamSession::gone() const {
  return closed_ || goaway_ || draining_ || pump_->closed();
}

void H2UpstreamSession::close_when_idle() {
  draining_ = true;
  if (handlers_.empty()) close();
}

bool H2UpstreamSession::usable() const {
  if (gone()) return false;
  // Until the peer's SETTINGS arrive its limit reads as unlimited: assume 100 (RFC 9113's
  // recommended minimum) rather than pile streams on one connection.
  const auto limit = std::min<uint32_t>(
      100, nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
  return handlers_.size() < limit && nghttp2_session_get_next_stream_id(session_) < (1u << 30);
}

void H2UpstreamSession::close() {
  if (closed_) return;
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  pump_->kick();
}

int32_t H2UpstreamSession::submit(const H2Headers& headers, H2UpstreamHandler* handler,
                                  bool has_body) {
  if (!usable()) return -1;
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (const auto& h : headers) nva.push_back(make_nv(h));
  nghttp2_data_provider provider{};
  provider.read_callback = read_callback;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            has_body ? &provider : nullptr, handler);
  if (id < 0) return -1;
  handlers_[id] = handler;
  pump_->kick();
  return id;
}

void H2UpstreamSession::resume(int32_t id) {
  if (closed_) return;
  nghttp2_session_resume_data(session_, id);
  pump_->kick();
}

void H2UpstreamSession::reset(int32_t id, uint32_t error_code) {
  if (closed_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
  pump_->kick();
}

void H2UpstreamSession::consume(int32_t id, std::size_t n) {
  if (closed_ || n == 0) return;
  nghttp2_session_consume(session_, id, n);
  pump_->kick();
}

void H2UpstreamSession::detach(int32_t id) {
  auto it = handlers_.find(id);
  if (it != handlers_.end()) it->second = nullptr;
  nghttp2_session_set_stream_user_data(session_, id, nullptr);
}

H2UpstreamHandler* H2UpstreamSession::handler(int32_t id) const {
  auto it = handlers_.find(id);
  return it == handlers_.end() ? nullptr : it->second;
}

int H2UpstreamSession::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2UpstreamSession*>(user);
  if (frame->hd.type == NGHTTP2_HEADERS) self->pending_[frame->hd.stream_id] = {};
  return 0;
}

int H2UpstreamSession::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                                 size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                                 void* user) {
  auto* self = static_cast<H2UpstreamSession*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto& p = self->pending_[frame->hd.stream_id];
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    std::from_chars(v.data(), v.data() + v.size(), p.status);
    return 0;
  }
  p.headers.push_back({std::string(n), std::string(v)});
  return 0;
}

int H2UpstreamSession::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2UpstreamSession*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->goaway_ = true;
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  const int32_t id = frame->hd.stream_id;
  auto it = self->pending_.find(id);
  if (it == self->pending_.end()) return 0;
  Pending p = std::move(it->second);
  self->pending_.erase(it);
  H2UpstreamHandler* h = self->handler(id);
  if (!h) return 0;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    if (p.status >= 100 && p.status < 200) return 0;  // interim (100 Continue): not relayed
    h->on_response(p.status, std::move(p.headers), end);
  } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
    h->on_trailers(std::move(p.headers));
  }
  return 0;
}

int H2UpstreamSession::on_data_chunk(nghttp2_session* session, uint8_t, int32_t id,
                                     const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<H2UpstreamSession*>(user);
  if (H2UpstreamHandler* h = self->handler(id)) {
    h->on_data(data, len);
  } else {
    nghttp2_session_consume(session, id, len);  // nobody reads it: keep the window open
  }
  return 0;
}

int H2UpstreamSession::on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code,
                                       void* user) {
  auto* self = static_cast<H2UpstreamSession*>(user);
  self->pending_.erase(id);
  auto it = self->handlers_.find(id);
  if (it == self->handlers_.end()) return 0;
  H2UpstreamHandler* h = it->second;
  self->handlers_.erase(it);
  if (h) h->on_close(error_code);
  if (self->draining_ && self->handlers_.empty()) self->close();
  return 0;
}

ssize_t H2UpstreamSession::read_callback(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                                         uint32_t* data_flags, nghttp2_data_source*, void* user) {
  auto* self = static_cast<H2UpstreamSession*>(user);
  H2UpstreamHandler* h = self->handler(id);
  if (!h) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  bool eof = false;
  const ssize_t n = h->read_body(buf, length, &eof);
  if (eof) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return n;
}

}  // namespace portcullis
