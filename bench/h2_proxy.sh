#!/usr/bin/env bash
# HTTP/2 proxy benchmark, side by side in one run, all on loopback (issue 7):
#   direct      h2load -> nghttpd (h2c, a 1 KiB file)
#   portcullis  h2load -> portcullis (prior-knowledge h2c, public route) -> same nghttpd (h2c)
#   haproxy     h2load -> haproxy (h2c front, h2c back: proto h2) -> same nghttpd
# One worker thread per proxy. Prints requests/s, p50/p99 per request (from h2load's
# per-request log) and the ratio to direct.
# Usage: bench/h2_proxy.sh [REQUESTS=200000] [CLIENTS=16] [STREAMS_PER_CLIENT=10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
requests=${1:-200000}
clients=${2:-16}
streams=${3:-10}
need=()
for p in nghttp2-client nghttp2-server haproxy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi
[[ -x "$root/build/portcullis" ]] || "$root/scripts/build.sh" portcullis

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
up=$(free_port); gw=$(free_port); adm=$(free_port); hap=$(free_port)
mkdir -p "$work/htdocs"
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/htdocs/bench"

nghttpd --no-tls -n 1 -d "$work/htdocs" "$up" >/dev/null 2>&1 & pids+=($!)
cat > "$work/portcullis.yaml" <<CONF
server: {workers: 1}
access_log: {path: off}
listeners: [{name: bench, address: "127.0.0.1:$gw"}]
admin: {address: "127.0.0.1:$adm"}
upstreams: [{name: up, protocol: h2c, endpoints: ["127.0.0.1:$up"]}]
routes: [{name: all, match: {path_prefix: /}, upstream: up, auth: public}]
CONF
cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$hap proto h2
  default_backend be
backend be
  server s1 127.0.0.1:$up proto h2
CONF
"$root/build/portcullis" serve --config "$work/portcullis.yaml" 2>"$work/portcullis.err" & pids+=($!)
haproxy -f "$work/haproxy.cfg" -q & pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$adm/readyz" >/dev/null && break; sleep 0.1; done

run() {  # name port
  h2load -n 2000 -c "$clients" -m "$streams" "http://127.0.0.1:$2/bench" >/dev/null  # warm-up
  local out
  out=$(h2load -n "$requests" -c "$clients" -m "$streams" --log-file="$work/$1.log" \
    "http://127.0.0.1:$2/bench")
  local rps ok
  rps=$(awk '/^finished in/ {print $4}' <<<"$out")
  ok=$(awk '/^status codes:/ {print $3}' <<<"$out")
  # The log's third column is the request's duration in microseconds.
  read -r p50 p99 < <(sort -n -k3 "$work/$1.log" | awk '{a[NR]=$3} END {print a[int(NR*0.5)], a[int(NR*0.99)]}')
  echo "$1 $rps $p50 $p99 $ok"
}
results=$(run direct "$up"; run portcullis "$gw"; run haproxy "$hap")
direct=$(awk '$1=="direct" {print $2}' <<<"$results")
echo "HTTP/2 (h2c), ${requests} requests, ${clients} connections x ${streams} streams, 1 KiB responses, 1 proxy thread"
printf '%-12s %12s %9s %9s %8s %8s\n' target "requests/s" "p50 us" "p99 us" "2xx" "vs direct"
while read -r name rps p50 p99 ok; do
  printf '%-12s %12s %9s %9s %8s %8.2f\n' "$name" "$rps" "$p50" "$p99" "$ok" \
    "$(awk -v a="$rps" -v b="$direct" 'BEGIN{print a/b}')"
done <<<"$results"
