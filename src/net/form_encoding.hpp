#pragma once
// application/x-www-form-urlencoded pieces (OAuth token and device requests, authorization
// URLs): form_encode keeps RFC 3986 unreserved characters and writes every other byte as %XX
// (so it is also a safe query-component encoder); form_decode undoes it ('+' is a space,
// malformed escapes are kept as they are).
#include <string>
#include <string_view>

namespace portcullis {

std::string form_encode(std::string_view s);
std::string form_decode(std::string_view s);

}  // namespace portcullis
