#include "core/openssl_error.hpp"

#include <openssl/err.h>

#include <array>

namespace portcullis {

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

}  // namespace portcullis
