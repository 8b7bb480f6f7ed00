#pragma once
// is_tls_error: whether an I/O error came from the TLS layer itself (an OpenSSL error or an
// alert from the peer, e.g. TLS 1.3's "certificate required" sent right after the
// handshake), as opposed to the socket (reset, EOF) or a timeout. The upstream relays use it
// to report a TLS refusal as a failed connect with kind "tls" rather than as a reset.
#include <boost/asio/ssl/error.hpp>
#include <boost/system/error_code.hpp>

namespace portcullis {

inline bool is_tls_error(const boost::system::error_code& ec) {
  return ec && ec.category() == boost::asio::error::get_ssl_category();
}

}  // namespace portcullis
