#pragma once
// Metrics of the caches (issue 5), rendered in one place so every family has one HELP/TYPE:
//   portcullis_local_cache_total{cache="token"|"introspection",result="hit"|"miss"}   (L1)
//   portcullis_shared_cache_total{kind="introspection",result=...}                    (L2, Redis)
//   portcullis_redis_round_trip_seconds{client="shared_cache"}                        (histogram)
//   portcullis_redis_connected                                                        (gauge)
// L1 counters of the introspection cache are process-wide (introspection_l1_counters());
// the verified-token cache counts per worker and the caller sums them.
#include <atomic>
#include <cstdint>
#include <string>

namespace portcullis {

class RedisSharedCache;

struct LocalCacheCounters {
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  void hit() { hits.fetch_add(1, std::memory_order_relaxed); }
  void miss() { misses.fetch_add(1, std::memory_order_relaxed); }
};

// Counted by every Introspector of the process (all providers, across reloads).
LocalCacheCounters& introspection_l1_counters();

struct CacheMetricsInput {
  std::uint64_t token_hits = 0;  // summed over the workers' TokenCaches
  std::uint64_t token_misses = 0;
  const RedisSharedCache* shared = nullptr;  // null without cache.redis
};

void render_cache_metrics(const CacheMetricsInput& in, std::string& out);

}  // namespace portcullis
