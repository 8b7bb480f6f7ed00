#pragma once
// Parsers for the config's value syntaxes. Each returns an error message (no position:
// the caller adds file:line:column) instead of throwing.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/expected.hpp"
#include "core/net_types.hpp"

namespace portcullis {

// "250ms", "30s", "5m", "8h", "1d", or "0"; also compound "1m30s". No bare numbers except 0.
Expected<std::chrono::milliseconds, std::string> parse_duration(std::string_view text);

// "512", "64KiB", "100MiB", "1GiB", "10KB" (KB/MB/GB are decimal), "0".
Expected<std::uint64_t, std::string> parse_size(std::string_view text);

// "0.0.0.0:8443", "[::1]:9901", "localhost:80" (names only when allow_names).
Expected<SocketAddress, std::string> parse_socket_address(std::string_view text, bool allow_names);

// "10.0.0.0/8", "::1/128", or a bare address (full-length prefix).
Expected<Cidr, std::string> parse_cidr(std::string_view text);

// "1m30s" style rendering for messages and /config.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace portcullis
