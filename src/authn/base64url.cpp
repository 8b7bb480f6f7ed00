#include "authn/base64url.hpp"

#include <array>
#include <cstdint>

namespace portcullis {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t kInvalid = 0xFF;

constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (std::uint8_t i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = i;
  return table;
}
constexpr auto kDecode = make_decode_table();

// Validates and decodes into `out`, which the caller has sized to base64url_decoded_size().
Expected<std::size_t, Base64Error> decode_checked(std::string_view in, unsigned char* out) {
  const std::size_t full = in.size() / 4 * 4;
  std::size_t o = 0;
  for (std::size_t i = 0; i < full; i += 4) {
    const std::uint8_t a = kDecode[static_cast<unsigned char>(in[i])];
    const std::uint8_t b = kDecode[static_cast<unsigned char>(in[i + 1])];
    const std::uint8_t c = kDecode[static_cast<unsigned char>(in[i + 2])];
    const std::uint8_t d = kDecode[static_cast<unsigned char>(in[i + 3])];
    if ((a | b | c | d) & 0xC0) return unexpected(Base64Error::invalid_character);
    const std::uint32_t v = (std::uint32_t{a} << 18) | (std::uint32_t{b} << 12) |
                            (std::uint32_t{c} << 6) | std::uint32_t{d};
    out[o++] = static_cast<unsigned char>(v >> 16);
    out[o++] = static_cast<unsigned char>(v >> 8);
    out[o++] = static_cast<unsigned char>(v);
  }
  const std::size_t rest = in.size() - full;
  if (rest == 0) return o;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < rest; ++i) {
    const std::uint8_t x = kDecode[static_cast<unsigned char>(in[full + i])];
    if (x & 0xC0) return unexpected(Base64Error::invalid_character);
    v = (v << 6) | x;
  }
  if (rest == 2) {  // 12 bits carry 8: the low 4 must be zero
    if (v & 0x0F) return unexpected(Base64Error::non_canonical);
    out[o++] = static_cast<unsigned char>(v >> 4);
  } else {  // rest == 3: 18 bits carry 16, the low 2 must be zero
    if (v & 0x03) return unexpected(Base64Error::non_canonical);
    out[o++] = static_cast<unsigned char>(v >> 10);
    out[o++] = static_cast<unsigned char>(v >> 2);
  }
  return o;
}

template <class Container>
Expected<Container, Base64Error> decode_to(std::string_view in) {
  if (in.size() % 4 == 1) return unexpected(Base64Error::invalid_length);
  Container out(base64url_decoded_size(in.size()), 0);
  auto n = decode_checked(in, reinterpret_cast<unsigned char*>(out.data()));
  if (!n) return unexpected(n.error());
  return out;
}

}  // namespace

std::string_view to_string(Base64Error e) {
  switch (e) {
    case Base64Error::invalid_character:
      return "character outside the base64url alphabet";
    case Base64Error::invalid_length:
      return "impossible base64url length";
    case Base64Error::non_canonical:
      return "non-canonical base64url trailing bits";
    case Base64Error::buffer_too_small:
      return "output buffer too small";
  }
  return "base64url error";
}

Expected<std::size_t, Base64Error> base64url_decode(std::string_view in,
                                                    std::span<unsigned char> out) {
  if (in.size() % 4 == 1) return unexpected(Base64Error::invalid_length);
  if (out.size() < base64url_decoded_size(in.size()))
    return unexpected(Base64Error::buffer_too_small);
  return decode_checked(in, out.data());
}

Expected<std::vector<unsigned char>, Base64Error> base64url_decode(std::string_view in) {
  return decode_to<std::vector<unsigned char>>(in);
}

Expected<std::string, Base64Error> base64url_decode_to_string(std::string_view in) {
  return decode_to<std::string>(in);
}

std::string base64url_encode(std::span<const unsigned char> in) {
  std::string out;
  out.reserve(base64url_encoded_size(in.size()));
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v =
        (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | std::uint32_t{in[i + 2]};
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const std::size_t rest = in.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{in[i]} << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::string base64url_encode(std::string_view in) {
  return base64url_encode(
      std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(in.data()), in.size()));
}

}  // namespace portcullis
