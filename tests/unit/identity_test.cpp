#include "authn/identity.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <memory>
#include <string>
#include <vector>

namespace portcullis {
namespace {

namespace json = boost::json;
using Strings = std::vector<std::string>;

std::shared_ptr<const json::object> claims_of(std::string_view text) {
  return std::make_shared<const json::object>(json::parse(text).as_object());
}

// One provider's token shape and the Identity its mapping must produce.
struct IdentityCase {
  std::string name;
  ClaimsMapping mapping;
  std::string claims;
  std::string subject;
  std::string email;
  Strings groups;
  Strings scopes;
  std::string client_id;
  std::string issuer;
  std::string token_id;
  std::int64_t expires_at;
};

class IdentityTable : public testing::TestWithParam<IdentityCase> {};

TEST_P(IdentityTable, MapsClaims) {
  const IdentityCase& c = GetParam();
  auto claims = claims_of(c.claims);
  const Identity id = map_identity(c.mapping, claims, "idp", "jwt");
  EXPECT_EQ(id.provider, "idp");
  EXPECT_EQ(id.method, "jwt");
  EXPECT_EQ(id.subject, c.subject);
  EXPECT_EQ(id.email, c.email);
  EXPECT_EQ(id.groups, c.groups);
  EXPECT_EQ(id.scopes, c.scopes);
  EXPECT_EQ(id.client_id, c.client_id);
  EXPECT_EQ(id.issuer, c.issuer);
  EXPECT_EQ(id.token_id, c.token_id);
  EXPECT_EQ(id.expires_at, c.expires_at);
  EXPECT_EQ(id.claims, claims);
}

ClaimsMapping auth0_mapping() {
  ClaimsMapping m;
  m.groups = "https://example.com/groups";
  return m;
}

ClaimsMapping keycloak_mapping() {
  ClaimsMapping m;
  m.subject = "preferred_username";
  m.groups = "realm_access.roles";
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Identity, IdentityTable,
    testing::Values(
        IdentityCase{"okta", ClaimsMapping{},
                     R"({"iss":"https://example.okta.com/oauth2/default","sub":"00u1","jti":"AT.x",
                         "email":"ann@example.com","scp":["orders:read","openid"],
                         "cid":"0oa9","groups":["Everyone","orders-readers"],"exp":1700000300})",
                     "00u1", "ann@example.com", Strings{"Everyone", "orders-readers"},
                     Strings{"orders:read", "openid"}, "0oa9",
                     "https://example.okta.com/oauth2/default", "AT.x", 1700000300},
        IdentityCase{"auth0", auth0_mapping(),
                     R"({"iss":"https://tenant.auth0.com/","sub":"auth0|42","azp":"abc",
                         "scope":"read:orders  write:orders","exp":1700000300.9,
                         "https://example.com/groups":["admins"],
                         "https://example":{"com/groups":["decoy"]}})",
                     "auth0|42", "", Strings{"admins"}, Strings{"read:orders", "write:orders"},
                     "abc", "https://tenant.auth0.com/", "", 1700000300},
        IdentityCase{"keycloak", keycloak_mapping(),
                     R"({"iss":"https://kc/realms/r","sub":"f1e2","preferred_username":"bob",
                         "email":"bob@example.com","realm_access":{"roles":["offline_access","ops"]},
                         "scope":"openid profile","azp":"gateway","client_id":"svc"})",
                     "bob", "bob@example.com", Strings{"offline_access", "ops"},
                     Strings{"openid", "profile"}, "svc", "https://kc/realms/r", "", 0},
        IdentityCase{"missing", ClaimsMapping{}, R"({})", "", "", Strings{}, Strings{}, "", "", "",
                     0},
        IdentityCase{"wrong_types", ClaimsMapping{},
                     R"({"sub":7,"email":["a@b"],"groups":3,"scope":["x",1,"y",""],
                         "cid":{"a":1},"azp":"fallback","iss":null,"jti":5,"exp":"soon"})",
                     "", "", Strings{}, Strings{"x", "y"}, "fallback", "", "", 0},
        IdentityCase{"scp_string_wins_over_scope", ClaimsMapping{}, R"({"scp":"a b","scope":"c"})",
                     "", "", Strings{}, Strings{"a", "b"}, "", "", "", 0}),
    [](const testing::TestParamInfo<IdentityCase>& info) { return info.param.name; });

TEST(IdentityMapping, ExplicitScopeAndClientIdClaims) {
  ClaimsMapping m;
  m.scopes = "ext.perms";
  m.client_id = "app.id";
  auto claims = claims_of(R"({"scp":["ignored"],"ext":{"perms":"p1 p2"},"app":{"id":"A"},
                              "client_id":"ignored"})");
  const Identity id = map_identity(m, claims, "p", "introspection");
  EXPECT_EQ(id.scopes, (Strings{"p1", "p2"}));
  EXPECT_EQ(id.client_id, "A");
  EXPECT_EQ(id.method, "introspection");
}

TEST(IdentityMapping, ExplicitClaimAbsentGivesNothing) {
  ClaimsMapping m;
  m.scopes = "perms";
  m.client_id = "app";
  const Identity id = map_identity(m, claims_of(R"({"scope":"a","client_id":"c"})"), "p", "jwt");
  EXPECT_TRUE(id.scopes.empty());
  EXPECT_TRUE(id.client_id.empty());
}

TEST(IdentityMapping, NullClaims) {
  const Identity id = map_identity(ClaimsMapping{}, nullptr, "p", "jwt");
  EXPECT_EQ(id.provider, "p");
  EXPECT_TRUE(id.subject.empty());
  EXPECT_EQ(id.claims, nullptr);
}

TEST(IdentityMapping, HasScope) {
  const Identity id =
      map_identity(ClaimsMapping{}, claims_of(R"({"scope":"orders:read openid"})"), "p", "jwt");
  EXPECT_TRUE(id.has_scope("orders:read"));
  EXPECT_TRUE(id.has_scope("openid"));
  EXPECT_FALSE(id.has_scope("orders"));
  EXPECT_FALSE(id.has_scope("orders:read openid"));
  EXPECT_FALSE(id.has_scope(""));
}

TEST(ClaimPath, WalksNestedObjects) {
  const json::object c = json::parse(R"({"a":{"b":{"c":"deep"}},"x":1})").as_object();
  const json::value* v = find_claim(c, "a.b.c");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->as_string(), "deep");
  EXPECT_NE(find_claim(c, "a.b"), nullptr);
  EXPECT_EQ(find_claim(c, "a.b.d"), nullptr);
  EXPECT_EQ(find_claim(c, "x.y"), nullptr);  // 1 is not an object
  EXPECT_EQ(find_claim(c, "a."), nullptr);
  EXPECT_EQ(find_claim(c, ""), nullptr);
  EXPECT_EQ(find_claim(c, "missing"), nullptr);
}

TEST(ClaimPath, LiteralDottedKeyWins) {
  const json::object c =
      json::parse(R"({"realm_access.roles":"literal","realm_access":{"roles":"nested"},
                      "outer":{"k.v":"inner literal"}})")
          .as_object();
  EXPECT_EQ(find_claim(c, "realm_access.roles")->as_string(), "literal");
  EXPECT_EQ(find_claim(c, "outer.k.v")->as_string(), "inner literal");
}

TEST(ClaimStrings, Shapes) {
  const json::value spaced = json::parse(R"("  a   b c ")");
  EXPECT_EQ(claim_strings(&spaced, true), (Strings{"a", "b", "c"}));
  EXPECT_EQ(claim_strings(&spaced, false), (Strings{"  a   b c "}));
  const json::value list = json::parse(R"(["a b", 1, null, "c", {"d":1}])");
  EXPECT_EQ(claim_strings(&list, true), (Strings{"a b", "c"}));
  EXPECT_EQ(claim_strings(&list, false), (Strings{"a b", "c"}));
  const json::value number = json::parse("3");
  EXPECT_TRUE(claim_strings(&number, true).empty());
  const json::value object = json::parse(R"({"a":"b"})");
  EXPECT_TRUE(claim_strings(&object, false).empty());
  const json::value empty = json::parse(R"("")");
  EXPECT_TRUE(claim_strings(&empty, false).empty());
  EXPECT_TRUE(claim_strings(&empty, true).empty());
  EXPECT_TRUE(claim_strings(nullptr, true).empty());
}

}  // namespace
}  // namespace portcullis
