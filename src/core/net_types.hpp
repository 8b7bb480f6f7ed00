#pragma once
// Small network value types used by the config: a host:port pair and a CIDR block.
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string>

namespace portcullis {

// host:port as written in the config. `host` is an IP literal (IPv6 without brackets)
// or, for upstream endpoints only, a DNS name resolved when connecting.
struct SocketAddress {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;  // "127.0.0.1:80", "[::1]:80"
  bool operator==(const SocketAddress&) const = default;
};

// An IPv4 or IPv6 prefix, e.g. 10.0.0.0/8. IPv4-mapped IPv6 peers match IPv4 blocks.
struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix_length = 0;
  bool contains(const boost::asio::ip::address& a) const;
  std::string to_string() const;
};

}  // namespace portcullis
