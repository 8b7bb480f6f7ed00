#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <set>

namespace portcullis {
namespace {

// Deterministic randomness: a counter, so the formatting can be checked exactly.
class CountingRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = next_++;
  }

 private:
  std::uint8_t next_ = 0;
};

TEST(Ids, RequestIdIs32LowerHex) {
  CountingRandom r;
  EXPECT_EQ(make_request_id(r), "000102030405060708090a0b0c0d0e0f");
  OpenSslRandom real;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(make_request_id(real));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Ids, AcceptableRequestIds) {
  EXPECT_TRUE(is_acceptable_request_id("abc-123_X.y:z"));
  EXPECT_FALSE(is_acceptable_request_id(""));
  EXPECT_FALSE(is_acceptable_request_id(std::string(129, 'a')));
  EXPECT_FALSE(is_acceptable_request_id("a b"));
  EXPECT_FALSE(is_acceptable_request_id("a\"b"));
  EXPECT_FALSE(is_acceptable_request_id("a\nb"));
}

TEST(Ids, TraceparentRoundTrip) {
  OpenSslRandom r;
  for (int i = 0; i < 100; ++i) {
    auto tp = make_traceparent(r);
    ASSERT_TRUE(is_valid_traceparent(tp)) << tp;
    EXPECT_EQ(trace_id_of(tp), tp.substr(3, 32));
  }
}

TEST(Ids, TraceparentValidation) {
  EXPECT_TRUE(is_valid_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
  EXPECT_FALSE(is_valid_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01"));
  EXPECT_FALSE(is_valid_traceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"));
  EXPECT_FALSE(is_valid_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
  EXPECT_FALSE(is_valid_traceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"));
  EXPECT_FALSE(is_valid_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"));
  EXPECT_TRUE(trace_id_of("garbage").empty());
}

}  // namespace
}  // namespace portcullis
