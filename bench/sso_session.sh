#!/usr/bin/env bash
# The session lookup of a browser request on an `auth: sso` route, side by side in one run:
#   the session sealed in the cookie (AES-256-GCM open + JSON parse, in process),
#   the session in Redis (open the cookie's reference, GETEX on loopback, open the value),
# next to the verified-token cache hit a bearer request pays, for scale.
# Usage: bench/sso_session.sh   (starts redis-server on a free port; needs scripts/setup.sh --test)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/build.sh" portcullis_bench >/dev/null
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
PORTCULLIS_BENCH_REDIS="127.0.0.1:$port" "$root/build/bench/portcullis_bench" \
  --benchmark_filter='CachedTokenCheck|SsoSession' \
  --benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
