#include "core/sha256.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace portcullis {

namespace {

// Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up again on every call.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

Sha256Digest sha256(std::string_view data) {
  // One context per thread, reused: no allocation per digest (audit hashes every record).
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx local;
  Sha256Digest out{};
  unsigned int len = 0;
  const EVP_MD* md = sha256_md();
  if (md == nullptr || local.ctx == nullptr || EVP_DigestInit_ex2(local.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(local.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(local.ctx, out.data(), &len) != 1 || len != out.size()) {
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
