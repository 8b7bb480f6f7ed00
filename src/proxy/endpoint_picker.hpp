#pragma once
// Smooth weighted round-robin (the nginx algorithm) with passive ejection: an endpoint that
// fails `consecutive_failures` times in a row is skipped for base_duration x (times ejected,
// capped at 8). Per worker, no locks. Pure logic: time comes in as an argument.
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/config.hpp"

namespace portcullis {

class EndpointPicker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit EndpointPicker(const UpstreamConfig& upstream);

  // Index of the next endpoint to try, skipping ejected ones and those in `exclude` (a bit per
  // endpoint index, for retries). Falls back to excluded-but-healthy endpoints when every
  // healthy one has been tried. -1 when every endpoint is ejected.
  int pick(TimePoint now, std::uint64_t exclude = 0);

  void record_success(int index);
  // Returns true when this failure ejected the endpoint.
  bool record_failure(int index, TimePoint now);

  bool is_ejected(int index, TimePoint now) const;
  std::size_t size() const { return state_.size(); }
  bool same_shape(const UpstreamConfig& upstream) const;

 private:
  struct State {
    int weight;
    int current = 0;
    unsigned consecutive_failures = 0;
    unsigned times_ejected = 0;
    TimePoint ejected_until{};
  };
  std::vector<State> state_;
  std::vector<SocketAddress> addresses_;
  EjectionConfig ejection_;
};

}  // namespace portcullis
