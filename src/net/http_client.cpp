// HttpClient: one request per connection over Beast, plain or TLS. The exchange runs as its own
// coroutine on a strand of the client's executor (the caller resumes on its own executor); the
// TCP stream's expiry is the one deadline for connect, handshake, write and read, and a timer
// cancels name resolution when it overruns the same deadline.
#include "net/http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

namespace portcullis {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kHeaderLimit = 64 * 1024;

using Outcome = Expected<HttpResult, std::string>;

// What the exchange needs from the URL.
struct Target {
  bool tls = false;
  bool ip_literal = false;
  std::string host;         // decoded, without IPv6 brackets: resolving, SNI, name check
  std::string port;         // numeric
  std::string host_header;  // as written in the URL (brackets kept), with a non-default port
  std::string target;       // origin-form: path and query
  std::string what;         // "GET https://host:port/path" for error messages (no query)
};

Expected<Target, std::string> parse_target(std::string_view method, std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return unexpected(std::string("invalid URL: ") + parsed.error().message());
  const auto& u = *parsed;
  Target t;
  if (u.scheme_id() == boost::urls::scheme::https) {
    t.tls = true;
  } else if (u.scheme_id() != boost::urls::scheme::http) {
    return unexpected("unsupported URL scheme '" + std::string(u.scheme()) + "' (http or https)");
  }
  if (u.has_userinfo()) return unexpected(std::string("URL must not carry credentials"));
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6:
      t.ip_literal = true;
      break;
    case boost::urls::host_type::name:
      break;
    default:
      return unexpected(std::string("URL has no usable host"));
  }
  t.host = u.host_address();
  if (t.host.empty()) return unexpected(std::string("URL has no host"));
  if (u.has_port() && !u.port().empty()) {
    // port_number() wraps values over 65535, so read the digits ourselves.
    auto digits = u.port();
    unsigned long port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc{} || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      return unexpected(std::string("URL has an invalid port"));
    }
    t.port = std::to_string(port);
    t.host_header = std::string(u.encoded_host()) + ":" + t.port;
  } else {
    t.port = t.tls ? "443" : "80";
    t.host_header = std::string(u.encoded_host());
  }
  std::string path(u.encoded_path());
  if (path.empty()) path = "/";
  t.target = path;
  if (u.has_query()) t.target += "?" + std::string(u.encoded_query());
  t.what = std::string(method) + " " + (t.tls ? "https://" : "http://") +
           std::string(u.encoded_host()) + ":" + t.port + path;
  return t;
}

std::string describe(const boost::system::error_code& ec, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
    return "timed out after " + std::to_string(timeout.count()) + " ms";
  }
  return ec.message();
}

// The handshake error, with the certificate verification result when that is what failed.
std::string describe_handshake(const boost::system::error_code& ec, SSL* ssl,
                               std::chrono::milliseconds timeout) {
  std::string out = "TLS handshake failed: " + describe(ec, timeout);
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    out += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  }
  return out;
}

http::request<http::string_body> build_request(const HttpRequestSpec& spec, const Target& t,
                                               const HttpClientOptions& options) {
  http::request<http::string_body> req;
  req.method_string(spec.method);
  req.target(t.target);
  req.version(11);
  req.set(http::field::user_agent, options.user_agent);
  for (const auto& [name, value] : spec.headers) req.set(name, value);
  req.set(http::field::host, t.host_header);
  req.set(http::field::connection, "close");
  req.body() = spec.body;
  if (!spec.body.empty() || req.method() == http::verb::post || req.method() == http::verb::put ||
      req.method() == http::verb::patch) {
    req.prepare_payload();
  }
  return req;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Writes the request and reads the response (status, lower-case headers, bounded body).
template <class Stream>
asio::awaitable<Outcome> send_and_read(Stream& stream, const HttpRequestSpec& spec, const Target& t,
                                       const HttpClientOptions& options) {
  auto req = build_request(spec, t, options);
  auto [wec, written] = co_await http::async_write(stream, req, use_nothrow);
  if (wec) co_return unexpected(t.what + ": write failed: " + describe(wec, options.timeout));

  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(options.max_body_bytes);
  if (req.method() == http::verb::head) parser.skip(true);
  beast::flat_buffer buffer;
  auto [rec, read] = co_await http::async_read(stream, buffer, parser, use_nothrow);
  if (rec == http::error::body_limit) {
    co_return unexpected(t.what + ": response body exceeds " +
                         std::to_string(options.max_body_bytes) + " bytes");
  }
  if (rec == http::error::header_limit) {
    co_return unexpected(t.what + ": response header exceeds " + std::to_string(kHeaderLimit) +
                         " bytes");
  }
  if (rec) co_return unexpected(t.what + ": read failed: " + describe(rec, options.timeout));

  auto res = parser.release();
  HttpResult result;
  result.status = res.result_int();
  for (const auto& field : res) {
    result.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
  }
  result.body = std::move(res.body());
  co_return result;
}

// What every exchange of one client shares (HttpClient::Impl is this, under its private name).
struct ClientCore {
  ClientCore(asio::any_io_executor ex, HttpClientOptions opts)
      : executor(std::move(ex)), options(std::move(opts)), tls(ssl::context::tls_client) {}

  asio::any_io_executor executor;
  HttpClientOptions options;
  ssl::context tls;
};

// Resolves the host, or takes the literal address, within the deadline.
asio::awaitable<Expected<std::vector<tcp::endpoint>, std::string>> resolve(
    asio::any_io_executor ex, const Target& t, std::chrono::steady_clock::time_point deadline,
    std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  if (t.ip_literal) {
    auto address = asio::ip::make_address(t.host, ec);
    if (ec) co_return unexpected(t.what + ": invalid address");
    auto port = static_cast<unsigned short>(std::stoul(t.port));
    co_return std::vector<tcp::endpoint>{tcp::endpoint(address, port)};
  }
  auto resolver = std::make_shared<tcp::resolver>(ex);
  asio::steady_timer watchdog(ex, deadline);
  watchdog.async_wait([resolver](boost::system::error_code wec) {
    if (!wec) resolver->cancel();
  });
  auto [rec, results] = co_await resolver->async_resolve(t.host, t.port, use_nothrow);
  watchdog.cancel();
  if (rec) {
    co_return unexpected(t.what + ": cannot resolve host: " + describe(rec, timeout));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  co_return endpoints;
}

// The whole exchange, on a strand of the client's executor. (co_spawn needs a
// default-constructible result, hence the optional.)
asio::awaitable<std::optional<Outcome>> exchange(std::shared_ptr<ClientCore> impl,
                                                 HttpRequestSpec spec, Target t) {
  const auto& options = impl->options;
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;

  auto endpoints = co_await resolve(ex, t, deadline, options.timeout);
  if (!endpoints) co_return Outcome(unexpected(endpoints.error()));

  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_at(deadline);
  auto [cec, ep] = co_await tcp_stream.async_connect(*endpoints, use_nothrow);
  if (cec) {
    co_return Outcome(unexpected(t.what + ": connect failed: " + describe(cec, options.timeout)));
  }
  boost::system::error_code ignored;
  tcp_stream.socket().set_option(tcp::no_delay(true), ignored);

  if (!t.tls) co_return co_await send_and_read(tcp_stream, spec, t, options);

  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), impl->tls);
  SSL* ssl = stream.native_handle();
  stream.set_verify_mode(ssl::verify_peer);
  // OpenSSL checks the name during chain verification, so a mismatch fails the handshake
  // with X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH.
  bool name_set = false;
  if (t.ip_literal) {
    name_set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t.host.c_str()) == 1;
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    name_set = SSL_set1_host(ssl, t.host.c_str()) == 1 &&
               SSL_set_tlsext_host_name(ssl, const_cast<char*>(t.host.c_str())) == 1;
  }
  if (!name_set) co_return Outcome(unexpected(t.what + ": cannot set the TLS peer name"));
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_nothrow);
  if (hec)
    co_return Outcome(unexpected(t.what + ": " + describe_handshake(hec, ssl, options.timeout)));
  // Connection: close and a framed response: no TLS close_notify exchange is needed (a body
  // delimited only by the connection's end still needs one, and Beast reports its absence).
  co_return co_await send_and_read(stream, spec, t, options);
}

}  // namespace

struct HttpClient::Impl : ClientCore {
  using ClientCore::ClientCore;
};

std::string_view HttpResult::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

HttpClient::HttpClient(asio::any_io_executor executor, HttpClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {
  SSL_CTX* native = impl_->tls.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  const auto& ca = impl_->options.ca_file;
  if (!ca.empty()) {
    if (SSL_CTX_load_verify_locations(native, ca.c_str(), nullptr) != 1) {
      throw std::runtime_error("cannot load CA file '" + ca + "'");
    }
  } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
    throw std::runtime_error("cannot load the system's CA store");
  }
}

HttpClient::~HttpClient() = default;

asio::awaitable<Expected<HttpResult, std::string>> HttpClient::fetch(HttpRequestSpec request) {
  auto target = parse_target(request.method, request.url);
  if (!target) co_return unexpected(target.error());
  if (request.method.empty() ||
      !std::all_of(request.method.begin(), request.method.end(),
                   [](unsigned char c) { return std::isupper(c) != 0; })) {
    co_return unexpected(std::string("invalid HTTP method"));
  }
  auto strand = asio::make_strand(impl_->executor);
  auto [failure, outcome] = co_await asio::co_spawn(
      strand, exchange(impl_, std::move(request), std::move(*target)), use_nothrow);
  if (failure || !outcome) co_return unexpected(std::string("HTTP request failed unexpectedly"));
  co_return std::move(*outcome);
}

std::optional<std::chrono::seconds> cache_control_max_age(std::string_view value) {
  std::optional<std::chrono::seconds> max_age;
  while (!value.empty()) {
    auto comma = value.find(',');
    auto directive = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    while (!directive.empty() && (directive.front() == ' ' || directive.front() == '\t')) {
      directive.remove_prefix(1);
    }
    while (!directive.empty() && (directive.back() == ' ' || directive.back() == '\t')) {
      directive.remove_suffix(1);
    }
    auto eq = directive.find('=');
    auto name = directive.substr(0, eq);
    if (beast::iequals(name, "no-store") || beast::iequals(name, "no-cache")) return std::nullopt;
    if (!beast::iequals(name, "max-age") || eq == std::string_view::npos || max_age) continue;
    auto arg = directive.substr(eq + 1);
    if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') {
      arg = arg.substr(1, arg.size() - 2);
    }
    if (arg.empty() ||
        !std::all_of(arg.begin(), arg.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    // RFC 9111 5.2.1.1: a delta-seconds too large to represent counts as 2^31.
    std::int64_t seconds = 0;
    auto [ptr, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), seconds);
    if (ec != std::errc{} || seconds > std::numeric_limits<std::int32_t>::max()) {
      seconds = std::int64_t{1} << 31;
    }
    max_age = std::chrono::seconds(seconds);
  }
  return max_age;
}

}  // namespace portcullis
