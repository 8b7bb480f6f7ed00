#pragma once
// Process-wide metrics with Prometheus text rendering. Families are created once (at config
// load, under a lock) and then updated lock-free with relaxed atomics on the hot path; their
// addresses never change, so a config snapshot can hold plain pointers to them.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis {

// Latency histogram with fixed bucket bounds (seconds): kBounds for requests by default,
// kRedisBounds (50 us .. 100 ms) for Redis round trips. Lock-free; observe from any thread.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  static constexpr std::array<double, 11> kRedisBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1};
  static constexpr std::size_t kMaxBounds = 16;

  Histogram() : bounds_(kBounds) {}
  explicit Histogram(std::span<const double> bounds)
      : bounds_(bounds.first(std::min(bounds.size(), kMaxBounds))) {}
  void observe(double seconds);
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::span<const double> bounds_;  // static storage
  std::array<std::atomic<std::uint64_t>, kMaxBounds + 1> counts_{};
  std::atomic<std::uint64_t> sum_micros_{0};
};

struct RouteMetrics {
  std::array<std::atomic<std::uint64_t>, 5> requests_by_class{};  // 1xx..5xx
  Histogram duration;
  void record(unsigned status, double seconds);
};

enum class UpstreamErrorKind { connect, timeout, reset, protocol, no_healthy, tls, count };
std::string_view to_string(UpstreamErrorKind k);

struct UpstreamMetrics {
  std::atomic<std::int64_t> connections_active{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> connections_reused{0};
  std::atomic<std::uint64_t> requests_total{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(UpstreamErrorKind::count)>
      errors{};
  void error(UpstreamErrorKind k) {
    errors[static_cast<std::size_t>(k)].fetch_add(1, std::memory_order_relaxed);
  }
};

struct ListenerMetrics {
  std::atomic<std::int64_t> connections_active{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> tls_handshake_errors{0};
};

// A counter with a fixed label set, e.g. portcullis_authn_total{provider="okta",result="ok"}.
// Created once under the registry's lock; the returned reference stays valid forever.
struct LabeledCounter {
  std::atomic<std::uint64_t> value{0};
  void inc() { value.fetch_add(1, std::memory_order_relaxed); }
};

class MetricsRegistry {
 public:
  static MetricsRegistry& instance();

  RouteMetrics& route(std::string_view name);  // "" is the family for "no route matched"
  UpstreamMetrics& upstream(std::string_view name);
  ListenerMetrics& listener(std::string_view name);
  // `labels` is rendered verbatim between braces: build it with prometheus_labels().
  LabeledCounter& counter(std::string_view family, std::string_view help, std::string labels);

  std::atomic<std::uint64_t> reloads_success{0};
  std::atomic<std::uint64_t> reloads_failure{0};
  std::atomic<std::uint64_t> config_generation{0};
  std::atomic<std::uint64_t> bad_requests{0};

  std::string render() const;

  // Families owned elsewhere (the audit writer's counters, revocations): appended to
  // render()'s output. Added at start-up, before the admin server runs.
  void add_external_renderer(std::function<void(std::string&)> renderer);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<RouteMetrics>, std::less<>> routes_;
  std::map<std::string, std::unique_ptr<UpstreamMetrics>, std::less<>> upstreams_;
  std::map<std::string, std::unique_ptr<ListenerMetrics>, std::less<>> listeners_;
  struct Family {
    std::string help;
    std::map<std::string, std::unique_ptr<LabeledCounter>, std::less<>> series;
  };
  std::map<std::string, Family, std::less<>> families_;
  std::vector<std::function<void(std::string&)>> external_;
};

// key="value",key2="value2" with Prometheus escaping.
std::string prometheus_labels(
    std::initializer_list<std::pair<std::string_view, std::string_view>> kv);

}  // namespace portcullis
