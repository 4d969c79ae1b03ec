#!/usr/bin/env bash
# Test PKI for log shipping: a CA, a collector certificate for collector.test
# and 127.0.0.1, client certificates, and a rogue CA whose client must be
# refused. Usage: make_certs.sh DIR NAME...  (each NAME gets NAME.pem and NAME.key)
# Names ending in .test get a server certificate for that name and 127.0.0.1.
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"; cd "$dir"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/O=Palisade test/CN=$1" -days 2 -out "$1.pem" 2>/dev/null
}
leaf() { # ca, name
  local ca=$1 name=$2 ext
  key "$name.key"
  openssl req -new -key "$name.key" -subj "/O=Palisade test/CN=$name" -out "$name.csr" 2>/dev/null
  if [[ $name == *.test ]]; then
    ext="subjectAltName=DNS:$name,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
  else
    ext="extendedKeyUsage=clientAuth"
  fi
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 2 \
    -extfile <(echo "$ext") -out "$name.pem" 2>/dev/null
  rm -f "$name.csr"
}
[ -f ca.pem ] || ca ca
[ -f rogue-ca.pem ] || ca rogue-ca
for n in "$@"; do
  if [[ $n == rogue-* ]]; then leaf rogue-ca "$n"; else leaf ca "$n"; fi
done
chmod 644 ./*.pem
