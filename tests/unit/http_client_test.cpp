// HttpClient against a real Beast server on 127.0.0.1 (plain and TLS), with a CA and server
// certificates generated in the test.
#include "net/http_client.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace portcullis {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using Outcome = Expected<HttpResult, std::string>;

// ---- certificates made with OpenSSL ----------------------------------------------------------

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

PkeyPtr new_key() {
  return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
}

// A certificate for `key`, signed by `issuer` (self-signed when null): a CA, or a server
// certificate with the given subjectAltName.
X509Ptr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                  const std::string& san) {
  static long serial = 1;
  X509Ptr cert(X509_new(), X509_free);
  X509* c = cert.get();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c), 86400);
  X509_set_pubkey(c, key);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    EXPECT_NE(ext, nullptr) << value;
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  };
  if (!issuer) {
    add(NID_basic_constraints, "critical,CA:TRUE");
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
    add(NID_subject_key_identifier, "hash");
  } else {
    add(NID_basic_constraints, "CA:FALSE");
    add(NID_key_usage, "critical,digitalSignature");
    add(NID_ext_key_usage, "serverAuth");
    add(NID_subject_alt_name, san);
  }
  X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

// A CA that signs server certificates; its PEM is written to a file for HttpClientOptions.
struct TestCa {
  PkeyPtr key = new_key();
  X509Ptr cert;
  std::filesystem::path file;

  explicit TestCa(const std::string& name)
      : cert(make_cert(key.get(), "Test CA " + name, nullptr, nullptr, "")) {
    file = std::filesystem::temp_directory_path() /
           ("portcullis-http-client-" + std::to_string(::getpid()) + "-" + name + ".pem");
    std::ofstream(file) << pem_of(cert.get());
  }
  ~TestCa() {
    std::error_code ec;
    std::filesystem::remove(file, ec);
  }

  std::shared_ptr<ssl::context> server_context(const std::string& san) const {
    auto leaf_key = new_key();
    auto leaf = make_cert(leaf_key.get(), "server", cert.get(), key.get(), san);
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    std::string chain = pem_of(leaf.get());
    std::string key_pem = pem_of(leaf_key.get());
    ctx->use_certificate_chain(asio::buffer(chain));
    ctx->use_private_key(asio::buffer(key_pem), ssl::context::pem);
    return ctx;
  }
};

// ---- a tiny server -----------------------------------------------------------------------------

// Answers by path: /ok, /big (4 KiB, Content-Length), /chunked-big (4 KiB, chunked), /echo
// (the request body back), /hang (reads the request, never answers); anything else is 404.
// Each response reports what the server saw (SNI, Host, Connection, User-Agent) in x-seen-*.
// A silent server accepts connections and never reads (so a TLS handshake never completes).
class TestServer {
 public:
  TestServer(asio::io_context& io, std::shared_ptr<ssl::context> tls, bool silent = false)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        tls_(std::move(tls)),
        silent_(silent) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(acceptor_.get_executor(), session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    if (silent_) {
      co_await hang();
      co_return;
    }
    beast::tcp_stream plain(std::move(socket));
    if (!tls_) {
      co_await serve(plain, "");
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(plain), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_nothrow);
    if (ec) co_return;
    const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    co_await serve(stream, sni ? sni : "");
  }

  asio::awaitable<void> hang() {
    asio::steady_timer forever(acceptor_.get_executor(), asio::steady_timer::time_point::max());
    co_await forever.async_wait(use_nothrow);
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, std::string sni) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    auto [rec, n] = co_await http::async_read(stream, buffer, req, use_nothrow);
    if (rec) co_return;
    std::string target(req.target());
    if (target == "/hang") {
      co_await hang();
      co_return;
    }
    http::response<http::string_body> res;
    res.version(11);
    res.keep_alive(false);
    res.set("x-seen-sni", sni);
    res.set("x-seen-host", req[http::field::host]);
    res.set("x-seen-connection", req[http::field::connection]);
    res.set("x-seen-user-agent", req[http::field::user_agent]);
    res.set("x-seen-method", req.method_string());
    if (target == "/ok" || target == "/ok?x=1") {
      res.result(http::status::ok);
      res.set("X-Test", "Yes");
      res.set(http::field::cache_control, "public, max-age=120");
      res.set(http::field::content_type, "text/plain");
      res.body() = "hello world";
    } else if (target == "/big" || target == "/chunked-big") {
      res.result(http::status::ok);
      res.body() = std::string(4096, 'x');
      if (target == "/chunked-big") res.chunked(true);
    } else if (target == "/echo") {
      res.result(http::status::created);
      res.set(http::field::content_type, req[http::field::content_type]);
      res.body() = req.body();
    } else {
      res.result(http::status::not_found);
      res.body() = "nope";
    }
    res.prepare_payload();
    co_await http::async_write(stream, res, use_nothrow);
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, rec);
  }

  tcp::acceptor acceptor_;
  std::shared_ptr<ssl::context> tls_;
  bool silent_;
  int connections_ = 0;
};

// ---- the fixture -------------------------------------------------------------------------------

asio::awaitable<void> do_fetch(HttpClient* client, HttpRequestSpec spec,
                               std::optional<Outcome>* out) {
  out->emplace(co_await client->fetch(std::move(spec)));
}

class HttpClientTest : public ::testing::Test {
 protected:
  Outcome fetch(HttpClient& client, std::string url, std::string method = "GET",
                std::string body = "") {
    std::optional<Outcome> out;
    HttpRequestSpec spec{
        .method = std::move(method), .url = std::move(url), .headers = {}, .body = std::move(body)};
    if (!spec.body.empty()) spec.headers.emplace_back("Content-Type", "application/json");
    asio::co_spawn(io, do_fetch(&client, std::move(spec), &out), asio::detached);
    auto limit = std::chrono::steady_clock::now() + 20s;
    while (!out && std::chrono::steady_clock::now() < limit) {
      if (io.stopped()) io.restart();  // a run that found no work stops the io_context
      io.run_one_for(100ms);
    }
    if (!out) return unexpected(std::string("test: no answer"));
    return std::move(*out);
  }

  static std::string url(const TestServer& s, std::string_view scheme, std::string_view path,
                         std::string_view host = "127.0.0.1") {
    return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(s.port()) +
           std::string(path);
  }

  asio::io_context io;
};

TEST_F(HttpClientTest, PlainGetReturnsStatusHeadersAndBody) {
  TestServer server(io, nullptr);
  HttpClient client(io.get_executor(), {.user_agent = "unit-test"});
  auto r = fetch(client, url(server, "http", "/ok?x=1"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->body, "hello world");
  EXPECT_EQ(r->header("x-test"), "Yes");  // names lower-cased, values as sent
  EXPECT_EQ(r->header("cache-control"), "public, max-age=120");
  EXPECT_EQ(r->header("content-length"), "11");
  EXPECT_EQ(r->header("x-absent"), "");
  EXPECT_EQ(r->header("x-seen-connection"), "close");
  EXPECT_EQ(r->header("x-seen-user-agent"), "unit-test");
  EXPECT_EQ(r->header("x-seen-host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r->header("x-seen-sni"), "");
  for (const auto& [name, value] : r->headers) {
    for (char ch : name) EXPECT_FALSE(ch >= 'A' && ch <= 'Z') << name;
  }
}

TEST_F(HttpClientTest, PostSendsBodyAndNon200IsAResultNotAnError) {
  TestServer server(io, nullptr);
  HttpClient client(io.get_executor(), {});
  auto r = fetch(client, url(server, "http", "/echo"), "POST", R"({"a":1})");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 201u);
  EXPECT_EQ(r->body, R"({"a":1})");
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("x-seen-method"), "POST");

  auto missing = fetch(client, url(server, "http", "/missing"));
  ASSERT_TRUE(missing) << missing.error();
  EXPECT_EQ(missing->status, 404u);
  EXPECT_EQ(missing->body, "nope");
}

TEST_F(HttpClientTest, BodyOverTheLimitIsAnError) {
  TestServer server(io, nullptr);
  HttpClient client(io.get_executor(), {.max_body_bytes = 1000});
  auto big = fetch(client, url(server, "http", "/big"));
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().find("exceeds 1000 bytes"), std::string::npos) << big.error();
  auto chunked = fetch(client, url(server, "http", "/chunked-big"));
  ASSERT_FALSE(chunked);
  EXPECT_NE(chunked.error().find("exceeds 1000 bytes"), std::string::npos) << chunked.error();

  HttpClient roomy(io.get_executor(), {.max_body_bytes = 4096});
  auto fits = fetch(roomy, url(server, "http", "/chunked-big"));
  ASSERT_TRUE(fits) << fits.error();
  EXPECT_EQ(fits->body.size(), 4096u);
}

TEST_F(HttpClientTest, ServerThatNeverAnswersTimesOutWithinTheDeadline) {
  TestServer server(io, nullptr);
  HttpClient client(io.get_executor(), {.timeout = 300ms});
  auto start = std::chrono::steady_clock::now();
  auto r = fetch(client, url(server, "http", "/hang"));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("timed out after 300 ms"), std::string::npos) << r.error();
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);
}

TEST_F(HttpClientTest, TlsHandshakeThatNeverCompletesTimesOut) {
  TestServer server(io, nullptr, /*silent=*/true);
  TestCa ca("silent");
  HttpClient client(io.get_executor(), {.ca_file = ca.file.string(), .timeout = 300ms});
  auto start = std::chrono::steady_clock::now();
  auto r = fetch(client, url(server, "https", "/ok"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("timed out"), std::string::npos) << r.error();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(HttpClientTest, TlsWithTheRightCaSucceedsBothByAddressAndByName) {
  TestCa ca("right");
  TestServer server(io, ca.server_context("DNS:localhost,IP:127.0.0.1"));
  HttpClient client(io.get_executor(), {.ca_file = ca.file.string()});
  auto by_ip = fetch(client, url(server, "https", "/ok"));
  ASSERT_TRUE(by_ip) << by_ip.error();
  EXPECT_EQ(by_ip->status, 200u);
  EXPECT_EQ(by_ip->body, "hello world");
  EXPECT_EQ(by_ip->header("x-seen-sni"), "");  // no SNI for an IP address (RFC 6066)

  auto by_name = fetch(client, url(server, "https", "/ok", "localhost"));
  ASSERT_TRUE(by_name) << by_name.error();
  EXPECT_EQ(by_name->status, 200u);
  EXPECT_EQ(by_name->header("x-seen-sni"), "localhost");
}

TEST_F(HttpClientTest, TlsWithAWrongCaIsRefused) {
  TestCa ca("issuer");
  TestCa other("other");
  TestServer server(io, ca.server_context("DNS:localhost,IP:127.0.0.1"));
  HttpClient client(io.get_executor(), {.ca_file = other.file.string()});
  auto r = fetch(client, url(server, "https", "/ok"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("TLS handshake failed"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("issuer certificate"), std::string::npos) << r.error();
}

TEST_F(HttpClientTest, TlsWithTheSystemStoreRefusesAPrivateCa) {
  TestCa ca("private");
  TestServer server(io, ca.server_context("DNS:localhost,IP:127.0.0.1"));
  HttpClient client(io.get_executor(), {});
  auto r = fetch(client, url(server, "https", "/ok"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("TLS handshake failed"), std::string::npos) << r.error();
}

TEST_F(HttpClientTest, TlsHostNameMismatchIsRefused) {
  TestCa ca("mismatch");
  TestServer server(io, ca.server_context("DNS:other.example,IP:10.9.8.7"));
  HttpClient client(io.get_executor(), {.ca_file = ca.file.string()});
  auto by_ip = fetch(client, url(server, "https", "/ok"));
  ASSERT_FALSE(by_ip);
  EXPECT_NE(by_ip.error().find("IP address mismatch"), std::string::npos) << by_ip.error();
  auto by_name = fetch(client, url(server, "https", "/ok", "localhost"));
  ASSERT_FALSE(by_name);
  EXPECT_NE(by_name.error().find("hostname mismatch"), std::string::npos) << by_name.error();
}

TEST_F(HttpClientTest, MissingCaFileThrowsAtConstruction) {
  EXPECT_THROW(HttpClient(io.get_executor(), {.ca_file = "/nonexistent/ca.pem"}),
               std::runtime_error);
}

TEST_F(HttpClientTest, BadUrlsAndMethodsAreRefusedWithoutConnecting) {
  TestServer server(io, nullptr);
  HttpClient client(io.get_executor(), {});
  const std::string port = std::to_string(server.port());
  const std::vector<std::string> bad_urls = {"",
                                             "not a url",
                                             "/relative/path",
                                             "ftp://127.0.0.1:" + port + "/x",
                                             "file:///etc/passwd",
                                             "https://",
                                             "http://user:secret@127.0.0.1:" + port + "/ok",
                                             "http://127.0.0.1:0/ok",
                                             "http://127.0.0.1:99999/ok"};
  for (const auto& bad : bad_urls) {
    auto r = fetch(client, bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().find("connect"), std::string::npos) << r.error();
    EXPECT_EQ(r.error().find("secret"), std::string::npos) << r.error();
  }
  auto lower = fetch(client, url(server, "http", "/ok"), "get");
  EXPECT_FALSE(lower);
  auto injected = fetch(client, url(server, "http", "/ok"), "GET /x HTTP/1.1\r\n");
  EXPECT_FALSE(injected);
  EXPECT_EQ(server.connections(), 0);
}

TEST_F(HttpClientTest, ConnectionRefusedIsAnError) {
  unsigned short port;
  {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }
  HttpClient client(io.get_executor(), {});
  auto r = fetch(client, "http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("connect failed"), std::string::npos) << r.error();
}

struct MaxAgeCase {
  const char* value;
  std::optional<long> seconds;
};

TEST(CacheControl, MaxAgeTable) {
  const MaxAgeCase cases[] = {
      {"max-age=60", 60},
      {"public, max-age=3600", 3600},
      {"MAX-AGE=5", 5},
      {"max-age=\"30\"", 30},
      {"  max-age=7  ,must-revalidate", 7},
      {"max-age=0", 0},
      {"max-age=10, max-age=20", 10},
      {"max-age=99999999999999999999", 2147483648L},
      {"max-age=4294967296", 2147483648L},
      {"no-store, max-age=60", std::nullopt},
      {"max-age=60, no-cache", std::nullopt},
      {"No-Store", std::nullopt},
      {"private", std::nullopt},
      {"", std::nullopt},
      {"max-age", std::nullopt},
      {"max-age=", std::nullopt},
      {"max-age=-1", std::nullopt},
      {"max-age=abc", std::nullopt},
      {"max-age=1.5", std::nullopt},
      {"s-maxage=10", std::nullopt},
      {"xmax-age=10", std::nullopt},
  };
  for (const auto& c : cases) {
    auto got = cache_control_max_age(c.value);
    if (c.seconds) {
      ASSERT_TRUE(got.has_value()) << c.value;
      EXPECT_EQ(got->count(), *c.seconds) << c.value;
    } else {
      EXPECT_FALSE(got.has_value()) << c.value;
    }
  }
}

}  // namespace
}  // namespace portcullis
