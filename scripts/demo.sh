#!/usr/bin/env bash
# Starts the gateway on the bundled demo config (no identity provider, no Redis): installs
# what is missing, builds, makes dev certificates, starts the demo echo upstream on
# 127.0.0.1:7001 and runs the gateway in the foreground. Ctrl-C stops both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
scripts/build.sh portcullis
certs/make-dev-certs.sh
node demo/dev-idp.mjs keygen certs/dev >/dev/null
token=$(node demo/dev-idp.mjs mint certs/dev --sub alice --scope orders:read)
node tests/support/echo-upstream.mjs --port 7001 --name demo-echo &
upstream=$!
trap 'kill $upstream 2>/dev/null || true' EXIT
cat <<TXT

Portcullis demo
  HTTPS listener  https://localhost:8443/   (dev CA: certs/dev/ca.crt)
  HTTP listener   http://127.0.0.1:8080/
  Admin           http://127.0.0.1:9901/healthz  /readyz  /metrics  /config
  Upstream        http://127.0.0.1:7001/ (echo server)

Try:
  curl --cacert certs/dev/ca.crt https://localhost:8443/hello?name=world
  curl --cacert certs/dev/ca.crt https://localhost:8443/orders/42            # 401: bearer route
  curl --cacert certs/dev/ca.crt https://localhost:8443/orders/42 \\
       -H "Authorization: Bearer $token"                                   # 200, identity headers
  curl --cacert certs/dev/ca.crt -X DELETE https://localhost:8443/orders/42 \\
       -H "Authorization: Bearer $token"                                   # 403: policies/orders.yaml
  curl --cacert certs/dev/ca.crt https://localhost:8443/.well-known/portcullis/jwks.json
  build/portcullis token inspect --config config/demo.yaml $token
  build/portcullis policy lint --config config/demo.yaml

TXT
build/portcullis serve --config config/demo.yaml
