#pragma once
// A small asynchronous HTTP/1.1 client for control-plane calls (OIDC discovery, JWKS,
// token introspection), never for proxied traffic. One request per connection, HTTPS with
// certificate and host-name verification (system CA store, or the CA file given), a total
// deadline, a response-body limit. Runs on whatever executor it is given.
//
//   HttpClient client(io.get_executor(), {.ca_file = ""});
//   auto r = co_await client.fetch({.method = "GET", .url = "https://idp/.well-known/jwks.json"});
//   if (!r) log(r.error()); else use(r->status, r->body, r->header("cache-control"));
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/expected.hpp"

namespace portcullis {

struct HttpClientOptions {
  std::string ca_file;                      // PEM bundle; empty: the system's default verify paths
  std::chrono::milliseconds timeout{5000};  // whole exchange: resolve, connect, TLS, write, read
  std::size_t max_body_bytes = 1024 * 1024;
  std::string user_agent = "portcullis";
};

struct HttpRequestSpec {
  std::string method = "GET";
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResult {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string_view header(std::string_view lower_name) const;
};

// The fetching interface the key store and the introspection client depend on, so their
// logic can be unit-tested with a fake. Errors are one-line reasons (no secrets).
class HttpFetcher {
 public:
  virtual ~HttpFetcher() = default;
  virtual boost::asio::awaitable<Expected<HttpResult, std::string>> fetch(
      HttpRequestSpec request) = 0;
};

class HttpClient final : public HttpFetcher {
 public:
  // Throws std::runtime_error when the CA file cannot be loaded (start-up only).
  HttpClient(boost::asio::any_io_executor executor, HttpClientOptions options);
  ~HttpClient() override;
  boost::asio::awaitable<Expected<HttpResult, std::string>> fetch(HttpRequestSpec request) override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Parses "max-age=N" out of a Cache-Control value (nullopt when absent or "no-store"/"no-cache").
std::optional<std::chrono::seconds> cache_control_max_age(std::string_view value);

}  // namespace portcullis
