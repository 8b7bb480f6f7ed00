#include "core/sha256.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace portcullis {

Sha256Digest sha256(std::string_view data) {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    std::abort();  // only on a broken crypto library
  }
  return out;
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xF];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  const Sha256Digest d = sha256(data);
  return to_hex(d.data(), d.size());
}

}  // namespace portcullis
