#!/usr/bin/env bash
# The cost of the replicas' shared cache (issue 5), side by side in one run:
#   in-process L1 (the verified-token cache, what most requests use),
#   the decision that the cache would save (50-rule policy, evaluated locally),
#   a Redis L2 hit (GET round trip on loopback, as introspection uses it),
#   Redis down (the lookup fails fast; the caller then asks the IdP).
# The end-to-end twin (through the gateway, with the IdP): bench/introspection_cache.sh.
# Usage: bench/redis_cache.sh   (starts redis-server on a free port; needs scripts/setup.sh --test)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/build.sh" portcullis_bench >/dev/null
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
PORTCULLIS_BENCH_REDIS="127.0.0.1:$port" "$root/build/bench/portcullis_bench" \
  --benchmark_filter='CachedTokenCheck|Policy50Rules$|L1Hit|KeyAndL1Hit|SharedCache' \
  --benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
