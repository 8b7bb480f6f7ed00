#include "sso/cookie_sealer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>

#include "core/sha256.hpp"

namespace portcullis {
namespace {

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// OpenSSL failing on in-memory AES-GCM with valid sizes is not recoverable.
void check(int ok) {
  if (ok != 1) std::abort();
}

// version | key id | purpose. The purpose is the last field, so it needs no length prefix.
std::string make_aad(const std::uint8_t* header, std::string_view purpose) {
  std::string aad(reinterpret_cast<const char*>(header), 1 + CookieSealer::kKeyIdSize);
  aad.append(purpose);
  return aad;
}

bool is_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Expected<CookieKey, std::string> parse_text_key(std::string_view text) {
  CookieKey key;
  if (text.size() == 64) {
    for (std::size_t i = 0; i < 64; ++i) {
      if (hex_value(text[i]) < 0) {
        return unexpected("64 characters but not a hex key: character " + std::to_string(i + 1) +
                          " is not a hex digit");
      }
    }
    for (std::size_t i = 0; i < 32; ++i) {
      key.bytes[i] =
          static_cast<std::uint8_t>(hex_value(text[2 * i]) << 4 | hex_value(text[2 * i + 1]));
    }
    return key;
  }
  const bool all_hex =
      std::all_of(text.begin(), text.end(), [](char c) { return hex_value(c) >= 0; });
  if (all_hex && text.size() != 43 && text.size() != 44) {  // 43/44: base64 of 32 bytes
    return unexpected("key has " + std::to_string(text.size()) +
                      " hex digits; a hex key has exactly 64");
  }
  const bool standard = text.find_first_of("+/") != std::string_view::npos;
  const bool url = text.find_first_of("-_") != std::string_view::npos;
  if (standard && url)
    return unexpected(std::string("key mixes the base64 and base64url alphabets"));
  std::string b64(text);
  // At most the padding a 32-byte value has (one '='), and only at the end.
  if (!b64.empty() && b64.back() == '=') b64.pop_back();
  if (b64.find('=') != std::string::npos) {
    return unexpected(
        std::string("key is not 64 hex digits or base64 of 32 bytes (misplaced '=')"));
  }
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  auto decoded = base64url_decode(b64);
  if (!decoded) {
    return unexpected("key is not 32 raw bytes, 64 hex digits or base64 of 32 bytes (" +
                      std::to_string(text.size()) + " characters; " +
                      std::string(to_string(decoded.error())) + ")");
  }
  if (decoded->size() != 32) {
    OPENSSL_cleanse(decoded->data(), decoded->size());
    return unexpected("base64 key decodes to " + std::to_string(decoded->size()) +
                      " bytes; a key is exactly 32 bytes");
  }
  std::memcpy(key.bytes.data(), decoded->data(), 32);
  OPENSSL_cleanse(decoded->data(), decoded->size());
  OPENSSL_cleanse(b64.data(), b64.size());
  return key;
}

}  // namespace

Expected<CookieKey, std::string> CookieKey::from_file_contents(std::string_view contents) {
  Expected<CookieKey, std::string> result = unexpected(std::string());
  if (contents.size() == 32) {
    if (is_text(contents)) {
      return unexpected(std::string(
          "key is 32 printable characters, which looks like a passphrase, not 32 random bytes; "
          "write 64 hex digits or base64 of 32 random bytes (e.g. `openssl rand -hex 32`)"));
    }
    CookieKey key;
    std::memcpy(key.bytes.data(), contents.data(), 32);
    result = key;
  } else {
    std::string_view text = contents;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    if (text.empty()) return unexpected(std::string("key file is empty"));
    result = parse_text_key(text);
    if (!result) return result;
  }
  const auto& b = result->bytes;
  if (std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; })) {
    return unexpected(std::string("key is all zero bytes"));
  }
  return result;
}

const char* to_string(SealError e) {
  switch (e) {
    case SealError::malformed:
      return "malformed";
    case SealError::unknown_key:
      return "unknown key";
    case SealError::bad_tag:
      return "authentication failed";
    case SealError::expired:
      return "expired";
  }
  return "seal error";
}

CookieSealer::CookieSealer(std::vector<CookieKey> keys, RandomSource& random) : random_(random) {
  if (keys.empty()) throw std::invalid_argument("CookieSealer needs at least one key");
  keys_.reserve(keys.size());
  for (auto& k : keys) {
    Slot slot;
    slot.key = k.bytes;
    const Sha256Digest digest =
        sha256(std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()));
    std::copy_n(digest.begin(), kKeyIdSize, slot.id.begin());
    keys_.push_back(slot);
    OPENSSL_cleanse(k.bytes.data(), k.bytes.size());
  }
}

CookieSealer::~CookieSealer() {
  for (auto& slot : keys_) OPENSSL_cleanse(slot.key.data(), slot.key.size());
}

std::string CookieSealer::seal(std::string_view plaintext, std::string_view purpose,
                               std::int64_t expires_unix) const {
  const std::size_t body = kExpirySize + plaintext.size();
  if (body > static_cast<std::size_t>(INT_MAX) || purpose.size() > INT_MAX / 2) std::abort();
  const Slot& slot = keys_.front();

  std::vector<std::uint8_t> out(kHeaderSize + body + kTagSize);
  out[0] = kVersion;
  std::copy(slot.id.begin(), slot.id.end(), out.begin() + 1);
  std::uint8_t* nonce = out.data() + 1 + kKeyIdSize;
  random_.fill(std::span<std::uint8_t>(nonce, kNonceSize));

  std::vector<std::uint8_t> input(body);
  const auto e = static_cast<std::uint64_t>(expires_unix);
  for (std::size_t i = 0; i < kExpirySize; ++i) {
    input[i] = static_cast<std::uint8_t>(e >> (8 * (kExpirySize - 1 - i)));
  }
  if (!plaintext.empty())
    std::memcpy(input.data() + kExpirySize, plaintext.data(), plaintext.size());
  const std::string aad = make_aad(out.data(), purpose);

  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) std::abort();
  int len = 0;
  check(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr));
  check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr));
  check(EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, slot.key.data(), nonce));
  check(EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())));
  std::uint8_t* ciphertext = out.data() + kHeaderSize;
  check(EVP_EncryptUpdate(ctx.get(), ciphertext, &len, input.data(), static_cast<int>(body)));
  if (static_cast<std::size_t>(len) != body) std::abort();  // GCM is a stream mode
  check(EVP_EncryptFinal_ex(ctx.get(), ciphertext + body, &len));
  if (len != 0) std::abort();
  check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, ciphertext + body));
  OPENSSL_cleanse(input.data(), input.size());
  return base64url_encode(std::span<const unsigned char>(out.data(), out.size()));
}

Expected<std::string, SealError> CookieSealer::open(std::string_view sealed,
                                                    std::string_view purpose,
                                                    std::int64_t now_unix) const {
  if (sealed.size() < sealed_size(0) || sealed.size() > static_cast<std::size_t>(INT_MAX) ||
      purpose.size() > INT_MAX / 2) {
    return unexpected(SealError::malformed);
  }
  auto decoded = base64url_decode(sealed);
  if (!decoded) return unexpected(SealError::malformed);
  const std::vector<unsigned char>& in = *decoded;
  if (in.size() < kOverhead || in[0] != kVersion) return unexpected(SealError::malformed);

  const std::uint8_t* nonce = in.data() + 1 + kKeyIdSize;
  const std::uint8_t* ciphertext = in.data() + kHeaderSize;
  const std::size_t body = in.size() - kHeaderSize - kTagSize;
  const std::uint8_t* tag = ciphertext + body;
  const std::string aad = make_aad(in.data(), purpose);

  bool known = false;
  std::string plain(body, '\0');
  for (const Slot& slot : keys_) {
    // Key ids are 32 bits, so two configured keys may (rarely) share one: try each match.
    if (!std::equal(slot.id.begin(), slot.id.end(), in.begin() + 1)) continue;
    known = true;
    CtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) std::abort();
    int len = 0;
    auto* p = reinterpret_cast<unsigned char*>(plain.data());
    check(EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr));
    check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr));
    check(EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, slot.key.data(), nonce));
    check(EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                            reinterpret_cast<const unsigned char*>(aad.data()),
                            static_cast<int>(aad.size())));
    check(EVP_DecryptUpdate(ctx.get(), p, &len, ciphertext, static_cast<int>(body)));
    if (static_cast<std::size_t>(len) != body) std::abort();
    check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                              const_cast<std::uint8_t*>(tag)));
    if (EVP_DecryptFinal_ex(ctx.get(), p + body, &len) != 1) {
      OPENSSL_cleanse(plain.data(), plain.size());  // unauthenticated: never let it out
      continue;
    }
    std::uint64_t e = 0;
    for (std::size_t i = 0; i < kExpirySize; ++i) {
      e = (e << 8) | static_cast<unsigned char>(plain[i]);
    }
    if (now_unix >= static_cast<std::int64_t>(e)) {
      OPENSSL_cleanse(plain.data(), plain.size());
      return unexpected(SealError::expired);
    }
    plain.erase(0, kExpirySize);
    return plain;
  }
  return unexpected(known ? SealError::bad_tag : SealError::unknown_key);
}

}  // namespace portcullis
