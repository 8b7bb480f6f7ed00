#include "cache/redis_backoff.hpp"

#include <algorithm>
#include <array>

#include "core/ids.hpp"

namespace portcullis {

RedisBackoff::RedisBackoff(std::chrono::milliseconds min, std::chrono::milliseconds max,
                           RandomSource* random)
    : min_(std::max(min, std::chrono::milliseconds(1))),
      max_(std::max(max, min_)),
      random_(random) {}

std::chrono::milliseconds RedisBackoff::next() {
  // min * 2^failures, capped (the shift is bounded so it cannot overflow).
  const auto shift = std::min(failures_, 20u);
  const auto full = std::min<std::int64_t>(max_.count(), min_.count() << shift);
  ++failures_;
  if (!random_) return std::chrono::milliseconds(full);
  std::array<std::uint8_t, 4> bytes{};
  random_->fill(bytes);
  const std::uint32_t r = std::uint32_t{bytes[0]} | std::uint32_t{bytes[1]} << 8 |
                          std::uint32_t{bytes[2]} << 16 | std::uint32_t{bytes[3]} << 24;
  const std::int64_t half = full / 2;
  return std::chrono::milliseconds(full - half + static_cast<std::int64_t>(r % (half + 1)));
}

}  // namespace portcullis
