#!/usr/bin/env bash
# gRPC unary benchmark with the real grpc-js client: direct vs through portcullis (public and
# bearer routes), see bench/grpc_unary.mjs. Installs the test npm packages (grpc-js, the
# OpenID provider) and builds the gateway if missing, then runs the bench.
# Usage: bench/grpc_unary.sh [CALLS=20000] [CONCURRENCY=32]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[[ -x "$root/build/portcullis" ]] || "$root/scripts/build.sh" portcullis
[[ -d "$root/tests/node_modules" ]] || (cd "$root/tests" && npm ci --silent)
PORTCULLIS_BIN="$root/build/portcullis" PORTCULLIS_ROOT="$root" \
  node "$root/bench/grpc_unary.mjs" --calls "${1:-20000}" --concurrency "${2:-32}"
