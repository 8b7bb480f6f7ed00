#include "proxy/endpoint_picker.hpp"

#include <gtest/gtest.h>

#include <map>

namespace portcullis {
namespace {

UpstreamConfig upstream(std::vector<unsigned> weights, unsigned failures = 3) {
  UpstreamConfig u;
  u.name = "u";
  for (std::size_t i = 0; i < weights.size(); ++i) {
    u.endpoints.push_back(
        {SocketAddress{"127.0.0.1", static_cast<std::uint16_t>(7000 + i)}, weights[i]});
  }
  u.ejection.consecutive_failures = failures;
  u.ejection.base_duration = std::chrono::seconds(10);
  return u;
}

using TP = EndpointPicker::TimePoint;

TEST(EndpointPicker, SmoothWeightedRoundRobinIsExactOverACycle) {
  EndpointPicker p(upstream({1, 3}));
  std::map<int, int> counts;
  for (int i = 0; i < 400; ++i) counts[p.pick(TP{})]++;
  EXPECT_EQ(counts[0], 100);
  EXPECT_EQ(counts[1], 300);
}

TEST(EndpointPicker, SmoothOrderInterleaves) {
  EndpointPicker p(upstream({5, 1, 1}));
  std::vector<int> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(p.pick(TP{}));
  // nginx's smooth WRR for 5/1/1: a a b a c a a
  EXPECT_EQ(seq, (std::vector<int>{0, 0, 1, 0, 2, 0, 0}));
}

TEST(EndpointPicker, EjectsAfterConsecutiveFailuresAndReturnsAfterDuration) {
  EndpointPicker p(upstream({1, 1}, 3));
  TP t0{};
  EXPECT_FALSE(p.record_failure(0, t0));
  EXPECT_FALSE(p.record_failure(0, t0));
  EXPECT_TRUE(p.record_failure(0, t0));
  EXPECT_TRUE(p.is_ejected(0, t0 + std::chrono::seconds(9)));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p.pick(t0 + std::chrono::seconds(1)), 1);
  EXPECT_FALSE(p.is_ejected(0, t0 + std::chrono::seconds(10)));
}

TEST(EndpointPicker, SuccessResetsTheFailureCount) {
  EndpointPicker p(upstream({1}, 2));
  EXPECT_FALSE(p.record_failure(0, TP{}));
  p.record_success(0);
  EXPECT_FALSE(p.record_failure(0, TP{}));
  EXPECT_TRUE(p.record_failure(0, TP{}));
}

TEST(EndpointPicker, AllEjectedMeansNoEndpoint) {
  EndpointPicker p(upstream({1, 1}, 1));
  p.record_failure(0, TP{});
  p.record_failure(1, TP{});
  EXPECT_EQ(p.pick(TP{} + std::chrono::seconds(1)), -1);
}

TEST(EndpointPicker, RepeatedEjectionLastsLonger) {
  EndpointPicker p(upstream({1, 1}, 1));
  TP t0{};
  p.record_failure(0, t0);  // ejected 10s
  TP t1 = t0 + std::chrono::seconds(11);
  p.record_failure(0, t1);  // ejected 20s
  EXPECT_TRUE(p.is_ejected(0, t1 + std::chrono::seconds(15)));
  EXPECT_FALSE(p.is_ejected(0, t1 + std::chrono::seconds(20)));
}

TEST(EndpointPicker, ExcludedEndpointsAreSkippedWhileOthersRemain) {
  EndpointPicker p(upstream({1, 1, 1}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(p.pick(TP{}, 0b011), 2);
  // Every endpoint excluded: falls back to any healthy one rather than failing.
  EXPECT_GE(p.pick(TP{}, 0b111), 0);
}

TEST(EndpointPicker, DisabledEjectionNeverEjects) {
  EndpointPicker p(upstream({1}, 0));
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(p.record_failure(0, TP{}));
  EXPECT_EQ(p.pick(TP{}), 0);
}

}  // namespace
}  // namespace portcullis
