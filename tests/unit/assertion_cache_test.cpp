// AssertionCache: one signature per (identity, route) per ttl/2, misses on a new identity,
// route, key or expiry, and never outliving the identity.
#include "authz/assertion_cache.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "authn/base64url.hpp"

namespace portcullis {
namespace {

class ManualClock final : public Clock {
 public:
  std::int64_t now = 1'900'000'000;
  std::chrono::steady_clock::time_point steady_now() const override { return {}; }
  std::chrono::system_clock::time_point system_now() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(now));
  }
};

class CountingRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = next_++;
  }

 private:
  std::uint8_t next_ = 1;
};

std::shared_ptr<const Identity> person(std::string sub, std::int64_t expires_at = 0) {
  auto id = std::make_shared<Identity>();
  id->issuer = "https://idp.example";
  id->subject = std::move(sub);
  id->expires_at = expires_at;
  return id;
}

boost::json::object payload(std::string_view jwt) {
  const auto dot1 = jwt.find('.');
  const auto dot2 = jwt.find('.', dot1 + 1);
  auto bytes = base64url_decode(jwt.substr(dot1 + 1, dot2 - dot1 - 1));
  EXPECT_TRUE(bytes.has_value());
  return boost::json::parse(std::string(bytes->begin(), bytes->end())).as_object();
}

class AssertionCacheTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  CountingRandom random_;
  AssertionSigner signer_ = AssertionSigner::generate();
  AssertionConfig config_;  // ttl 5 min
  AssertionCache cache_{clock_, random_, 3};
};

TEST_F(AssertionCacheTest, ReusesTheTokenUntilHalfItsLifetime) {
  auto alice = person("alice");
  auto first = cache_.get(signer_, alice, "orders", config_);
  ASSERT_TRUE(first.has_value());
  const std::string token(*first);
  clock_.now += 149;
  auto again = cache_.get(signer_, alice, "orders", config_);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, token);
  EXPECT_EQ(cache_.signatures(), 1u);
  clock_.now += 1;  // 150 s = ttl / 2
  auto renewed = cache_.get(signer_, alice, "orders", config_);
  ASSERT_TRUE(renewed.has_value());
  EXPECT_NE(*renewed, token);
  EXPECT_EQ(cache_.signatures(), 2u);
  EXPECT_EQ(payload(*renewed).at("iat").as_int64(), clock_.now);
}

TEST_F(AssertionCacheTest, RouteIdentityAndKeyAreEachPartOfTheKey) {
  auto alice = person("alice");
  auto bob = person("bob");
  ASSERT_TRUE(cache_.get(signer_, alice, "orders", config_));
  auto other_route = cache_.get(signer_, alice, "billing", config_);
  ASSERT_TRUE(other_route.has_value());
  EXPECT_EQ(payload(*other_route).at("aud"), "billing");
  auto other_person = cache_.get(signer_, bob, "orders", config_);
  ASSERT_TRUE(other_person.has_value());
  EXPECT_EQ(payload(*other_person).at("sub"), "bob");
  const AssertionSigner rotated = AssertionSigner::generate();
  ASSERT_TRUE(cache_.get(rotated, alice, "orders", config_));
  EXPECT_EQ(cache_.signatures(), 4u);
}

TEST_F(AssertionCacheTest, AFreedIdentityAtTheSameAddressIsAMiss) {
  auto alice = person("alice");
  const Identity* address = alice.get();
  ASSERT_TRUE(cache_.get(signer_, alice, "orders", config_));
  alice.reset();
  // Whatever lands at the old address, the weak reference says the old identity is gone.
  auto mallory = std::make_shared<Identity>();
  mallory->subject = "mallory";
  auto token = cache_.get(signer_, mallory, "orders", config_);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(payload(*token).at("sub"), "mallory");
  (void)address;
}

TEST_F(AssertionCacheTest, NeverOutlivesTheIdentity) {
  auto soon = person("alice", clock_.now + 40);
  auto token = cache_.get(signer_, soon, "orders", config_);
  ASSERT_TRUE(token.has_value());
  const auto claims = payload(*token);
  EXPECT_EQ(claims.at("exp").as_int64(), clock_.now + 40);
  // Accepted within clock skew after its exp: a short assertion, not a failure.
  clock_.now += 45;
  auto late = cache_.get(signer_, soon, "orders", config_);
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(payload(*late).at("exp").as_int64(), clock_.now + AssertionCache::kMinTtlSeconds);
}

TEST_F(AssertionCacheTest, StaysWithinItsCapacity) {
  std::vector<std::shared_ptr<const Identity>> people;
  for (int i = 0; i < 10; ++i) {
    people.push_back(person("user" + std::to_string(i)));
    ASSERT_TRUE(cache_.get(signer_, people.back(), "orders", config_));
    EXPECT_LE(cache_.size(), 3u);
  }
}

}  // namespace
}  // namespace portcullis
