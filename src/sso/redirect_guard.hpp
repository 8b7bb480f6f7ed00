#pragma once
// RedirectGuard: decides where the browser may be sent after an OIDC login. The URL the browser
// first asked for (the "return URL", kept in the login state) is attacker-controlled input, so
// the gateway redirects only to its own origin or to an allowlisted host; everything else is
// refused, otherwise the gateway is an open redirect (phishing links that start on our domain).
//
// Usage: build one per config snapshot from `allowed_hosts`, then on the login callback
//   auto target = guard.check(state.return_url, "https", request_host);
//   if (!target) { log(target.error()); redirect to "/"; } else { redirect to *target; }
// The result is a normalized absolute URL, safe to put in a Location header as is.
//
// Rules (anything not accepted below is refused, with a short reason for the log):
// - Input: 1..2048 bytes of printable ASCII (no control, space, byte >= 0x80, backslash) that
//   parses as an RFC 3986 URI reference (Boost.URL).
// - Relative references must start with a single "/" (path-absolute) and are same-origin:
//   resolved against request_scheme://request_host. No "//x", "x/y", "?q" or "#f" alone.
// - Absolute URLs: scheme http or https, with "//" and a host, no userinfo. The host is a DNS
//   name (letters, digits, '-', dots; no percent-encoding, no trailing dot, no empty label) or
//   a dotted-quad IPv4 address; a name whose last label is a number (e.g. "0x7f.1", which
//   browsers read as an IPv4 address) and IPv6 literals are refused.
// - Path: its percent-decoded form (decoded up to 3 times, for double encoding) must not start
//   with "//", must contain no backslash, control character, or "." / ".." segment.
// - Accepted when same-origin (scheme, case-insensitive host and effective port all equal the
//   request's) or when the host matches an allowlist entry:
//     "good.example"         that host, default port of the scheme only (443 / 80)
//     "good.example:8443"    that host, port 8443 only (write both entries to allow both)
//     "*.good.example"       any subdomain (a.good.example, a.b.good.example), not the apex
//   An allowlisted http URL is accepted only when the request itself is http (no downgrade).
// - The request's own host is checked the same way (an IPv6 literal is fine there, so relative
//   paths work on "[::1]:8443"); if it is invalid, nothing is accepted.
// - Normalization: lower-case scheme and host, default port dropped, empty path becomes "/",
//   percent-escapes of unreserved characters decoded and other escapes upper-cased.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"

namespace portcullis {

class RedirectGuard {
 public:
  // `allowed_hosts` entries are "[*.]host[:port]" (see above), compared case-insensitively.
  // Invalid entries never match anything (fail closed); validate config with entry_error().
  explicit RedirectGuard(const std::vector<std::string>& allowed_hosts);

  // Why `entry` is not a valid allowlist entry, or nullopt when it is. A wildcard needs at
  // least two labels after "*." ("*.com" is refused) and a non-numeric last label.
  static std::optional<std::string> entry_error(std::string_view entry);

  // The absolute URL to redirect to, or why `return_url` is refused. `request_scheme` is the
  // scheme the browser used ("http" or "https"); `request_host` is its Host / :authority
  // ("gw.example", "gw.example:8443", "[::1]:8443"), which is validated too.
  Expected<std::string, std::string> check(std::string_view return_url,
                                           std::string_view request_scheme,
                                           std::string_view request_host) const;

 private:
  struct Entry {
    std::string host;        // lower case, without "*." and port
    bool wildcard = false;   // "*.host": proper subdomains only
    std::uint16_t port = 0;  // 0: the scheme's default port only
  };
  std::vector<Entry> entries_;
};

}  // namespace portcullis
