#!/usr/bin/env bash
# Installs what Portcullis needs to build and test on Debian 12 (run as root, or with sudo
# available). Only installs what is missing; `apt-get update` runs first when it must install.
# Note: never install libboost-dev / libboost-all-dev (1.74); they conflict with 1.81.
set -euo pipefail
packages=(
  build-essential cmake pkg-config ccache git ca-certificates curl openssl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libhiredis-dev libnghttp2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nodejs npm
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(wrk)
  # The fuzz test (scripts/fuzz.sh): clang 14, libFuzzer/ASan/UBSan runtimes (on bookworm in
  # libclang-rt-14-dev, only a Recommends of clang) and llvm-symbolizer (llvm-14) for stacks.
  packages+=(clang libclang-rt-14-dev llvm-14)
  # The Redis audit stream sink test (tests/integration/audit_redis.test.mjs) starts its own
  # redis-server on a free port; redis-server depends on redis-tools (redis-cli).
  packages+=(redis-server)
  # HTTP/2 tests and benches: nghttp and h2load (nghttp2-client), nghttpd as an h2c upstream
  # (nghttp2-server).
  packages+=(nghttp2-client nghttp2-server)
  # Browser tests (tests/support/browser.mjs, npm playwright-core, which brings no browser):
  # Debian's Chromium at /usr/bin/chromium, and a font so pages render text (Liberation Sans;
  # it is only a Recommends of chromium, which --no-install-recommends skips).
  packages+=(chromium fonts-liberation)
fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs/npm may come from elsewhere on this image (e.g. a newer Node): accept those.
filtered=()
for p in "${missing[@]}"; do
  if [[ "$p" == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  filtered+=("$p")
done
if ((${#filtered[@]})); then
  echo "setup: installing ${filtered[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${filtered[@]}"
fi
