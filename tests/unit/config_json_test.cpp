#include "core/config_json.hpp"

#include <gtest/gtest.h>

#include "core/config.hpp"

namespace portcullis {
namespace {

TEST(ConfigJson, ShowsProvidersButNeverTheIntrospectionSecret) {
  Config c;
  IdentityProviderConfig p;
  p.name = "okta";
  p.issuer = "https://example.okta.com/oauth2/default";
  p.audiences = {"api://mesh"};
  IntrospectionConfig in;
  in.endpoint = "https://example.okta.com/oauth2/default/v1/introspect";
  in.client_id = "gateway";
  in.client_secret_file = "/etc/portcullis/okta.secret";
  in.client_secret = "s3cr3t-value-that-must-not-leak";
  p.introspection = in;
  c.identity_providers.push_back(p);
  RouteConfig r;
  r.name = "orders";
  r.auth = AuthMode::bearer;
  r.required_scopes = {"orders:read"};
  c.routes.push_back(r);
  auto json = config_to_json(c);
  EXPECT_NE(json.find("\"issuer\":\"https://example.okta.com/oauth2/default\""), std::string::npos);
  EXPECT_NE(json.find("/etc/portcullis/okta.secret"), std::string::npos);
  EXPECT_NE(json.find("\"required_scopes\":[\"orders:read\"]"), std::string::npos);
  EXPECT_EQ(json.find("s3cr3t-value-that-must-not-leak"), std::string::npos);
}

}  // namespace
}  // namespace portcullis
