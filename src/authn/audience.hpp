#pragma once
// The audience rule shared by JWT validation and token introspection: "aud" is a string or an
// array of strings (RFC 7519 4.1.3, RFC 7662 2.2) and must contain one accepted audience. An
// array holding anything but strings never matches.
#include <boost/json/value.hpp>
#include <string>
#include <vector>

namespace portcullis {

bool audience_matches(const boost::json::value& aud, const std::vector<std::string>& accepted);

}  // namespace portcullis
