#include "authn/bearer_token.hpp"

#include <gtest/gtest.h>

#include "authn/token_cache.hpp"

namespace portcullis {
namespace {

TEST(BearerToken, ParsesTheRfc6750Forms) {
  auto t = parse_bearer("Bearer abc.def-ghi_jkl~+/=");
  EXPECT_EQ(t.status, BearerParse::ok);
  EXPECT_EQ(t.token, "abc.def-ghi_jkl~+/=");
  EXPECT_EQ(parse_bearer("bearer xyz").token, "xyz");
  EXPECT_EQ(parse_bearer("BEARER   xyz").token, "xyz");
}

TEST(BearerToken, RefusesEverythingElse) {
  EXPECT_EQ(parse_bearer("").status, BearerParse::missing);
  EXPECT_EQ(parse_bearer("Basic dXNlcjpwYXNz").status, BearerParse::not_bearer);
  EXPECT_EQ(parse_bearer("Bearer").status, BearerParse::not_bearer);
  EXPECT_EQ(parse_bearer("Bearerxyz").status, BearerParse::not_bearer);
  EXPECT_EQ(parse_bearer("Bearer ").status, BearerParse::malformed);
  EXPECT_EQ(parse_bearer("Bearer a b").status, BearerParse::malformed);
  EXPECT_EQ(parse_bearer("Bearer a,b").status, BearerParse::malformed);
  EXPECT_EQ(parse_bearer("Bearer a=b").status, BearerParse::malformed);
  EXPECT_EQ(parse_bearer("Bearer =").status, BearerParse::malformed);
  EXPECT_EQ(parse_bearer("Bearer a\"b").status, BearerParse::malformed);
}

TEST(BearerToken, JwtShape) {
  EXPECT_TRUE(looks_like_jwt("a.b.c"));
  EXPECT_FALSE(looks_like_jwt("a.b"));
  EXPECT_FALSE(looks_like_jwt("a.b.c.d"));
  EXPECT_FALSE(looks_like_jwt(".b.c"));
  EXPECT_TRUE(looks_like_jwt("a.b."));  // unsigned: still a JWT, refused as one
  EXPECT_FALSE(looks_like_jwt("opaque-token-value"));
}

std::shared_ptr<const Identity> identity(std::string subject) {
  auto id = std::make_shared<Identity>();
  id->subject = std::move(subject);
  return id;
}

TEST(TokenCache, HitsUntilExpiryAndOnlyForTheSameGeneration) {
  TokenCache cache(10);
  cache.insert("tok", identity("alice"), 0, /*generation*/ 1, /*exp*/ 100, /*now*/ 50);
  auto hit = cache.find("tok", 1, 99);
  ASSERT_TRUE(hit.identity);
  EXPECT_EQ(hit.identity->subject, "alice");
  EXPECT_EQ(hit.provider_index, 0);
  EXPECT_FALSE(cache.find("tok", 2, 99).identity);  // a reload invalidates
  cache.insert("tok", identity("alice"), 0, 1, 100, 50);
  EXPECT_FALSE(cache.find("tok", 1, 100).identity);  // expired at exp
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TokenCache, ComparesTheWholeToken) {
  TokenCache cache(10);
  cache.insert("token-a", identity("a"), 0, 1, 100, 0);
  EXPECT_FALSE(cache.find("token-b", 1, 1).identity);
  EXPECT_FALSE(cache.find("token-", 1, 1).identity);
  EXPECT_FALSE(cache.find("token-aa", 1, 1).identity);
}

TEST(TokenCache, StaysBounded) {
  TokenCache cache(3);
  for (int i = 0; i < 10; ++i) {
    cache.insert("t" + std::to_string(i), identity("x"), 0, 1, 100, 0);
    EXPECT_LE(cache.size(), 3u);
  }
  // Expired entries are dropped first when full.
  TokenCache c2(2);
  c2.insert("old", identity("o"), 0, 1, 10, 0);
  c2.insert("live", identity("l"), 0, 1, 100, 0);
  c2.insert("new", identity("n"), 0, 1, 100, 20);
  EXPECT_TRUE(c2.find("live", 1, 20).identity);
  EXPECT_TRUE(c2.find("new", 1, 20).identity);
}

TEST(TokenCache, NeverStoresAnAlreadyExpiredToken) {
  TokenCache cache(10);
  cache.insert("t", identity("x"), 0, 1, 50, 50);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace portcullis
