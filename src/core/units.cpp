// Parsers for durations, sizes, socket addresses and CIDR blocks as written in the config.
#include "core/units.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>
#include <cctype>
#include <charconv>
#include <limits>

namespace portcullis {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// Reads a run of decimal digits at `pos` into `out`; false on overflow (or no digits).
bool read_number(std::string_view text, std::size_t& pos, std::uint64_t& out) {
  const char* first = text.data() + pos;
  const char* last = text.data() + text.size();
  const char* end = first;
  while (end != last && is_digit(*end)) ++end;
  if (end == first) return false;
  auto [ptr, ec] = std::from_chars(first, end, out);
  if (ec != std::errc() || ptr != end) return false;
  pos += static_cast<std::size_t>(end - first);
  return true;
}

// Multiplies and adds with overflow detection.
bool checked_mul_add(std::uint64_t value, std::uint64_t factor, std::uint64_t& total,
                     std::uint64_t limit) {
  if (factor != 0 && value > limit / factor) return false;
  const std::uint64_t product = value * factor;
  if (product > limit - total) return false;
  total += product;
  return true;
}

struct DurationUnit {
  std::string_view name;
  std::uint64_t ms;
};

// Longest names first so "ms" wins over "m"; the index is the unit's rank (larger = coarser).
constexpr std::array<DurationUnit, 5> kDurationUnits = {{
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
    {"d", 24 * 60 * 60 * 1000},
}};

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t label_start = 0;
  bool last_label_numeric = true;
  for (std::size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      const std::string_view label = host.substr(label_start, i - label_start);
      if (label.empty() || label.size() > 63) return false;
      if (label.front() == '-' || label.back() == '-') return false;
      last_label_numeric = all_digits(label);
      label_start = i + 1;
      continue;
    }
    const char c = host[i];
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
    if (!ok) return false;
  }
  // An all-numeric last label is a mistyped IP address, not a name (RFC 3696 section 2).
  return !last_label_numeric;
}

}  // namespace

Expected<std::chrono::milliseconds, std::string> parse_duration(std::string_view text) {
  if (text.empty()) return unexpected(std::string("duration is empty"));
  if (text == "0") return std::chrono::milliseconds(0);
  if (all_digits(text)) {
    return unexpected("duration " + in_quotes(text) + " needs a unit: ms, s, m, h, d");
  }
  // Rendered as milliseconds in a signed 64-bit count.
  constexpr std::uint64_t kLimit =
      static_cast<std::uint64_t>(std::numeric_limits<long long>::max());
  std::uint64_t total = 0;
  std::size_t pos = 0;
  int previous_rank = static_cast<int>(kDurationUnits.size());
  while (pos < text.size()) {
    std::uint64_t value = 0;
    if (!is_digit(text[pos])) {
      return unexpected("invalid duration " + in_quotes(text) +
                        ": expected a whole number followed by a unit (ms, s, m, h, d), "
                        "e.g. 250ms, 30s, 1m30s");
    }
    if (!read_number(text, pos, value)) {
      return unexpected("duration " + in_quotes(text) + " is too large");
    }
    if (pos == text.size()) {
      return unexpected("duration " + in_quotes(text) + " needs a unit: ms, s, m, h, d");
    }
    std::size_t unit_end = pos;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(pos, unit_end - pos);
    int rank = -1;
    for (std::size_t u = 0; u < kDurationUnits.size(); ++u) {
      if (unit == kDurationUnits[u].name) rank = static_cast<int>(u);
    }
    if (rank < 0) {
      return unexpected("invalid duration " + in_quotes(text) + ": unknown unit at " +
                        in_quotes(text.substr(pos)) + " (units are ms, s, m, h, d)");
    }
    if (rank >= previous_rank) {
      return unexpected("invalid duration " + in_quotes(text) +
                        ": units must go from largest to smallest, each at most once "
                        "(e.g. 1h30m)");
    }
    previous_rank = rank;
    pos += kDurationUnits[static_cast<std::size_t>(rank)].name.size();
    if (!checked_mul_add(value, kDurationUnits[static_cast<std::size_t>(rank)].ms, total, kLimit)) {
      return unexpected("duration " + in_quotes(text) + " is too large");
    }
  }
  return std::chrono::milliseconds(static_cast<long long>(total));
}

Expected<std::uint64_t, std::string> parse_size(std::string_view text) {
  if (text.empty()) return unexpected(std::string("size is empty"));
  std::size_t pos = 0;
  std::uint64_t value = 0;
  if (!is_digit(text[0])) {
    return unexpected("invalid size " + in_quotes(text) +
                      ": expected a whole number of bytes, optionally followed by KiB, MiB, "
                      "GiB, KB, MB or GB (e.g. 512, 64KiB, 100MiB)");
  }
  if (!read_number(text, pos, value)) {
    return unexpected("size " + in_quotes(text) + " is too large");
  }
  const std::string_view unit = text.substr(pos);
  std::uint64_t factor = 0;
  if (unit.empty()) {
    factor = 1;
  } else if (unit == "KiB") {
    factor = 1ull << 10;
  } else if (unit == "MiB") {
    factor = 1ull << 20;
  } else if (unit == "GiB") {
    factor = 1ull << 30;
  } else if (unit == "KB") {
    factor = 1000ull;
  } else if (unit == "MB") {
    factor = 1000ull * 1000;
  } else if (unit == "GB") {
    factor = 1000ull * 1000 * 1000;
  } else {
    return unexpected("invalid size " + in_quotes(text) + ": unknown unit " + in_quotes(unit) +
                      " (units are KiB, MiB, GiB, KB, MB, GB, exactly as written)");
  }
  std::uint64_t total = 0;
  if (!checked_mul_add(value, factor, total, std::numeric_limits<std::uint64_t>::max())) {
    return unexpected("size " + in_quotes(text) + " is too large");
  }
  return total;
}

Expected<SocketAddress, std::string> parse_socket_address(std::string_view text, bool allow_names) {
  const std::string what = allow_names ? "host:port" : "ip:port";
  if (text.empty()) return unexpected("address is empty (expected " + what + ")");
  std::string_view host;
  std::string_view port_text;
  bool bracketed = false;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return unexpected("invalid address " + in_quotes(text) + ": missing ']' after IPv6 address");
    }
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return unexpected("invalid address " + in_quotes(text) + ": expected ':port' after ']'");
    }
    port_text = rest.substr(1);
    bracketed = true;
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return unexpected("invalid address " + in_quotes(text) + ": missing port (expected " + what +
                        ", e.g. 127.0.0.1:8080 or [::1]:8080)");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return unexpected("invalid address " + in_quotes(text) +
                        ": IPv6 addresses must be in brackets, e.g. [::1]:8443");
    }
  }
  if (host.empty()) return unexpected("invalid address " + in_quotes(text) + ": missing host");
  std::uint64_t port = 0;
  std::size_t pos = 0;
  if (!all_digits(port_text) || !read_number(port_text, pos, port) || port < 1 || port > 65535) {
    return unexpected("invalid address " + in_quotes(text) + ": port must be a number 1..65535");
  }
  SocketAddress result;
  result.port = static_cast<std::uint16_t>(port);
  boost::system::error_code ec;
  if (bracketed) {
    const auto v6 = boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      return unexpected("invalid address " + in_quotes(text) + ": " + in_quotes(host) +
                        " is not an IPv6 address");
    }
    result.host = v6.to_string();
    return result;
  }
  const auto v4 = boost::asio::ip::make_address_v4(std::string(host), ec);
  if (!ec) {
    result.host = v4.to_string();
    return result;
  }
  if (!allow_names) {
    return unexpected("invalid address " + in_quotes(text) + ": " + in_quotes(host) +
                      " is not an IP address (host names are not allowed here; use e.g. "
                      "0.0.0.0:8443 or [::1]:8443)");
  }
  if (!is_host_name(host)) {
    return unexpected("invalid address " + in_quotes(text) + ": " + in_quotes(host) +
                      " is neither an IP address nor a valid host name");
  }
  result.host = std::string(host);
  return result;
}

Expected<Cidr, std::string> parse_cidr(std::string_view text) {
  if (text.empty()) return unexpected(std::string("CIDR block is empty"));
  const std::size_t slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(addr_text), ec);
  if (ec) {
    return unexpected("invalid CIDR block " + in_quotes(text) + ": " + in_quotes(addr_text) +
                      " is not an IP address");
  }
  const unsigned max_len = address.is_v4() ? 32 : 128;
  Cidr cidr;
  cidr.network = address;
  cidr.prefix_length = max_len;
  if (slash != std::string_view::npos) {
    const std::string_view len_text = text.substr(slash + 1);
    std::uint64_t len = 0;
    std::size_t pos = 0;
    if (!all_digits(len_text) || len_text.size() > 3 || !read_number(len_text, pos, len) ||
        len > max_len) {
      return unexpected("invalid CIDR block " + in_quotes(text) + ": prefix length must be 0.." +
                        std::to_string(max_len));
    }
    cidr.prefix_length = static_cast<unsigned>(len);
  }
  // Host bits set ("10.0.0.1/8") usually means a typo; refuse rather than guess.
  auto bytes_of = [](const boost::asio::ip::address& a) {
    std::array<unsigned char, 16> out{};
    if (a.is_v4()) {
      const auto b = a.to_v4().to_bytes();
      std::copy(b.begin(), b.end(), out.begin());
    } else {
      const auto b = a.to_v6().to_bytes();
      std::copy(b.begin(), b.end(), out.begin());
    }
    return out;
  };
  const auto bytes = bytes_of(address);
  for (unsigned bit = cidr.prefix_length; bit < max_len; ++bit) {
    if (bytes[bit / 8] & (0x80u >> (bit % 8))) {
      return unexpected("invalid CIDR block " + in_quotes(text) +
                        ": address has bits set beyond the /" + std::to_string(cidr.prefix_length) +
                        " prefix");
    }
  }
  return cidr;
}

std::string format_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (std::size_t u = kDurationUnits.size(); u-- > 0;) {
    const auto unit_ms = static_cast<long long>(kDurationUnits[u].ms);
    if (ms >= unit_ms) {
      out += std::to_string(ms / unit_ms);
      out += kDurationUnits[u].name;
      ms %= unit_ms;
    }
  }
  return out;
}

}  // namespace portcullis
