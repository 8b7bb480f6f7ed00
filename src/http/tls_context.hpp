#pragma once
// Builds the OpenSSL server context of a TLS listener: TLS 1.2+ (or 1.3 only), Mozilla
// "intermediate" ECDHE AEAD ciphers, no compression, no renegotiation, session tickets on,
// ALPN choosing h2, else http/1.1, optional client-certificate
// request when client_ca is set. Throws std::runtime_error (start-up / reload only).
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "core/config.hpp"

namespace portcullis {

std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const TlsConfig& tls);

// The client context for an upstream reached over TLS (protocol h2): TLS 1.2+, peer
// verification against the configured CA file or the system store, optional client
// certificate, ALPN offering only h2. Throws std::runtime_error (start-up / reload only).
// The host name to verify is set per connection (prepare_upstream_tls).
// `http1`: ALPN offers http/1.1 (an http1 upstream over TLS), else h2 (protocol h2).
std::shared_ptr<boost::asio::ssl::context> make_upstream_tls_context(const UpstreamTlsConfig& tls,
                                                                     bool http1 = false);

// Sets SNI (names only, never IP literals, per RFC 6066) and the identity the certificate must
// carry (a DNS name, or an IP address in a SAN) on a not yet connected SSL object. Returns
// false when OpenSSL refuses the name.
bool prepare_upstream_tls(SSL* ssl, const std::string& host);

// The name an upstream endpoint's certificate is checked against: tls.server_name when set,
// else the endpoint's host (a name or an IP literal).
const std::string& upstream_tls_name(const UpstreamConfig& upstream, int endpoint_index);

// Why a client handshake failed, for the log: the error, plus the certificate verification
// error when there is one (e.g. "... (certificate: unable to get local issuer certificate)").
std::string tls_handshake_failure(const boost::system::error_code& ec, SSL* ssl);

}  // namespace portcullis
