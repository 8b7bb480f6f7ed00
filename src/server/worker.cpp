#include "server/worker.hpp"

#include "cache/revocations.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "h2/h2_server_session.hpp"
#include "h2/h2_upstream_pool.hpp"
#include "http/h1_session.hpp"

namespace portcullis {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
}  // namespace

struct Worker::Acceptor {
  Acceptor(asio::io_context& io, std::shared_ptr<ListenerRuntime> l)
      : acceptor(io), listener(std::move(l)) {}
  tcp::acceptor acceptor;
  std::shared_ptr<ListenerRuntime> listener;
};

Worker::Worker(unsigned id, RuntimeHolder& runtimes,
               const std::vector<std::shared_ptr<ListenerRuntime>>& listeners, AuditWriter* audit,
               bool audit_deny, const RevocationList* revocations)
    : id_(id),
      runtimes_(runtimes),
      runtime_(runtimes.current()),
      listeners_(listeners),
      pool_(io_, SystemClock::instance()),
      h2_pool_(std::make_unique<H2UpstreamPool>()),
      access_log_(access_log()),
      audit_(audit),
      audit_deny_(audit_deny),
      revocations_(revocations ? std::make_unique<RevocationView>(*revocations) : nullptr) {}

Worker::~Worker() = default;

void Worker::open_listeners() {
  for (const auto& l : listeners_) {
    auto a = std::make_unique<Acceptor>(io_, l);
    auto address = asio::ip::make_address(l->config.address.host);
    tcp::endpoint endpoint(address, l->config.address.port);
    a->acceptor.open(endpoint.protocol());
    a->acceptor.set_option(tcp::acceptor::reuse_address(true));
    a->acceptor.set_option(reuse_port(true));
    if (address.is_v6()) a->acceptor.set_option(asio::ip::v6_only(true));
    a->acceptor.bind(endpoint);
    a->acceptor.listen(asio::socket_base::max_listen_connections);
    acceptors_.push_back(std::move(a));
  }
}

void Worker::run() {
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  for (auto& a : acceptors_) asio::co_spawn(io_, accept_loop(*a), asio::detached);
  schedule_sweep();
  io_.run();
}

void Worker::begin_drain() {
  asio::post(io_, [this] {
    draining_.store(true, std::memory_order_relaxed);
    boost::system::error_code ec;
    for (auto& a : acceptors_) a->acceptor.close(ec);
    // Copy: closing a connection may unregister it.
    std::vector<DownstreamConnection*> conns(connections_.begin(), connections_.end());
    for (auto* c : conns) c->close_if_idle();
    pool_.close_idle();
    h2_pool_->close_all();
  });
}

void Worker::stop() {
  asio::post(io_, [this] {
    work_.reset();
    sweep_timer_.cancel();
    io_.stop();
  });
}

const std::shared_ptr<const Runtime>& Worker::runtime() {
  if (runtimes_.generation() != runtime_->generation) runtime_ = runtimes_.current();
  return runtime_;
}

void Worker::register_connection(DownstreamConnection* c) {
  connections_.insert(c);
}
void Worker::unregister_connection(DownstreamConnection* c) {
  connections_.erase(c);
}

void Worker::schedule_sweep() {
  sweep_timer_.expires_after(std::chrono::seconds(5));
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    pool_.sweep();
    schedule_sweep();
  });
}

asio::awaitable<void> Worker::accept_loop(Acceptor& a) {
  for (;;) {
    auto [ec, socket] = co_await a.acceptor.async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || draining()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      app_log()->warn("accept on listener {} failed: {}", a.listener->config.name, ec.message());
      asio::steady_timer t(io_, std::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    if (draining()) co_return;
    boost::system::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    asio::co_spawn(io_, serve(std::move(socket), a.listener), asio::detached);
  }
}

namespace {

enum class FirstBytes { http1, h2, silent };

// Cancels `socket`'s pending wait when `timer` expires (a plain function: GCC 12 mishandles
// lambdas inside coroutines).
void cancel_on_expiry(asio::steady_timer& timer, tcp::socket& socket) {
  timer.async_wait([&socket](boost::system::error_code ec) {
    if (ec) return;
    boost::system::error_code ignored;
    socket.cancel(ignored);
  });
}

// Prior-knowledge h2c: the client starts with the HTTP/2 preface. Peeks (consumes nothing)
// until the first bytes either differ from it (HTTP/1.1) or match all 24. A client that sends
// nothing within `limit` (the listener's header_timeout) is `silent`: the connection is
// closed, as HTTP/1.1 closes a connection whose first request never starts.
asio::awaitable<FirstBytes> classify_first_bytes(tcp::socket& socket, Duration limit) {
  asio::steady_timer deadline(socket.get_executor(), limit);
  cancel_on_expiry(deadline, socket);
  std::array<char, kH2Preface.size()> peek{};
  for (;;) {
    auto [ec] =
        co_await socket.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return FirstBytes::silent;  // timed out (cancelled) or the socket failed
    boost::system::error_code rec;
    const std::size_t n = socket.receive(asio::buffer(peek), tcp::socket::message_peek, rec);
    if (rec || n == 0) co_return FirstBytes::silent;  // closed before a byte
    if (std::string_view(peek.data(), n) != kH2Preface.substr(0, n)) co_return FirstBytes::http1;
    if (n == kH2Preface.size()) co_return FirstBytes::h2;
    // A prefix of the preface: wait for the rest (still bounded by `deadline`).
    asio::steady_timer t(socket.get_executor(), std::chrono::milliseconds(5));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (deadline.expiry() <= asio::steady_timer::clock_type::now()) co_return FirstBytes::silent;
  }
}

}  // namespace

asio::awaitable<void> Worker::serve(tcp::socket socket, std::shared_ptr<ListenerRuntime> listener) {
  active_.fetch_add(1, std::memory_order_relaxed);
  listener->metrics->connections_active.fetch_add(1, std::memory_order_relaxed);
  listener->metrics->connections_total.fetch_add(1, std::memory_order_relaxed);
  auto* metrics = listener->metrics;
  if (listener->tls) {
    co_await serve_h1_tls(std::move(socket), *this, std::move(listener));  // h2 by ALPN inside
  } else {
    switch (co_await classify_first_bytes(socket, listener->config.limits.header_timeout)) {
      case FirstBytes::h2:
        co_await serve_h2_plain(boost::beast::tcp_stream(std::move(socket)), *this,
                                std::move(listener), {});
        break;
      case FirstBytes::http1:
        co_await serve_h1_plain(std::move(socket), *this, std::move(listener));
        break;
      case FirstBytes::silent:
        break;  // the socket closes here
    }
  }
  metrics->connections_active.fetch_sub(1, std::memory_order_relaxed);
  active_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace portcullis
