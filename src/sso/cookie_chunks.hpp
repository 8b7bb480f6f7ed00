#pragma once
// Cookie chunking and Set-Cookie building for the browser session: a sealed session can be
// larger than the ~4 KiB a browser keeps per cookie, so it is split over several cookies and
// joined again from the request's Cookie header(s).
//
// Naming: chunk 0 uses the plain name, chunk i (1..9) uses "<name>_<i>": a small session
// needs one cookie whose name is exactly the configured one. At most kMaxCookieChunks (10)
// chunks; a larger value is refused rather than silently truncated.
//
//   auto chunks = split_cookie("__Host-pc_session", sealed);      // Expected<CookieList, error>
//   for (auto& [n, v] : *chunks) add_header("Set-Cookie", set_cookie_header(n, v, attrs));
//   for (auto& h : clear_stale_chunks("__Host-pc_session", chunks->size(), carried, attrs))
//     add_header("Set-Cookie", h);
//
//   auto joined = join_cookie("__Host-pc_session", request_cookie_headers);
//   if (!joined) { /* treat as logged out; clear_stale_chunks(name, 0, kMaxCookieChunks, ..) */ }
//   else if (joined->chunks == 0) { /* no session cookie */ }
//
// join_cookie() refuses a chunk name that appears twice: a sibling subdomain can plant a
// cookie with our name (for its own Domain or Path), and the browser then sends both in an
// order we cannot trust, so a duplicate is never resolved by picking one. It also refuses gaps
// (name and name_2 without name_1) and numbered names we never produce (name_01, name_10).
// Caveat: an unrelated cookie called "<name>_<digit>" on the same site collides with chunks.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/expected.hpp"

namespace portcullis {

inline constexpr std::size_t kMaxCookieChunks = 10;
// Value bytes per chunk: leaves room under the 4096-byte name+value limit of browsers for the
// name and stays well within header limits of common proxies.
inline constexpr std::size_t kDefaultCookieChunkSize = 3800;

using CookieList = std::vector<std::pair<std::string, std::string>>;

// "<name>" for index 0, "<name>_<index>" otherwise.
std::string cookie_chunk_name(std::string_view name, std::size_t index);

// Splits `value` into consecutive pieces of at most `max_chunk` bytes, named as above. An empty
// value gives one cookie with an empty value. Error when more than kMaxCookieChunks pieces would
// be needed, or max_chunk is 0.
Expected<CookieList, std::string> split_cookie(std::string_view name, std::string_view value,
                                               std::size_t max_chunk = kDefaultCookieChunkSize);

// The (name, value) pairs of one Cookie header value, in order: "a=1; b=2". Lenient where it
// is harmless (any whitespace around names and values, empty pieces ";;" skipped); a piece
// without '=' is skipped. Values are returned as sent (quotes included). Views into `header`.
std::vector<std::pair<std::string_view, std::string_view>> parse_cookie_header(
    std::string_view header);

struct JoinedCookie {
  std::string value;       // the chunks concatenated in order
  std::size_t chunks = 0;  // how many cookies carried it; 0 = no cookie of that name
};

// Joins the chunks of `name` from every Cookie header of the request (HTTP/2 may send one per
// cookie). Error (with a reason for the log) on duplicates, gaps or foreign chunk numbers.
Expected<JoinedCookie, std::string> join_cookie(std::string_view name,
                                                std::span<const std::string_view> cookie_headers);
Expected<JoinedCookie, std::string> join_cookie(std::string_view name,
                                                std::string_view cookie_header);

enum class SameSite { lax, strict, none };

struct CookieAttributes {
  std::string path = "/";               // empty: no Path attribute
  std::optional<std::string> domain;    // none: host-only cookie (required for __Host-)
  std::optional<std::int64_t> max_age;  // none: session cookie; <= 0: delete (Max-Age=0)
  bool secure = true;
  bool http_only = true;
  SameSite same_site = SameSite::lax;  // Lax: sent on top-level navigation back from the IdP
};

// The Set-Cookie header value (without "Set-Cookie: "), attributes in a fixed order:
//   name=value; Path=/; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Lax
// Precondition: name is a token and value, path and domain are valid (see the validators
// below; config validation and base64url guarantee it): nothing is escaped here.
std::string set_cookie_header(std::string_view name, std::string_view value,
                              const CookieAttributes& attrs);

// A Set-Cookie that deletes `name`: empty value, Max-Age=0, the same Path and Domain (a
// browser only deletes the cookie whose name, Path and Domain all match).
std::string clear_cookie_header(std::string_view name, const CookieAttributes& attrs);

// Set-Cookie headers deleting chunks new_chunks .. carried_chunks-1 (those the request carried
// that the new value no longer uses). new_chunks == 0 deletes them all (logout).
std::vector<std::string> clear_stale_chunks(std::string_view name, std::size_t new_chunks,
                                            std::size_t carried_chunks,
                                            const CookieAttributes& attrs);

// The "__Host-" prefix is only honoured by browsers for Secure, Path=/ cookies without Domain.
bool host_prefix_allowed(const CookieAttributes& attrs);

// Whether a browser will accept `name` with these attributes: "__Host-" (see above) and
// "__Secure-" (needs Secure) prefixes, matched case-insensitively like current browsers.
bool cookie_prefix_satisfied(std::string_view name, const CookieAttributes& attrs);

// RFC 6265: a cookie name is an RFC 7230 token (non-empty).
bool is_valid_cookie_name(std::string_view name);
// RFC 6265 cookie-octets (no CTLs, whitespace, DQUOTE, comma, semicolon, backslash).
bool is_valid_cookie_value(std::string_view value);
// Path / Domain attribute values: printable ASCII without ';'.
bool is_valid_cookie_attribute_value(std::string_view value);

}  // namespace portcullis
