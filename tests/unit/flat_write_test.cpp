// async_write_flat must put exactly the bytes on the wire that Beast's http::async_write does,
// for heads alone, Content-Length and chunked bodies, small pieces (copied into one buffer)
// and bulk pieces (handed to Beast), requests and responses. Both writers run over a real
// socket pair; the peer's bytes are compared.
#include "http/flat_write.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <string>
#include <vector>

namespace portcullis {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Socket = asio::local::stream_protocol::socket;

enum class Writer { beast, flat };

struct Outcome {
  std::string wire;              // what the peer read
  std::size_t reported = 0;      // the byte counts the writer returned, summed
  boost::system::error_code ec;  // the first error the writer returned
};

asio::awaitable<void> read_to_end(Socket& s, std::string& out) {
  std::vector<char> buf(4096);
  for (;;) {
    auto [ec, n] =
        co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    out.append(buf.data(), n);
    if (ec) co_return;
  }
}

template <bool isRequest>
asio::awaitable<void> write_message(Socket& s, Writer writer,
                                    http::message<isRequest, http::buffer_body>& msg,
                                    std::vector<std::string> pieces, Outcome& outcome) {
  http::serializer<isRequest, http::buffer_body> sr{msg};
  std::string scratch;
  std::size_t next = 0;
  do {
    if (next < pieces.size()) {
      msg.body().data = pieces[next].data();
      msg.body().size = pieces[next].size();
      msg.body().more = next + 1 < pieces.size();
      ++next;
    } else {
      msg.body().data = nullptr;
      msg.body().size = 0;
      msg.body().more = false;
    }
    boost::system::error_code ec;
    std::size_t n = 0;
    if (writer == Writer::flat) {
      std::tie(ec, n) = co_await async_write_flat(s, sr, scratch);
    } else {
      std::tie(ec, n) = co_await http::async_write(s, sr, asio::as_tuple(asio::use_awaitable));
      if (ec == http::error::need_buffer) ec = {};
    }
    outcome.reported += n;
    if (ec) {
      outcome.ec = ec;
      break;
    }
  } while (!sr.is_done());
  boost::system::error_code ignored;
  s.shutdown(Socket::shutdown_send, ignored);
}

template <bool isRequest>
Outcome send(Writer writer, http::message<isRequest, http::buffer_body> msg,
             std::vector<std::string> pieces) {
  asio::io_context io;
  Socket a(io), b(io);
  asio::local::connect_pair(a, b);
  Outcome outcome;
  asio::co_spawn(io, read_to_end(b, outcome.wire), asio::detached);
  asio::co_spawn(io, write_message<isRequest>(a, writer, msg, std::move(pieces), outcome),
                 asio::detached);
  io.run();
  return outcome;
}

http::response<http::buffer_body> response(int header_count) {
  http::response<http::buffer_body> res{http::status::ok, 11};
  res.set(http::field::server, "upstream");
  res.set(http::field::content_type, "application/json");
  for (int i = 0; i < header_count; ++i)
    res.set("x-header-" + std::to_string(i), std::string(20, 'v'));
  res.set("x-request-id", "req-1");
  return res;
}

std::size_t total(const std::vector<std::string>& pieces) {
  std::size_t n = 0;
  for (const auto& p : pieces) n += p.size();
  return n;
}

void expect_same_wire(const char* what, const Outcome& beast, const Outcome& flat) {
  EXPECT_FALSE(beast.ec) << what << ": " << beast.ec.message();
  EXPECT_FALSE(flat.ec) << what << ": " << flat.ec.message();
  EXPECT_FALSE(flat.wire.empty()) << what;
  EXPECT_EQ(flat.wire, beast.wire) << what;
  EXPECT_EQ(flat.reported, flat.wire.size()) << what << ": the byte count is what was written";
}

TEST(FlatWrite, ContentLengthResponsesMatchBeast) {
  const std::vector<std::vector<std::string>> cases = {
      {},                                             // head only (Content-Length: 0)
      {std::string(1024, 'x')},                       // one small body
      {"abc", std::string(3000, 'y'), "z"},           // several small pieces
      {std::string(200 * 1024, 'b')},                 // one bulk piece (not copied)
      {"head", std::string(100 * 1024, 'c'), "end"},  // small, bulk, small
  };
  for (const auto& pieces : cases) {
    auto msg = response(5);
    msg.content_length(total(pieces));
    const auto beast = send(Writer::beast, msg, pieces);
    const auto flat = send(Writer::flat, msg, pieces);
    expect_same_wire("content-length", beast, flat);
    EXPECT_NE(flat.wire.find("Content-Length: " + std::to_string(total(pieces))),
              std::string::npos);
  }
}

TEST(FlatWrite, ChunkedResponsesMatchBeast) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"hello"},
      {"a", "bb", "ccc", std::string(5000, 'd')},
      {"small", std::string(64 * 1024, 'e'), "tail"},
  };
  for (const auto& pieces : cases) {
    auto msg = response(2);
    msg.chunked(true);
    const auto beast = send(Writer::beast, msg, pieces);
    const auto flat = send(Writer::flat, msg, pieces);
    expect_same_wire("chunked", beast, flat);
    EXPECT_TRUE(flat.wire.ends_with("0\r\n\r\n")) << "the last chunk ends the body";
  }
}

TEST(FlatWrite, ManyHeadersAndARequestMatchBeast) {
  auto res = response(600);  // a head larger than kFlatWriteLimit goes through Beast whole
  res.content_length(2);
  expect_same_wire("600 headers", send(Writer::beast, res, {"ok"}),
                   send(Writer::flat, res, {"ok"}));

  http::request<http::buffer_body> req{http::verb::post, "/orders?id=7", 11};
  req.set(http::field::host, "orders.internal");
  req.set("x-forwarded-for", "10.0.0.1");
  req.chunked(true);
  const std::vector<std::string> body = {"{\"id\":", "7}"};
  expect_same_wire("request", send(Writer::beast, req, body), send(Writer::flat, req, body));
}

TEST(FlatWrite, APeerThatHasGoneAwayIsAnError) {
  asio::io_context io;
  Socket a(io), b(io);
  asio::local::connect_pair(a, b);
  b.close();
  auto msg = response(1);
  msg.content_length(3);
  Outcome outcome;
  asio::co_spawn(io, write_message<false>(a, Writer::flat, msg, {"abc"}, outcome), asio::detached);
  io.run();
  EXPECT_TRUE(outcome.ec) << "writing to a closed peer reports the error";
}

}  // namespace
}  // namespace portcullis
