#pragma once
// Entry points of the HTTP/1.1 codec (Beast): serve one accepted connection until it closes.
// Requests go through the protocol-neutral admission stage and are relayed to the upstream
// with bounded buffers in both directions (see h1_session.cpp).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

namespace portcullis {

class Worker;
struct ListenerRuntime;

boost::asio::awaitable<void> serve_h1_plain(boost::asio::ip::tcp::socket socket, Worker& worker,
                                            std::shared_ptr<ListenerRuntime> listener);
boost::asio::awaitable<void> serve_h1_tls(boost::asio::ip::tcp::socket socket, Worker& worker,
                                          std::shared_ptr<ListenerRuntime> listener);

}  // namespace portcullis
