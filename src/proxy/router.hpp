#pragma once
// Route table compiled from the config: picks the most specific route for a normalised
// request. Precedence, highest first:
//   1. host: exact name > longest "*.suffix" wildcard > any host;
//   2. path: exact path > longest prefix > no path condition;
//   3. a route restricted to methods > a route for any method;
//   4. earlier in the config.
// A prefix matches on segment boundaries: "/orders" matches "/orders" and "/orders/1" but not
// "/ordersx"; a prefix ending in '/' matches any path starting with it.
// Methods that do not match exclude a route (the request may fall through to a less specific
// one). Inputs must already be normalised (normalize_target / normalize_host).
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace portcullis {

class Router {
 public:
  explicit Router(const std::vector<RouteConfig>& routes);

  // Index into the routes vector passed to the constructor, or -1 when nothing matches.
  int match(std::string_view host, std::string_view path, std::string_view method) const;

 private:
  struct Entry {
    int index;
    int host_rank;  // 2 exact, 1 wildcard, 0 any
    std::size_t host_len;
    int path_rank;  // 2 exact, 1 prefix, 0 none
    std::size_t path_len;
    bool has_methods;
  };
  const std::vector<RouteConfig>& routes_;
  std::vector<Entry> ordered_;  // sorted by precedence; first match wins
};

// True when `path` falls under `prefix` by the segment rule above.
bool path_has_prefix(std::string_view path, std::string_view prefix);
// True when `host` matches `pattern` ("" any, "a.b" exact, "*.b" any subdomain of b).
bool host_matches(std::string_view pattern, std::string_view host);

}  // namespace portcullis
