#pragma once
// Canonicalises a request target once, before routing, so routing, policy, audit and the
// upstream all see the same path. Nothing downstream re-parses the raw URL.
//
// Rules (docs/path-normalization.md has the table):
//  - origin-form only ("/..."); the caller turns absolute-form into origin-form first;
//  - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other escapes
//    are kept with upper-case hex, raw bytes >= 0x80 are percent-encoded;
//  - %2F and %5C (encoded / and \) are refused unless allow_encoded_slash (then kept encoded),
//    raw '\', NUL (raw or %00), control characters, spaces and '#' are refused;
//  - ";parameters" are stripped from every segment (so "/public/..;/admin" is "/admin");
//  - empty segments are merged ("//admin" is "/admin"), "." and ".." are resolved
//    (never above the root); a trailing slash is kept;
//  - the query is kept verbatim after a character check.
#include <string>
#include <string_view>

#include "core/expected.hpp"

namespace portcullis {

enum class TargetError {
  empty,
  not_origin_form,
  bad_percent_encoding,
  encoded_slash,      // %2F or %5C
  backslash,          // raw '\'
  nul,                // raw NUL or %00
  invalid_character,  // control characters, space, '#', DEL
  too_long,
};

std::string_view to_string(TargetError e);

struct NormalizedTarget {
  std::string path;   // canonical, starts with '/'
  std::string query;  // without the '?', verbatim
};

struct PathNormalizeOptions {
  bool allow_encoded_slash = false;
  std::size_t max_length = 8192;
};

Expected<NormalizedTarget, TargetError> normalize_target(std::string_view target,
                                                         const PathNormalizeOptions& options = {});

// Host header / :authority -> lower-case host without port or trailing dot.
// Refuses empty hosts, userinfo, bad ports and characters outside a host name / IP literal.
Expected<std::string, std::string> normalize_host(std::string_view authority);

}  // namespace portcullis
