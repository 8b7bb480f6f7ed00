#pragma once
// application/x-www-form-urlencoded pieces (OAuth token, introspection and device requests,
// authorization URLs). form_encode is WHATWG's: alphanumerics and "*-._" stay, space is '+',
// every other byte is %XX (RFC 6749 2.3.1 asks for it for Basic credentials too); form_decode
// undoes it ('+' is a space, malformed escapes are kept as they are). base64_encode is the padded
// base64 of HTTP Basic.
#include <string>
#include <string_view>

namespace portcullis {

std::string form_encode(std::string_view s);
std::string form_decode(std::string_view s);

// Standard base64 with padding (RFC 4648 section 4), as HTTP Basic credentials use it.
std::string base64_encode(std::string_view in);

}  // namespace portcullis
