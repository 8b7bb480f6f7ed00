// RedisBackoff (no network): doubling from min to max, reset, jitter within [d/2, d].
#include "cache/redis_backoff.hpp"

#include <gtest/gtest.h>

#include "core/ids.hpp"

namespace portcullis {
namespace {

using std::chrono::milliseconds;

class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(std::uint8_t byte) : byte_(byte) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = byte_;
  }

 private:
  std::uint8_t byte_;
};

TEST(RedisBackoffTest, DoublesUpToTheMaximumAndResets) {
  RedisBackoff b(milliseconds(50), milliseconds(2000));
  std::vector<long> got;
  for (int i = 0; i < 8; ++i) got.push_back(b.next().count());
  EXPECT_EQ(got, (std::vector<long>{50, 100, 200, 400, 800, 1600, 2000, 2000}));
  for (int i = 0; i < 100; ++i) b.next();  // no overflow
  EXPECT_EQ(b.next().count(), 2000);
  b.reset();
  EXPECT_EQ(b.next().count(), 50);
}

TEST(RedisBackoffTest, JitterStaysBetweenHalfAndFull) {
  FixedRandom zero(0), ones(0xff);
  RedisBackoff low(milliseconds(50), milliseconds(2000), &zero);
  RedisBackoff high(milliseconds(50), milliseconds(2000), &ones);
  for (long full : {50L, 100L, 200L, 400L, 800L, 1600L, 2000L}) {
    const auto l = low.next().count();
    const auto h = high.next().count();
    EXPECT_GE(l, full - full / 2);
    EXPECT_LE(h, full);
    EXPECT_GE(h, full - full / 2);
  }
}

}  // namespace
}  // namespace portcullis
