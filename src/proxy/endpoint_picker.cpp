#include "proxy/endpoint_picker.hpp"

#include <algorithm>

namespace portcullis {

EndpointPicker::EndpointPicker(const UpstreamConfig& upstream) : ejection_(upstream.ejection) {
  for (const auto& ep : upstream.endpoints) {
    state_.push_back(State{static_cast<int>(ep.weight)});
    addresses_.push_back(ep.address);
  }
}

bool EndpointPicker::same_shape(const UpstreamConfig& upstream) const {
  if (upstream.endpoints.size() != state_.size()) return false;
  for (std::size_t i = 0; i < state_.size(); ++i) {
    if (!(upstream.endpoints[i].address == addresses_[i]) ||
        static_cast<int>(upstream.endpoints[i].weight) != state_[i].weight) {
      return false;
    }
  }
  return ejection_.consecutive_failures == upstream.ejection.consecutive_failures &&
         ejection_.base_duration == upstream.ejection.base_duration;
}

bool EndpointPicker::is_ejected(int index, TimePoint now) const {
  return state_[index].ejected_until > now;
}

int EndpointPicker::pick(TimePoint now, std::uint64_t exclude) {
  for (int pass = 0; pass < 2; ++pass) {
    int total = 0, best = -1;
    for (std::size_t i = 0; i < state_.size(); ++i) {
      auto& s = state_[i];
      if (is_ejected(static_cast<int>(i), now)) continue;
      if (pass == 0 && i < 64 && (exclude >> i) & 1) continue;
      s.current += s.weight;
      total += s.weight;
      if (best < 0 || s.current > state_[best].current) best = static_cast<int>(i);
    }
    if (best >= 0) {
      state_[best].current -= total;
      return best;
    }
  }
  return -1;
}

void EndpointPicker::record_success(int index) {
  state_[index].consecutive_failures = 0;
  state_[index].times_ejected = 0;
}

bool EndpointPicker::record_failure(int index, TimePoint now) {
  auto& s = state_[index];
  ++s.consecutive_failures;
  if (ejection_.consecutive_failures == 0 ||
      s.consecutive_failures < ejection_.consecutive_failures) {
    return false;
  }
  s.consecutive_failures = 0;
  s.times_ejected = std::min(s.times_ejected + 1, 8u);
  s.ejected_until = now + ejection_.base_duration * s.times_ejected;
  return true;
}

}  // namespace portcullis
