#include "sso/redirect_guard.hpp"

#include <boost/url.hpp>

#include <algorithm>

namespace portcullis {
namespace {

constexpr std::size_t kMaxReturnUrl = 2048;
constexpr std::size_t kMaxHost = 253;
constexpr std::size_t kMaxLabel = 63;
constexpr int kMaxDecodeRounds = 3;
constexpr char kUpperHex[] = "0123456789ABCDEF";

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_unreserved(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::uint16_t default_port(std::string_view lower_scheme) {
  return lower_scheme == "https" ? 443 : 80;
}

// 1..65535 in decimal, without sign or leading zero ("0443" is refused: it is ambiguous).
std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5 || s[0] == '0') return std::nullopt;
  std::uint32_t value = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Why `host` is not a DNS name made of letter-digit-hyphen labels, or nullptr. Dotted-quad
// IPv4 addresses pass too (their labels are digits).
const char* host_name_error(std::string_view host) {
  if (host.empty()) return "is empty";
  if (host.size() > kMaxHost) return "is too long";
  if (host.back() == '.') return "has a trailing dot";
  std::size_t start = 0;
  while (start <= host.size()) {
    auto end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const auto label = host.substr(start, end - start);
    if (label.empty() || label.size() > kMaxLabel) return "is not a valid DNS name";
    if (label.front() == '-' || label.back() == '-') return "is not a valid DNS name";
    for (char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') return "is not a valid DNS name";
    }
    start = end + 1;
  }
  return nullptr;
}

// WHATWG URL "ends in a number": browsers parse such a host as an IPv4 address ("0x7f.1",
// "127.1", "2130706433"), so it is either a canonical dotted quad or refused.
bool ends_in_number(std::string_view host) {
  const auto dot = host.rfind('.');
  const auto last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (!last.empty() && std::all_of(last.begin(), last.end(), is_digit)) return true;
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
    return std::all_of(last.begin() + 2, last.end(), is_hex);
  }
  return false;
}

bool is_canonical_ipv4(std::string_view host) {
  return boost::urls::parse_ipv4_address(host).has_value();
}

// Decodes every valid %XX escape; invalid ones stay as they are (for the second and third
// rounds, whose input is no longer a checked URI component).
std::string pct_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// RFC 3986 6.2.2: upper-case hex in escapes, decode escapes of unreserved characters.
// `s` is an encoded component already validated by Boost.URL.
std::string normalize_component(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      const int byte = hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]);
      const char c = static_cast<char>(byte);
      if (is_unreserved(c)) {
        out.push_back(c);
      } else {
        out.push_back('%');
        out.push_back(kUpperHex[byte >> 4]);
        out.push_back(kUpperHex[byte & 0xF]);
      }
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool has_dot_segment(std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

// Checks the path as a browser or a later hop might read it: as given, then decoded once,
// twice and three times (a double-encoded "%252F" is a "/" for a server that decodes twice).
const char* path_error(std::string_view encoded_path) {
  std::string current(encoded_path);
  for (int round = 0; round < kMaxDecodeRounds; ++round) {
    std::string decoded = pct_decode(current);
    if (decoded.starts_with("//")) return "return URL path starts with // once decoded";
    for (char c : decoded) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '\\') return "return URL path contains a backslash once decoded";
      if (byte < 0x20 || byte == 0x7F) {
        return "return URL path contains a control character once decoded";
      }
    }
    if (has_dot_segment(decoded)) return "return URL path contains a . or .. segment";
    if (decoded == current) break;
    current = std::move(decoded);
  }
  return nullptr;
}

// Byte-level pre-checks, before any parser sees the text.
const char* raw_text_error(std::string_view s) {
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) return "contains a non-ASCII byte";
    if (byte < 0x20 || byte == 0x7F) return "contains a control character";
    if (c == ' ') return "contains a space";
    if (c == '\\') return "contains a backslash";
  }
  return nullptr;
}

struct Origin {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case; IPv6 literals keep their brackets
  std::uint16_t port = 0;
};

Expected<Origin, std::string> request_origin(std::string_view scheme, std::string_view host) {
  Origin origin;
  origin.scheme = to_lower(scheme);
  if (origin.scheme != "http" && origin.scheme != "https") {
    return unexpected(std::string("request scheme is not http or https"));
  }
  if (const char* e = raw_text_error(host)) return unexpected("request host " + std::string(e));
  auto parsed = boost::urls::parse_authority(host);
  if (!parsed) return unexpected(std::string("request host is not a valid authority"));
  const auto& authority = *parsed;
  if (authority.has_userinfo()) return unexpected(std::string("request host contains user info"));
  const auto encoded_host = std::string_view(authority.encoded_host());
  switch (authority.host_type()) {
    case boost::urls::host_type::name:
      if (ends_in_number(encoded_host)) {
        return unexpected(std::string("request host looks like a non-canonical IP address"));
      }
      [[fallthrough]];
    case boost::urls::host_type::ipv4:
      if (const char* e = host_name_error(encoded_host)) {
        return unexpected("request host " + std::string(e));
      }
      break;
    case boost::urls::host_type::ipv6:
      break;
    default:
      return unexpected(std::string("request host is not a DNS name or IP address"));
  }
  origin.host = to_lower(encoded_host);
  origin.port = default_port(origin.scheme);
  if (authority.has_port()) {
    const auto port = parse_port(std::string_view(authority.port()));
    if (!port) return unexpected(std::string("request host has an invalid port"));
    origin.port = *port;
  }
  return origin;
}

std::string serialize(const Origin& origin, const boost::urls::url_view& url) {
  std::string out = origin.scheme + "://" + origin.host;
  if (origin.port != default_port(origin.scheme)) out += ":" + std::to_string(origin.port);
  const auto path = std::string_view(url.encoded_path());
  out += path.empty() ? std::string("/") : normalize_component(path);
  if (url.has_query()) out += "?" + normalize_component(std::string_view(url.encoded_query()));
  if (url.has_fragment()) {
    out += "#" + normalize_component(std::string_view(url.encoded_fragment()));
  }
  return out;
}

}  // namespace

std::optional<std::string> RedirectGuard::entry_error(std::string_view entry) {
  if (entry.empty()) return "allowlist entry is empty";
  if (const char* e = raw_text_error(entry)) return "allowlist entry " + std::string(e);
  std::string_view host = entry;
  const bool wildcard = host.starts_with("*.");
  if (wildcard) host.remove_prefix(2);
  if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    if (!parse_port(host.substr(colon + 1))) return "allowlist entry has an invalid port";
    host = host.substr(0, colon);
  }
  if (const char* e = host_name_error(host)) return "allowlist entry host " + std::string(e);
  if (wildcard && host.find('.') == std::string_view::npos) {
    return "allowlist wildcard must cover at least two labels (\"*.example.com\")";
  }
  if (ends_in_number(host) && (wildcard || !is_canonical_ipv4(host))) {
    return "allowlist entry ends in a number but is not a dotted-quad IPv4 address";
  }
  return std::nullopt;
}

RedirectGuard::RedirectGuard(const std::vector<std::string>& allowed_hosts) {
  for (const auto& raw : allowed_hosts) {
    if (entry_error(raw)) continue;
    Entry entry;
    std::string_view host = raw;
    entry.wildcard = host.starts_with("*.");
    if (entry.wildcard) host.remove_prefix(2);
    if (const auto colon = host.find(':'); colon != std::string_view::npos) {
      entry.port = *parse_port(host.substr(colon + 1));
      host = host.substr(0, colon);
    }
    entry.host = to_lower(host);
    entries_.push_back(std::move(entry));
  }
}

Expected<std::string, std::string> RedirectGuard::check(std::string_view return_url,
                                                        std::string_view request_scheme,
                                                        std::string_view request_host) const {
  if (return_url.empty()) return unexpected(std::string("return URL is empty"));
  if (return_url.size() > kMaxReturnUrl) {
    return unexpected(std::string("return URL is longer than 2048 bytes"));
  }
  if (const char* e = raw_text_error(return_url)) {
    return unexpected("return URL " + std::string(e));
  }
  if (return_url.starts_with("//")) {
    return unexpected(std::string("return URL is protocol-relative (starts with //)"));
  }
  auto origin = request_origin(request_scheme, request_host);
  if (!origin) return unexpected(origin.error());

  auto parsed = boost::urls::parse_uri_reference(return_url);
  if (!parsed) return unexpected(std::string("return URL is not a valid URI reference"));
  const boost::urls::url_view url = *parsed;
  // RFC 3986: after "//authority" comes "/", "?", "#" or the end. Boost.URL 1.81 does not
  // enforce it (boostorg/url#636): "https://10.1.2.3.evil.example/" parses as host "10.1.2.3"
  // and path ".evil.example/", which would pass as the allowlisted 10.1.2.3.
  if (url.has_authority() && !url.encoded_path().empty() && !url.encoded_path().starts_with('/')) {
    return unexpected(std::string("return URL is not a valid URI reference"));
  }

  if (!url.has_scheme()) {
    // Same-origin path. A relative reference with an authority is "//host", refused above.
    const auto path = std::string_view(url.encoded_path());
    if (url.has_authority() || !path.starts_with("/")) {
      return unexpected(std::string("relative return URL does not start with /"));
    }
    if (const char* e = path_error(path)) return unexpected(std::string(e));
    return serialize(*origin, url);
  }

  Origin target;
  target.scheme = to_lower(std::string_view(url.scheme()));
  if (target.scheme != "http" && target.scheme != "https") {
    return unexpected(std::string("return URL scheme is not http or https"));
  }
  if (!url.has_authority()) return unexpected(std::string("return URL has no // after the scheme"));
  if (url.has_userinfo()) return unexpected(std::string("return URL contains user info"));
  const auto encoded_host = std::string_view(url.encoded_host());
  switch (url.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4:
      break;
    default:
      return unexpected(std::string("return URL host is not a DNS name or IPv4 address"));
  }
  if (const char* e = host_name_error(encoded_host)) {
    return unexpected("return URL host " + std::string(e));
  }
  if (url.host_type() == boost::urls::host_type::name && ends_in_number(encoded_host)) {
    return unexpected(std::string("return URL host looks like a non-canonical IP address"));
  }
  target.host = to_lower(encoded_host);
  target.port = default_port(target.scheme);
  if (url.has_port()) {
    const auto port = parse_port(std::string_view(url.port()));
    if (!port) return unexpected(std::string("return URL port is invalid"));
    target.port = *port;
  }
  if (const char* e = path_error(url.encoded_path())) return unexpected(std::string(e));

  const bool same_origin =
      target.scheme == origin->scheme && target.host == origin->host && target.port == origin->port;
  if (same_origin) return serialize(target, url);

  bool host_allowed = false;
  bool port_allowed = false;
  for (const auto& entry : entries_) {
    const bool host_match = entry.wildcard
                                ? target.host.size() > entry.host.size() + 1 &&
                                      target.host.ends_with(entry.host) &&
                                      target.host[target.host.size() - entry.host.size() - 1] == '.'
                                : target.host == entry.host;
    if (!host_match) continue;
    host_allowed = true;
    const std::uint16_t wanted = entry.port != 0 ? entry.port : default_port(target.scheme);
    if (target.port == wanted) port_allowed = true;
  }
  if (!host_allowed) return unexpected(std::string("return URL host is not allowed"));
  if (target.scheme == "http" && origin->scheme == "https") {
    return unexpected(std::string("return URL would downgrade https to http"));
  }
  if (!port_allowed) return unexpected(std::string("return URL port is not allowed for this host"));
  return serialize(target, url);
}

}  // namespace portcullis
