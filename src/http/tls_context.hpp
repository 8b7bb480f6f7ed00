#pragma once
// Builds the OpenSSL server context of a TLS listener: TLS 1.2+ (or 1.3 only), Mozilla
// "intermediate" ECDHE AEAD ciphers, no compression, no renegotiation, session tickets on,
// ALPN choosing h2, else http/1.1, optional client-certificate
// request when client_ca is set. Throws std::runtime_error (start-up / reload only).
#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "core/config.hpp"

namespace portcullis {

std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const TlsConfig& tls);

}  // namespace portcullis
