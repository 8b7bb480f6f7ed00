#include "authn/audience.hpp"

#include <algorithm>

namespace portcullis {

bool audience_matches(const boost::json::value& aud, const std::vector<std::string>& accepted) {
  auto ok = [&](std::string_view a) {
    return std::find(accepted.begin(), accepted.end(), a) != accepted.end();
  };
  if (const boost::json::string* s = aud.if_string()) return ok(*s);
  const boost::json::array* list = aud.if_array();
  if (!list) return false;
  for (const auto& item : *list) {
    if (!item.is_string()) return false;
  }
  return std::any_of(list->begin(), list->end(),
                     [&](const boost::json::value& item) { return ok(item.get_string()); });
}

}  // namespace portcullis
