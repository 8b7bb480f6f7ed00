#include "http/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/openssl_error.hpp"

namespace portcullis {
namespace ssl = boost::asio::ssl;

namespace {

// Mozilla intermediate (TLS 1.2 part); TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Selects h2, else http/1.1, from the client's ALPN list (the server's order wins); a client
// offering only protocols we do not speak gets no ALPN (and falls back to HTTP/1.1 or gives
// up), never a wrong protocol.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static constexpr unsigned char kSupported[] = {2,   'h', '2', 8,   'h', 't',
                                                 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kSupported, sizeof kSupported, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_tls_context(const TlsConfig& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  int min_version = tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(native, min_version);
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    throw std::runtime_error("cannot set TLS ciphers: " + openssl_error());
  }
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(native, tls.cert_file.c_str()) != 1) {
    throw std::runtime_error("cannot load certificate '" + tls.cert_file + "': " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(native, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("cannot load private key '" + tls.key_file + "': " + openssl_error());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("private key '" + tls.key_file + "' does not match certificate '" +
                             tls.cert_file + "'");
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, tls.client_ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("cannot load client CA '" + tls.client_ca_file +
                               "': " + openssl_error());
    }
    // Request (do not require) a client certificate: routes decide whether they need one.
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names) SSL_CTX_set_client_CA_list(native, names);
    static constexpr unsigned char kSessionContext[] = "portcullis";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  }
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  return ctx;
}

std::shared_ptr<ssl::context> make_upstream_tls_context(const UpstreamTlsConfig& tls, bool http1) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    throw std::runtime_error("cannot set TLS ciphers: " + openssl_error());
  }
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  if (!tls.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, tls.ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("cannot load upstream CA '" + tls.ca_file + "': " + openssl_error());
    }
  } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
    throw std::runtime_error("cannot load the system's CA store: " + openssl_error());
  }
  if (!tls.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(native, tls.cert_file.c_str()) != 1) {
      throw std::runtime_error("cannot load client certificate '" + tls.cert_file +
                               "': " + openssl_error());
    }
    if (SSL_CTX_use_PrivateKey_file(native, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(native) != 1) {
      throw std::runtime_error("cannot load client key '" + tls.key_file + "': " + openssl_error());
    }
  }
  static constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
  static constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  const int alpn = http1 ? SSL_CTX_set_alpn_protos(native, kAlpnHttp11, sizeof kAlpnHttp11)
                         : SSL_CTX_set_alpn_protos(native, kAlpnH2, sizeof kAlpnH2);
  if (alpn != 0) {
    throw std::runtime_error("cannot set ALPN: " + openssl_error());
  }
  return ctx;
}

bool prepare_upstream_tls(SSL* ssl, const std::string& host) {
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(host, ec);
  if (ec) {
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return false;
    if (SSL_set1_host(ssl, host.c_str()) != 1) return false;
  } else {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str()) != 1) return false;
  }
  return true;
}

const std::string& upstream_tls_name(const UpstreamConfig& upstream, int endpoint_index) {
  if (upstream.tls && !upstream.tls->server_name.empty()) return upstream.tls->server_name;
  return upstream.endpoints.at(static_cast<std::size_t>(endpoint_index)).address.host;
}

std::string tls_handshake_failure(const boost::system::error_code& ec, SSL* ssl) {
  std::string reason = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    reason += " (certificate: ";
    reason += X509_verify_cert_error_string(verify);
    reason += ')';
  }
  return reason;
}

}  // namespace portcullis
