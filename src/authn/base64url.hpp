#pragma once
// Strict base64url (RFC 4648 section 5, as JOSE uses it): alphabet A-Z a-z 0-9 '-' '_', no
// padding, no whitespace. Decoding refuses impossible lengths (len % 4 == 1) and non-canonical
// trailing bits, so each byte string has exactly one accepted encoding (no signature
// malleability through alternative spellings).
//
//   auto bytes = base64url_decode("eyJhbGciOiJSUzI1NiJ9");       // Expected<vector, error>
//   std::array<unsigned char, 64> buf;
//   auto n = base64url_decode(text, buf);                         // into a caller buffer
//   std::string text = base64url_encode(bytes);
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"

namespace portcullis {

enum class Base64Error {
  invalid_character,  // outside the base64url alphabet (includes '=', '+', '/', whitespace)
  invalid_length,     // len % 4 == 1 can encode nothing
  non_canonical,      // the unused low bits of the last character are not zero
  buffer_too_small,   // the caller's output buffer cannot hold the decoded bytes
};

std::string_view to_string(Base64Error e);

// Number of bytes `encoded_length` characters decode to (for a length that is not % 4 == 1).
constexpr std::size_t base64url_decoded_size(std::size_t encoded_length) {
  const std::size_t rest = encoded_length % 4;
  return encoded_length / 4 * 3 + (rest == 0 ? 0 : rest - 1);
}

constexpr std::size_t base64url_encoded_size(std::size_t decoded_length) {
  const std::size_t rest = decoded_length % 3;
  return decoded_length / 3 * 4 + (rest == 0 ? 0 : rest + 1);
}

// Decodes into `out` without allocating; returns the number of bytes written.
Expected<std::size_t, Base64Error> base64url_decode(std::string_view in,
                                                    std::span<unsigned char> out);

Expected<std::vector<unsigned char>, Base64Error> base64url_decode(std::string_view in);

// Same, into a std::string (for text such as a JOSE header or a JWT payload).
Expected<std::string, Base64Error> base64url_decode_to_string(std::string_view in);

std::string base64url_encode(std::span<const unsigned char> in);
std::string base64url_encode(std::string_view in);

}  // namespace portcullis
