#include "authn/bearer_token.hpp"

#include <algorithm>

namespace portcullis {
namespace {

bool is_token68(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

}  // namespace

BearerToken parse_bearer(std::string_view v) {
  if (v.empty()) return {BearerParse::missing, {}};
  auto space = v.find(' ');
  if (space == std::string_view::npos || !iequals(v.substr(0, space), "bearer")) {
    return {BearerParse::not_bearer, {}};
  }
  auto token = v.substr(space);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty()) return {BearerParse::malformed, {}};
  std::size_t i = 0;
  while (i < token.size() && is_token68(token[i])) ++i;
  std::size_t j = i;
  while (j < token.size() && token[j] == '=') ++j;  // token68 may end in '='
  if (i == 0 || j != token.size()) return {BearerParse::malformed, {}};
  return {BearerParse::ok, token};
}

bool looks_like_jwt(std::string_view token) {
  // An empty signature part still makes a JWT (an unsigned "alg: none" token must be refused
  // as such, not handed to introspection as if it were opaque).
  return std::count(token.begin(), token.end(), '.') == 2 && token.front() != '.';
}

}  // namespace portcullis
