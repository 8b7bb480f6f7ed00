// Tests for the YAML config loader: a full round trip into the model, defaults, and a table of
// errors each checked for its exact line, column and message. Certificates are generated at
// test time into a temporary directory (nothing secret is committed).
#include "core/config_loader.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/units.hpp"

namespace portcullis {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Writes a freshly generated P-256 key and a self-signed certificate for it.
void write_key_and_cert(const fs::path& key_path, const fs::path* cert_path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(key, nullptr);
  FILE* kf = std::fopen(key_path.c_str(), "w");
  ASSERT_NE(kf, nullptr);
  ASSERT_EQ(PEM_write_PrivateKey(kf, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::fclose(kf);
  if (cert_path != nullptr) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    FILE* cf = std::fopen(cert_path->c_str(), "w");
    ASSERT_NE(cf, nullptr);
    ASSERT_EQ(PEM_write_X509(cf, cert), 1);
    std::fclose(cf);
    X509_free(cert);
  }
  EVP_PKEY_free(key);
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + e.to_string() + "\n";
  return out;
}

// Shares one temporary directory with certificates across the suite.
class ConfigLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "portcullis-config-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "certs");
    const fs::path cert = dir_ / "certs/server.crt";
    const fs::path ca = dir_ / "certs/ca.crt";
    write_key_and_cert(dir_ / "certs/server.key", &cert);
    write_key_and_cert(dir_ / "certs/ca.key", &ca);
    write_key_and_cert(dir_ / "certs/other.key", nullptr);
    write_file(dir_ / "certs/garbage.pem", "not a certificate\n");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static ConfigLoadResult load(const std::string& yaml) {
    return load_config_string(yaml, "test.yaml", dir_.string());
  }

  static fs::path dir_;
};

fs::path ConfigLoaderTest::dir_;

constexpr const char* kFullConfig = R"(# every key, with non-default values
server:
  workers: 4
  drain_timeout: 1m30s
  trusted_proxies: [10.0.0.0/8, "::1"]
  instance_name: gw-1
  max_body: 5MiB
access_log:
  path: logs/access.log
listeners:
  - name: edge
    address: 0.0.0.0:8443
    tls:
      cert: certs/server.crt
      key: certs/server.key
      client_ca: certs/ca.crt
      min_version: "1.3"
    limits:
      max_header_bytes: 32KiB
      header_timeout: 5s
      idle_timeout: 2m
      handshake_timeout: 3s
      max_requests_per_connection: 1000
  - name: plain.v6
    address: "[::1]:8080"
admin:
  address: 127.0.0.1:9901
upstreams:
  - name: orders
    protocol: http1
    endpoints:
      - address: 127.0.0.1:7001
        weight: 90
      - orders-b.internal:7002
    timeouts: {connect: 1s, request: 15s, idle: 30s}
    pool: {max_idle_per_endpoint: 16}
    ejection: {consecutive_failures: 0, base_duration: 30s}
    retries: 2
  - name: static
    endpoints: ["[::1]:7003"]
routes:
  - name: orders-api
    match: {host: API.Example.com, path_prefix: /orders/, methods: [get, POST]}
    upstream: orders
    auth: public
    max_body: 1MiB
    timeout: 45s
    allow_encoded_slash: true
  - name: wild
    match: {host: "*.Example.com", path: /health}
    upstream: static
    auth: public
  - name: catch-all
    match: {}
    upstream: static
    auth: public
)";

TEST_F(ConfigLoaderTest, FullConfigLandsInTheModel) {
  const fs::path file = dir_ / "portcullis.yaml";
  write_file(file, kFullConfig);
  const ConfigLoadResult r = load_config_file(file.string());
  ASSERT_TRUE(r.ok()) << describe(r.errors);
  ASSERT_TRUE(r.errors.empty());
  const Config& c = *r.config;
  EXPECT_EQ(c.source_file, file.string());

  EXPECT_EQ(c.server.workers, 4u);
  EXPECT_EQ(c.server.drain_timeout, seconds(90));
  ASSERT_EQ(c.server.trusted_proxies.size(), 2u);
  EXPECT_EQ(c.server.trusted_proxies[0].to_string(), "10.0.0.0/8");
  EXPECT_EQ(c.server.trusted_proxies[1].to_string(), "::1/128");
  EXPECT_EQ(c.server.instance_name, "gw-1");
  EXPECT_EQ(c.default_max_body_bytes, 5u * 1024 * 1024);
  EXPECT_EQ(c.access_log.path, (dir_ / "logs/access.log").string());

  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerConfig& edge = c.listeners[0];
  EXPECT_EQ(edge.name, "edge");
  EXPECT_EQ(edge.line, 11);
  EXPECT_EQ(edge.address, (SocketAddress{"0.0.0.0", 8443}));
  ASSERT_TRUE(edge.tls.has_value());
  EXPECT_EQ(edge.tls->cert_file, (dir_ / "certs/server.crt").string());
  EXPECT_EQ(edge.tls->key_file, (dir_ / "certs/server.key").string());
  EXPECT_EQ(edge.tls->client_ca_file, (dir_ / "certs/ca.crt").string());
  EXPECT_EQ(edge.tls->min_version, "1.3");
  EXPECT_EQ(edge.limits.max_header_bytes, 32u * 1024);
  EXPECT_EQ(edge.limits.header_timeout, seconds(5));
  EXPECT_EQ(edge.limits.idle_timeout, seconds(120));
  EXPECT_EQ(edge.limits.handshake_timeout, seconds(3));
  EXPECT_EQ(edge.limits.max_requests_per_connection, 1000u);
  const ListenerConfig& v6 = c.listeners[1];
  EXPECT_EQ(v6.name, "plain.v6");
  EXPECT_EQ(v6.address, (SocketAddress{"::1", 8080}));
  EXPECT_EQ(v6.address.to_string(), "[::1]:8080");
  EXPECT_FALSE(v6.tls.has_value());
  ASSERT_TRUE(c.admin.address.has_value());
  EXPECT_EQ(c.admin.address->to_string(), "127.0.0.1:9901");

  ASSERT_EQ(c.upstreams.size(), 2u);
  const UpstreamConfig& orders = c.upstreams[0];
  EXPECT_EQ(orders.name, "orders");
  EXPECT_EQ(orders.line, 29);
  EXPECT_EQ(orders.protocol, UpstreamProtocol::http1);
  ASSERT_EQ(orders.endpoints.size(), 2u);
  EXPECT_EQ(orders.endpoints[0].address, (SocketAddress{"127.0.0.1", 7001}));
  EXPECT_EQ(orders.endpoints[0].weight, 90u);
  EXPECT_EQ(orders.endpoints[1].address, (SocketAddress{"orders-b.internal", 7002}));
  EXPECT_EQ(orders.endpoints[1].weight, 1u);
  EXPECT_EQ(orders.timeouts.connect, seconds(1));
  EXPECT_EQ(orders.timeouts.request, seconds(15));
  EXPECT_EQ(orders.timeouts.idle, seconds(30));
  EXPECT_EQ(orders.pool.max_idle_per_endpoint, 16u);
  EXPECT_EQ(orders.ejection.consecutive_failures, 0u);
  EXPECT_EQ(orders.ejection.base_duration, seconds(30));
  EXPECT_EQ(orders.retries, 2u);
  EXPECT_EQ(c.find_upstream("static"), &c.upstreams[1]);
  EXPECT_EQ(c.find_upstream("nope"), nullptr);
  EXPECT_EQ(c.upstreams[1].endpoints.at(0).address.to_string(), "[::1]:7003");

  ASSERT_EQ(c.routes.size(), 3u);
  const RouteConfig& api = c.routes[0];
  EXPECT_EQ(api.name, "orders-api");
  EXPECT_EQ(api.line, 42);
  EXPECT_EQ(api.match.host, "api.example.com");
  EXPECT_EQ(api.match.path_prefix, "/orders/");
  EXPECT_EQ(api.match.path, "");
  EXPECT_EQ(api.match.methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(api.upstream, "orders");
  EXPECT_EQ(api.auth, AuthMode::public_access);
  EXPECT_EQ(api.max_body_bytes, std::optional<std::uint64_t>(1024 * 1024));
  EXPECT_EQ(api.timeout, std::optional<Duration>(seconds(45)));
  EXPECT_TRUE(api.allow_encoded_slash);
  EXPECT_EQ(c.routes[1].match.host, "*.example.com");
  EXPECT_EQ(c.routes[1].match.path, "/health");
  const RouteConfig& all = c.routes[2];
  EXPECT_EQ(all.match.host, "");
  EXPECT_EQ(all.match.path_prefix, "");
  EXPECT_TRUE(all.match.methods.empty());
  EXPECT_FALSE(all.max_body_bytes.has_value());
  EXPECT_FALSE(all.timeout.has_value());
  EXPECT_FALSE(all.allow_encoded_slash);
}

TEST_F(ConfigLoaderTest, MinimalConfigGetsDefaults) {
  const ConfigLoadResult r = load(
      "listeners: [{name: edge, address: '127.0.0.1:8080'}]\n"
      "upstreams: [{name: app, endpoints: ['localhost:9000']}]\n"
      "routes: [{name: all, match: {}, upstream: app, auth: public}]\n");
  ASSERT_TRUE(r.ok()) << describe(r.errors);
  const Config& c = *r.config;
  EXPECT_EQ(c.server.workers, 0u);
  EXPECT_EQ(c.server.drain_timeout, seconds(20));
  EXPECT_TRUE(c.server.trusted_proxies.empty());
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(c.server.instance_name, host);
  EXPECT_EQ(c.default_max_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(c.access_log.path, "stdout");
  EXPECT_FALSE(c.admin.address.has_value());
  const ListenerConfig& l = c.listeners.at(0);
  EXPECT_FALSE(l.tls.has_value());
  EXPECT_EQ(l.limits.max_header_bytes, 64u * 1024);
  EXPECT_EQ(l.limits.header_timeout, seconds(10));
  EXPECT_EQ(l.limits.idle_timeout, seconds(60));
  EXPECT_EQ(l.limits.handshake_timeout, seconds(10));
  EXPECT_EQ(l.limits.max_requests_per_connection, 0u);
  const UpstreamConfig& u = c.upstreams.at(0);
  EXPECT_EQ(u.protocol, UpstreamProtocol::http1);
  EXPECT_EQ(u.endpoints.at(0).weight, 1u);
  EXPECT_EQ(u.timeouts.connect, seconds(2));
  EXPECT_EQ(u.timeouts.request, seconds(30));
  EXPECT_EQ(u.timeouts.idle, seconds(60));
  EXPECT_EQ(u.pool.max_idle_per_endpoint, 64u);
  EXPECT_EQ(u.ejection.consecutive_failures, 5u);
  EXPECT_EQ(u.ejection.base_duration, seconds(10));
  EXPECT_EQ(u.retries, 1u);
}

TEST_F(ConfigLoaderTest, UpstreamOverTls) {
  const ConfigLoadResult r = load(
      "listeners: [{name: edge, address: '127.0.0.1:8080', limits: {ping_interval: 0s}}]\n"
      "upstreams:\n"
      "  - name: secure\n"
      "    protocol: h2\n"
      "    endpoints: ['pay.internal:8443']\n"
      "    timeouts: {ping_interval: 5s, ping_timeout: 2s}\n"
      "    tls: {ca: certs/ca.crt, server_name: pay.example, cert: certs/server.crt,\n"
      "          key: certs/server.key, min_version: '1.3'}\n"
      "  - {name: plain, protocol: h2, endpoints: ['10.0.0.1:443']}\n"
      "routes: [{name: all, match: {}, upstream: secure, auth: public}]\n");
  ASSERT_TRUE(r.ok()) << describe(r.errors);
  EXPECT_EQ(r.config->listeners.at(0).limits.ping_interval, milliseconds(0));
  EXPECT_EQ(r.config->listeners.at(0).limits.ping_timeout, seconds(20));
  const UpstreamConfig& u = r.config->upstreams.at(0);
  EXPECT_EQ(u.protocol, UpstreamProtocol::h2);
  ASSERT_TRUE(u.tls.has_value());
  EXPECT_EQ(u.tls->ca_file, (dir_ / "certs/ca.crt").string());
  EXPECT_EQ(u.tls->server_name, "pay.example");
  EXPECT_EQ(u.tls->cert_file, (dir_ / "certs/server.crt").string());
  EXPECT_EQ(u.tls->key_file, (dir_ / "certs/server.key").string());
  EXPECT_EQ(u.tls->min_version, "1.3");
  EXPECT_EQ(u.timeouts.ping_interval, seconds(5));
  EXPECT_EQ(u.timeouts.ping_timeout, seconds(2));
  // protocol h2 without a tls block: verified against the system store and the endpoint host.
  const UpstreamConfig& p = r.config->upstreams.at(1);
  ASSERT_TRUE(p.tls.has_value());
  EXPECT_EQ(p.tls->ca_file, "");
  EXPECT_EQ(p.tls->server_name, "");
  EXPECT_EQ(p.tls->cert_file, "");
  EXPECT_EQ(p.timeouts.ping_interval, seconds(30));
  EXPECT_EQ(p.timeouts.ping_timeout, seconds(10));
}

TEST_F(ConfigLoaderTest, TlsDefaultsAndWorkersAuto) {
  const ConfigLoadResult r = load(
      "server: {workers: auto, drain_timeout: 0, instance_name: x}\n"
      "access_log: {path: /var/log/p.log}\n"
      "listeners:\n"
      "  - name: edge\n"
      "    address: '[::]:8443'\n"
      "    tls: {cert: certs/server.crt, key: certs/server.key}\n"
      "upstreams: []\n"
      "routes: []\n");
  ASSERT_TRUE(r.ok()) << describe(r.errors);
  EXPECT_EQ(r.config->server.workers, 0u);
  EXPECT_EQ(r.config->server.drain_timeout, milliseconds(0));
  EXPECT_EQ(r.config->access_log.path, "/var/log/p.log");
  const TlsConfig& tls = *r.config->listeners.at(0).tls;
  EXPECT_EQ(tls.min_version, "1.2");
  EXPECT_EQ(tls.client_ca_file, "");
}

// One bad config, and the error it must produce somewhere in the list.
struct ErrorCase {
  const char* name;
  const char* yaml;
  int line;
  int column;
  const char* message;
};

// Three lines that make a valid config; cases append to or replace them.
#define VALID_LISTENERS "listeners: [{name: edge, address: '127.0.0.1:8080'}]\n"
#define VALID_UPSTREAMS "upstreams: [{name: app, endpoints: ['127.0.0.1:9000']}]\n"
#define VALID_ROUTES "routes: [{name: all, match: {}, upstream: app, auth: public}]\n"
#define VALID VALID_LISTENERS VALID_UPSTREAMS VALID_ROUTES

const ErrorCase kErrorCases[] = {
    {"unknown top-level key", VALID "bogus: 1\n", 4, 1,
     "unknown key 'bogus' at the top level; allowed keys: server, access_log, listeners, admin, "
     "identity_providers, upstreams, routes"},
    {"unknown nested key",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8080\n"
     "    limits: {header_timout: 5s}\n" VALID_UPSTREAMS VALID_ROUTES,
     4, 14,
     "unknown key 'header_timout' in 'listeners[0].limits'; allowed keys: max_header_bytes, "
     "header_timeout, idle_timeout, handshake_timeout, max_requests_per_connection"},
    {"unknown key in tls",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8080\n"
     "    tls:\n"
     "      cert: certs/server.crt\n"
     "      key: certs/server.key\n"
     "      ciphers: ALL\n" VALID_UPSTREAMS VALID_ROUTES,
     7, 7, "unknown key 'ciphers' in 'listeners[0].tls'"},
    {"duration without unit", VALID "server: {drain_timeout: 30}\n", 4, 25,
     "server.drain_timeout: duration '30' needs a unit: ms, s, m, h, d"},
    {"duration with unknown unit", VALID "server:\n  drain_timeout: 5sec\n", 5, 18, "unknown unit"},
    {"zero header timeout",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8080\n"
     "    limits: {header_timeout: 0}\n" VALID_UPSTREAMS VALID_ROUTES,
     4, 30, "listeners[0].limits.header_timeout: must be greater than 0"},
    {"bad size unit",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8080\n"
     "    limits:\n"
     "      max_header_bytes: 64kb\n" VALID_UPSTREAMS VALID_ROUTES,
     5, 25, "invalid size '64kb': unknown unit 'kb'"},
    {"size out of range",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8080\n"
     "    limits:\n"
     "      max_header_bytes: 2MiB\n" VALID_UPSTREAMS VALID_ROUTES,
     5, 25, "out of range (1KiB..1MiB)"},
    {"size overflow", VALID "server: {max_body: 99999999999GiB}\n", 4, 20, "too large"},
    {"bad port",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:99999\n" VALID_UPSTREAMS VALID_ROUTES,
     3, 14, "port must be a number 1..65535"},
    {"host name on a listener",
     "listeners:\n"
     "  - name: edge\n"
     "    address: localhost:8080\n" VALID_UPSTREAMS VALID_ROUTES,
     3, 14, "'localhost' is not an IP address"},
    {"unbracketed IPv6",
     "listeners:\n"
     "  - name: edge\n"
     "    address: '::1:8443'\n" VALID_UPSTREAMS VALID_ROUTES,
     3, 14, "IPv6 addresses must be in brackets, e.g. [::1]:8443"},
    {"bad IPv6 literal",
     "listeners:\n"
     "  - name: edge\n"
     "    address: '[::g]:8443'\n" VALID_UPSTREAMS VALID_ROUTES,
     3, 14, "'::g' is not an IPv6 address"},
    {"admin address collides with a listener", VALID "admin: {address: '127.0.0.1:8080'}\n", 4, 18,
     "address '127.0.0.1:8080' conflicts with listener 'edge' '127.0.0.1:8080' (line 1)"},
    {"wildcard listener collides",
     "listeners:\n"
     "  - {name: a, address: '0.0.0.0:8080'}\n"
     "  - {name: b, address: '127.0.0.1:8080'}\n" VALID_UPSTREAMS VALID_ROUTES,
     3, 24, "conflicts with listener 'a'"},
    {"missing cert file",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls: {cert: certs/missing.crt, key: certs/server.key}\n" VALID_UPSTREAMS VALID_ROUTES,
     4, 17, "listeners[0].tls.cert: file '"},
    {"cert file that is not a certificate",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls: {cert: certs/garbage.pem, key: certs/server.key}\n" VALID_UPSTREAMS VALID_ROUTES,
     4, 17, "does not contain a PEM certificate"},
    {"key that is a certificate",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls: {cert: certs/server.crt, key: certs/server.crt}\n" VALID_UPSTREAMS VALID_ROUTES,
     4, 40, "does not contain a PEM private key"},
    {"cert and key do not match",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls:\n"
     "      cert: certs/server.crt\n"
     "      key: certs/other.key\n" VALID_UPSTREAMS VALID_ROUTES,
     6, 12, "does not match certificate"},
    {"client CA that does not parse",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls:\n"
     "      cert: certs/server.crt\n"
     "      key: certs/server.key\n"
     "      client_ca: certs/garbage.pem\n" VALID_UPSTREAMS VALID_ROUTES,
     7, 18, "listeners[0].tls.client_ca: '"},
    {"missing key in tls points at the tls map",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls:\n"
     "      cert: certs/server.crt\n" VALID_UPSTREAMS VALID_ROUTES,
     5, 7, "missing required key 'key' in 'listeners[0].tls'"},
    {"bad TLS version",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8443\n"
     "    tls: {cert: certs/server.crt, key: certs/server.key, min_version: 1.1}\n" VALID_UPSTREAMS
         VALID_ROUTES,
     4, 71, "TLS version '1.1' is not supported"},
    {"route names unknown upstream",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {}\n"
                                     "    upstream: nowhere\n"
                                     "    auth: public\n",
     6, 15, "route 'r' names unknown upstream 'nowhere'"},
    {"duplicate route name",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - {name: r, match: {}, upstream: app, auth: public}\n"
                                     "  - {name: r, match: {}, upstream: app, auth: public}\n",
     5, 12, "duplicate route name 'r' (first defined at line 4)"},
    {"duplicate listener name",
     "listeners:\n"
     "  - {name: edge, address: '127.0.0.1:8080'}\n"
     "  - {name: edge, address: '127.0.0.1:8081'}\n" VALID_UPSTREAMS VALID_ROUTES,
     3, 12, "duplicate listener name 'edge' (first defined at line 2)"},
    {"duplicate upstream name",
     VALID_LISTENERS "upstreams:\n"
                     "  - {name: app, endpoints: ['127.0.0.1:9000']}\n"
                     "  - {name: app, endpoints: ['127.0.0.1:9001']}\n" VALID_ROUTES,
     4, 12, "duplicate upstream name 'app' (first defined at line 3)"},
    {"duplicate YAML key at the top level", VALID "routes: []\n", 4, 1,
     "duplicate key 'routes' in the config (first at line 3)"},
    {"duplicate YAML key nested",
     "listeners:\n"
     "  - name: edge\n"
     "    address: 127.0.0.1:8080\n"
     "    name: again\n" VALID_UPSTREAMS VALID_ROUTES,
     4, 5, "duplicate key 'name' in 'listeners[0]' (first at line 2)"},
    {"non-canonical path_prefix with double slash",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path_prefix: /api//v1}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 26,
     "path '/api//v1' is not canonical: it contains '//' (empty segments are merged in "
     "requests); a route path that is not canonical could never match a normalised request"},
    {"non-canonical path_prefix with dot dot",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path_prefix: /a/../b}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 26, "contains a '..' segment"},
    {"non-canonical path_prefix with dot",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path_prefix: /a/.}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 26, "contains a '.' segment"},
    {"path_prefix with percent",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path_prefix: /a%2Fb}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 26, "contains '%'"},
    {"path with semicolon",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path: /a;b}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "contains ';'"},
    {"path with query",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path: '/a?b=1'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "contains '?'"},
    {"path with backslash",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path: '/a\\b'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "contains '\\'"},
    {"path without leading slash",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path_prefix: api}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 26, "it must start with '/'"},
    {"path and path_prefix together",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path: /a, path_prefix: /b}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 23, "'path' and 'path_prefix' are mutually exclusive"},
    {"wildcard in the middle",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {host: 'api.*.example.com'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "only allowed as the whole leftmost label"},
    {"partial wildcard label",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {host: '*api.example.com'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "only allowed as the whole leftmost label"},
    {"bare wildcard",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {host: '*'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "omit 'host' to match any host"},
    {"host with port",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {host: 'api.example.com:8443'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "must not include a port"},
    {"host with scheme",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {host: 'https://api.example.com'}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 19, "without a scheme"},
    {"bearer auth without identity providers",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {}\n"
                                     "    upstream: app\n"
                                     "    auth: bearer\n",
     7, 11, "auth mode 'bearer' needs at least one entry in identity_providers"},
    {"unknown auth mode",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {}\n"
                                     "    upstream: app\n"
                                     "    auth: oauth\n",
     7, 11, "unknown auth mode 'oauth'; valid modes: public, bearer, sso, bearer_or_sso, mtls"},
    {"missing auth points at the route map",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {}\n"
                                     "    upstream: app\n",
     4, 5, "missing required key 'auth' in 'routes[0]'"},
    {"grpc method without service",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {path_prefix: /, grpc_method: Pay}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 42, "grpc_method needs grpc_service"},
    {"grpc service with a slash",
     VALID_LISTENERS VALID_UPSTREAMS "routes:\n"
                                     "  - name: r\n"
                                     "    match: {grpc_service: payments/v1}\n"
                                     "    upstream: app\n"
                                     "    auth: public\n",
     5, 27, "gRPC service 'payments/v1' must be letters, digits, '.', '_'"},
    {"tls on an h2c upstream",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    protocol: h2c\n"
                     "    endpoints: ['127.0.0.1:9000']\n"
                     "    tls: {ca: certs/ca.crt}\n" VALID_ROUTES,
     6, 10, "h2c is HTTP/2 in cleartext: use protocol h2 for HTTP/2 over TLS"},
    {"upstream client certificate without key",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    protocol: h2\n"
                     "    endpoints: ['127.0.0.1:9000']\n"
                     "    tls: {cert: certs/server.crt}\n" VALID_ROUTES,
     6, 17, "a client certificate needs both cert and key"},
    {"upstream CA that is not a certificate",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    protocol: h2\n"
                     "    endpoints: ['127.0.0.1:9000']\n"
                     "    tls: {ca: certs/garbage.pem}\n" VALID_ROUTES,
     6, 15, "does not contain a PEM certificate"},
    {"upstream server name with a space",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    protocol: h2\n"
                     "    endpoints: ['127.0.0.1:9000']\n"
                     "    tls: {server_name: 'a b'}\n" VALID_ROUTES,
     6, 24, "'a b' is not a host name or IP address"},
    {"upstream ping timeout of zero",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    protocol: h2c\n"
                     "    endpoints: ['127.0.0.1:9000']\n"
                     "    timeouts: {ping_timeout: 0s}\n" VALID_ROUTES,
     6, 30, "must be greater than 0"},
    {"sso with an unknown provider and a cookie secret that is not a key",
     VALID "sso: {provider: nope, client_id: c, client_secret_file: certs/garbage.pem, "
           "cookie_secret_files: [certs/garbage.pem]}\n",
     4, 17, "sso names unknown identity provider 'nope'"},
    {"cookie secret that is not a key",
     VALID "sso: {provider: nope, client_id: c, client_secret_file: certs/garbage.pem, "
           "cookie_secret_files: [certs/garbage.pem]}\n",
     4, 97, "garbage.pem'"},
    {"redis sessions without cache.redis",
     VALID "sso: {session_store: redis, provider: nope, client_id: c, "
           "client_secret_file: certs/garbage.pem, cookie_secret_files: [certs/garbage.pem]}\n",
     4, 22, "session_store: redis needs cache.redis"},
    {"cookie domain without a dot",
     VALID "sso: {cookie_domain: localhost, provider: nope, client_id: c, "
           "client_secret_file: certs/garbage.pem, cookie_secret_files: [certs/garbage.pem]}\n",
     4, 22, "cookie_domain 'localhost' must be a DNS name with at least one dot"},
    {"client key id without private_key_jwt",
     VALID "sso: {client_key_id: k1, provider: nope, client_id: c, "
           "client_secret_file: certs/garbage.pem, cookie_secret_files: [certs/garbage.pem]}\n",
     4, 22, "client_key_id is only used with client_auth: private_key_jwt"},
    {"private_key_jwt with a key file that is not a key",
     VALID "sso: {client_auth: private_key_jwt, client_key_file: certs/garbage.pem, "
           "provider: nope, client_id: c, cookie_secret_files: [certs/garbage.pem]}\n",
     4, 54, "garbage.pem':"},
    {"private_key_jwt with a client secret too",
     VALID "sso: {client_auth: private_key_jwt, client_secret_file: certs/garbage.pem, "
           "provider: nope, client_id: c, cookie_secret_files: [certs/garbage.pem]}\n",
     4, 6, "missing required key 'client_key_file' in 'sso'"},
    {"sso route without the sso section",
     VALID_LISTENERS VALID_UPSTREAMS "routes: [{name: r, match: {}, upstream: app, auth: sso}]\n",
     3, 52, "auth mode 'sso' needs the top-level sso section"},
    {"unknown protocol",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    protocol: http3\n"
                     "    endpoints: ['127.0.0.1:9000']\n" VALID_ROUTES,
     4, 15, "unknown protocol 'http3'"},
    {"bad endpoint weight",
     VALID_LISTENERS "upstreams:\n"
                     "  - name: app\n"
                     "    endpoints:\n"
                     "      - {address: 'orders:9000', weight: 0}\n" VALID_ROUTES,
     5, 42, "'0' is out of range (expected 1..1000)"},
    {"empty endpoint list",
     VALID_LISTENERS "upstreams:\n"
                     "  - {name: app, endpoints: []}\n" VALID_ROUTES,
     3, 28, "must list at least one endpoint"},
    {"retries out of range",
     VALID_LISTENERS "upstreams:\n"
                     "  - {name: app, endpoints: ['127.0.0.1:9000'], retries: 6}\n" VALID_ROUTES,
     3, 57, "upstreams[0].retries: '6' is out of range (expected 0..5)"},
    {"workers out of range", VALID "server: {workers: 300}\n", 4, 19,
     "out of range (expected 1..256)"},
    {"wrong node type", VALID "server: [1, 2]\n", 4, 9, "server: expected a map, got a list"},
    {"scalar where a list is required", "listeners: edge\n" VALID_UPSTREAMS VALID_ROUTES, 1, 12,
     "listeners: expected a list, got a scalar 'edge'"},
    {"empty listeners", "listeners: []\n" VALID_UPSTREAMS VALID_ROUTES, 1, 12,
     "must list at least one listener"},
    {"missing listeners points at the root map", VALID_UPSTREAMS VALID_ROUTES, 1, 1,
     "missing required key 'listeners'"},
    {"value missing", VALID "server:\n  drain_timeout:\n", 5, 3,
     "server.drain_timeout: expected a duration"},
    {"bad listener name",
     "listeners: [{name: 'edge one', address: '127.0.0.1:8080'}]\n" VALID_UPSTREAMS VALID_ROUTES, 1,
     20, "may only contain letters, digits"},
    {"bad trusted proxy", VALID "server: {trusted_proxies: [10.0.0.1/8]}\n", 4, 28,
     "server.trusted_proxies[0]: invalid CIDR block '10.0.0.1/8'"},
    {"bad boolean",
     VALID_LISTENERS VALID_UPSTREAMS
     "routes: [{name: r, match: {}, upstream: app, auth: public, allow_encoded_slash: yes}]\n",
     3, 81, "expected true or false, got 'yes'"},
    {"YAML syntax error", VALID "server:\n  workers: 2\n drain_timeout: 5s\n", 6, 2,
     "YAML syntax error"},
    {"second document", VALID "---\n" VALID, 5, 1, "only one YAML document"},
};

class ConfigLoaderErrors : public ConfigLoaderTest,
                           public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(ConfigLoaderErrors, ReportsPositionAndReason) {
  const ErrorCase& c = GetParam();
  const ConfigLoadResult r = load(c.yaml);
  ASSERT_FALSE(r.ok()) << c.name << ": accepted";
  EXPECT_EQ(r.config, nullptr);
  bool found = false;
  for (const auto& e : r.errors) {
    if (e.line == c.line && e.column == c.column &&
        e.message.find(c.message) != std::string::npos) {
      found = true;
    }
    EXPECT_EQ(e.file, "test.yaml");
  }
  EXPECT_TRUE(found) << c.name << ": wanted " << c.line << ":" << c.column << " '" << c.message
                     << "', got:\n"
                     << describe(r.errors);
}

std::string case_name(const ::testing::TestParamInfo<ErrorCase>& info) {
  std::string out;
  for (const char* p = info.param.name; *p != '\0'; ++p) {
    out += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Config, ConfigLoaderErrors, ::testing::ValuesIn(kErrorCases), case_name);

TEST_F(ConfigLoaderTest, ReportsEveryErrorAtOnceInFileOrder) {
  const ConfigLoadResult r = load(
      "server: {drain_timeout: 30}\n"
      "listeners:\n"
      "  - name: edge\n"
      "    address: 'localhost:8080'\n"
      "    typo: 1\n"
      "upstreams:\n"
      "  - {name: app, protocol: h3, endpoints: ['127.0.0.1:9000']}\n"
      "routes:\n"
      "  - {name: r, match: {path_prefix: '/a/./b'}, upstream: nope, auth: sso}\n");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 7u) << describe(r.errors);
  const std::pair<int, int> positions[] = {{1, 25}, {4, 14}, {5, 5}, {7, 27},
                                           {9, 36}, {9, 57}, {9, 69}};
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    EXPECT_EQ(r.errors[i].line, positions[i].first) << describe(r.errors);
    EXPECT_EQ(r.errors[i].column, positions[i].second) << describe(r.errors);
  }
  EXPECT_NE(r.errors[0].message.find("needs a unit"), std::string::npos);
  EXPECT_NE(r.errors[2].message.find("unknown key 'typo'"), std::string::npos);
  EXPECT_NE(r.errors[6].message.find("auth mode 'sso' needs the top-level sso section"),
            std::string::npos);
}

TEST_F(ConfigLoaderTest, SyntaxErrorIsASingleError) {
  const ConfigLoadResult r = load("listeners: [a, b\nroutes: []\n");
  ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors[0].column, 7);
  EXPECT_EQ(r.errors[0].to_string(),
            "test.yaml:2:7: YAML syntax error: end of sequence flow not found");
}

TEST_F(ConfigLoaderTest, EmptyConfigIsAnError) {
  for (const char* yaml : {"", "# nothing\n", "~\n"}) {
    const ConfigLoadResult r = load(yaml);
    ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
    EXPECT_NE(r.errors[0].message.find("the config is empty"), std::string::npos);
  }
}

TEST_F(ConfigLoaderTest, MissingFileHasNoPosition) {
  const std::string path = (dir_ / "does-not-exist.yaml").string();
  const ConfigLoadResult r = load_config_file(path);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].file, path);
  EXPECT_EQ(r.errors[0].to_string(), path + ": cannot read config file: no such file");
  const ConfigLoadResult d = load_config_file(dir_.string());
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].line, 0);
}

TEST(ConfigError, RendersPosition) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "bad"}).to_string(), "a.yaml:3:7: bad");
  EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "gone"}).to_string(), "a.yaml: gone");
}

}  // namespace
}  // namespace portcullis
