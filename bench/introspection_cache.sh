#!/usr/bin/env bash
# End-to-end bench of the replicas' shared cache (issue 5): see bench/introspection_cache.mjs.
# Installs wrk and redis-server if missing, builds the gateway, installs the test npm packages
# (the OpenID provider), then runs the bench. Usage: bench/introspection_cache.sh [DURATION] [TOKENS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
need=()
for p in wrk redis-server nodejs npm; do
  # node/npm may come from elsewhere on this image (as scripts/setup.sh accepts).
  [[ "$p" == nodejs ]] && command -v node >/dev/null && continue
  [[ "$p" == npm ]] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi
[[ -x "$root/build/portcullis" ]] || "$root/scripts/build.sh" portcullis
[[ -d "$root/tests/node_modules" ]] || (cd "$root/tests" && npm ci --silent)
PORTCULLIS_BIN="$root/build/portcullis" PORTCULLIS_ROOT="$root" \
  node "$root/bench/introspection_cache.mjs" --duration "${1:-5}" --tokens "${2:-200}"
