#include "http/path_normalizer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace portcullis {

namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

// RFC 3986 unreserved: ALPHA DIGIT - . _ ~ (the only escapes that are decoded).
bool is_unreserved(unsigned char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// Characters kept raw in a path segment: unreserved, sub-delims, ':' and '@' (RFC 3986 pchar).
// ';' is handled before this (it starts the segment's parameters).
bool is_raw_pchar(unsigned char c) {
  return is_unreserved(c) ||
         std::string_view("!$&'()*+,;=:@").find(static_cast<char>(c)) != std::string_view::npos;
}

// Control characters, space, DEL and '#': never valid anywhere in a request target.
bool is_forbidden(unsigned char c) {
  return c < 0x20 || c == 0x7f || c == ' ' || c == '#';
}

void append_escape(std::string& out, unsigned char c) {
  out += '%';
  out += kHexUpper[c >> 4];
  out += kHexUpper[c & 0x0f];
}

// The part of a normalised segment before an encoded ';' (%3B). Some upstreams decode first and
// strip ";params" afterwards, so "..%3Bx" must count as ".." too.
std::string_view before_encoded_semicolon(std::string_view segment) {
  const auto pos = segment.find("%3B");
  return pos == std::string_view::npos ? segment : segment.substr(0, pos);
}

bool is_dot_segment(std::string_view s) {
  return s == "." || s == "..";
}

// With allow_encoded_slash, "%2F"/"%5C" stay encoded inside a segment; an upstream that decodes
// them would split the segment there. True when one of those pieces is "." or "..".
bool has_dot_piece(std::string_view segment) {
  std::size_t start = 0;
  while (true) {
    std::size_t cut = std::string_view::npos;
    for (std::string_view sep : {std::string_view("%2F"), std::string_view("%5C")}) {
      const auto p = segment.find(sep, start);
      if (p < cut) cut = p;
    }
    const auto piece = segment.substr(start, cut == std::string_view::npos ? cut : cut - start);
    if (is_dot_segment(before_encoded_semicolon(piece))) return true;
    if (cut == std::string_view::npos) return false;
    start = cut + 3;
  }
}

}  // namespace

std::string_view to_string(TargetError e) {
  switch (e) {
    case TargetError::empty:
      return "empty request target";
    case TargetError::not_origin_form:
      return "request target is not origin-form";
    case TargetError::bad_percent_encoding:
      return "malformed percent-encoding";
    case TargetError::encoded_slash:
      return "encoded slash or backslash in path";
    case TargetError::backslash:
      return "backslash in path";
    case TargetError::nul:
      return "NUL in path";
    case TargetError::invalid_character:
      return "invalid character in request target";
    case TargetError::too_long:
      return "request target too long";
  }
  return "invalid request target";
}

Expected<NormalizedTarget, TargetError> normalize_target(std::string_view target,
                                                         const PathNormalizeOptions& options) {
  if (target.empty()) return unexpected(TargetError::empty);
  if (target.size() > options.max_length) return unexpected(TargetError::too_long);
  if (target.front() != '/') return unexpected(TargetError::not_origin_form);

  // The first '?' ends the path, even inside ";params" (RFC 3986 3.3/3.4).
  const auto qpos = target.find('?');
  const std::string_view raw_path = target.substr(0, qpos);
  const std::string_view raw_query =
      qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1);
  for (const char ch : raw_query) {
    if (is_forbidden(static_cast<unsigned char>(ch))) {
      return unexpected(TargetError::invalid_character);
    }
  }

  NormalizedTarget result;
  std::string& out = result.path;  // "/seg/seg"; empty means "/"
  out.reserve(raw_path.size() + 1);
  bool trailing_slash = false;

  std::size_t begin = 1;  // raw_path[0] == '/'
  while (true) {
    std::size_t end = raw_path.find('/', begin);
    const bool last = end == std::string_view::npos;
    if (last) end = raw_path.size();
    const std::string_view seg = raw_path.substr(begin, end - begin);

    // Write the segment canonically, straight into `out`, then look at what was written.
    const std::size_t seg_start = out.size();
    out += '/';
    bool in_params = false;  // after a raw ';': validated, then dropped
    bool kept_encoded_slash = false;
    for (std::size_t k = 0; k < seg.size(); ++k) {
      auto c = static_cast<unsigned char>(seg[k]);
      if (c == 0) return unexpected(TargetError::nul);
      if (c == '\\') return unexpected(TargetError::backslash);
      if (is_forbidden(c)) return unexpected(TargetError::invalid_character);
      if (c == '%') {
        if (k + 2 >= seg.size()) {
          return unexpected(TargetError::bad_percent_encoding);
        }
        const int hi = hex_value(seg[k + 1]);
        const int lo = hex_value(seg[k + 2]);
        if (hi < 0 || lo < 0) return unexpected(TargetError::bad_percent_encoding);
        k += 2;
        c = static_cast<unsigned char>(hi * 16 + lo);
        if (c == 0) return unexpected(TargetError::nul);
        if (c == '/' || c == '\\') {
          if (!options.allow_encoded_slash) return unexpected(TargetError::encoded_slash);
          if (!in_params) {
            append_escape(out, c);
            kept_encoded_slash = true;
          }
          continue;
        }
        if (in_params) continue;
        if (is_unreserved(c)) {
          out += static_cast<char>(c);
        } else {
          append_escape(out, c);
        }
        continue;
      }
      if (in_params) continue;
      if (c == ';') {
        in_params = true;
        continue;
      }
      if (c < 0x80 && is_raw_pchar(c)) {
        out += static_cast<char>(c);
      } else {
        append_escape(out, c);  // bytes >= 0x80 and ASCII that is not allowed raw ("<>[]^`{|})
      }
    }

    const std::string_view text(out.data() + seg_start + 1, out.size() - seg_start - 1);
    const std::string_view head = before_encoded_semicolon(text);
    if (text.empty() || head == ".") {
      out.resize(seg_start);
      trailing_slash = true;
    } else if (head == "..") {
      out.resize(seg_start);
      const auto parent = out.rfind('/');
      out.resize(parent == std::string::npos ? 0 : parent);
      trailing_slash = true;
    } else {
      if (kept_encoded_slash && has_dot_piece(text)) {
        return unexpected(TargetError::encoded_slash);
      }
      trailing_slash = false;
    }

    if (last) break;
    begin = end + 1;
  }

  if (out.empty()) {
    out = "/";
  } else if (trailing_slash) {
    out += '/';
  }
  result.query.assign(raw_query);
  return result;
}

Expected<std::string, std::string> normalize_host(std::string_view authority) {
  using Result = Expected<std::string, std::string>;
  const auto fail = [](const char* why) -> Result { return unexpected(std::string(why)); };

  if (authority.empty()) return fail("empty host");
  if (authority.find('@') != std::string_view::npos) return fail("userinfo not allowed");

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  std::string result;

  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("bad IPv6 literal");
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("bad IPv6 literal");
      port = rest.substr(1);
      has_port = true;
    }
    if (host.empty()) return fail("empty host");
    char buf[INET6_ADDRSTRLEN];
    if (host.size() >= sizeof(buf)) return fail("bad IPv6 literal");
    for (const char ch : host) {
      const auto c = static_cast<unsigned char>(ch);
      if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
            c == '.')) {
        return fail("bad IPv6 literal");
      }
    }
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    in6_addr addr{};
    if (inet_pton(AF_INET6, buf, &addr) != 1) return fail("bad IPv6 literal");
    // Canonical RFC 5952 text ("[0:0::1]" and "[::1]" are the same host).
    if (inet_ntop(AF_INET6, &addr, buf, sizeof(buf)) == nullptr) return fail("bad IPv6 literal");
    result.reserve(std::strlen(buf) + 2);
    result += '[';
    result += buf;
    result += ']';
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // one trailing dot
    if (host.empty()) return fail("empty host");
    if (host.size() > 253) return fail("host name too long");
    std::size_t label = 0;
    for (const char ch : host) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '.') {
        if (label == 0) return fail("empty label in host name");
        label = 0;
        continue;
      }
      if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) {
        return fail("invalid character in host");
      }
      if (++label > 63) return fail("label too long in host name");
    }
    if (label == 0) return fail("empty label in host name");
    result.reserve(host.size());
    for (const char ch : host) {
      result += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
    }
  }

  if (has_port) {
    if (port.empty() || port.size() > 5) return fail("bad port");
    unsigned value = 0;
    for (const char ch : port) {
      if (!is_digit(static_cast<unsigned char>(ch))) return fail("bad port");
      value = value * 10 + static_cast<unsigned>(ch - '0');
    }
    if (value == 0 || value > 65535) return fail("bad port");
  }
  return result;
}

}  // namespace portcullis
