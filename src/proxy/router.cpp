#include "proxy/router.hpp"

#include <algorithm>

namespace portcullis {

namespace {

// gRPC routes (grpc_service / grpc_method) are path conditions in disguise: an HTTP/2 gRPC call
// is "POST /<service>/<method>". Treating them so keeps a gRPC-only route from matching
// every request.
bool grpc_matches(const RouteMatch& m, std::string_view path) {
  if (m.grpc_service.empty()) return true;
  const std::string_view service = m.grpc_service;
  if (path.size() < service.size() + 2 || path[0] != '/' ||
      path.substr(1, service.size()) != service || path[service.size() + 1] != '/') {
    return false;
  }
  return m.grpc_method.empty() || path.substr(service.size() + 2) == m.grpc_method;
}

bool method_allowed(const RouteMatch& m, std::string_view method) {
  if (m.methods.empty()) return true;
  return std::any_of(m.methods.begin(), m.methods.end(),
                     [method](const std::string& allowed) { return allowed == method; });
}

}  // namespace

bool path_has_prefix(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return false;
  if (prefix.empty() || prefix.back() == '/') return true;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

bool host_matches(std::string_view pattern, std::string_view host) {
  if (pattern.empty()) return true;
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.ends_with(suffix);
  }
  return pattern == host;
}

Router::Router(const std::vector<RouteConfig>& routes) : routes_(routes) {
  ordered_.reserve(routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const RouteMatch& m = routes[i].match;
    Entry e{};
    e.index = static_cast<int>(i);
    if (m.host.empty()) {
      e.host_rank = 0;
    } else if (m.host.starts_with("*.")) {
      e.host_rank = 1;
    } else {
      e.host_rank = 2;
    }
    e.host_len = m.host.size();
    // The strongest path condition decides the rank; all conditions must hold to match.
    if (!m.path.empty()) {
      e.path_rank = 2;
      e.path_len = m.path.size();
    } else if (!m.grpc_service.empty() && !m.grpc_method.empty()) {
      e.path_rank = 2;
      e.path_len = m.grpc_service.size() + m.grpc_method.size() + 2;
    } else if (!m.path_prefix.empty() || !m.grpc_service.empty()) {
      e.path_rank = 1;
      e.path_len =
          std::max(m.path_prefix.size(), m.grpc_service.empty() ? 0 : m.grpc_service.size() + 2);
    } else {
      e.path_rank = 0;
      e.path_len = 0;
    }
    e.has_methods = !m.methods.empty();
    ordered_.push_back(e);
  }
  std::stable_sort(ordered_.begin(), ordered_.end(), [](const Entry& a, const Entry& b) {
    if (a.host_rank != b.host_rank) return a.host_rank > b.host_rank;
    if (a.host_len != b.host_len) return a.host_len > b.host_len;
    if (a.path_rank != b.path_rank) return a.path_rank > b.path_rank;
    if (a.path_len != b.path_len) return a.path_len > b.path_len;
    if (a.has_methods != b.has_methods) return a.has_methods;
    return a.index < b.index;
  });
}

int Router::match(std::string_view host, std::string_view path, std::string_view method) const {
  for (const Entry& e : ordered_) {
    const RouteMatch& m = routes_[static_cast<std::size_t>(e.index)].match;
    if (!host_matches(m.host, host)) continue;
    if (!m.path.empty() && path != m.path) continue;
    if (!m.path_prefix.empty() && !path_has_prefix(path, m.path_prefix)) continue;
    if (!grpc_matches(m, path)) continue;
    if (!method_allowed(m, method)) continue;
    return e.index;
  }
  return -1;
}

}  // namespace portcullis
