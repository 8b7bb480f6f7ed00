#include "authn/identity.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace portcullis {
namespace {

// A string claim, or "" for any other shape (or when absent).
std::string claim_string(const boost::json::object& claims, std::string_view path) {
  if (path.empty()) return {};
  const boost::json::value* v = find_claim(claims, path);
  if (!v || !v->is_string()) return {};
  return std::string(v->get_string());
}

// A NumericDate as whole seconds (fractions rounded down); 0 when absent or not a number.
std::int64_t claim_seconds(const boost::json::value* v) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    return v->get_uint64() > static_cast<std::uint64_t>(kMax)
               ? kMax
               : static_cast<std::int64_t>(v->get_uint64());
  }
  if (!v->is_double() || !std::isfinite(v->get_double())) return 0;
  const double d = std::floor(v->get_double());
  if (d >= 9.2e18) return kMax;
  if (d <= -9.2e18) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}

void split_on_spaces(std::string_view s, std::vector<std::string>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t end = i;
    while (end < s.size() && s[end] != ' ') ++end;
    if (end > i) out.emplace_back(s.substr(i, end - i));
    i = end;
  }
}

// The first of `names` whose value is a non-empty string.
std::string first_string(const boost::json::object& claims,
                         std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    std::string s = claim_string(claims, name);
    if (!s.empty()) return s;
  }
  return {};
}

}  // namespace

bool Identity::has_scope(std::string_view s) const {
  return std::find(scopes.begin(), scopes.end(), s) != scopes.end();
}

// At each level the remaining path as a literal key wins ("https://example.com/groups");
// otherwise the part before the first dot selects a nested object.
const boost::json::value* find_claim(const boost::json::object& claims, std::string_view path) {
  const boost::json::object* object = &claims;
  while (!path.empty()) {
    if (const boost::json::value* v = object->if_contains(path)) return v;
    const std::size_t dot = path.find('.');
    if (dot == std::string_view::npos) return nullptr;
    const boost::json::value* next = object->if_contains(path.substr(0, dot));
    if (!next || !next->is_object()) return nullptr;
    object = &next->get_object();
    path.remove_prefix(dot + 1);
  }
  return nullptr;
}

std::vector<std::string> claim_strings(const boost::json::value* v, bool split_spaces) {
  std::vector<std::string> out;
  if (!v) return out;
  if (const boost::json::string* s = v->if_string()) {
    if (split_spaces) {
      split_on_spaces(*s, out);
    } else if (!s->empty()) {
      out.emplace_back(*s);
    }
    return out;
  }
  if (const boost::json::array* list = v->if_array()) {
    out.reserve(list->size());
    for (const auto& item : *list) {
      const boost::json::string* s = item.if_string();
      if (s && !s->empty()) out.emplace_back(*s);
    }
  }
  return out;
}

Identity map_identity(const ClaimsMapping& mapping,
                      std::shared_ptr<const boost::json::object> claims, std::string provider,
                      std::string method) {
  Identity id;
  id.provider = std::move(provider);
  id.method = std::move(method);
  if (!claims) return id;
  const boost::json::object& c = *claims;

  id.issuer = claim_string(c, "iss");
  id.subject = claim_string(c, mapping.subject);
  id.email = claim_string(c, mapping.email);
  if (!mapping.groups.empty()) id.groups = claim_strings(find_claim(c, mapping.groups), false);

  if (!mapping.scopes.empty()) {
    id.scopes = claim_strings(find_claim(c, mapping.scopes), true);
  } else if (const boost::json::value* scp = c.if_contains("scp")) {
    id.scopes = claim_strings(scp, true);
  } else {
    id.scopes = claim_strings(c.if_contains("scope"), true);
  }

  id.client_id = mapping.client_id.empty() ? first_string(c, {"client_id", "cid", "azp"})
                                           : claim_string(c, mapping.client_id);
  id.token_id = claim_string(c, "jti");
  id.expires_at = claim_seconds(c.if_contains("exp"));
  id.claims = std::move(claims);
  return id;
}

}  // namespace portcullis
