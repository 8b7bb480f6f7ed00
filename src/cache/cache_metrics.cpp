#include "cache/cache_metrics.hpp"

#include <string_view>

#include "cache/redis_shared_cache.hpp"

namespace portcullis {

LocalCacheCounters& introspection_l1_counters() {
  static LocalCacheCounters counters;
  return counters;
}

namespace {

void counter_line(std::string& out, std::string_view name, std::string_view labels,
                  std::uint64_t value) {
  out += name;
  out += '{';
  out += labels;
  out += "} ";
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

void render_cache_metrics(const CacheMetricsInput& in, std::string& out) {
  out +=
      "# HELP portcullis_local_cache_total Lookups in this process's caches (L1): verified "
      "tokens, introspection results.\n# TYPE portcullis_local_cache_total counter\n";
  constexpr std::string_view kLocal = "portcullis_local_cache_total";
  counter_line(out, kLocal, R"(cache="token",result="hit")", in.token_hits);
  counter_line(out, kLocal, R"(cache="token",result="miss")", in.token_misses);
  const auto& intro = introspection_l1_counters();
  counter_line(out, kLocal, R"(cache="introspection",result="hit")",
               intro.hits.load(std::memory_order_relaxed));
  counter_line(out, kLocal, R"(cache="introspection",result="miss")",
               intro.misses.load(std::memory_order_relaxed));
  if (!in.shared) return;

  const auto st = in.shared->stats();
  out +=
      "# HELP portcullis_shared_cache_total Lookups and stores in the replicas' shared cache "
      "(L2, Redis): introspection results.\n# TYPE portcullis_shared_cache_total counter\n";
  constexpr std::string_view kShared = "portcullis_shared_cache_total";
  counter_line(out, kShared, R"(kind="introspection",result="hit")", st.hits);
  counter_line(out, kShared, R"(kind="introspection",result="miss")", st.misses);
  counter_line(out, kShared, R"(kind="introspection",result="error")", st.errors);
  counter_line(out, kShared, R"(kind="introspection",result="store")", st.puts);
  counter_line(out, kShared, R"(kind="introspection",result="store_error")", st.put_errors);
  out +=
      "# HELP portcullis_redis_round_trip_seconds Redis command round trips answered in time "
      "(timeouts are counted as errors, not here).\n"
      "# TYPE portcullis_redis_round_trip_seconds histogram\n";
  in.shared->round_trip().render(out, "portcullis_redis_round_trip_seconds",
                                 R"(client="shared_cache")");
  out +=
      "# HELP portcullis_redis_connected 1 when the shared-cache connection to Redis is "
      "ready.\n# TYPE portcullis_redis_connected gauge\nportcullis_redis_connected ";
  out += st.connected ? "1\n" : "0\n";
}

}  // namespace portcullis
