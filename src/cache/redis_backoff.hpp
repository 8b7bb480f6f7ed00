#pragma once
// RedisBackoff: the delay before the next reconnect attempt. Exponential from `min`, doubling
// per consecutive failure up to `max`, with "equal jitter" (half fixed, half random) so the
// workers of many gateways do not reconnect in step. reset() after a successful connect.
// Randomness comes from a RandomSource (null: no jitter, the full delay), so tests can be exact.
//
//   RedisBackoff backoff(50ms, 2s, &worker.random());
//   timer.expires_after(backoff.next());   // 25..50ms, 50..100ms, ... 1..2s, 1..2s
#include <chrono>
#include <cstdint>

namespace portcullis {

class RandomSource;

class RedisBackoff {
 public:
  RedisBackoff(std::chrono::milliseconds min, std::chrono::milliseconds max,
               RandomSource* random = nullptr);
  std::chrono::milliseconds next();
  void reset() { failures_ = 0; }
  unsigned failures() const { return failures_; }

 private:
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  RandomSource* random_;
  unsigned failures_ = 0;
};

}  // namespace portcullis
