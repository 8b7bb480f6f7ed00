#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing, builds, then
# runs the unit tests (GoogleTest) and the integration tests (real gateway processes, real
# upstream servers, curl and openssl on loopback) through ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh --test
# npm packages of the integration tests (a real OpenID provider, later gRPC and Playwright),
# exactly as locked in tests/package-lock.json.
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 1800 "$@"
