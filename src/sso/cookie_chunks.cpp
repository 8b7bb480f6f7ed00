#include "sso/cookie_chunks.hpp"

#include <algorithm>
#include <array>

namespace portcullis {
namespace {

// chunk_index() parses one digit.
static_assert(kMaxCookieChunks <= 10);

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    char p = prefix[i];
    if (p >= 'A' && p <= 'Z') p = static_cast<char>(p - 'A' + 'a');
    if (c != p) return false;
  }
  return true;
}

// For a cookie called `cookie`: -1 when it is not one of ours, -2 when it looks like a chunk
// of ours but has a number we never produce, else the chunk index.
int chunk_index(std::string_view base, std::string_view cookie) {
  if (cookie.substr(0, base.size()) != base) return -1;
  std::string_view rest = cookie.substr(base.size());
  if (rest.empty()) return 0;
  if (rest.front() != '_' || rest.size() < 2) return -1;
  rest.remove_prefix(1);
  if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  if (rest.size() > 1 || rest == "0") return -2;  // name_0, name_01, name_10 ...
  return rest.front() - '0';
}

}  // namespace

std::string cookie_chunk_name(std::string_view name, std::size_t index) {
  std::string out(name);
  if (index > 0) {
    out.push_back('_');
    out.append(std::to_string(index));
  }
  return out;
}

Expected<CookieList, std::string> split_cookie(std::string_view name, std::string_view value,
                                               std::size_t max_chunk) {
  if (max_chunk == 0) return unexpected(std::string("cookie chunk size must be positive"));
  const std::size_t count = value.empty() ? 1 : (value.size() + max_chunk - 1) / max_chunk;
  if (count > kMaxCookieChunks) {
    return unexpected("cookie " + std::string(name) + " needs " + std::to_string(value.size()) +
                      " bytes, more than " + std::to_string(kMaxCookieChunks) + " cookies of " +
                      std::to_string(max_chunk) + " bytes hold");
  }
  CookieList out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    out.emplace_back(cookie_chunk_name(name, i),
                     std::string(value.substr(i * max_chunk, max_chunk)));
  }
  return out;
}

std::vector<std::pair<std::string_view, std::string_view>> parse_cookie_header(
    std::string_view header) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  while (!header.empty()) {
    const std::size_t semi = header.find(';');
    std::string_view piece = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const std::size_t eq = piece.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = trim(piece.substr(0, eq));
    if (name.empty()) continue;
    out.emplace_back(name, trim(piece.substr(eq + 1)));
  }
  return out;
}

Expected<JoinedCookie, std::string> join_cookie(std::string_view name,
                                                std::span<const std::string_view> cookie_headers) {
  std::array<std::optional<std::string_view>, kMaxCookieChunks> chunks{};
  for (std::string_view header : cookie_headers) {
    for (const auto& [cookie, value] : parse_cookie_header(header)) {
      const int index = chunk_index(name, cookie);
      if (index == -1) continue;
      if (index == -2) {
        return unexpected("unexpected cookie " + std::string(cookie) + " next to chunks of " +
                          std::string(name));
      }
      auto& slot = chunks[static_cast<std::size_t>(index)];
      if (slot) {
        return unexpected("cookie " + std::string(cookie) +
                          " sent twice (one may be planted by a sibling domain); refusing both");
      }
      slot = value;
    }
  }
  JoinedCookie out;
  while (out.chunks < kMaxCookieChunks && chunks[out.chunks]) {
    out.value.append(*chunks[out.chunks]);
    ++out.chunks;
  }
  for (std::size_t i = out.chunks; i < kMaxCookieChunks; ++i) {
    if (chunks[i]) {
      return unexpected("cookie " + cookie_chunk_name(name, i) + " present but " +
                        cookie_chunk_name(name, out.chunks) + " missing");
    }
  }
  return out;
}

Expected<JoinedCookie, std::string> join_cookie(std::string_view name,
                                                std::string_view cookie_header) {
  return join_cookie(name, std::span<const std::string_view>(&cookie_header, 1));
}

std::string set_cookie_header(std::string_view name, std::string_view value,
                              const CookieAttributes& attrs) {
  std::string out;
  out.reserve(name.size() + value.size() + 96);
  out.append(name).append("=").append(value);
  if (!attrs.path.empty()) out.append("; Path=").append(attrs.path);
  if (attrs.domain) out.append("; Domain=").append(*attrs.domain);
  if (attrs.max_age) {
    out.append("; Max-Age=").append(std::to_string(std::max<std::int64_t>(*attrs.max_age, 0)));
  }
  if (attrs.secure) out.append("; Secure");
  if (attrs.http_only) out.append("; HttpOnly");
  switch (attrs.same_site) {
    case SameSite::lax:
      out.append("; SameSite=Lax");
      break;
    case SameSite::strict:
      out.append("; SameSite=Strict");
      break;
    case SameSite::none:
      out.append("; SameSite=None");
      break;
  }
  return out;
}

std::string clear_cookie_header(std::string_view name, const CookieAttributes& attrs) {
  CookieAttributes a = attrs;
  a.max_age = 0;
  return set_cookie_header(name, "", a);
}

std::vector<std::string> clear_stale_chunks(std::string_view name, std::size_t new_chunks,
                                            std::size_t carried_chunks,
                                            const CookieAttributes& attrs) {
  std::vector<std::string> out;
  carried_chunks = std::min(carried_chunks, kMaxCookieChunks);
  for (std::size_t i = new_chunks; i < carried_chunks; ++i) {
    out.push_back(clear_cookie_header(cookie_chunk_name(name, i), attrs));
  }
  return out;
}

bool host_prefix_allowed(const CookieAttributes& attrs) {
  return attrs.secure && attrs.path == "/" && !attrs.domain;
}

bool cookie_prefix_satisfied(std::string_view name, const CookieAttributes& attrs) {
  if (istarts_with(name, "__Host-")) return host_prefix_allowed(attrs);
  if (istarts_with(name, "__Secure-")) return attrs.secure;
  return true;
}

bool is_valid_cookie_name(std::string_view name) {
  constexpr std::string_view kSeparators = "()<>@,;:\\\"/[]?={} \t";
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return c > 0x20 && c < 0x7f && kSeparators.find(c) == std::string_view::npos;
  });
}

bool is_valid_cookie_value(std::string_view value) {
  // cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
  return std::all_of(value.begin(), value.end(), [](char c) {
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
  });
}

bool is_valid_cookie_attribute_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ';'; });
}

}  // namespace portcullis
