#pragma once
// Entry points of the HTTP/2 codec (nghttp2) for downstream connections: prior-knowledge h2c
// on plaintext listeners (the connection preface was already read by the caller) and h2
// negotiated by ALPN on TLS listeners. Each stream goes through the same admission,
// authentication, authorization, audit and metrics as HTTP/1.1 (src/proxy/admission.hpp) and
// is relayed to an h2c upstream, streaming both ways under HTTP/2 flow control. Refusals of
// gRPC requests are trailers-only gRPC responses (grpc-status, grpc-message); other refusals
// are the same JSON bodies as HTTP/1.1. See docs/http2-grpc.md.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <string>

namespace portcullis {

class Worker;
struct ListenerRuntime;

// The client connection preface every HTTP/2 connection starts with (RFC 9113 3.4).
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

boost::asio::awaitable<void> serve_h2_plain(boost::beast::tcp_stream stream, Worker& worker,
                                            std::shared_ptr<ListenerRuntime> listener,
                                            std::string already_read);
boost::asio::awaitable<void> serve_h2_tls(boost::beast::ssl_stream<boost::beast::tcp_stream> stream,
                                          Worker& worker,
                                          std::shared_ptr<ListenerRuntime> listener);

}  // namespace portcullis
