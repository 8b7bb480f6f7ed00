// Table tests for the config value parsers (durations, sizes, addresses, CIDR blocks) and the
// small network types they produce.
#include "core/units.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "core/net_types.hpp"

namespace portcullis {
namespace {

using std::chrono::milliseconds;

// A valid input and the value it must produce.
struct DurationCase {
  const char* text;
  long long ms;
};

TEST(UnitsDuration, ParsesValidDurations) {
  const DurationCase cases[] = {
      {"0", 0},
      {"0s", 0},
      {"250ms", 250},
      {"30s", 30'000},
      {"5m", 300'000},
      {"8h", 28'800'000},
      {"1d", 86'400'000},
      {"1m30s", 90'000},
      {"1h30m", 5'400'000},
      {"1d2h3m4s5ms", 93'784'005},
      {"1s500ms", 1'500},
      {"90s", 90'000},
  };
  for (const auto& c : cases) {
    auto r = parse_duration(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error();
    EXPECT_EQ(r->count(), c.ms) << c.text;
  }
}

// An invalid input and a substring its message must contain.
struct ErrorCase {
  const char* text;
  const char* message;
};

TEST(UnitsDuration, RefusesInvalidDurations) {
  const ErrorCase cases[] = {
      {"", "empty"},
      {"30", "duration '30' needs a unit: ms, s, m, h, d"},
      {"1m30", "needs a unit"},
      {"1.5s", "unknown unit"},
      {"-5s", "expected a whole number"},
      {"5 s", "unknown unit"},
      {" 5s", "expected a whole number"},
      {"5sec", "unknown unit"},
      {"5S", "unknown unit"},
      {"30s1m", "largest to smallest"},
      {"1s1s", "largest to smallest"},
      {"s", "expected a whole number"},
      {"99999999999999999999s", "too large"},
      {"9999999999999999d", "too large"},
  };
  for (const auto& c : cases) {
    auto r = parse_duration(c.text);
    ASSERT_FALSE(r) << "accepted '" << c.text << "'";
    EXPECT_NE(r.error().find(c.message), std::string::npos) << c.text << ": " << r.error();
  }
}

TEST(UnitsDuration, FormatsDurations) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(format_duration(milliseconds(86'400'000 + 1'500)), "1d1s500ms");
  for (const char* text : {"1d2h3m4s5ms", "8h", "250ms", "1m30s"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
}

// A valid size and its byte count.
struct SizeCase {
  const char* text;
  std::uint64_t bytes;
};

TEST(UnitsSize, ParsesValidSizes) {
  const SizeCase cases[] = {
      {"0", 0},
      {"512", 512},
      {"64KiB", 64 * 1024},
      {"100MiB", 100ull * 1024 * 1024},
      {"1GiB", 1ull << 30},
      {"10KB", 10'000},
      {"5MB", 5'000'000},
      {"2GB", 2'000'000'000},
      {"18446744073709551615", 18446744073709551615ull},
  };
  for (const auto& c : cases) {
    auto r = parse_size(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error();
    EXPECT_EQ(*r, c.bytes) << c.text;
  }
}

TEST(UnitsSize, RefusesInvalidSizes) {
  const ErrorCase cases[] = {
      {"", "empty"},
      {"KiB", "expected a whole number"},
      {"-1", "expected a whole number"},
      {"64kib", "unknown unit 'kib'"},
      {"64KIB", "unknown unit"},
      {"64kb", "unknown unit"},
      {"64 KiB", "unknown unit"},
      {"1.5MiB", "unknown unit"},
      {"10TiB", "unknown unit"},
      {"18446744073709551616", "too large"},
      {"17179869184GiB", "too large"},
  };
  for (const auto& c : cases) {
    auto r = parse_size(c.text);
    ASSERT_FALSE(r) << "accepted '" << c.text << "'";
    EXPECT_NE(r.error().find(c.message), std::string::npos) << c.text << ": " << r.error();
  }
}

// A valid address, whether names are allowed, and the parsed host and port.
struct AddressCase {
  const char* text;
  bool allow_names;
  const char* host;
  std::uint16_t port;
  const char* rendered;
};

TEST(UnitsAddress, ParsesValidAddresses) {
  const AddressCase cases[] = {
      {"0.0.0.0:8443", false, "0.0.0.0", 8443, "0.0.0.0:8443"},
      {"127.0.0.1:1", false, "127.0.0.1", 1, "127.0.0.1:1"},
      {"[::1]:9901", false, "::1", 9901, "[::1]:9901"},
      {"[::]:65535", false, "::", 65535, "[::]:65535"},
      {"[2001:DB8:0:0::1]:80", false, "2001:db8::1", 80, "[2001:db8::1]:80"},
      {"localhost:80", true, "localhost", 80, "localhost:80"},
      {"orders.internal.example.com:7001", true, "orders.internal.example.com", 7001,
       "orders.internal.example.com:7001"},
      {"10.1.2.3:7001", true, "10.1.2.3", 7001, "10.1.2.3:7001"},
      {"[::1]:7001", true, "::1", 7001, "[::1]:7001"},
  };
  for (const auto& c : cases) {
    auto r = parse_socket_address(c.text, c.allow_names);
    ASSERT_TRUE(r) << c.text << ": " << r.error();
    EXPECT_EQ(r->host, c.host) << c.text;
    EXPECT_EQ(r->port, c.port) << c.text;
    EXPECT_EQ(r->to_string(), c.rendered) << c.text;
  }
}

// An invalid address, whether names are allowed, and a substring of the message.
struct AddressErrorCase {
  const char* text;
  bool allow_names;
  const char* message;
};

TEST(UnitsAddress, RefusesInvalidAddresses) {
  const AddressErrorCase cases[] = {
      {"", false, "empty"},
      {"127.0.0.1", false, "missing port"},
      {"127.0.0.1:", false, "port must be a number 1..65535"},
      {"127.0.0.1:0", false, "port must be a number 1..65535"},
      {"127.0.0.1:65536", false, "port must be a number 1..65535"},
      {"127.0.0.1:80x", false, "port must be a number"},
      {"127.0.0.1:-1", false, "port must be a number"},
      {"::1:80", false, "IPv6 addresses must be in brackets"},
      {"[::1]", false, "expected ':port'"},
      {"[::1:80", false, "missing ']'"},
      {"[1.2.3.4]:80", false, "not an IPv6 address"},
      {"[zz::1]:80", true, "not an IPv6 address"},
      {":80", false, "missing host"},
      {"localhost:80", false, "not an IP address (host names are not allowed here"},
      {"256.1.1.1:80", false, "not an IP address"},
      {"256.1.1.1:80", true, "neither an IP address nor a valid host name"},
      {"bad_host!:80", true, "neither an IP address nor a valid host name"},
      {"-bad.example:80", true, "neither"},
      {"a..b:80", true, "neither"},
      {"localhost:0", true, "port must be a number 1..65535"},
  };
  for (const auto& c : cases) {
    auto r = parse_socket_address(c.text, c.allow_names);
    ASSERT_FALSE(r) << "accepted '" << c.text << "'";
    EXPECT_NE(r.error().find(c.message), std::string::npos) << c.text << ": " << r.error();
  }
}

TEST(UnitsCidr, ParsesValidBlocks) {
  const std::pair<const char*, const char*> cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},   {"192.168.1.0/24", "192.168.1.0/24"},
      {"0.0.0.0/0", "0.0.0.0/0"},     {"127.0.0.1", "127.0.0.1/32"},
      {"::1/128", "::1/128"},         {"::1", "::1/128"},
      {"fd00::/8", "fd00::/8"},       {"2001:db8::/32", "2001:db8::/32"},
      {"10.1.2.3/32", "10.1.2.3/32"},
  };
  for (const auto& [text, rendered] : cases) {
    auto r = parse_cidr(text);
    ASSERT_TRUE(r) << text << ": " << r.error();
    EXPECT_EQ(r->to_string(), rendered);
  }
}

TEST(UnitsCidr, RefusesInvalidBlocks) {
  const ErrorCase cases[] = {
      {"", "empty"},
      {"10.0.0.0/", "prefix length must be 0..32"},
      {"10.0.0.0/33", "prefix length must be 0..32"},
      {"10.0.0.0/x", "prefix length"},
      {"::/129", "prefix length must be 0..128"},
      {"10.0.0.1/8", "bits set beyond the /8 prefix"},
      {"fd00::1/8", "bits set"},
      {"example.com/8", "is not an IP address"},
      {"10.0.0/8", "is not an IP address"},
  };
  for (const auto& c : cases) {
    auto r = parse_cidr(c.text);
    ASSERT_FALSE(r) << "accepted '" << c.text << "'";
    EXPECT_NE(r.error().find(c.message), std::string::npos) << c.text << ": " << r.error();
  }
}

TEST(UnitsCidr, ContainsMatchesPrefixesAndMappedAddresses) {
  namespace ip = boost::asio::ip;
  const Cidr v4 = *parse_cidr("10.0.0.0/8");
  EXPECT_TRUE(v4.contains(ip::make_address("10.1.2.3")));
  EXPECT_TRUE(v4.contains(ip::make_address("10.255.255.255")));
  EXPECT_FALSE(v4.contains(ip::make_address("11.0.0.0")));
  EXPECT_TRUE(v4.contains(ip::make_address("::ffff:10.9.9.9")));  // IPv4-mapped peer
  EXPECT_FALSE(v4.contains(ip::make_address("::1")));

  const Cidr odd = *parse_cidr("192.168.0.0/23");
  EXPECT_TRUE(odd.contains(ip::make_address("192.168.1.77")));
  EXPECT_FALSE(odd.contains(ip::make_address("192.168.2.1")));

  const Cidr all = *parse_cidr("0.0.0.0/0");
  EXPECT_TRUE(all.contains(ip::make_address("203.0.113.9")));

  const Cidr v6 = *parse_cidr("fd00::/8");
  EXPECT_TRUE(v6.contains(ip::make_address("fd12:3456::1")));
  EXPECT_FALSE(v6.contains(ip::make_address("fe80::1")));
  EXPECT_FALSE(v6.contains(ip::make_address("10.0.0.1")));

  const Cidr loopback = *parse_cidr("::1");
  EXPECT_TRUE(loopback.contains(ip::make_address("::1")));
  EXPECT_FALSE(loopback.contains(ip::make_address("::2")));
}

TEST(UnitsAddress, RendersSocketAddresses) {
  EXPECT_EQ((SocketAddress{"127.0.0.1", 80}).to_string(), "127.0.0.1:80");
  EXPECT_EQ((SocketAddress{"::1", 80}).to_string(), "[::1]:80");
  EXPECT_EQ((SocketAddress{"example.com", 443}).to_string(), "example.com:443");
}

}  // namespace
}  // namespace portcullis
