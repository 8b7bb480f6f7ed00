#include "admin/admin_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/metrics.hpp"

namespace portcullis {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
}

struct AdminServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, const SocketAddress& address, AdminHooks hooks)
      : io(io), acceptor(io), address(address), hooks(std::move(hooks)) {}

  http::response<http::string_body> respond(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::cache_control, "no-store");
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.body() = "method not allowed\n";
    } else if (target == "/healthz") {
      res.set(http::field::content_type, "text/plain");
      res.body() = "ok\n";
    } else if (target == "/readyz") {
      res.set(http::field::content_type, "text/plain");
      bool ready = hooks.ready && hooks.ready();
      if (!ready) res.result(http::status::service_unavailable);
      const std::string degraded = hooks.degraded ? hooks.degraded() : std::string();
      res.body() = !ready             ? "not ready\n"
                   : degraded.empty() ? "ready\n"
                                      : "ready (degraded: " + degraded + ")\n";
    } else if (target == "/metrics") {
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = MetricsRegistry::instance().render();
    } else if (target == "/config") {
      res.set(http::field::content_type, "application/json");
      res.body() = hooks.config_json ? hooks.config_json() : "{}";
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: /healthz /readyz /metrics /config\n";
    }
    if (req.method() == http::verb::head) res.body().clear();
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(64 * 1024);
    for (;;) {
      stream.expires_after(std::chrono::seconds(30));
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow);
      if (ec) break;
      auto res = respond(parser.get());
      auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  SocketAddress address;
  AdminHooks hooks;
};

AdminServer::AdminServer(asio::io_context& io, const SocketAddress& address, AdminHooks hooks)
    : impl_(std::make_shared<Impl>(io, address, std::move(hooks))) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::start() {
  tcp::endpoint endpoint(asio::ip::make_address(impl_->address.host), impl_->address.port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

void AdminServer::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace portcullis
