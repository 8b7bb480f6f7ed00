#!/usr/bin/env bash
# Makes a throw-away development CA and a server certificate for localhost / 127.0.0.1 / ::1
# and *.localhost, plus a client certificate signed by the same CA.
# Usage: certs/make-dev-certs.sh [OUTDIR]   (default: certs/dev next to this script)
# Nothing made here is secret or committed (certs/dev is in .gitignore); rerun to replace.
set -euo pipefail
out=${1:-"$(cd "$(dirname "$0")" && pwd)/dev"}
mkdir -p "$out"
cd "$out"
if [[ -s server.crt && -s server.key && -s ca.crt && "${FORCE:-0}" != 1 ]]; then
  echo "dev certificates already in $out (FORCE=1 to remake)"
  exit 0
fi
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=Portcullis Dev CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
cat > server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:*.localhost,DNS:portcullis.local,IP:127.0.0.1,IP:::1
EXT
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
  -extfile server.ext -out server.crt 2>/dev/null
cat > client.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://dev.local/ns/default/sa/dev-client
EXT
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=dev-client" \
  -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
  -extfile client.ext -out client.crt 2>/dev/null
rm -f server.csr client.csr server.ext client.ext ca.srl
chmod 644 ca.crt server.crt client.crt
echo "dev certificates written to $out"
