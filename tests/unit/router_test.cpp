// Table-driven tests for the route table: precedence, fall-through on methods, prefix and host
// pattern rules.
#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace portcullis {
namespace {

RouteConfig route(std::string name, std::string host, std::string path, std::string prefix,
                  std::vector<std::string> methods = {}) {
  RouteConfig r;
  r.name = std::move(name);
  r.match.host = std::move(host);
  r.match.path = std::move(path);
  r.match.path_prefix = std::move(prefix);
  r.match.methods = std::move(methods);
  r.upstream = "up";
  return r;
}

struct Request {
  std::string_view host;
  std::string_view path;
  std::string_view method;
  std::string_view expected;  // route name, or "-" for no match
};

void run_requests(const std::vector<RouteConfig>& routes, const std::vector<Request>& requests) {
  const Router router(routes);
  for (const auto& r : requests) {
    const int i = router.match(r.host, r.path, r.method);
    const std::string got = i < 0 ? "-" : routes.at(static_cast<std::size_t>(i)).name;
    EXPECT_EQ(got, r.expected) << r.method << " " << r.host << r.path;
  }
}

TEST(Router, HostPrecedence) {
  const std::vector<RouteConfig> routes = {
      route("any", "", "", ""),
      route("wild-short", "*.example.com", "", ""),
      route("wild-long", "*.b.example.com", "", ""),
      route("exact", "a.b.example.com", "", ""),
  };
  run_requests(routes, {
                           {"a.b.example.com", "/", "GET", "exact"},
                           {"x.b.example.com", "/", "GET", "wild-long"},
                           {"x.y.b.example.com", "/", "GET", "wild-long"},
                           {"b.example.com", "/", "GET", "wild-short"},
                           {"c.example.com", "/", "GET", "wild-short"},
                           {"example.com", "/", "GET", "any"},
                           {"notexample.com", "/", "GET", "any"},
                           {"other.org", "/", "GET", "any"},
                       });
}

TEST(Router, HostBeatsPath) {
  // The host rank is compared first: an exact host with no path condition beats a wildcard or
  // any-host route with an exact path.
  const std::vector<RouteConfig> routes = {
      route("any-exact-path", "", "/x", ""),
      route("wild-exact-path", "*.example.com", "/x", ""),
      route("exact-host", "api.example.com", "", ""),
  };
  run_requests(routes, {
                           {"api.example.com", "/x", "GET", "exact-host"},
                           {"www.example.com", "/x", "GET", "wild-exact-path"},
                           {"www.example.com", "/y", "GET", "-"},
                           {"other.org", "/x", "GET", "any-exact-path"},
                       });
}

TEST(Router, PathPrecedence) {
  const std::vector<RouteConfig> routes = {
      route("no-path", "api.example.com", "", ""),
      route("root-prefix", "api.example.com", "", "/"),
      route("orders-prefix", "api.example.com", "", "/orders"),
      route("orders-v2-prefix", "api.example.com", "", "/orders/v2/"),
      route("orders-exact", "api.example.com", "/orders/special", ""),
      route("exact-root", "api.example.com", "/", ""),
  };
  run_requests(routes, {
                           {"api.example.com", "/orders/special", "GET", "orders-exact"},
                           {"api.example.com", "/orders/special/x", "GET", "orders-prefix"},
                           {"api.example.com", "/orders/v2/x", "GET", "orders-v2-prefix"},
                           {"api.example.com", "/orders/v2/", "GET", "orders-v2-prefix"},
                           {"api.example.com", "/orders/v2", "GET", "orders-prefix"},
                           {"api.example.com", "/orders", "GET", "orders-prefix"},
                           {"api.example.com", "/orders/", "GET", "orders-prefix"},
                           {"api.example.com", "/ordersx", "GET", "root-prefix"},
                           {"api.example.com", "/other", "GET", "root-prefix"},
                           {"api.example.com", "/", "GET", "exact-root"},
                       });
  // Without the "/" prefix, paths outside every prefix fall to the route with no path.
  const std::vector<RouteConfig> fewer = {
      route("no-path", "api.example.com", "", ""),
      route("orders-prefix", "api.example.com", "", "/orders"),
  };
  run_requests(fewer, {
                          {"api.example.com", "/ordersx", "GET", "no-path"},
                          {"api.example.com", "/orders/1", "GET", "orders-prefix"},
                      });
}

TEST(Router, Methods) {
  const std::vector<RouteConfig> routes = {
      route("orders-any", "", "", "/orders"),
      route("orders-write", "", "", "/orders", {"POST", "PUT"}),
      route("orders-delete-exact", "", "/orders/1", "", {"DELETE"}),
      route("orders-exact-any", "", "/orders/1", ""),
  };
  run_requests(routes, {
                           {"h", "/orders", "GET", "orders-any"},
                           {"h", "/orders", "POST", "orders-write"},
                           {"h", "/orders/7", "PUT", "orders-write"},
                           {"h", "/orders/1", "DELETE", "orders-delete-exact"},
                           {"h", "/orders/1", "GET", "orders-exact-any"},
                           {"h", "/orders/1", "POST", "orders-exact-any"},
                           {"h", "/orders", "post", "orders-any"},  // methods are case-sensitive
                       });
}

TEST(Router, FallThroughWhenMethodExcluded) {
  const std::vector<RouteConfig> routes = {
      route("catch-all", "", "", ""),
      route("admin-read", "admin.example.com", "", "/admin", {"GET", "HEAD"}),
      route("wild-read", "*.example.com", "", "", {"GET"}),
  };
  run_requests(routes, {
                           {"admin.example.com", "/admin/x", "GET", "admin-read"},
                           {"admin.example.com", "/admin/x", "HEAD", "admin-read"},
                           {"admin.example.com", "/admin/x", "POST", "catch-all"},
                           {"admin.example.com", "/admin/x", "DELETE", "catch-all"},
                           {"www.example.com", "/", "GET", "wild-read"},
                           {"www.example.com", "/", "PUT", "catch-all"},
                       });
  const std::vector<RouteConfig> only_restricted = {
      route("admin-read", "", "", "/admin", {"GET"}),
  };
  run_requests(only_restricted, {
                                    {"h", "/admin", "GET", "admin-read"},
                                    {"h", "/admin", "POST", "-"},
                                });
}

TEST(Router, ConfigOrderBreaksTies) {
  const std::vector<RouteConfig> routes = {
      route("first", "", "", "/tie"),
      route("second", "", "", "/tie"),
      route("wild-first", "*.example.com", "", ""),
      route("wild-second", "*.example.com", "", ""),
      route("m-first", "", "/m", "", {"GET"}),
      route("m-second", "", "/m", "", {"GET", "POST"}),
  };
  run_requests(routes, {
                           {"h", "/tie/x", "GET", "first"},
                           {"a.example.com", "/tie", "GET", "wild-first"},
                           {"h", "/m", "GET", "m-first"},
                           {"h", "/m", "POST", "m-second"},
                       });
}

TEST(Router, NoMatch) {
  const std::vector<RouteConfig> empty;
  run_requests(empty, {{"h", "/", "GET", "-"}});
  const std::vector<RouteConfig> routes = {
      route("a", "a.example.com", "", ""),
      route("b", "*.b.example.com", "", "/api"),
      route("c", "", "/exact", ""),
  };
  run_requests(routes, {
                           {"z.example.com", "/", "GET", "-"},
                           {"b.example.com", "/api", "GET", "-"},
                           {"x.b.example.com", "/apix", "GET", "-"},
                           {"x.b.example.com", "/api/1", "GET", "b"},
                           {"h", "/exact/", "GET", "-"},
                           {"h", "/exact", "GET", "c"},
                       });
}

TEST(Router, GrpcServiceIsAPathCondition) {
  std::vector<RouteConfig> routes = {
      route("catch-all", "", "", ""),
      route("payments", "", "", ""),
      route("payments-refund", "", "", ""),
  };
  routes[1].match.grpc_service = "payments.v1.Payments";
  routes[2].match.grpc_service = "payments.v1.Payments";
  routes[2].match.grpc_method = "Refund";
  run_requests(routes, {
                           {"h", "/payments.v1.Payments/Pay", "POST", "payments"},
                           {"h", "/payments.v1.Payments/Refund", "POST", "payments-refund"},
                           {"h", "/payments.v1.Payments/RefundX", "POST", "payments"},
                           {"h", "/payments.v1.PaymentsX/Pay", "POST", "catch-all"},
                           {"h", "/other", "GET", "catch-all"},
                       });
}

struct PrefixCase {
  std::string_view path;
  std::string_view prefix;
  bool expected;
};

TEST(RouterPathPrefix, Table) {
  const std::vector<PrefixCase> cases = {
      {"/orders", "/orders", true},
      {"/orders/", "/orders", true},
      {"/orders/1", "/orders", true},
      {"/ordersx", "/orders", false},
      {"/order", "/orders", false},
      {"/orders", "/orders/", false},
      {"/orders/", "/orders/", true},
      {"/orders/1", "/orders/", true},
      {"/", "/", true},
      {"/anything/at/all", "/", true},
      {"/a/b", "/a/b", true},
      {"/a/bc", "/a/b", false},
      {"/a/b/c", "/a/b", true},
      {"/a", "/a/b", false},
      {"/api-v2", "/api-", false},
      {"/ORDERS", "/orders", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(path_has_prefix(c.path, c.prefix), c.expected) << c.path << " vs " << c.prefix;
  }
}

struct HostPatternCase {
  std::string_view pattern;
  std::string_view host;
  bool expected;
};

TEST(RouterHostMatches, Table) {
  const std::vector<HostPatternCase> cases = {
      {"", "anything.example", true},
      {"", "", true},
      {"api.example.com", "api.example.com", true},
      {"api.example.com", "www.example.com", false},
      {"api.example.com", "x.api.example.com", false},
      {"*.example.com", "a.example.com", true},
      {"*.example.com", "a.b.example.com", true},
      {"*.example.com", "example.com", false},
      {"*.example.com", ".example.com", false},
      {"*.example.com", "badexample.com", false},
      {"*.example.com", "example.com.evil.org", false},
      {"*.example.com", "a.example.co", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(host_matches(c.pattern, c.host), c.expected) << c.pattern << " vs " << c.host;
  }
}

}  // namespace
}  // namespace portcullis
