// H2ServerSession: one downstream HTTP/2 connection. nghttp2 callbacks collect each stream's
// request head; once it is complete a coroutine per stream runs the shared decision pipeline
// and either answers locally or opens a stream on the upstream's h2c session and relays:
//   client DATA -> req_buf -> upstream read_body (then nghttp2_session_consume downstream)
//   upstream DATA -> resp_buf -> downstream read callback (then consume upstream)
// Both directions use manual window updates, so a stream holds at most one window of data
// (kStreamWindow) however fast one side is and however slow the other.
#include "h2/h2_server_session.hpp"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>

#include "audit/audit_log.hpp"
#include "authz/assertion_signer.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "h2/byte_queue.hpp"
#include "h2/grpc_status.hpp"
#include "h2/grpc_web.hpp"
#include "h2/h2_pump.hpp"
#include "h2/h2_upstream_pool.hpp"
#include "http/flat_write.hpp"
#include "http/header_rules.hpp"
#include "http/path_normalizer.hpp"
#include "proxy/admission.hpp"
#include "proxy/upstream_pool.hpp"
#include "server/worker.hpp"

namespace portcullis {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr int32_t kStreamWindow = 256 * 1024;
constexpr uint32_t kMaxConcurrentStreams = 100;
constexpr int kMaxContinuations = 16;  // per header block (CONTINUATION flood, CVE-2024-27316)
// Rapid Reset (CVE-2023-44487): streams the client resets, per connection, before GOAWAY.
constexpr int kResetBudget = 200;
constexpr auto kResetRefill = std::chrono::milliseconds(100);  // one more reset per 100 ms

std::string_view view(const uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

nghttp2_nv nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

class H2ServerSession;

// One downstream stream and, once forwarded, its upstream stream.
struct Stream final : H2UpstreamHandler, std::enable_shared_from_this<Stream> {
  H2ServerSession* session = nullptr;
  int32_t id = 0;
  std::shared_ptr<const Runtime> runtime;
  RequestContext ctx;
  bool finished = false;  // recorded (metrics, access log, audit)

  // Request head.
  std::string method, scheme, authority, path;
  H2Headers headers;
  std::size_t header_bytes = 0;
  int continuations = 0;
  bool head_done = false;
  bool header_too_large = false;
  bool is_grpc = false;  // gRPC or gRPC-Web
  // gRPC-Web: translated to gRPC towards the upstream (grpc_web.hpp).
  std::optional<GrpcWebType> web;
  std::optional<GrpcWebRequestDecoder> web_in;
  std::optional<GrpcWebResponseEncoder> web_out;

  // Request body: received, not yet passed upstream. req_raw counts the client's bytes behind
  // it (more than req_buf holds for gRPC-Web text, which arrives base64-encoded); they are
  // given back to the client's window as req_buf drains.
  ByteQueue req_buf;
  std::size_t req_raw = 0;
  bool req_end = false;
  std::uint64_t body_limit = 0;

  // Upstream. `up` stays set after the upstream stream ends: bytes still buffered here must be
  // consumed on its connection window when they are sent on (or the window leaks shut).
  std::shared_ptr<H2UpstreamSession> up;
  int32_t up_id = -1;
  bool up_open = false;           // the upstream stream is open (events arrive, resets make sense)
  std::size_t up_unconsumed = 0;  // upstream bytes in resp_buf, not yet given back

  // Response.
  bool response_started = false;
  ByteQueue resp_buf;  // upstream bytes or a local body, not yet sent downstream
  bool resp_end = false;
  H2Headers trailers;
  bool down_closed = false;
  std::unique_ptr<asio::steady_timer> deadline;  // grpc-timeout, enforced by the gateway too
  // HTTP/1.1 upstreams: wakes the relay coroutine when body bytes arrive, the client's
  // side drains, or the stream ends.
  std::unique_ptr<asio::steady_timer> wake;
  // HTTP/1.1 upstreams: the connection relay_h1 is using, so a stream the client abandons
  // stops waiting for the upstream at once (its I/O is cancelled) instead of at a timeout.
  beast::tcp_stream* h1_upstream = nullptr;
  void notify() {
    if (wake) wake->cancel();
  }

  // H2UpstreamHandler
  void on_response(int status, H2Headers h, bool end_stream) override;
  void on_data(const uint8_t* data, std::size_t len) override;
  void on_trailers(H2Headers t) override;
  void on_close(uint32_t error_code) override;
  ssize_t read_body(uint8_t* buf, std::size_t len, bool* eof) override;
};

class H2ServerSession final : public DownstreamConnection {
 public:
  H2ServerSession(Worker& worker, std::shared_ptr<ListenerRuntime> listener,
                  asio::ip::tcp::endpoint peer, std::unique_ptr<H2Pump> pump)
      : worker_(worker), listener_(std::move(listener)), peer_(peer), pump_(std::move(pump)) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    // Debian's libnghttp2 (CVE-2024-28182 backport) caps CONTINUATION frames itself (8 by
    // default); set the cap to ours so both agree.
    nghttp2_option_set_max_continuations(opt, kMaxContinuations);
    nghttp2_session_server_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         static_cast<uint32_t>(listener_->config.limits.max_header_bytes)},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          kStreamWindow * static_cast<int32_t>(16));
    worker_.register_connection(this);
    arm_idle();
    reset_tokens_ = kResetBudget;
    reset_refilled_ = std::chrono::steady_clock::now();
  }

  ~H2ServerSession() override {
    worker_.unregister_connection(this);
    nghttp2_session_del(session_);
  }

  // Drain: tell the client to open no more streams; the connection ends when they are done.
  void close_if_idle() override {
    if (goaway_sent_) return;
    goaway_sent_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    pump_->kick();
  }

  asio::awaitable<void> run(std::string already_read) {
    co_await pump_->run(session_, std::move(already_read));
    idle_timer_.cancel();
    // Stream coroutines still suspended (authentication, upstream connect) refer to this
    // session: wait for them; they see down_closed and return.
    for (auto& [id, s] : streams_) {
      s->down_closed = true;
      if (s->h1_upstream) s->h1_upstream->cancel();
      s->notify();
    }
    while (handlers_running_ > 0) {
      handlers_done_.expires_after(std::chrono::milliseconds(5));
      co_await handlers_done_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // The connection is gone: every stream still open ends here.
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams) {
      s->down_closed = true;
      abandon_upstream(*s);
      if (!s->finished) {
        if (s->ctx.status == 0) s->ctx.status = 499;
        if (s->ctx.error_code.empty()) s->ctx.error_code = "client_aborted";
        finish(*s);
      }
    }
  }

  nghttp2_session* session() { return session_; }
  void kick() { pump_->kick(); }
  Worker& worker() { return worker_; }

  void finish(Stream& s) {
    if (s.finished) return;
    s.finished = true;
    worker_.record_request(*s.runtime, s.ctx);
  }

  void abandon_upstream(Stream& s) {
    if (s.h1_upstream) s.h1_upstream->cancel();
    if (s.up_open) {
      s.up->detach(s.up_id);
      s.up->reset(s.up_id, NGHTTP2_CANCEL);
      s.up_open = false;
    }
    if (s.up && s.up_unconsumed > 0) s.up->consume(s.up_id, s.up_unconsumed);
    s.up_unconsumed = 0;
    s.resp_buf.clear();
  }

  // A local answer: trailers-only for gRPC, JSON otherwise.
  void reply(Stream& s, unsigned status, std::string_view error, std::string_view message,
             const LocalReply* local = nullptr) {
    if (s.down_closed || s.response_started) return;
    s.response_started = true;
    s.ctx.status = status;
    s.ctx.error_code = error;
    if (status >= 500 || status == 400 || status == 413) {
      app_log()->warn("request {} answered {} {}: {}", s.ctx.request_id, status, error,
                      escape_for_log(message));
    }
    const std::string status_text = std::to_string(s.is_grpc ? 200 : status);
    std::vector<nghttp2_nv> h;
    h.push_back(nv(":status", status_text));
    std::string grpc_code, grpc_message;
    if (s.is_grpc) {
      grpc_code = std::to_string(grpc_status_for_reply(status, error));
      grpc_message =
          grpc_percent_encode(local && !local->reason.empty()
                                  ? std::string(message) + " (" + std::string(local->reason) + ")"
                                  : std::string(message));
      h.push_back(nv("content-type", s.web ? std::string_view(s.web->web_content_type)
                                           : std::string_view("application/grpc")));
      h.push_back(nv("grpc-status", grpc_code));
      h.push_back(nv("grpc-message", grpc_message));
    } else {
      h.push_back(nv("content-type", "application/json"));
      h.push_back(nv("cache-control", "no-store"));
    }
    h.push_back(nv("x-request-id", s.ctx.request_id));
    if (local && !local->www_authenticate.empty()) {
      h.push_back(nv("www-authenticate", local->www_authenticate));
    }
    // A session renewed on the way to this answer (e.g. a policy 403) is not lost.
    for (const auto& c : s.ctx.set_cookies) h.push_back(nv("set-cookie", c));
    if (s.is_grpc || s.method == "HEAD") {
      nghttp2_submit_response(session_, s.id, h.data(), h.size(), nullptr);
      s.resp_end = true;
    } else {
      s.resp_buf.assign(
          local ? error_body(status, error, message, s.ctx.request_id, local->reason, local->rule)
                : error_body(status, error, message, s.ctx.request_id));
      s.resp_end = true;
      nghttp2_data_provider provider{};
      provider.read_callback = read_response;
      nghttp2_submit_response(session_, s.id, h.data(), h.size(), &provider);
    }
    pump_->kick();
  }

  // An answer of the browser sign-in (redirects, cookies, pages).
  void reply_sso(Stream& s, const SsoResponse& r) {
    if (s.down_closed || s.response_started) return;
    s.response_started = true;
    s.ctx.status = r.status;
    s.ctx.error_code = r.error;
    const std::string status_text = std::to_string(r.status);
    std::vector<nghttp2_nv> h;
    h.push_back(nv(":status", status_text));
    h.push_back(nv("content-type", r.content_type));
    for (const auto& [name, value] : r.headers) h.push_back(nv(name, value));
    h.push_back(nv("x-request-id", s.ctx.request_id));
    s.resp_end = true;
    if (s.method == "HEAD" || r.body.empty()) {
      nghttp2_submit_response(session_, s.id, h.data(), h.size(), nullptr);
    } else {
      s.resp_buf.assign(r.body);
      nghttp2_data_provider provider{};
      provider.read_callback = read_response;
      nghttp2_submit_response(session_, s.id, h.data(), h.size(), &provider);
    }
    pump_->kick();
  }

  // The response head from the upstream, relayed with the body to follow (or not).
  void relay_response(Stream& s, int status, H2Headers& h, bool end_stream) {
    if (s.down_closed || s.response_started) return;
    s.response_started = true;
    s.ctx.status = static_cast<unsigned>(status);
    const std::string status_text = std::to_string(status);
    std::vector<nghttp2_nv> out;
    out.reserve(h.size() + 1);
    out.push_back(nv(":status", status_text));
    for (const auto& x : h) {
      if (is_hop_by_hop(x.name) || x.name == "x-request-id") continue;
      if (s.web && (x.name == "content-length" || x.name == "content-type")) continue;
      out.push_back(nv(x.name, x.value));
    }
    if (s.web) out.push_back(nv("content-type", s.web->web_content_type));
    for (const auto& c : s.ctx.set_cookies) out.push_back(nv("set-cookie", c));
    out.push_back(nv("x-request-id", s.ctx.request_id));
    if (end_stream) {
      s.resp_end = true;
      nghttp2_submit_response(session_, s.id, out.data(), out.size(), nullptr);
    } else {
      nghttp2_data_provider provider{};
      provider.read_callback = read_response;
      nghttp2_submit_response(session_, s.id, out.data(), out.size(), &provider);
    }
    pump_->kick();
  }

  static bool is_hop_by_hop(std::string_view n) {
    return n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
           n == "transfer-encoding" || n == "upgrade" || n == "te";
  }

  // Not inside handle(): GCC 12 mis-diagnoses a lambda in that coroutine (mismatched delete).
  void arm_deadline(const std::shared_ptr<Stream>& sp, std::chrono::nanoseconds budget) {
    sp->deadline = std::make_unique<asio::steady_timer>(pump_->executor(), budget);
    sp->deadline->async_wait([weak = std::weak_ptr<Stream>(sp)](boost::system::error_code ec) {
      auto st = weak.lock();
      if (ec || !st || st->down_closed || st->resp_end) return;
      st->session->deadline_exceeded(*st);
    });
  }

  void reply_connect_failure(Stream& s, UpstreamFailure failure) {
    if (failure == UpstreamFailure::no_healthy_endpoint) {
      reply(s, 503, "no_healthy_upstream", "no healthy upstream endpoint");
    } else if (failure == UpstreamFailure::connect_timeout) {
      reply(s, 504, "upstream_connect_timeout", "timed out connecting to the upstream");
    } else {
      reply(s, 502, "upstream_connect_failed", "could not connect to the upstream");
    }
  }

  void deadline_exceeded(Stream& s) {
    abandon_upstream(s);
    if (!s.response_started) {
      reply(s, 504, "deadline_exceeded", "the call's grpc-timeout expired at the gateway");
    } else {
      s.ctx.error_code = "deadline_exceeded";
      reset_stream(s, NGHTTP2_CANCEL);
    }
  }

  void resume_response(Stream& s) {
    if (s.down_closed) return;
    nghttp2_session_resume_data(session_, s.id);
    pump_->kick();
  }

  // Called when n request-body bytes left req_buf (taken by the upstream, or dropped): opens
  // the client's window by the client bytes behind them (all of req_raw once req_buf is empty).
  void consumed_request(Stream& s, std::size_t n) {
    const std::size_t left = s.req_buf.size();
    std::size_t raw = n;
    if (left == 0) {
      raw = s.req_raw;
    } else if (s.req_raw != n + left) {
      raw = static_cast<std::size_t>(static_cast<long double>(s.req_raw) * n / (n + left));
    }
    raw = std::min(raw, s.req_raw);
    s.req_raw -= raw;
    if (s.down_closed || raw == 0) return;
    nghttp2_session_consume(session_, s.id, raw);
    pump_->kick();
  }

  // A request body the gateway will not pass on: the upstream stream is dropped, and the client
  // gets the refusal, or a reset when the response has already started.
  void refuse_body(Stream& s, unsigned status, std::string_view error, std::string_view message) {
    const bool started = s.response_started;
    abandon_upstream(s);
    if (started) {
      s.ctx.error_code = error;
      reset_stream(s, NGHTTP2_CANCEL);
    } else {
      reply(s, status, error, message);
    }
  }

  void reset_stream(Stream& s, uint32_t code) {
    if (s.down_closed) return;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, code);
    pump_->kick();
  }

 private:
  // A connection without streams for the listener's idle_timeout is closed with a GOAWAY
  // (NO_ERROR), as an HTTP/1.1 keep-alive connection would be.
  void arm_idle() {
    idle_timer_.expires_after(listener_->config.limits.idle_timeout);
    idle_timer_.async_wait([this, generation = ++idle_generation_](boost::system::error_code ec) {
      if (ec || generation != idle_generation_ || !streams_.empty()) return;
      goaway_sent_ = true;
      nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
      pump_->kick();
    });
  }

  Stream* find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  asio::awaitable<void> handle(std::shared_ptr<Stream> sp);
  asio::awaitable<void> relay_h1(std::shared_ptr<Stream> sp, http::fields fields,
                                 std::string target);
  asio::awaitable<void> wait_for_progress(Stream& s);
  void start(Stream& s);
  bool rapid_reset_exceeded();

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    auto s = std::make_shared<Stream>();
    s->session = self;
    s->id = frame->hd.stream_id;
    s->runtime = self->worker_.runtime();
    s->ctx.started = std::chrono::steady_clock::now();
    self->streams_[s->id] = std::move(s);
    ++self->idle_generation_;  // busy: the idle timer is re-armed when the last stream ends
    return 0;
  }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    if (hd->type == NGHTTP2_CONTINUATION) {
      if (Stream* s = self->find(hd->stream_id); s && ++s->continuations > kMaxContinuations) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;  // fatal: the pump sends GOAWAY and closes
      }
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    Stream* s = self->find(frame->hd.stream_id);
    if (!s || s->head_done) return 0;  // trailers of a request: not relayed
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > self->listener_->config.limits.max_header_bytes) {
      s->header_too_large = true;
      return 0;
    }
    const std::string_view n = view(name, namelen);
    const std::string_view v = view(value, valuelen);
    if (n == ":method") {
      s->method = v;
    } else if (n == ":scheme") {
      s->scheme = v;
    } else if (n == ":authority") {
      s->authority = v;
    } else if (n == ":path") {
      s->path = v;
    } else if (!n.empty() && n[0] != ':') {
      s->headers.push_back({std::string(n), std::string(v)});
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM && self->rapid_reset_exceeded()) {
      nghttp2_submit_goaway(self->session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(self->session_),
                            NGHTTP2_ENHANCE_YOUR_CALM, nullptr, 0);
      self->goaway_sent_ = true;
      app_log()->warn("HTTP/2 client {} reset too many streams: connection closed",
                      self->peer_.address().to_string());
      self->pump_->kick();
      return 0;
    }
    Stream* s = self->find(frame->hd.stream_id);
    if (!s) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !s->head_done &&
        (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
      s->head_done = true;
      s->req_end = end;
      self->start(*s);
    } else if (end && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
      s->req_end = true;
      if (s->web_in && !s->web_in->complete()) {
        self->refuse_body(*s, 400, "bad_grpc_web_body",
                          "the gRPC-Web text body ends inside a base64 group");
        return 0;
      }
      if (s->up_open) s->up->resume(s->up_id);
      s->notify();
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                           size_t len, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    Stream* s = self->find(id);
    if (!s || (s->response_started && !s->up_open)) {
      nghttp2_session_consume(session, id, len);  // answered already: discard
      return 0;
    }
    s->ctx.bytes_in += len;
    if (s->body_limit && s->ctx.bytes_in > s->body_limit) {
      nghttp2_session_consume(session, id, len);
      self->refuse_body(*s, 413, "payload_too_large", "request body exceeds the route's limit");
      return 0;
    }
    s->req_raw += len;
    if (s->web_in) {
      std::string decoded;
      if (!s->web_in->feed(view(data, len), decoded)) {
        nghttp2_session_consume(session, id, len);
        s->req_raw -= len;
        self->refuse_body(*s, 400, "bad_grpc_web_body", "the gRPC-Web text body is not base64");
        return 0;
      }
      s->req_buf.append(decoded.data(), decoded.size());
    } else {
      s->req_buf.append(reinterpret_cast<const char*>(data), len);
    }
    if (s->up_open) s->up->resume(s->up_id);
    s->notify();
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    auto it = self->streams_.find(id);
    if (it == self->streams_.end()) return 0;
    auto s = it->second;
    self->streams_.erase(it);
    s->down_closed = true;
    s->notify();
    if (!s->resp_end || error_code != NGHTTP2_NO_ERROR) {
      // The client cancelled (or the stream failed) before the response ended.
      self->abandon_upstream(*s);
      if (s->ctx.status == 0 || !s->resp_end) {
        if (s->ctx.status == 0) s->ctx.status = 499;
        if (s->ctx.error_code.empty()) s->ctx.error_code = "client_aborted";
      }
    }
    self->finish(*s);
    if (self->streams_.empty() && !self->goaway_sent_) self->arm_idle();
    return 0;
  }

  static ssize_t read_response(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                               uint32_t* flags, nghttp2_data_source*, void* user) {
    auto* self = static_cast<H2ServerSession*>(user);
    Stream* s = self->find(id);
    if (!s) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    const std::size_t n = std::min(length, s->resp_buf.size());
    if (n > 0) {
      std::memcpy(buf, s->resp_buf.data(), n);
      s->resp_buf.consume(n);
      s->ctx.bytes_out += n;
      s->notify();
      if (s->up && s->up_unconsumed > 0) {
        const std::size_t k = std::min(n, s->up_unconsumed);
        s->up->consume(s->up_id, k);
        s->up_unconsumed -= k;
      }
    }
    if (s->resp_buf.empty() && s->resp_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> t;
        for (const auto& x : s->trailers) t.push_back(nv(x.name, x.value));
        nghttp2_submit_trailer(session, id, t.data(), t.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) return NGHTTP2_ERR_DEFERRED;
    return static_cast<ssize_t>(n);
  }

  Worker& worker_;
  std::shared_ptr<ListenerRuntime> listener_;
  asio::ip::tcp::endpoint peer_;
  std::unique_ptr<H2Pump> pump_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::shared_ptr<Stream>> streams_;
  bool goaway_sent_ = false;
  int handlers_running_ = 0;
  asio::steady_timer idle_timer_{pump_->executor()};
  std::uint64_t idle_generation_ = 0;
  asio::steady_timer handlers_done_{pump_->executor()};
  int reset_tokens_ = 0;
  std::chrono::steady_clock::time_point reset_refilled_;
};

bool H2ServerSession::rapid_reset_exceeded() {
  const auto now = std::chrono::steady_clock::now();
  const auto refill = static_cast<int>((now - reset_refilled_) / kResetRefill);
  if (refill > 0) {
    reset_tokens_ = std::min(kResetBudget, reset_tokens_ + refill);
    reset_refilled_ += refill * kResetRefill;
  }
  return --reset_tokens_ < 0;
}

void H2ServerSession::start(Stream& s) {
  asio::co_spawn(pump_->executor(), handle(s.shared_from_this()), asio::detached);
}

asio::awaitable<void> H2ServerSession::handle(std::shared_ptr<Stream> sp) {
  ++handlers_running_;
  struct Done {
    int& n;
    ~Done() { --n; }
  } done{handlers_running_};
  Stream& s = *sp;
  auto& ctx = s.ctx;
  const Runtime& runtime = *s.runtime;
  ctx.listener = listener_->config.name;
  ctx.tls = listener_->tls != nullptr;
  ctx.peer = peer_.address();
  ctx.peer_port = peer_.port();
  ctx.peer_trusted = runtime.peer_is_trusted(ctx.peer);
  ctx.method = s.method;
  ctx.authority = s.authority;
  std::string_view incoming_id, incoming_trace, authorization, content_type, grpc_timeout, accept;
  bool x_requested_with = false;
  for (const auto& h : s.headers) {
    if (h.name == "accept") accept = h.value;
    if (h.name == "x-requested-with") x_requested_with = true;
    if (h.name == "x-request-id") incoming_id = h.value;
    if (h.name == "traceparent") incoming_trace = h.value;
    if (h.name == "authorization") authorization = h.value;
    if (h.name == "content-type") content_type = h.value;
    if (h.name == "grpc-timeout") grpc_timeout = h.value;
    if (h.name == "user-agent") ctx.user_agent = h.value.substr(0, 256);
    if (h.name == "host" && ctx.authority.empty()) ctx.authority = h.value;
    if (h.name == "content-length") {
      std::uint64_t v = 0;
      if (std::from_chars(h.value.data(), h.value.data() + h.value.size(), v).ec == std::errc()) {
        ctx.content_length = v;
      }
    }
  }
  ctx.request_id = ctx.peer_trusted && is_acceptable_request_id(incoming_id)
                       ? std::string(incoming_id)
                       : make_request_id(worker_.random());
  ctx.traceparent = is_valid_traceparent(incoming_trace) ? std::string(incoming_trace)
                                                         : make_traceparent(worker_.random());
  s.is_grpc = is_grpc_content_type(content_type);
  if ((s.web = grpc_web_type(content_type))) {
    s.is_grpc = true;
    s.web_in.emplace(s.web->mode);
    s.web_out.emplace(s.web->mode);
  }
  ctx.has_body = !s.req_end;
  // grpc-timeout: the call's whole budget, authentication and upstream connect included. On
  // expiry before a response: DEADLINE_EXCEEDED (4); after: the streams are reset (CANCEL).
  if (s.is_grpc && !grpc_timeout.empty()) {
    if (auto budget = parse_grpc_timeout(grpc_timeout)) arm_deadline(sp, *budget);
  }

  if (s.header_too_large) {
    reply(s, 431, "header_too_large", "request headers exceed the listener's limit");
    co_return;
  }
  if (s.method.empty() || s.path.empty() || (s.method != "CONNECT" && s.scheme.empty())) {
    reply(s, 400, "bad_request", "missing :method, :scheme or :path");
    co_return;
  }
  if (s.method == "CONNECT") {
    reply(s, 405, "method_not_allowed", "CONNECT is not supported");
    co_return;
  }
  if (!is_canonical_method(ctx.method)) {
    reply(s, 400, "bad_method", "the method must be upper-case letters ('-' and '_' allowed)");
    co_return;
  }
  auto host = normalize_host(ctx.authority);
  if (!host) {
    reply(s, 400, "bad_host", host.error());
    co_return;
  }
  ctx.host = std::move(*host);
  PathNormalizeOptions options;
  options.allow_encoded_slash = true;
  auto normalized = normalize_target(s.path, options);
  if (!normalized) {
    reply(s, 400, "bad_path", to_string(normalized.error()));
    co_return;
  }
  ctx.path = std::move(normalized->path);
  ctx.query = std::move(normalized->query);
  if (s.is_grpc && is_grpc_path(ctx.path)) ctx.grpc_method = ctx.path;

  if (ctx.path == kAssertionJwksPath && runtime.assertion_signer) {
    ctx.decision = "allow";
    ctx.decision_reason = "gateway assertion keys";
    s.response_started = true;
    ctx.status = 200;
    s.resp_buf.assign(runtime.assertion_signer->public_jwks());
    s.resp_end = true;
    const nghttp2_nv h[] = {nv(":status", "200"), nv("content-type", "application/json"),
                            nv("cache-control", "public, max-age=300"),
                            nv("x-request-id", ctx.request_id)};
    nghttp2_data_provider provider{};
    provider.read_callback = read_response;
    nghttp2_submit_response(session_, s.id, h, std::size(h), &provider);
    pump_->kick();
    co_return;
  }

  // Browser sign-in: the gateway's own paths, then sessions on sso routes (src/sso).
  SsoRequest sso_req{ctx.method, ctx.path,         ctx.query, ctx.authority,  ctx.tls, {},
                     accept,     x_requested_with, s.is_grpc, ctx.request_id, {}};
  // Without an sso section nothing here is used: no cookie list, no clock read.
  const bool sso_on = runtime.sso != nullptr;
  for (const auto& h : s.headers) {
    if (sso_on && h.name == "cookie") sso_req.cookies.push_back(h.value);
  }
  const auto now_unix = sso_on ? std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()
                               : std::int64_t{0};
  if (const SsoFlow* sso = runtime.sso.get();
      sso && runtime.authenticator && sso->is_gateway_path(ctx.path)) {
    ctx.decision = "none";
    ctx.decision_reason = "sso endpoint";
    std::string body;
    if (SsoFlow::wants_body(ctx.method, ctx.path)) {
      s.body_limit = SsoFlow::kMaxBodyBytes;  // more is refused with 413 as it arrives
      while (!s.req_end && !s.down_closed && !s.response_started) co_await wait_for_progress(s);
      if (s.down_closed || s.response_started) co_return;
      body.assign(s.req_buf.data(), s.req_buf.size());
      s.req_buf.clear();
      consumed_request(s, body.size());
      sso_req.body = body;
    }
    const SsoServices services{runtime.authenticator.get(), worker_.random(),
                               worker_.session_store()};
    auto r = co_await sso->handle(sso_req, now_unix, services);
    if (s.down_closed) co_return;
    reply_sso(s, r);
    co_return;
  }

  auto local = admit(runtime, ctx);
  if (!local && uses_session(ctx, authorization)) {
    const SsoServices services{runtime.authenticator.get(), worker_.random(),
                               worker_.session_store()};
    auto r = co_await authenticate_session(runtime, ctx, sso_req, services, now_unix,
                                           worker_.revocations());
    if (s.down_closed) co_return;
    if (r) {
      reply_sso(s, *r);
      co_return;
    }
  }
  if (!local) local = co_await authenticate(runtime, ctx, authorization, worker_.token_cache());
  if (s.down_closed) co_return;  // the client gave up while we were authenticating
  if (!local) local = authorize(runtime, ctx, worker_.revocations());
  if (auto page = browser_denial(ctx, local, sso_req)) {
    reply_sso(s, *page);
    co_return;
  }
  if (!local && worker_.audit() && worker_.audit_deny() && !worker_.audit()->accepting()) {
    local = LocalReply{503, "audit_unavailable", "the audit log cannot record this request", {}};
  }
  if (local) {
    reply(s, local.status, local.error, local.message, &local);
    co_return;
  }
  s.body_limit = max_body_for(runtime, ctx);
  const UpstreamConfig& up = *ctx.upstream;
  if (up.protocol == UpstreamProtocol::http1 && s.is_grpc) {
    reply(s, 502, "upstream_protocol", "gRPC needs an HTTP/2 upstream (h2c or h2)");
    co_return;
  }

  // Headers for the upstream: the same hygiene as HTTP/1.1 (header_rules), then back to h2.
  http::fields fields;
  for (const auto& h : s.headers) {
    if (h.name == "host") continue;
    fields.insert(h.name, h.value);
  }
  if (!ctx.route->forward_token) fields.erase(http::field::authorization);
  if (s.web) {
    // gRPC towards the upstream: its content type, trailers announced, and no length (a text
    // body shrinks when decoded).
    fields.set(http::field::content_type, s.web->grpc_content_type);
    fields.set(http::field::te, "trailers");
    fields.erase(http::field::content_length);
  }
  const std::string te = std::string(fields[http::field::te]);
  ForwardingContext fc{ctx.peer,      ctx.peer_trusted, ctx.tls,
                       ctx.authority, ctx.request_id,   ctx.traceparent};
  prepare_upstream_request_headers(fields, fc);
  if (runtime.sso) strip_gateway_cookies(fields, *runtime.sso);
  if (ctx.identity && ctx.route->identity_headers) {
    std::string_view assertion;
    if (const AssertionSigner* signer = runtime.assertion_signer.get()) {
      auto signed_assertion = worker_.assertions().get(*signer, ctx.identity, ctx.route->name,
                                                       runtime.config->assertion);
      if (!signed_assertion) {
        reply(s, 500, "assertion_failed",
              "cannot sign the identity assertion: " + signed_assertion.error());
        co_return;
      }
      assertion = *signed_assertion;
    }
    set_identity_headers(fields, *ctx.identity, assertion);
  }
  std::string target = ctx.path;
  if (!ctx.query.empty() || s.path.find('?') != std::string::npos) {
    target += '?';
    target += ctx.query;
  }
  if (up.protocol == UpstreamProtocol::http1) {
    co_await relay_h1(sp, std::move(fields), std::move(target));
    co_return;
  }
  H2Headers out;
  out.push_back({":method", ctx.method});
  out.push_back({":scheme", up.protocol == UpstreamProtocol::h2 ? "https" : "http"});
  out.push_back({":authority", ctx.authority});
  out.push_back({":path", target});
  if (te == "trailers") out.push_back({"te", "trailers"});  // gRPC requires it
  for (const auto& f : fields) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back({std::move(name), std::string(f.value())});
  }

  std::string address;
  auto session = co_await worker_.h2_pool().acquire(up, ctx.upstream_tls, *ctx.upstream_metrics,
                                                    worker_.pool(), address);
  if (s.down_closed) co_return;
  if (!session) {
    reply_connect_failure(s, session.error());
    co_return;
  }
  ctx.upstream_address = address;
  ctx.upstream_metrics->requests_total.fetch_add(1, std::memory_order_relaxed);
  s.up = *session;
  s.up_id = s.up->submit(out, &s, !s.req_end || !s.req_buf.empty());
  s.up_open = s.up_id >= 0;
  if (!s.up_open) {
    s.up.reset();
    reply(s, 503, "upstream_busy", "the upstream connection cannot take another stream");
  }
  co_return;
}

asio::awaitable<void> H2ServerSession::wait_for_progress(Stream& s) {
  if (!s.wake) s.wake = std::make_unique<asio::steady_timer>(pump_->executor());
  s.wake->expires_after(std::chrono::seconds(1));  // a safety net; notify() cancels it
  co_await s.wake->async_wait(asio::as_tuple(asio::use_awaitable));
}

// An HTTP/2 stream relayed to an HTTP/1.1 upstream through the worker's pool: the request
// body streams out as the client sends it (Content-Length when the client gave one, else
// chunked), the response body streams back with at most one stream window buffered.
asio::awaitable<void> H2ServerSession::relay_h1(std::shared_ptr<Stream> sp, http::fields fields,
                                                std::string target) {
  Stream& s = *sp;
  auto& ctx = s.ctx;
  const UpstreamConfig& up = *ctx.upstream;
  UpstreamMetrics& metrics = *ctx.upstream_metrics;
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  std::uint64_t exclude = 0;
  auto acquired = co_await worker_.pool().acquire(up, metrics, exclude, ctx.upstream_tls);
  if (s.down_closed) co_return;
  if (!acquired) {
    reply_connect_failure(s, acquired.error());
    co_return;
  }
  std::unique_ptr<UpstreamConnection> conn = std::move(*acquired);
  s.h1_upstream = &conn->stream;
  struct Forget {  // runs before conn is destroyed
    Stream& s;
    ~Forget() { s.h1_upstream = nullptr; }
  } forget{s};
  ctx.upstream_address = conn->address;
  metrics.requests_total.fetch_add(1, std::memory_order_relaxed);

  http::request<http::buffer_body> req;
  req.method_string(ctx.method);
  req.target(target);
  req.version(11);
  for (const auto& f : fields) req.insert(f.name_string(), f.value());
  req.set(http::field::host, ctx.authority);
  req.keep_alive(true);
  const bool has_body = !s.req_end || !s.req_buf.empty();
  if (has_body) {
    if (ctx.content_length) {
      req.content_length(*ctx.content_length);
    } else {
      req.chunked(true);
    }
  }
  http::request_serializer<http::buffer_body> sr{req};
  std::string chunk;
  std::string head_scratch;  // async_write_flat's buffer for this request
  do {
    if (has_body) {
      while (s.req_buf.empty() && !s.req_end && !s.down_closed) co_await wait_for_progress(s);
      if (s.down_closed) co_return;
      chunk.assign(s.req_buf.data(), s.req_buf.size());
      s.req_buf.clear();
      consumed_request(s, chunk.size());
      req.body().data = chunk.empty() ? nullptr : chunk.data();
      req.body().size = chunk.size();
      req.body().more = !s.req_end;
    } else {
      req.body().data = nullptr;
      req.body().size = 0;
      req.body().more = false;
    }
    conn->stream.expires_after(up.timeouts.idle);
    auto [ec, n] = co_await async_write_flat(conn->io, sr, head_scratch);
    if (ec) {
      worker_.pool().record_failure(up, conn->endpoint_index);
      reply(s, 502, "upstream_write_failed", "could not send the request to the upstream");
      co_return;
    }
    if (s.down_closed) co_return;
  } while (!sr.is_done());

  std::optional<http::response_parser<http::buffer_body>> rp;
  for (;;) {  // interim 1xx answers are consumed here
    rp.emplace();
    rp->header_limit(64 * 1024);
    rp->body_limit(boost::none);
    if (ctx.method == "HEAD") rp->skip(true);
    conn->stream.expires_after(ctx.route->timeout.value_or(up.timeouts.request));
    auto [ec, n] = co_await http::async_read_header(conn->io, conn->buffer, *rp, nothrow);
    if (s.down_closed) co_return;
    if (ec) {
      worker_.pool().record_failure(up, conn->endpoint_index);
      if (ec == beast::error::timeout) {
        reply(s, 504, "upstream_timeout", "the upstream did not answer in time");
      } else {
        reply(s, 502, "upstream_protocol_error", "the upstream sent no valid response");
      }
      co_return;
    }
    const unsigned status = rp->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
  }
  auto& res = rp->get();
  prepare_downstream_response_headers(res);
  H2Headers headers;
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "transfer-encoding" || name == "connection" || name == "keep-alive") continue;
    headers.push_back({std::move(name), std::string(f.value())});
  }
  relay_response(s, static_cast<int>(res.result_int()), headers, rp->is_done());
  std::vector<char> buf(16 * 1024);  // one DATA frame; per stream (streams read concurrently)
  while (!rp->is_done()) {
    while (s.resp_buf.size() >= static_cast<std::size_t>(kStreamWindow) && !s.down_closed) {
      co_await wait_for_progress(s);
    }
    if (s.down_closed) co_return;
    res.body().data = buf.data();
    res.body().size = buf.size();
    conn->stream.expires_after(up.timeouts.idle);
    auto [ec, n] = co_await http::async_read_some(conn->io, conn->buffer, *rp, nothrow);
    if (ec == http::error::need_buffer) ec = {};
    if (s.down_closed) co_return;
    if (ec) {
      ctx.error_code = "upstream_reset";
      reset_stream(s, NGHTTP2_INTERNAL_ERROR);
      co_return;
    }
    const std::size_t got = buf.size() - res.body().size;
    if (got > 0) {
      s.resp_buf.append(buf.data(), got);
      resume_response(s);
    }
  }
  if (!s.resp_end) {
    s.resp_end = true;
    resume_response(s);
  }
  worker_.pool().record_success(up, conn->endpoint_index);
  conn->stream.expires_never();
  s.h1_upstream = nullptr;
  if (rp->keep_alive()) worker_.pool().release(std::move(conn), up);
}

void Stream::on_response(int status, H2Headers h, bool end_stream) {
  session->relay_response(*this, status, h, end_stream);
}

void Stream::on_data(const uint8_t* data, std::size_t len) {
  if (down_closed) {
    if (up) up->consume(up_id, len);
    return;
  }
  if (web_out) {
    // Never more encoded bytes than 4/3 of these: consuming them one for one (read_response)
    // gives the upstream its window back no later than before.
    std::string encoded;
    web_out->data(view(data, len), encoded);
    resp_buf.append(encoded.data(), encoded.size());
  } else {
    resp_buf.append(reinterpret_cast<const char*>(data), len);
  }
  up_unconsumed += len;
  session->resume_response(*this);
}

void Stream::on_trailers(H2Headers t) {
  if (web_out) {  // gRPC-Web: the trailers become the body's last frame
    std::string encoded;
    web_out->trailers(t, encoded);
    resp_buf.append(encoded.data(), encoded.size());
    return;
  }
  trailers = std::move(t);
}

void Stream::on_close(uint32_t error_code) {
  auto keep = shared_from_this();
  up_open = false;
  // Request bytes the upstream will never take: give the client its window back.
  if (!req_buf.empty() || req_raw > 0) {
    req_buf.clear();
    session->consumed_request(*this, 0);
  }
  if (down_closed) return;
  if (!response_started) {
    if (error_code == kUpstreamTlsRefused) {
      session->reply(*this, 502, "upstream_connect_failed", "could not connect to the upstream");
    } else if (error_code == NGHTTP2_NO_ERROR) {
      session->reply(*this, 502, "upstream_protocol",
                     "the upstream ended the stream without a response");
    } else {
      session->reply(*this, 502, "upstream_reset", "the upstream reset the stream");
    }
    return;
  }
  if (error_code != NGHTTP2_NO_ERROR) {
    ctx.error_code = "upstream_reset";
    session->reset_stream(*this, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  if (web_out) {
    std::string tail;
    web_out->finish(tail);
    resp_buf.append(tail.data(), tail.size());
  }
  resp_end = true;
  session->resume_response(*this);
}

ssize_t Stream::read_body(uint8_t* buf, std::size_t len, bool* eof) {
  const std::size_t n = std::min(len, req_buf.size());
  if (n > 0) {
    std::memcpy(buf, req_buf.data(), n);
    req_buf.consume(n);
    session->consumed_request(*this, n);
  }
  if (req_buf.empty() && req_end) {
    *eof = true;
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return static_cast<ssize_t>(n);
}

}  // namespace

asio::awaitable<void> serve_h2_plain(beast::tcp_stream stream, Worker& worker,
                                     std::shared_ptr<ListenerRuntime> listener,
                                     std::string already_read) {
  boost::system::error_code ec;
  auto peer = stream.socket().remote_endpoint(ec);
  if (ec) co_return;
  auto pump = make_h2_pump(std::move(stream));
  pump->set_keepalive(listener->config.limits.ping_interval, listener->config.limits.ping_timeout);
  H2ServerSession session(worker, std::move(listener), peer, std::move(pump));
  co_await session.run(std::move(already_read));
}

asio::awaitable<void> serve_h2_tls(beast::ssl_stream<beast::tcp_stream> stream, Worker& worker,
                                   std::shared_ptr<ListenerRuntime> listener) {
  boost::system::error_code ec;
  auto peer = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
  if (ec) co_return;
  auto pump = make_h2_pump(std::move(stream));
  pump->set_keepalive(listener->config.limits.ping_interval, listener->config.limits.ping_timeout);
  H2ServerSession session(worker, std::move(listener), peer, std::move(pump));
  co_await session.run({});
}

}  // namespace portcullis
