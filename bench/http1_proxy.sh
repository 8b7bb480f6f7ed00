#!/usr/bin/env bash
# HTTP/1.1 proxy benchmark, side by side in one run, all on loopback:
#   direct    wrk -> nginx upstream (static 1 KiB answer)
#   portcullis wrk -> portcullis -> same upstream
#   nginx     wrk -> nginx as a reverse proxy (keepalive upstream pool) -> same upstream
#   haproxy   wrk -> haproxy (http mode) -> same upstream
#   +audit    wrk -> portcullis with the audit log on (file sink, fsync interval) -> same upstream
# Each proxy gets one worker thread, so the figures compare per-core efficiency on a
# 2-core machine where wrk and the upstream share the other core.
# Usage: bench/http1_proxy.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
# Prints requests/s, p50 and p99 per target and the ratio to direct.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
duration=${1:-10}
conns=${2:-64}
need=()
for p in wrk nginx-light haproxy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi
[[ -x "$root/build/portcullis" ]] || "$root/scripts/build.sh"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
up=$(free_port); gw=$(free_port); ngx=$(free_port); hap=$(free_port); adm=$(free_port)
gwa=$(free_port); adma=$(free_port)
body=$(head -c 1024 /dev/zero | tr '\0' 'x')

mkdir -p "$work/nginx-up" "$work/nginx-px"
cat > "$work/nginx-up/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx-up/pid; error_log $work/nginx-up/err.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { default_type text/plain; return 200 '$body'; } } }
CONF
cat > "$work/nginx-px/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx-px/pid; error_log $work/nginx-px/err.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$ngx; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header X-Forwarded-For \$remote_addr; } } }
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
  option http-keep-alive
  option forwardfor
frontend fe
  bind 127.0.0.1:$hap
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$up
CONF
cat > "$work/portcullis.yaml" <<CONF
server: {workers: 1}
access_log: {path: off}
listeners: [{name: bench, address: "127.0.0.1:$gw"}]
admin: {address: "127.0.0.1:$adm"}
upstreams: [{name: up, endpoints: ["127.0.0.1:$up"], pool: {max_idle_per_endpoint: 256}}]
routes: [{name: all, match: {path_prefix: /}, upstream: up, auth: public}]
CONF
mkdir -p "$work/audit"
sed -e "s/127.0.0.1:$gw/127.0.0.1:$gwa/" -e "s/127.0.0.1:$adm/127.0.0.1:$adma/" \
  "$work/portcullis.yaml" > "$work/portcullis-audit.yaml"
cat >> "$work/portcullis-audit.yaml" <<CONF
audit: {file: {path: "$work/audit/audit.jsonl", fsync: interval, max_bytes: 1GiB}, key_file: "$work/audit/key.pem"}
CONF
nginx -c "$work/nginx-up/nginx.conf" -p "$work/nginx-up" & pids+=($!)
nginx -c "$work/nginx-px/nginx.conf" -p "$work/nginx-px" & pids+=($!)
haproxy -f "$work/haproxy.cfg" -q & pids+=($!)
"$root/build/portcullis" serve --config "$work/portcullis.yaml" 2>"$work/portcullis.err" & pids+=($!)
# The audited gateway runs only during its own measurement (one proxy at a time on the CPU).
for i in $(seq 1 50); do curl -sf "http://127.0.0.1:$adm/readyz" >/dev/null && break; sleep 0.1; done
audited() {
  "$root/build/portcullis" serve --config "$work/portcullis-audit.yaml" 2>"$work/audit.err" &
  local pid=$!
  for i in $(seq 1 50); do curl -sf "http://127.0.0.1:$adma/readyz" >/dev/null && break; sleep 0.1; done
  run portcullis+audit "$gwa"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run() {  # name port
  curl -sf "http://127.0.0.1:$2/warm" >/dev/null
  wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$2/bench" >/dev/null  # warm-up
  local out; out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$2/bench")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$1 $rps $p50 $p99"
}
results=$(run direct "$up"; run portcullis "$gw"; audited; run nginx "$ngx"; run haproxy "$hap")
direct=$(awk '$1=="direct" {print $2}' <<<"$results")
echo "HTTP/1.1 keep-alive, ${conns} connections, ${duration}s, 1 KiB responses, 1 proxy thread"
printf '%-17s %12s %9s %9s %8s\n' target "requests/s" p50 p99 "vs direct"
while read -r name rps p50 p99; do
  printf '%-17s %12s %9s %9s %8.2f\n' "$name" "$rps" "$p50" "$p99" "$(awk -v a="$rps" -v b="$direct" 'BEGIN{print a/b}')"
done <<<"$results"
records=$(grep -c '"type":"request"' "$work"/audit/*.jsonl 2>/dev/null | awk -F: '{s+=$NF} END {print s+0}')
echo "audit: $records request records written; $("$root/build/portcullis" audit verify "$work/audit" 2>&1 | tail -1)"
