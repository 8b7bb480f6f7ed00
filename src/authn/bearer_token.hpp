#pragma once
// Extracts the token from an "Authorization: Bearer <token>" header value (RFC 6750 2.1):
// scheme case-insensitive, one or more spaces, token68 characters only, nothing after it.
#include <optional>
#include <string_view>

namespace portcullis {

enum class BearerParse { ok, missing, not_bearer, malformed };

struct BearerToken {
  BearerParse status = BearerParse::missing;
  std::string_view token;
};

BearerToken parse_bearer(std::string_view authorization);

// True when the token has the shape of a compact JWS: three parts, the last possibly empty.
bool looks_like_jwt(std::string_view token);

}  // namespace portcullis
