// The HTTP/1.1 codec: one coroutine per client connection. For each request it reads the
// header (bounded, with a slow-client timeout), builds the protocol-neutral RequestContext
// (normalised host and path), asks admission, then relays the request to the upstream and
// the response back through fixed 16 KiB buffers, so bodies of any size stream with bounded
// memory. Errors the gateway answers itself are JSON with the request id.
#include "http/h1_session.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <cstring>
#include <optional>

#include "audit/audit_event.hpp"
#include "audit/audit_log.hpp"
#include "authz/assertion_signer.hpp"
#include "core/log.hpp"
#include "h2/buffered_upstream_stream.hpp"
#include "h2/grpc_status.hpp"
#include "h2/grpc_web.hpp"
#include "h2/h2_server_session.hpp"
#include "h2/h2_upstream_pool.hpp"
#include "http/flat_write.hpp"
#include "http/header_rules.hpp"
#include "http/path_normalizer.hpp"
#include "net/tls_error.hpp"
#include "proxy/admission.hpp"
#include "server/worker.hpp"

namespace portcullis {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
// Relay buffer per connection and direction step. Larger means fewer syscalls (each costs
// far more than copying), 64 KiB matches nginx's default proxy buffering per connection.
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kUpstreamHeaderLimit = 64 * 1024;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using RequestParser = http::request_parser<http::buffer_body>;
using ResponseParser = http::response_parser<http::buffer_body>;

bool is_idempotent(http::verb v) {
  switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::trace:
      return true;
    default:
      return false;
  }
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && beast::iequals(s.substr(0, prefix.size()), prefix);
}

// Splits an absolute-form target ("http://host:port/path?q") into authority and the rest.
// Returns false when the target is not absolute-form.
bool split_absolute_form(std::string_view target, std::string_view& authority,
                         std::string_view& rest) {
  std::size_t skip = 0;
  if (starts_with_icase(target, "http://"))
    skip = 7;
  else if (starts_with_icase(target, "https://"))
    skip = 8;
  else
    return false;
  auto tail = target.substr(skip);
  auto end = tail.find_first_of("/?");
  authority = tail.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view("/") : tail.substr(end);
  return true;
}

// True when a header block (request line + fields, CRLF-terminated lines) uses obs-fold line
// folding (a line starting with SP or HTAB). Beast unfolds it silently; we refuse it
// (RFC 9112 5.2 allows a 400), because intermediaries disagree on how to unfold.
bool has_obs_fold(std::string_view head) {
  for (std::size_t i = head.find('\n'); i != std::string_view::npos; i = head.find('\n', i + 1)) {
    if (i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t')) return true;
  }
  return false;
}

enum class HeadStatus { complete, closed, too_large, timed_out, obs_fold };

// Everything one request needs to finish: the snapshot it started on and its context.
struct Exchange {
  std::shared_ptr<const Runtime> runtime;
  RequestContext ctx;
  unsigned version = 11;
  bool client_keep_alive = true;
  bool head = false;
  bool raw_target_has_query = false;  // "?" in the request target, even with an empty query
  std::optional<GrpcWebType> web;     // a gRPC-Web call (answered in gRPC-Web's terms)
  bool finished = false;  // finish() ran: metrics, access log and audit record written once
};

template <class Stream>
class H1Session final : public DownstreamConnection {
 public:
  H1Session(Stream& stream, Worker& worker, std::shared_ptr<ListenerRuntime> listener,
            tcp::endpoint peer)
      : stream_(stream),
        worker_(worker),
        listener_(std::move(listener)),
        limits_(listener_->config.limits),
        peer_(peer),
        buffer_(limits_.max_header_bytes + 64 * 1024) {
    worker_.register_connection(this);
  }
  ~H1Session() override { worker_.unregister_connection(this); }

  void close_if_idle() override {
    if (idle_) {
      boost::system::error_code ec;
      beast::get_lowest_layer(stream_).socket().close(ec);
    }
  }

  asio::awaitable<void> run();

 private:
  asio::awaitable<HeadStatus> read_request_head();
  asio::awaitable<bool> handle(RequestParser& parser);
  asio::awaitable<bool> forward(RequestParser& parser, Exchange& ex, bool expect_continue);
  asio::awaitable<bool> forward_h2(RequestParser& parser, Exchange& ex, bool expect_continue);
  // Reads the next piece of the request body into chunk_ and counts it: its size, or nothing
  // when the request is over (the client failed or timed out: recorded as 408/499
  // client_aborted_upload; the body passed `limit`: answered 413).
  void prepare_chunk_buffer();
  // "100 Continue" to a client that sent Expect: 100-continue; false when the write failed.
  asio::awaitable<bool> send_continue();
  asio::awaitable<std::optional<std::size_t>> read_body_chunk(RequestParser& parser, Exchange& ex,
                                                              std::uint64_t limit);
  // Relay buffers, header hygiene, forwarding headers, X-Portcullis-* identity headers with
  // the signed assertion, and the normalised target; the error when signing failed.
  std::optional<std::string> prepare_upstream_request(Exchange& ex, http::fields& h,
                                                      std::string& target);
  asio::awaitable<bool> reply(Exchange& ex, unsigned status, std::string_view error,
                              std::string_view message, bool keep_alive,
                              const LocalReply* local = nullptr);
  asio::awaitable<bool> reply_sso(Exchange& ex, const SsoResponse& r, bool keep_alive);
  asio::awaitable<bool> reply_document(Exchange& ex, std::string_view content_type,
                                       std::string_view body, std::string_view cache_control,
                                       bool keep_alive);
  asio::awaitable<void> reply_bare(unsigned status, std::string_view error,
                                   std::string_view message);
  void finish(Exchange& ex);

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  Stream& stream_;
  Worker& worker_;
  std::shared_ptr<ListenerRuntime> listener_;
  const ListenerLimits& limits_;
  tcp::endpoint peer_;
  beast::flat_buffer buffer_;
  bool idle_ = true;
  std::string write_scratch_;      // async_write_flat's buffer, reused for every write
  std::unique_ptr<char[]> chunk_;  // kChunk bytes, allocated when the connection first relays
  // Header deadline: a timer that cancels (not closes) the socket's pending read, so a 408
  // can still be written. life_ lets a late timer handler see the session is gone.
  asio::steady_timer header_timer_{beast::get_lowest_layer(stream_).get_executor()};
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
  std::uint64_t header_wait_id_ = 0;
  bool header_timer_fired_ = false;

  // Deadlines of the hot path. Instead of a timer armed and cancelled around every read and
  // write (what beast::tcp_stream's expiry does), each operation stores its deadline and one
  // watchdog timer per connection wakes at the earliest one; a deadline that has passed cancels
  // that socket's pending operation, which then fails and sees the *_timed_out_ flag.
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::time_point kNever = Clock::time_point::max();
  void client_deadline(Duration d) {
    client_timed_out_ = false;
    client_deadline_ = Clock::now() + d;
    watch(client_deadline_);
  }
  void upstream_deadline(beast::tcp_stream& upstream, Duration d) {
    upstream_ = &upstream;
    upstream_timed_out_ = false;
    upstream_deadline_ = Clock::now() + d;
    watch(upstream_deadline_);
  }
  void forget_upstream() {
    upstream_ = nullptr;
    upstream_deadline_ = kNever;
  }
  void watch(Clock::time_point when) {
    if (watchdog_armed_ && watchdog_at_ <= when) return;  // it wakes earlier and re-arms then
    watchdog_at_ = when;
    watchdog_armed_ = true;
    watchdog_.expires_at(when);
    watchdog_.async_wait([this, life = std::weak_ptr<int>(life_),
                          id = ++watchdog_id_](boost::system::error_code ec) {
      if (ec || life.expired() || id != watchdog_id_) return;
      watchdog_armed_ = false;
      on_watchdog();
    });
  }
  void on_watchdog() {
    const auto now = Clock::now();
    boost::system::error_code ignored;
    if (client_deadline_ <= now) {
      client_deadline_ = kNever;
      client_timed_out_ = true;
      lowest().socket().cancel(ignored);
    }
    if (upstream_ && upstream_deadline_ <= now) {
      upstream_deadline_ = kNever;
      upstream_timed_out_ = true;
      upstream_->socket().cancel(ignored);
    }
    auto next = std::min(client_deadline_, upstream_ ? upstream_deadline_ : kNever);
    if (next != kNever) watch(next);
  }
  asio::steady_timer watchdog_{beast::get_lowest_layer(stream_).get_executor()};
  Clock::time_point watchdog_at_{};
  std::uint64_t watchdog_id_ = 0;
  bool watchdog_armed_ = false;
  Clock::time_point client_deadline_ = kNever;
  Clock::time_point upstream_deadline_ = kNever;
  beast::tcp_stream* upstream_ = nullptr;
  bool client_timed_out_ = false;
  bool upstream_timed_out_ = false;
};

template <class Stream>
asio::awaitable<void> H1Session<Stream>::run() {
  bool first = true;
  for (std::size_t served = 0;; ++served) {
    if (worker_.draining() && !first) break;
    // Wait for the first byte of the next request (idle keep-alive), then give the client
    // header_timeout for the rest of the header.
    idle_ = true;
    if (buffer_.size() == 0) {
      client_deadline(first ? limits_.header_timeout : limits_.idle_timeout);
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_nothrow);
      client_deadline_ = kNever;
      if (ec) break;
      buffer_.commit(n);
    }
    idle_ = false;
    first = false;
    HeadStatus head = co_await read_request_head();
    if (head != HeadStatus::complete) {
      if (head == HeadStatus::closed) break;
      MetricsRegistry::instance().bad_requests.fetch_add(1, std::memory_order_relaxed);
      if (head == HeadStatus::too_large) {
        co_await reply_bare(431, "header_too_large", "request header fields too large");
      } else if (head == HeadStatus::timed_out) {
        co_await reply_bare(408, "request_timeout", "request header not received in time");
      } else {
        co_await reply_bare(400, "bad_request", "obsolete line folding in a header");
      }
      break;
    }
    // The whole header is in buffer_: Beast parses it without further I/O.
    client_deadline(limits_.header_timeout);
    RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser.body_limit(boost::none);
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, use_nothrow);
    if (ec) {
      if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted) break;
      MetricsRegistry::instance().bad_requests.fetch_add(1, std::memory_order_relaxed);
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        co_await reply_bare(431, "header_too_large", "request header fields too large");
      } else if (ec != http::error::partial_message) {
        co_await reply_bare(400, "bad_request", "malformed request: " + ec.message());
      }
      break;
    }
    bool keep = co_await handle(parser);
    if (!keep) break;
    if (limits_.max_requests_per_connection && served + 1 >= limits_.max_requests_per_connection) {
      break;
    }
  }
  // Orderly close: TLS close_notify best effort, then FIN.
  boost::system::error_code ec;
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    lowest().expires_after(std::chrono::seconds(1));
    co_await stream_.async_shutdown(use_nothrow);
  }
  lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
  lowest().close();
}

// Reads until the blank line that ends the request header is in buffer_, within
// header_timeout and max_header_bytes, and checks the raw bytes for obs-fold.
template <class Stream>
asio::awaitable<HeadStatus> H1Session<Stream>::read_request_head() {
  const auto deadline = std::chrono::steady_clock::now() + limits_.header_timeout;
  std::size_t scanned = 0;
  client_deadline_ = kNever;  // this phase has its own timer (header_timer_)
  for (;;) {
    std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    auto end = data.find("\r\n\r\n", scanned > 3 ? scanned - 3 : 0);
    if (end != std::string_view::npos) {
      if (end + 4 > limits_.max_header_bytes) co_return HeadStatus::too_large;
      co_return has_obs_fold(data.substr(0, end + 2)) ? HeadStatus::obs_fold : HeadStatus::complete;
    }
    scanned = data.size();
    if (data.size() >= limits_.max_header_bytes) co_return HeadStatus::too_large;
    if (std::chrono::steady_clock::now() >= deadline) co_return HeadStatus::timed_out;

    header_timer_.expires_at(deadline);
    header_timer_fired_ = false;
    header_timer_.async_wait([this, life = std::weak_ptr<int>(life_),
                              id = header_wait_id_](boost::system::error_code ec) {
      if (ec || life.expired() || id != header_wait_id_) return;
      header_timer_fired_ = true;
      boost::system::error_code ignored;
      lowest().socket().cancel(ignored);
    });
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_nothrow);
    ++header_wait_id_;
    header_timer_.cancel();
    if (header_timer_fired_) co_return HeadStatus::timed_out;
    if (ec) co_return HeadStatus::closed;
    buffer_.commit(n);
  }
}

template <class Stream>
asio::awaitable<bool> H1Session<Stream>::handle(RequestParser& parser) {
  auto& req = parser.get();
  Exchange ex;
  ex.runtime = worker_.runtime();
  auto& ctx = ex.ctx;
  // Every request is recorded exactly once, also when a path below ends it without an
  // answer (the client went away): finish() is idempotent, this catches the rest.
  struct FinishOnExit {
    H1Session* self;
    Exchange& ex;
    ~FinishOnExit() {
      if (ex.finished) return;
      if (ex.ctx.status == 0) ex.ctx.status = 499;
      if (ex.ctx.error_code.empty()) ex.ctx.error_code = "client_aborted";
      self->finish(ex);
    }
  } finish_on_exit{this, ex};
  ctx.started = std::chrono::steady_clock::now();
  ctx.listener = listener_->config.name;
  ctx.tls = listener_->tls != nullptr;
  ctx.peer = peer_.address();
  ctx.peer_port = peer_.port();
  ctx.peer_trusted = ex.runtime->peer_is_trusted(ctx.peer);
  ctx.method = req.method_string();
  ex.version = req.version();
  ex.client_keep_alive = req.keep_alive();
  ex.head = req.method() == http::verb::head;

  // Correlation ids: a request id from a trusted proxy is kept (so one request keeps one id
  // across tiers); from anyone else it is replaced, so audit ids cannot be forged or reused.
  std::string_view incoming_id = req["x-request-id"];
  ctx.request_id = ctx.peer_trusted && is_acceptable_request_id(incoming_id)
                       ? std::string(incoming_id)
                       : make_request_id(worker_.random());
  std::string_view incoming_trace = req["traceparent"];
  ctx.traceparent = is_valid_traceparent(incoming_trace) ? std::string(incoming_trace)
                                                         : make_traceparent(worker_.random());
  ctx.user_agent = std::string(req[http::field::user_agent].substr(0, 256));
  ctx.authority = std::string(req[http::field::host]);

  if (auto why = check_request_framing(req, ex.version)) {
    co_return co_await reply(ex, 400, "bad_request", *why, false);
  }
  if (!is_canonical_method(ctx.method)) {
    co_return co_await reply(ex, 400, "bad_method",
                             "the method must be upper-case letters ('-' and '_' allowed)", false);
  }
  std::string_view target = req.target();
  std::string_view absolute_authority;
  std::string_view rest;
  if (split_absolute_form(target, absolute_authority, rest)) {
    ctx.authority = std::string(absolute_authority);  // RFC 9112 3.2.2: the target wins
    target = rest;
  }
  auto host = normalize_host(ctx.authority);
  if (!host) co_return co_await reply(ex, 400, "bad_host", host.error(), false);
  ctx.host = std::move(*host);
  PathNormalizeOptions options;
  options.allow_encoded_slash = true;  // kept encoded; admission refuses it unless the route allows
  auto normalized = normalize_target(target, options);
  if (!normalized) {
    co_return co_await reply(ex, 400, "bad_path", to_string(normalized.error()), false);
  }
  ctx.path = std::move(normalized->path);
  ctx.query = std::move(normalized->query);
  ex.raw_target_has_query = target.find('?') != std::string_view::npos;
  ex.web = grpc_web_type(req[http::field::content_type]);
  if (ex.web && is_grpc_path(ctx.path)) ctx.grpc_method = ctx.path;
  if (auto cl = parser.content_length()) ctx.content_length = *cl;
  ctx.has_body = !parser.is_done();

  bool expect_continue = false;
  if (auto expect = req[http::field::expect]; !expect.empty()) {
    if (!beast::iequals(expect, "100-continue")) {
      co_return co_await reply(ex, 417, "expectation_failed", "unsupported Expect value", false);
    }
    expect_continue = true;
  }

  // The gateway's own assertion keys, on every listener (like IAP's public_key-jwk), so an
  // upstream can verify X-Portcullis-Assertion.
  if (ctx.path == kAssertionJwksPath && ex.runtime->assertion_signer) {
    ctx.decision = "allow";
    ctx.decision_reason = "gateway assertion keys";
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      co_return co_await reply(ex, 405, "method_not_allowed", "use GET", false);
    }
    co_return co_await reply_document(ex, "application/json",
                                      ex.runtime->assertion_signer->public_jwks(),
                                      "public, max-age=300", ex.client_keep_alive && !ctx.has_body);
  }

  // Browser sign-in: the gateway's own paths, then sessions on sso routes (src/sso). Without an
  // sso section nothing here is used: no cookie list, no clock read.
  const bool sso_on = ex.runtime->sso != nullptr;
  std::vector<std::string_view> cookies;
  for (auto [it, end] = req.equal_range(http::field::cookie); sso_on && it != end; ++it) {
    cookies.push_back(it->value());
  }
  SsoRequest sso_req{ctx.method,
                     ctx.path,
                     ctx.query,
                     ctx.authority,
                     ctx.tls,
                     std::move(cookies),
                     req[http::field::accept],
                     req.count("x-requested-with") > 0,
                     ex.web.has_value(),
                     ctx.request_id,
                     {}};
  const auto now_unix = sso_on ? std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()
                               : std::int64_t{0};
  bool keep = ex.client_keep_alive && !ctx.has_body;
  if (const SsoFlow* sso = ex.runtime->sso.get();
      sso && ex.runtime->authenticator && sso->is_gateway_path(ctx.path)) {
    ctx.decision = "none";
    ctx.decision_reason = "sso endpoint";
    std::string body;
    if (ctx.has_body && SsoFlow::wants_body(ctx.method, ctx.path)) {
      if (ctx.content_length && *ctx.content_length > SsoFlow::kMaxBodyBytes) {
        co_return co_await reply(ex, 413, "payload_too_large", "the body is too large", false);
      }
      if (expect_continue && !co_await send_continue()) co_return false;
      prepare_chunk_buffer();
      while (!parser.is_done()) {
        const auto got = co_await read_body_chunk(parser, ex, SsoFlow::kMaxBodyBytes);
        if (!got) co_return false;
        body.append(chunk_.get(), *got);
      }
      sso_req.body = body;
      keep = ex.client_keep_alive;
    }
    const SsoServices services{ex.runtime->authenticator.get(), worker_.random(),
                               worker_.session_store()};
    auto r = co_await sso->handle(sso_req, now_unix, services);
    co_return co_await reply_sso(ex, r, keep);
  }

  auto local = admit(*ex.runtime, ctx);
  const std::string_view authorization = req[http::field::authorization];
  if (!local && uses_session(ctx, authorization)) {
    const SsoServices services{ex.runtime->authenticator.get(), worker_.random(),
                               worker_.session_store()};
    auto r = co_await authenticate_session(*ex.runtime, ctx, sso_req, services, now_unix,
                                           worker_.revocations());
    if (r) co_return co_await reply_sso(ex, *r, keep);
  }
  if (!local) {
    local = co_await authenticate(*ex.runtime, ctx, authorization, worker_.token_cache());
  }
  if (!local) local = authorize(*ex.runtime, ctx, worker_.revocations());
  if (auto page = browser_denial(ctx, local, sso_req))
    co_return co_await reply_sso(ex, *page, keep);
  // With audit.on_failure: deny, nothing reaches an upstream unless it can be audited.
  if (!local && worker_.audit() && worker_.audit_deny() && !worker_.audit()->accepting()) {
    local = LocalReply{503, "audit_unavailable", "the audit log cannot record this request", {}};
  }
  if (local) {
    // A body we will not read makes the connection unusable for another request.
    co_return co_await reply(ex, local.status, local.error, local.message,
                             ex.client_keep_alive && !ctx.has_body, &local);
  }
  if (!ctx.route->forward_token) req.erase(http::field::authorization);
  if (ctx.upstream->protocol != UpstreamProtocol::http1) {
    co_return co_await forward_h2(parser, ex, expect_continue);
  }
  if (ex.web) {
    co_return co_await reply(ex, 502, "upstream_protocol",
                             "gRPC-Web needs an HTTP/2 upstream (h2c or h2)",
                             ex.client_keep_alive && !ctx.has_body);
  }
  co_return co_await forward(parser, ex, expect_continue);
}

template <class Stream>
asio::awaitable<bool> H1Session<Stream>::forward(RequestParser& parser, Exchange& ex,
                                                 bool expect_continue) {
  auto& req = parser.get();
  auto& ctx = ex.ctx;
  const UpstreamConfig& up = *ctx.upstream;
  UpstreamMetrics& metrics = *ctx.upstream_metrics;
  const bool has_body = !parser.is_done();
  const bool chunked = parser.chunked();
  const bool idempotent = is_idempotent(req.method());
  const std::uint64_t body_limit = max_body_for(*ex.runtime, ctx);
  const Duration response_timeout = ctx.route->timeout.value_or(up.timeouts.request);
  std::string target;
  if (auto failed = prepare_upstream_request(ex, req, target)) {
    co_return co_await reply(ex, 500, "assertion_failed", *failed, false);
  }
  req.target(target);
  req.version(11);
  req.keep_alive(true);
  if (chunked) req.chunked(true);

  std::uint64_t exclude = 0;
  unsigned connect_attempts = 0;
  unsigned stale_retries = 0;
  const unsigned max_connect_attempts = 1 + (idempotent ? up.retries : 0);
  std::unique_ptr<UpstreamConnection> conn;
  // However forward() ends, the watchdog must not touch a connection that is gone (declared
  // after conn, so it runs before conn is destroyed).
  struct ForgetUpstream {
    H1Session* self;
    ~ForgetUpstream() { self->forget_upstream(); }
  } forget_upstream_on_exit{this};
  std::optional<ResponseParser> rp;
  bool sent_continue = false;

  for (;;) {
    // 1. A connection: pooled or new (retrying connect failures for idempotent methods).
    forget_upstream();
    conn.reset();
    std::optional<UpstreamFailure> failure;
    std::string tls_failure;  // an alert or TLS error from the upstream after the handshake
    while (!conn && connect_attempts < max_connect_attempts) {
      ++connect_attempts;
      auto acquired = co_await worker_.pool().acquire(up, metrics, exclude, ctx.upstream_tls);
      if (acquired) {
        conn = std::move(*acquired);
      } else {
        failure = acquired.error();
        if (failure == UpstreamFailure::no_healthy_endpoint) break;
      }
    }
    if (!conn) {
      bool keep = ex.client_keep_alive && !has_body;
      if (failure == UpstreamFailure::no_healthy_endpoint) {
        co_return co_await reply(ex, 503, "no_healthy_upstream", "no healthy upstream endpoint",
                                 keep);
      }
      if (failure == UpstreamFailure::connect_timeout) {
        co_return co_await reply(ex, 504, "upstream_connect_timeout",
                                 "timed out connecting to the upstream", keep);
      }
      co_return co_await reply(ex, 502, "upstream_connect_failed",
                               "could not connect to the upstream", keep);
    }
    ctx.upstream_address = conn->address;
    metrics.requests_total.fetch_add(1, std::memory_order_relaxed);

    if (expect_continue && has_body && !sent_continue) {
      if (!co_await send_continue()) co_return false;
      sent_continue = true;
    }

    // 2. The request: header, then the body chunk by chunk as it arrives from the client.
    http::serializer<true, http::buffer_body> sr{req};
    bool upstream_write_failed = false;
    do {
      if (!parser.is_done()) {
        const auto read = co_await read_body_chunk(parser, ex, body_limit);
        if (!read) co_return false;
        const std::size_t got = *read;
        // No bytes yet (e.g. only a chunk header arrived): a zero-length chunk would end the
        // chunked body, so hand the serializer nothing and read again.
        req.body().data = got ? chunk_.get() : nullptr;
        req.body().size = got;
        req.body().more = !parser.is_done();
      } else {
        req.body().data = nullptr;
        req.body().size = 0;
        req.body().more = false;
      }
      upstream_deadline(conn->stream, up.timeouts.idle);
      auto [ec, n] = co_await async_write_flat(conn->io, sr, write_scratch_);
      if (ec) {
        upstream_write_failed = true;
        tls_failure = is_tls_error(ec) ? ec.message() : std::string{};
        break;
      }
    } while (!sr.is_done());

    // 3. The response header (interim 1xx responses are consumed here).
    bool read_failed = false;
    bool timed_out = false;
    bool protocol_error = false;
    if (!upstream_write_failed) {
      for (;;) {
        rp.emplace();
        rp->header_limit(kUpstreamHeaderLimit);
        rp->body_limit(boost::none);
        if (ex.head) rp->skip(true);
        upstream_deadline(conn->stream, response_timeout);
        auto [ec, n] = co_await http::async_read_header(conn->io, conn->buffer, *rp, use_nothrow);
        if (ec) {
          read_failed = true;
          if (is_tls_error(ec)) tls_failure = ec.message();
          timed_out = upstream_timed_out_;
          protocol_error =
              !timed_out &&
              ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
              ec != http::error::end_of_stream && ec != http::error::partial_message;
          break;
        }
        unsigned status = rp->get().result_int();
        if (status >= 100 && status < 200 && status != 101) continue;
        if (status == 101 || status < 100) protocol_error = read_failed = true;
        break;
      }
    }
    if (!upstream_write_failed && !read_failed) break;

    // A pooled connection the upstream closed before answering: safe to retry on another
    // connection when nothing of the request body was consumed and the method is idempotent.
    bool stale = conn->reused && !timed_out && !protocol_error && tls_failure.empty();
    if (stale && idempotent && !has_body && stale_retries < 2) {
      ++stale_retries;
      continue;
    }
    worker_.pool().record_failure(up, conn->endpoint_index);
    bool keep = ex.client_keep_alive && parser.is_done();
    if (!tls_failure.empty()) {
      // TLS 1.3 refuses a client certificate with an alert after the client's side of the
      // handshake is done: on a new connection that is a failed connect, as under TLS 1.2.
      metrics.error(UpstreamErrorKind::tls);
      app_log()->warn("upstream {} ({}): TLS failed on {} after the handshake: {}", up.name,
                      conn->address, conn->reused ? "a reused connection" : "a new connection",
                      tls_failure);
      if (!conn->reused) {
        co_return co_await reply(ex, 502, "upstream_connect_failed",
                                 "could not connect to the upstream", keep);
      }
      co_return co_await reply(ex, 502, "upstream_reset", "the upstream closed the connection",
                               keep);
    }
    if (timed_out) {
      metrics.error(UpstreamErrorKind::timeout);
      co_return co_await reply(ex, 504, "upstream_timeout", "the upstream did not answer in time",
                               keep);
    }
    metrics.error(protocol_error ? UpstreamErrorKind::protocol : UpstreamErrorKind::reset);
    co_return co_await reply(ex, 502, protocol_error ? "upstream_protocol_error" : "upstream_reset",
                             protocol_error ? "the upstream sent an invalid response"
                                            : "the upstream closed the connection",
                             keep);
  }

  // 4. The response: header for the client, then the body relayed chunk by chunk.
  auto& res = rp->get();
  const unsigned status = res.result_int();
  const bool upstream_keep_alive = rp->keep_alive();
  const bool body_expected = !ex.head && status != 204 && status != 304;
  const auto upstream_length = rp->content_length();
  prepare_downstream_response_headers(res);
  for (const auto& c : ctx.set_cookies) res.insert(http::field::set_cookie, c);
  bool down_keep = ex.client_keep_alive && parser.is_done() && !worker_.draining();
  res.version(ex.version);
  if (body_expected) {
    if (upstream_length) {
      res.content_length(*upstream_length);
    } else if (ex.version >= 11) {
      res.chunked(true);
    } else {
      down_keep = false;  // HTTP/1.0: the end of the body is the end of the connection
    }
  }
  res.keep_alive(down_keep);
  res.set("x-request-id", ctx.request_id);
  ctx.status = status;

  http::serializer<false, http::buffer_body> rs{res};
  bool upstream_failed = false;
  do {
    if (!rp->is_done()) {
      res.body().data = chunk_.get();
      res.body().size = kChunk;
      upstream_deadline(conn->stream, up.timeouts.idle);
      auto [ec, n] = co_await http::async_read_some(conn->io, conn->buffer, *rp, use_nothrow);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        upstream_failed = true;
        metrics.error(upstream_timed_out_ ? UpstreamErrorKind::timeout : UpstreamErrorKind::reset);
        ctx.error_code = "upstream_body_interrupted";
        break;
      }
      std::size_t got = kChunk - res.body().size;
      res.body().data = got ? chunk_.get() : nullptr;
      res.body().size = got;
      res.body().more = !rp->is_done();
    } else {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
    }
    client_deadline(limits_.idle_timeout);
    auto [ec, n] = co_await async_write_flat(stream_, rs, write_scratch_);
    if (ec) {
      ctx.error_code = "client_aborted_download";
      down_keep = false;
      break;
    }
    ctx.bytes_out += res.body().data ? n : 0;
  } while (!rs.is_done());

  forget_upstream();
  client_deadline_ = kNever;
  if (upstream_failed) {
    worker_.pool().record_failure(up, conn->endpoint_index);
    down_keep = false;  // the client sees a truncated body; closing is the only honest signal
  } else {
    worker_.pool().record_success(up, conn->endpoint_index);
    if (rp->is_done() && upstream_keep_alive && rs.is_done()) {
      worker_.pool().release(std::move(conn), up);
    }
  }
  finish(ex);
  co_return down_keep&& rs.is_done();
}

template <class Stream>
asio::awaitable<bool> H1Session<Stream>::send_continue() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  client_deadline(limits_.idle_timeout);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(kContinue), use_nothrow);
  co_return !ec;
}

template <class Stream>
void H1Session<Stream>::prepare_chunk_buffer() {
  if (!chunk_) {
    chunk_ = std::make_unique<char[]>(kChunk);
    // Beast sizes each socket read by the buffer's free capacity (512 bytes minimum): give it
    // room for a whole chunk, or bodies move 512 bytes per syscall.
    buffer_.reserve(kChunk);
  }
}

template <class Stream>
asio::awaitable<std::optional<std::size_t>> H1Session<Stream>::read_body_chunk(
    RequestParser& parser, Exchange& ex, std::uint64_t limit) {
  auto& req = parser.get();
  req.body().data = chunk_.get();
  req.body().size = kChunk;
  client_deadline(limits_.idle_timeout);
  auto [ec, n] = co_await http::async_read_some(stream_, buffer_, parser, use_nothrow);
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    ex.ctx.status = client_timed_out_ ? 408 : 499;
    ex.ctx.error_code = "client_aborted_upload";
    finish(ex);
    co_return std::nullopt;
  }
  const std::size_t got = kChunk - req.body().size;
  ex.ctx.bytes_in += got;
  if (ex.ctx.bytes_in > limit) {
    co_await reply(ex, 413, "payload_too_large", "request body exceeds the route's limit", false);
    co_return std::nullopt;
  }
  co_return got;
}

template <class Stream>
std::optional<std::string> H1Session<Stream>::prepare_upstream_request(Exchange& ex,
                                                                       http::fields& h,
                                                                       std::string& target) {
  auto& ctx = ex.ctx;
  prepare_chunk_buffer();
  const bool had_query = !ctx.query.empty() || ex.raw_target_has_query;
  target = ctx.path;
  if (had_query) {
    target += '?';
    target += ctx.query;
  }
  h.erase(http::field::expect);
  ForwardingContext fc{ctx.peer,      ctx.peer_trusted, ctx.tls,
                       ctx.authority, ctx.request_id,   ctx.traceparent};
  prepare_upstream_request_headers(h, fc);
  if (ex.runtime->sso) strip_gateway_cookies(h, *ex.runtime->sso);
  if (!ctx.identity || !ctx.route->identity_headers) return std::nullopt;
  std::string_view assertion;
  if (const AssertionSigner* signer = ex.runtime->assertion_signer.get()) {
    auto signed_assertion = worker_.assertions().get(*signer, ctx.identity, ctx.route->name,
                                                     ex.runtime->config->assertion);
    if (!signed_assertion) {
      return "cannot sign the identity assertion: " + signed_assertion.error();
    }
    assertion = *signed_assertion;
  }
  set_identity_headers(h, *ctx.identity, assertion);
  return std::nullopt;
}

// An HTTP/1.1 request relayed to an h2c upstream as one stream of the worker's multiplexed
// session: the body streams up as the client sends it (at most kStreamBuffer queued), the
// answer streams back with Content-Length when the upstream gave one, else chunked.
template <class Stream>
asio::awaitable<bool> H1Session<Stream>::forward_h2(RequestParser& parser, Exchange& ex,
                                                    bool expect_continue) {
  constexpr std::size_t kStreamBuffer = 4 * kChunk;
  auto& req = parser.get();
  auto& ctx = ex.ctx;
  const UpstreamConfig& up = *ctx.upstream;
  const bool has_body = !parser.is_done();
  const bool chunked = parser.chunked();
  const std::uint64_t body_limit = max_body_for(*ex.runtime, ctx);
  const auto response_deadline =
      std::chrono::steady_clock::now() + ctx.route->timeout.value_or(up.timeouts.request);
  std::string target;
  if (auto failed = prepare_upstream_request(ex, req, target)) {
    co_return co_await reply(ex, 500, "assertion_failed", *failed, false);
  }
  H2Headers headers{{":method", ctx.method},
                    {":scheme", up.protocol == UpstreamProtocol::h2 ? "https" : "http"},
                    {":authority", ctx.authority},
                    {":path", std::move(target)}};
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "host" || name == "transfer-encoding" || (chunked && name == "content-length")) {
      continue;
    }
    if (ex.web && (name == "content-length" || name == "content-type" || name == "te")) continue;
    headers.push_back({std::move(name), std::string(f.value())});
  }
  std::optional<GrpcWebRequestDecoder> web_in;
  std::optional<GrpcWebResponseEncoder> web_out;
  if (ex.web) {  // gRPC towards the upstream (a text body shrinks when decoded: no length)
    headers.push_back({"content-type", ex.web->grpc_content_type});
    headers.push_back({"te", "trailers"});
    web_in.emplace(ex.web->mode);
    web_out.emplace(ex.web->mode);
  }

  std::string address;
  auto session = co_await worker_.h2_pool().acquire(up, ctx.upstream_tls, *ctx.upstream_metrics,
                                                    worker_.pool(), address);
  const bool keep_if_refused = ex.client_keep_alive && !has_body;
  if (!session) {
    if (session.error() == UpstreamFailure::no_healthy_endpoint) {
      co_return co_await reply(ex, 503, "no_healthy_upstream", "no healthy upstream endpoint",
                               keep_if_refused);
    }
    if (session.error() == UpstreamFailure::connect_timeout) {
      co_return co_await reply(ex, 504, "upstream_connect_timeout",
                               "timed out connecting to the upstream", keep_if_refused);
    }
    co_return co_await reply(ex, 502, "upstream_connect_failed",
                             "could not connect to the upstream", keep_if_refused);
  }
  ctx.upstream_address = address;
  ctx.upstream_metrics->requests_total.fetch_add(1, std::memory_order_relaxed);
  auto bridge = std::make_shared<BufferedUpstreamStream>(lowest().get_executor());
  const std::shared_ptr<H2UpstreamSession> h2 = *session;
  const int32_t id = h2->submit(headers, bridge.get(), has_body);
  if (id < 0) {
    co_return co_await reply(ex, 503, "upstream_busy",
                             "the upstream connection cannot take another stream", keep_if_refused);
  }
  // However this ends, the session must not call into a bridge that is gone.
  struct Detach {
    std::shared_ptr<H2UpstreamSession> h2;
    int32_t id;
    BufferedUpstreamStream* bridge;
    ~Detach() {
      if (bridge->closed) return;
      h2->detach(id);
      h2->reset(id, NGHTTP2_CANCEL);
    }
  } detach{h2, id, bridge.get()};

  if (expect_continue && has_body && !co_await send_continue()) co_return false;
  while (!parser.is_done() && !bridge->closed) {
    if (bridge->request.size() >= kStreamBuffer) {
      co_await bridge->wait();
      continue;
    }
    const auto read = co_await read_body_chunk(parser, ex, body_limit);
    if (!read) co_return false;
    const std::size_t got = *read;
    if (web_in) {
      std::string decoded;
      if (!web_in->feed(std::string_view(chunk_.get(), got), decoded)) {
        co_return co_await reply(ex, 400, "bad_grpc_web_body",
                                 "the gRPC-Web text body is not base64", false);
      }
      bridge->request.append(decoded.data(), decoded.size());
    } else {
      bridge->request.append(chunk_.get(), got);
    }
    h2->resume(id);
  }
  client_deadline_ = kNever;
  if (web_in && !web_in->complete()) {
    co_return co_await reply(ex, 400, "bad_grpc_web_body",
                             "the gRPC-Web text body ends inside a base64 group", false);
  }
  bridge->request_end = true;
  if (has_body) h2->resume(id);

  while (!bridge->head && !bridge->closed && std::chrono::steady_clock::now() < response_deadline) {
    co_await bridge->wait();
  }
  if (!bridge->head) {
    if (!bridge->closed) {
      co_return co_await reply(ex, 504, "upstream_timeout", "the upstream did not answer in time",
                               false);
    }
    if (bridge->error_code == kUpstreamTlsRefused) {
      co_return co_await reply(ex, 502, "upstream_connect_failed",
                               "could not connect to the upstream", false);
    }
    co_return co_await reply(ex, 502, "upstream_reset",
                             "the upstream ended the stream without a response", false);
  }

  const bool keep_alive = ex.client_keep_alive && !worker_.draining();
  http::response<http::buffer_body> res{static_cast<http::status>(bridge->status), ex.version};
  bool has_length = false;
  for (const auto& h : bridge->headers) {
    if (h.name == "x-request-id") continue;
    if (ex.web && (h.name == "content-length" || h.name == "content-type")) continue;
    if (h.name == "content-length") has_length = true;
    res.insert(h.name, h.value);
  }
  if (ex.web) res.set(http::field::content_type, ex.web->web_content_type);
  prepare_downstream_response_headers(res);
  for (const auto& c : ctx.set_cookies) res.insert(http::field::set_cookie, c);
  res.set("x-request-id", ctx.request_id);
  const bool bodyless = ex.head || bridge->status == 204 || bridge->status == 304;
  if (!has_length && !bodyless) res.chunked(true);
  res.keep_alive(keep_alive);
  ctx.status = static_cast<unsigned>(bridge->status);
  http::response_serializer<http::buffer_body> sr{res};
  std::string web_buf;  // gRPC-Web: the encoded chunk being written
  bool web_tail = !web_out;
  for (;;) {
    if (!bridge->response.empty()) {
      const std::size_t k = std::min(kChunk, bridge->response.size());
      if (web_out) {
        web_buf.clear();
        web_out->data(std::string_view(bridge->response.data(), k), web_buf);
      } else {
        std::memcpy(chunk_.get(), bridge->response.data(), k);
      }
      bridge->response.consume(k);
      h2->consume(id, k);
      if (web_out && web_buf.empty()) continue;  // under one base64 group so far
      res.body().data = web_out ? web_buf.data() : chunk_.get();
      res.body().size = web_out ? web_buf.size() : k;
      res.body().more = true;
    } else if ((bridge->closed || bridge->response_end) && !web_tail) {
      // gRPC-Web: the trailers as the body's last frame, then the last base64 group.
      web_tail = true;
      web_buf.clear();
      if (bridge->error_code == 0 && !bridge->trailers.empty()) {
        web_out->trailers(bridge->trailers, web_buf);
      }
      web_out->finish(web_buf);
      if (web_buf.empty()) continue;
      res.body().data = web_buf.data();
      res.body().size = web_buf.size();
      res.body().more = true;
    } else if (bridge->closed || bridge->response_end) {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
    } else {
      co_await bridge->wait();
      continue;
    }
    client_deadline(limits_.idle_timeout);
    auto [ec, n] = co_await async_write_flat(stream_, sr, write_scratch_);
    ctx.bytes_out += n;
    if (ec) {
      ctx.status = 499;
      ctx.error_code = "client_aborted";
      finish(ex);
      co_return false;
    }
    if (sr.is_done()) break;
  }
  client_deadline_ = kNever;
  if (bridge->closed && bridge->error_code != 0) {
    ctx.error_code = "upstream_reset";  // the body was cut: the client sees a short answer
    finish(ex);
    co_return false;
  }
  finish(ex);
  co_return keep_alive&& parser.is_done();
}

template <class Stream>
asio::awaitable<bool> H1Session<Stream>::reply(Exchange& ex, unsigned status,
                                               std::string_view error, std::string_view message,
                                               bool keep_alive, const LocalReply* local) {
  keep_alive = keep_alive && !worker_.draining();
  // gRPC-Web: a trailers-only answer (status 200, grpc-status in the headers), as gRPC's.
  http::response<http::string_body> res{
      ex.web ? http::status::ok : static_cast<http::status>(status), ex.version};
  res.set(http::field::content_type, ex.web ? std::string_view(ex.web->web_content_type)
                                            : std::string_view("application/json"));
  res.set(http::field::cache_control, "no-store");
  res.set("x-request-id", ex.ctx.request_id);
  if (local && !local->www_authenticate.empty()) {
    res.set(http::field::www_authenticate, local->www_authenticate);
  }
  // A session renewed on the way to this answer (e.g. a policy 403) is not lost.
  for (const auto& c : ex.ctx.set_cookies) res.insert(http::field::set_cookie, c);
  if (ex.web) {
    res.set("grpc-status", std::to_string(grpc_status_for_reply(status, error)));
    res.set("grpc-message",
            grpc_percent_encode(local && !local->reason.empty()
                                    ? std::string(message) + " (" + std::string(local->reason) + ")"
                                    : std::string(message)));
  } else if (!ex.head) {
    res.body() =
        local ? error_body(status, error, message, ex.ctx.request_id, local->reason, local->rule)
              : error_body(status, error, message, ex.ctx.request_id);
  }
  res.prepare_payload();
  res.keep_alive(keep_alive);
  ex.ctx.status = status;
  ex.ctx.error_code = error;
  client_deadline_ = kNever;
  lowest().expires_after(limits_.idle_timeout);
  auto [ec, n] = co_await http::async_write(stream_, res, use_nothrow);
  lowest().expires_never();  // Beast's expiry would otherwise apply to every later operation
  ex.ctx.bytes_out += n;
  if (status >= 500 || status == 400 || status == 413) {
    app_log()->warn("request {} answered {} {}: {}", ex.ctx.request_id, status, error,
                    escape_for_log(message));
  }
  finish(ex);
  co_return !ec && keep_alive;
}

template <class Stream>
asio::awaitable<bool> H1Session<Stream>::reply_sso(Exchange& ex, const SsoResponse& r,
                                                   bool keep_alive) {
  keep_alive = keep_alive && !worker_.draining();
  http::response<http::string_body> res{static_cast<http::status>(r.status), ex.version};
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.insert(name, value);
  res.set("x-request-id", ex.ctx.request_id);
  res.body() = r.body;
  res.prepare_payload();
  if (ex.head) res.body().clear();
  res.keep_alive(keep_alive);
  ex.ctx.status = r.status;
  ex.ctx.error_code = r.error;
  client_deadline_ = kNever;
  lowest().expires_after(limits_.idle_timeout);
  auto [ec, n] = co_await http::async_write(stream_, res, use_nothrow);
  lowest().expires_never();
  ex.ctx.bytes_out += n;
  if (r.status >= 500) {
    app_log()->warn("request {} answered {} {}", ex.ctx.request_id, r.status, r.error);
  }
  finish(ex);
  co_return !ec && keep_alive;
}

template <class Stream>
asio::awaitable<bool> H1Session<Stream>::reply_document(Exchange& ex, std::string_view content_type,
                                                        std::string_view body,
                                                        std::string_view cache_control,
                                                        bool keep_alive) {
  keep_alive = keep_alive && !worker_.draining();
  http::response<http::string_body> res{http::status::ok, ex.version};
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, cache_control);
  res.set("x-request-id", ex.ctx.request_id);
  res.body() = body;
  res.prepare_payload();
  if (ex.head) res.body().clear();
  res.keep_alive(keep_alive);
  ex.ctx.status = 200;
  client_deadline_ = kNever;
  lowest().expires_after(limits_.idle_timeout);
  auto [ec, n] = co_await http::async_write(stream_, res, use_nothrow);
  lowest().expires_never();
  ex.ctx.bytes_out += n;
  finish(ex);
  co_return !ec && keep_alive;
}

// For requests that could not be parsed: no context beyond a fresh id.
template <class Stream>
asio::awaitable<void> H1Session<Stream>::reply_bare(unsigned status, std::string_view error,
                                                    std::string_view message) {
  Exchange ex;
  ex.runtime = worker_.runtime();
  ex.ctx.started = std::chrono::steady_clock::now();
  ex.ctx.listener = listener_->config.name;
  ex.ctx.tls = listener_->tls != nullptr;
  ex.ctx.peer = peer_.address();
  ex.ctx.peer_port = peer_.port();
  ex.ctx.request_id = make_request_id(worker_.random());
  ex.ctx.route_metrics = ex.runtime->unmatched_metrics;
  co_await reply(ex, status, error, message, false);
}

template <class Stream>
void H1Session<Stream>::finish(Exchange& ex) {
  if (ex.finished) return;
  ex.finished = true;
  worker_.record_request(*ex.runtime, ex.ctx);
}

}  // namespace

asio::awaitable<void> serve_h1_plain(tcp::socket socket, Worker& worker,
                                     std::shared_ptr<ListenerRuntime> listener) {
  boost::system::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  if (ec) co_return;
  PlainStream stream(std::move(socket));
  H1Session<PlainStream> session(stream, worker, std::move(listener), peer);
  co_await session.run();
}

asio::awaitable<void> serve_h1_tls(tcp::socket socket, Worker& worker,
                                   std::shared_ptr<ListenerRuntime> listener) {
  boost::system::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  if (ec) co_return;
  TlsStream stream(std::move(socket), *listener->tls);
  beast::get_lowest_layer(stream).expires_after(listener->config.limits.handshake_timeout);
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_nothrow);
  if (hec) {
    listener->metrics->tls_handshake_errors.fetch_add(1, std::memory_order_relaxed);
    const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    app_log()->debug("TLS handshake from {} failed (sni '{}'): {}", peer.address().to_string(),
                     escape_for_log(sni ? sni : ""), hec.message());
    co_return;
  }
  beast::get_lowest_layer(stream).expires_never();
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(stream.native_handle(), &alpn, &alpn_len);
  if (std::string_view(reinterpret_cast<const char*>(alpn), alpn ? alpn_len : 0) == "h2") {
    co_await serve_h2_tls(std::move(stream), worker, std::move(listener));
    co_return;
  }
  H1Session<TlsStream> session(stream, worker, std::move(listener), peer);
  co_await session.run();
}

}  // namespace portcullis
