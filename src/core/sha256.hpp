#pragma once
// SHA-256 over a byte string (OpenSSL EVP), for content digests: policy versions, cache keys
// and the audit hash chain. Never fails for in-memory input (an OpenSSL failure aborts).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace portcullis {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::string_view data);

// Lower-case hex of the digest (64 characters).
std::string sha256_hex(std::string_view data);

std::string to_hex(const std::uint8_t* data, std::size_t size);

}  // namespace portcullis
