// SocketAddress rendering and CIDR membership.
#include "core/net_types.hpp"

#include <array>

namespace portcullis {

namespace {

// True when the first `bits` bits of the two byte arrays are equal.
template <std::size_t N>
bool prefix_equal(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                  unsigned bits) {
  const unsigned full = bits / 8;
  for (unsigned i = 0; i < full; ++i) {
    if (a[i] != b[i]) return false;
  }
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xFFu << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

}  // namespace

std::string SocketAddress::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool Cidr::contains(const boost::asio::ip::address& a) const {
  namespace ip = boost::asio::ip;
  if (network.is_v4()) {
    ip::address_v4 peer;
    if (a.is_v4()) {
      peer = a.to_v4();
    } else if (a.to_v6().is_v4_mapped()) {
      peer = ip::make_address_v4(ip::v4_mapped, a.to_v6());
    } else {
      return false;
    }
    return prefix_equal(network.to_v4().to_bytes(), peer.to_bytes(), prefix_length);
  }
  const ip::address_v6 peer = a.is_v4() ? ip::make_address_v6(ip::v4_mapped, a.to_v4()) : a.to_v6();
  return prefix_equal(network.to_v6().to_bytes(), peer.to_bytes(), prefix_length);
}

std::string Cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix_length);
}

}  // namespace portcullis
