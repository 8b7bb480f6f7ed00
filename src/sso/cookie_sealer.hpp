#pragma once
// CookieSealer: seals a browser session (or a pending login) into a cookie value with
// AES-256-GCM, so that without Redis the browser carries its own session and cannot read or
// change it. Keys rotate: the first key seals, every listed key opens, so a new key is put
// first and the old one stays listed until the last cookie sealed with it has expired.
//
//   CookieSealer sealer({current, previous}, random);   // random: one per worker (ids.hpp)
//   std::string v = sealer.seal(session_json, "session", now + 8 * 3600);
//   auto s = sealer.open(v, "session", now);             // Expected<std::string, SealError>
//   if (!s) log("session cookie refused: {}", to_string(s.error()));
//
// Sealed value: base64url (no padding) of
//   version (1 byte, = 1) | key id (4) | nonce (12) | ciphertext | tag (16)
// where the key id is the first 4 bytes of SHA-256(key) (open() picks the key without trial
// decryption), the nonce is random, and the ciphertext encrypts
//   expires_unix (8 bytes, big-endian two's complement) | plaintext.
// The additional authenticated data is version | key id | purpose, so a value sealed for one
// purpose ("session", "login:<cookie name>") never opens as another, and the expiry, being
// inside the authenticated ciphertext, cannot be changed. The expiry is checked only after the
// tag has been verified. Random 96-bit nonces stay safe for far more than 2^32 seals per key
// would allow; rotate keys long before that.
//
// Not thread-safe when sealing (it draws from the RandomSource): one instance per worker.
// open() only reads.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "authn/base64url.hpp"
#include "core/expected.hpp"
#include "core/ids.hpp"

namespace portcullis {

// A 256-bit cookie key. Reading the key file is the caller's job; from_file_contents() parses
// what it contains: exactly 32 raw bytes, or (trailing CR/LF ignored) 64 hex digits, or base64
// / base64url of 32 bytes with or without '=' padding. Generate one with `openssl rand -hex 32`.
// Refused with a reason: other lengths, 32 printable characters (a passphrase, not random
// bytes), an all-zero key.
struct CookieKey {
  std::array<std::uint8_t, 32> bytes{};

  static Expected<CookieKey, std::string> from_file_contents(std::string_view contents);
};

enum class SealError {
  malformed,    // not base64url, too short, unknown version
  unknown_key,  // sealed with a key that is not (or no longer) configured
  bad_tag,      // altered, truncated, or sealed for another purpose
  expired,      // authentic, but now_unix >= the sealed expiry
};

const char* to_string(SealError e);

class CookieSealer {
 public:
  static constexpr std::uint8_t kVersion = 1;
  static constexpr std::size_t kKeyIdSize = 4;
  static constexpr std::size_t kNonceSize = 12;
  static constexpr std::size_t kTagSize = 16;
  static constexpr std::size_t kExpirySize = 8;
  static constexpr std::size_t kHeaderSize = 1 + kKeyIdSize + kNonceSize;
  // Bytes a sealed value adds to the plaintext before base64url encoding.
  static constexpr std::size_t kOverhead = kHeaderSize + kExpirySize + kTagSize;

  // Length of the sealed (base64url) value for a plaintext of `plaintext_size` bytes.
  static constexpr std::size_t sealed_size(std::size_t plaintext_size) {
    return base64url_encoded_size(plaintext_size + kOverhead);
  }

  // keys[0] seals; all of them open. Throws std::invalid_argument when `keys` is empty (a
  // configuration error found at start-up or reload, never on the request path). `random`
  // must outlive the sealer.
  CookieSealer(std::vector<CookieKey> keys, RandomSource& random);
  ~CookieSealer();
  CookieSealer(const CookieSealer&) = delete;
  CookieSealer& operator=(const CookieSealer&) = delete;

  // Never fails (an OpenSSL failure aborts, like sha256()); the result is sealed_size() long.
  std::string seal(std::string_view plaintext, std::string_view purpose,
                   std::int64_t expires_unix) const;

  // The plaintext, if `sealed` was sealed by one of our keys for this `purpose` and has not
  // expired at `now_unix`.
  Expected<std::string, SealError> open(std::string_view sealed, std::string_view purpose,
                                        std::int64_t now_unix) const;

 private:
  struct Slot {
    std::array<std::uint8_t, 32> key;
    std::array<std::uint8_t, kKeyIdSize> id;
  };
  std::vector<Slot> keys_;
  RandomSource& random_;
};

}  // namespace portcullis
