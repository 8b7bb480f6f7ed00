#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing, builds, then
# runs the unit tests (GoogleTest) and the integration tests (real gateway processes, real
# upstream servers, curl and openssl on loopback) through ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh --test
scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 1800 "$@"
