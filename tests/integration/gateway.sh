#!/usr/bin/env bash
# The API gateway against real peers on loopback: nginx as the upstream
# (echoing what reached it), curl and openssl s_client as clients over TLS,
# with and without client certificates. Covers routes, API keys, mTLS,
# roles, revocation, IP lists, rate limits, size limits, JSON/XML checks
# (XXE), request smuggling shapes, slow clients, failover to a second
# upstream host, connection pooling, the audit events and the metrics.
# Usage: gateway.sh PALISADE SOURCE_DIR
set -uo pipefail
palisade=${1:?usage: gateway.sh PALISADE SOURCE_DIR}
src=${2:?}
command -v nginx >/dev/null || { echo "SKIP: nginx is not installed (scripts/install-deps.sh)"; exit 77; }
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] ||
  { echo "SKIP: nginx's echo module is absent (libnginx-mod-http-echo)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
tmp=$(mktemp -d)
chmod 755 "$tmp"
gw=
cleanup() {
  [ -n "$gw" ] && kill "$gw" 2>/dev/null
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passes=0 fails=0
pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { # description, wanted, got
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$3', wanted '$2'"; fi
}
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bash "$src/tests/integration/make_certs.sh" "$tmp/pki" api.test client1 rogue-client >/dev/null ||
  { echo "FAIL: test certificates"; exit 1; }
up=$(freeport) dead=$(freeport) sick=$(freeport)

# --- the upstream: nginx echoing what reached it ------------------------------------
cat >"$tmp/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_buffer_size 4m;
  client_max_body_size 16m;
  client_body_temp_path $tmp/nginx-body;
  proxy_temp_path $tmp/nginx-proxy;
  fastcgi_temp_path $tmp/nginx-fcgi; uwsgi_temp_path $tmp/nginx-uwsgi; scgi_temp_path $tmp/nginx-scgi;
  server {
    listen 127.0.0.1:$up;
    location /v1/echo {
      echo_read_request_body;
      echo "id=\$http_x_authenticated_identity by=\$http_x_authenticated_by key=\$http_x_api_key xff=\$http_x_forwarded_for rid=\$http_x_request_id host=\$host";
      echo_request_body;
    }
    location /v1/big { echo_duplicate 100000 "0123456789"; }
    location / { return 200 "hello \$request_uri\n"; }
  }
  # A sick upstream host: every request 503, its health check 500.
  server {
    listen 127.0.0.1:$sick;
    location /healthz { return 500 "sick\n"; }
    location / { return 503 "down\n"; }
  }
}
EOF
nginx -c "$tmp/nginx.conf" 2>"$tmp/nginx.err" || { echo "FAIL: nginx: $(cat "$tmp/nginx.err")"; exit 1; }

key1=key-billing-0123456789 key2=key-reader-0123456789 key3=key-old-0123456789
h1=$(printf '%s' "$key1" | "$palisade" gateway --hash-key)
h2=$(printf '%s' "$key2" | "$palisade" gateway --hash-key)
h3=$(printf '%s' "$key3" | "$palisade" gateway --hash-key)
check "--hash-key prints the key's SHA-256" "$(printf '%s' "$key1" | sha256sum | cut -d' ' -f1)" "$h1"
: >"$tmp/revoked.txt"

# JWT: an RSA, an EC P-256 and an HMAC key published as a JWK Set, and tokens
# signed with them (python3-cryptography), good and bad.
/usr/bin/python3 - "$tmp" <<'PY' || { echo "FAIL: making test tokens"; exit 1; }
import base64, hashlib, hmac, json, sys, time
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
d = sys.argv[1]
b64 = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
num = lambda n, size=None: b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))
rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ek = ec.generate_private_key(ec.SECP256R1())
secret = b"hmac-secret-for-the-gateway-tests-0123456789"
rn, en = rk.public_key().public_numbers(), ek.public_key().public_numbers()
jwks = {"keys": [
    {"kty": "RSA", "kid": "rsa1", "alg": "RS256", "use": "sig", "n": num(rn.n), "e": num(rn.e)},
    {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": num(en.x, 32), "y": num(en.y, 32)},
    {"kty": "oct", "kid": "hs1", "k": b64(secret)}]}
open(d + "/jwks.json", "w").write(json.dumps(jwks))
def token(alg, kid, claims):
    head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    msg = (head + "." + body).encode()
    if alg == "RS256":
        sig = rk.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = utils.decode_dss_signature(ek.sign(msg, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        sig = hmac.new(secret, msg, hashlib.sha256).digest()
    return head + "." + body + "." + b64(sig)
now = int(time.time())
base = {"iss": "https://login.example.test/", "aud": "orders-api", "sub": "svc-orders",
        "scope": "orders:read orders:write", "exp": now + 600}
tok = {
  "RS": token("RS256", "rsa1", base),
  "ES": token("ES256", "ec1", dict(base, sub="svc-es")),
  "HS": token("HS256", "hs1", dict(base, sub="svc-hs")),
  "EXPIRED": token("RS256", "rsa1", dict(base, exp=now - 3600)),
  "AUD": token("RS256", "rsa1", dict(base, aud="billing-api")),
  "READER": token("ES256", "ec1", dict(base, sub="svc-reader", scope="orders:read")),
  "JTI": token("RS256", "rsa1", dict(base, sub="svc-jti", jti="token-42")),
}
forged = tok["RS"].split(".")
forged[1] = b64(json.dumps(dict(base, sub="admin")).encode())
tok["FORGED"] = ".".join(forged)
with open(d + "/tokens.env", "w") as f:
    for k, v in tok.items():
        f.write("TOK_%s=%s\n" % (k, v))
PY
. "$tmp/tokens.env"

cat >"$tmp/gw.yaml" <<EOF
listen:
  - {address: 127.0.0.1:0, cert: pki/api.test.pem, key: pki/api.test.key, client_ca: pki/ca.pem}
  - {address: 127.0.0.1:0, health: true}
upstreams:
  - {name: api, hosts: [127.0.0.1:$up]}
  - {name: flaky, hosts: [127.0.0.1:$dead, 127.0.0.1:$up]}
  - name: mixed
    hosts: [127.0.0.1:$sick, 127.0.0.1:$up]
    retries: {attempts: 1, backoff: 10ms}
    outlier: {failures: 2, ejection: 60s}
  - {name: sickonly, hosts: [127.0.0.1:$sick], retries: {attempts: 1, backoff: 10ms}}
  - {name: nobudget, hosts: [127.0.0.1:$sick], retries: {attempts: 3, budget: 0%, min_retries: 0}}
  - name: checked
    hosts: [127.0.0.1:$sick, 127.0.0.1:$up]
    outlier: off
    health_check: {path: /healthz, interval: 200ms, timeout: 100ms, unhealthy: 2}
credentials:
  api_keys:
    - {id: billing, sha256: $h1, roles: [orders]}
    - {id: reader, sha256: $h2, roles: [read]}
    - {id: old-client, sha256: $h3, roles: [orders]}
  certificates:
    - {subject: client1, roles: [orders]}
  revoked_file: revoked.txt
  jwt: {keys: jwks.json, issuer: "https://login.example.test/", audience: [orders-api]}
routes:
  - {name: public, path: /, upstream: api}
  - name: orders
    path: /v1/echo
    upstream: api
    auth: [api_key, mtls]
    roles: [orders]
    max_body: 1M
    json: {max_depth: 16}
  - {name: certonly, path: /v1/echo/cert, upstream: api, auth: [mtls]}
  - {name: tokens, path: /v1/echo/token, upstream: api, auth: [jwt], roles: ["orders:write"]}
  - {name: small, path: /v1/echo/small, upstream: api, max_body: 1K}
  - {name: limited, path: /limited, upstream: api, rate_limit: {ip: 5/m, burst: 5}}
  - {name: blocked, path: /blocked, upstream: api, deny: [127.0.0.0/8]}
  - {name: partners, path: /partners, upstream: api, allow: [192.0.2.0/24]}
  - {name: failover, path: /failover, upstream: flaky}
  - {name: big, path: /v1/big, upstream: api}
  - {name: retry, path: /retry, upstream: mixed}
  - {name: sick, path: /sick, upstream: sickonly}
  - {name: nobudget, path: /nobudget, upstream: nobudget}
  - {name: checked, path: /checked, upstream: checked}
  - {name: waf, path: /waf, upstream: api, waf: {mode: blocking, paranoia: 1}}
  - {name: wafwatch, path: /wafwatch, upstream: api, waf: {mode: detection, paranoia: 2}}
timeouts: {header: 1s, body: 2s}
EOF
chmod 600 "$tmp/pki/"*.key

# --- configuration checks -------------------------------------------------------------
sed 's/, health: true//' "$tmp/gw.yaml" >"$tmp/plain.yaml"
"$palisade" gateway --check -c "$tmp/plain.yaml" >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "plaintext listener is only allowed as a health port" "$tmp/out"; then
  pass "a plaintext listener that is not a health port is refused (exit 1)"
else fail "plaintext listener: exit $rc: $(head -3 "$tmp/out")"; fi
if "$palisade" gateway --check -c "$tmp/gw.yaml" >"$tmp/out" 2>&1 && grep -q "route orders: \*/v1/echo -> api, auth api_key|mtls" "$tmp/out"; then
  pass "--check describes the routes"
else fail "--check: $(head -5 "$tmp/out")"; fi

# --- start ----------------------------------------------------------------------------
"$palisade" gateway -c "$tmp/gw.yaml" -e "$tmp/eve.json" >"$tmp/gw.out" 2>"$tmp/gw.err" &
gw=$!
for _ in $(seq 50); do grep -q "listening on http://" "$tmp/gw.out" 2>/dev/null && break; sleep 0.1; done
tls=$(sed -n 's|.*listening on https://\(127.0.0.1:[0-9]*\).*|\1|p' "$tmp/gw.out")
health=$(sed -n 's|.*listening on http://\(127.0.0.1:[0-9]*\).*|\1|p' "$tmp/gw.out")
[ -n "$tls" ] && [ -n "$health" ] || { echo "FAIL: the gateway did not start: $(cat "$tmp/gw.err")"; exit 1; }
port=${tls##*:}
C=(curl -sS --max-time 10 --cacert "$tmp/pki/ca.pem" --resolve "api.test:$port:127.0.0.1")
U="https://api.test:$port"
code() { "${C[@]}" -o "$tmp/body" -w '%{http_code}' "$@"; }

check "public route: nginx answers through the gateway" "hello /hello?x=1" "$("${C[@]}" "$U/hello?x=1")"

# --- API keys, mTLS, roles ------------------------------------------------------------
check "no credentials: 401" 401 "$(code "$U/v1/echo")"
"${C[@]}" -o /dev/null -D "$tmp/hdr" "$U/v1/echo"
grep -qi '^WWW-Authenticate: ApiKey header="x-api-key"' "$tmp/hdr" && pass "401 names the header to use" ||
  fail "401 without WWW-Authenticate: $(cat "$tmp/hdr")"
check "a wrong API key: 401" 401 "$(code -H "X-API-Key: not-$key1" "$U/v1/echo")"
out=$("${C[@]}" -H "X-API-Key: $key1" -H "X-Authenticated-Identity: admin" "$U/v1/echo")
case "$out" in
  "id=billing by=api_key key= xff=127.0.0.1 rid="????????????????" host=api.test") pass "API key: the upstream sees the identity, not the key or a spoofed identity ($out)" ;;
  *) fail "API key: upstream saw '$out'" ;;
esac
check "a key without the route's role: 403" 403 "$(code -H "X-API-Key: $key2" "$U/v1/echo")"
out=$("${C[@]}" --cert "$tmp/pki/client1.pem" --key "$tmp/pki/client1.key" "$U/v1/echo/cert")
check "mTLS: the client certificate is the identity" "id=client1 by=mtls" "${out%% key=*}"
check "mTLS-only route without a certificate: 401" 401 "$(code -H "X-API-Key: $key1" "$U/v1/echo/cert")"
"${C[@]}" --cert "$tmp/pki/rogue-client.pem" --key "$tmp/pki/rogue-client.key" "$U/v1/echo/cert" >/dev/null 2>&1
rc=$?
[ $rc -ne 0 ] && pass "a certificate from another CA fails the handshake (curl exit $rc)" ||
  fail "rogue client certificate accepted"
if echo | timeout 5 openssl s_client -connect "$tls" -tls1_1 >/dev/null 2>&1; then
  fail "TLS 1.1 accepted"
else pass "TLS 1.1 refused (1.2 and 1.3 only)"; fi

# --- JWT bearer tokens --------------------------------------------------------------
out=$("${C[@]}" -H "Authorization: Bearer $TOK_RS" "$U/v1/echo/token")
check "JWT RS256: the token's subject is the identity" "id=svc-orders by=jwt" "${out%% key=*}"
out=$("${C[@]}" -H "Authorization: Bearer $TOK_ES" "$U/v1/echo/token")
check "JWT ES256" "id=svc-es by=jwt" "${out%% key=*}"
out=$("${C[@]}" -H "Authorization: Bearer $TOK_HS" "$U/v1/echo/token")
check "JWT HS256" "id=svc-hs by=jwt" "${out%% key=*}"
check "a forged JWT (claims changed, signature kept): 401" 401 "$(code -H "Authorization: Bearer $TOK_FORGED" "$U/v1/echo/token")"
grep -q '"bad token signature"' "$tmp/body" && pass "the answer says the signature is bad" || fail "forged: $(cat "$tmp/body")"
check "an expired JWT: 401" 401 "$(code -H "Authorization: Bearer $TOK_EXPIRED" "$U/v1/echo/token")"
grep -q '"token expired"' "$tmp/body" && pass "the answer says the token expired" || fail "expired: $(cat "$tmp/body")"
check "a JWT for another audience: 401" 401 "$(code -H "Authorization: Bearer $TOK_AUD" "$U/v1/echo/token")"
check "a JWT without the route's scope: 403" 403 "$(code -H "Authorization: Bearer $TOK_READER" "$U/v1/echo/token")"
"${C[@]}" -o /dev/null -D "$tmp/hdr" -H "Authorization: Bearer $TOK_FORGED" "$U/v1/echo/token"
grep -qi '^WWW-Authenticate: Bearer error="invalid_token"' "$tmp/hdr" && pass "401 for a bad token says invalid_token (RFC 6750)" ||
  fail "bad token without the Bearer challenge: $(cat "$tmp/hdr")"
check "a JWT before its jti is revoked: 200" 200 "$(code -H "Authorization: Bearer $TOK_JTI" "$U/v1/echo/token")"
echo "jti:token-42" >>"$tmp/revoked.txt"
kill -HUP "$gw"
sleep 0.3
check "the same (cached) JWT once its jti is revoked: 401" 401 "$(code -H "Authorization: Bearer $TOK_JTI" "$U/v1/echo/token")"
: >"$tmp/revoked.txt"

# --- revocation -----------------------------------------------------------------------
check "a key before its revocation: 200" 200 "$(code -H "X-API-Key: $key3" "$U/v1/echo")"
echo "old-client" >"$tmp/revoked.txt"
kill -HUP "$gw"
sleep 0.3
check "the revoked key after SIGHUP: 401" 401 "$(code -H "X-API-Key: $key3" "$U/v1/echo")"
grep -q '"credential revoked"' "$tmp/body" && pass "the answer says the credential is revoked" ||
  fail "revoked: body $(cat "$tmp/body")"

# --- content checks -------------------------------------------------------------------
K=(-H "X-API-Key: $key1")
xxe='<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
check "XXE (XML with a DOCTYPE): 400" 400 "$(code "${K[@]}" -H 'Content-Type: application/xml' -d "$xxe" "$U/v1/echo")"
grep -q "document type declarations are refused" "$tmp/body" && pass "the XXE answer names the reason" ||
  fail "XXE body: $(cat "$tmp/body")"
check "XXE labelled text/plain: still 400" 400 "$(code "${K[@]}" -H 'Content-Type: text/plain' -d "$xxe" "$U/v1/echo")"
deep=$(printf '%.0s[' $(seq 40))$(printf '%.0s]' $(seq 40))
check "JSON nested 40 deep (route allows 16): 400" 400 "$(code "${K[@]}" -H 'Content-Type: application/json' -d "$deep" "$U/v1/echo")"
out=$("${C[@]}" "${K[@]}" -H 'Content-Type: application/json' -d '{"order":[1,2,{"x":"y"}]}' "$U/v1/echo")
check "valid JSON reaches the upstream intact" '{"order":[1,2,{"x":"y"}]}' "${out#*$'\n'}"
check "malformed JSON: 400" 400 "$(code "${K[@]}" -H 'Content-Type: application/json' -d '{"a":1,}' "$U/v1/echo")"

# --- size limits ----------------------------------------------------------------------
head -c 2000000 /dev/zero >"$tmp/2m"
check "a 2 MB body with Content-Length (limit 1M): 413" 413 "$(code "${K[@]}" --data-binary @"$tmp/2m" "$U/v1/echo")"
check "a 2 MB chunked body: 413" 413 "$(code "${K[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/2m" "$U/v1/echo")"
head -c 900000 /dev/urandom | base64 -w0 | head -c 900000 >"$tmp/900k"
out=$("${C[@]}" "${K[@]}" -H 'Content-Type: text/plain' --data-binary @"$tmp/900k" "$U/v1/echo" | tail -c 900000 | sha256sum)
check "a 900 kB body arrives byte for byte" "$(sha256sum <"$tmp/900k")" "$out"
check "over the route's own 1K limit: 413" 413 "$(code -d "$(head -c 2000 /dev/zero | tr '\0' a)" "$U/v1/echo/small")"
check "a 10 kB URL: 414" 414 "$(code "$U/$(head -c 10000 /dev/zero | tr '\0' a)")"
check "3,000 headers: 431" 431 "$(code $(for i in $(seq 150); do printf -- "-H X-$i:%s " "$(head -c 200 /dev/zero | tr '\0' b)"; done) "$U/")"

# --- IP lists and rate limits ---------------------------------------------------------
check "a denied address: 403" 403 "$(code "$U/blocked")"
check "an address outside the allow-list: 403" 403 "$(code "$U/partners")"
codes=$(for i in $(seq 8); do code -D "$tmp/hdr$i" "$U/limited"; echo; done | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
case "$codes" in
  *" 5 200 "*" 3 429 "*) pass "rate limit 5/m, burst 5: 8 requests -> $codes" ;;
  *) fail "rate limit: $codes" ;;
esac
grep -qiE '^Retry-After: [0-9]+' "$tmp/hdr8" && pass "429 says when to retry" || fail "429 without Retry-After: $(cat "$tmp/hdr8")"

# --- failover, pooling, streaming ------------------------------------------------------
check "first upstream host down: the second answers" "hello /failover" "$("${C[@]}" "$U/failover")"
check "a 1,000,000-byte response streams through intact" 1000000 "$("${C[@]}" "$U/v1/big" | wc -c)"
"${C[@]}" -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null "$U/a" "$U/b" "$U/c" "$U/d" "$U/e"

# --- retries, outlier ejection, health checks ----------------------------------------
codes=$(for _ in $(seq 6); do code "$U/retry"; echo; done | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
check "GETs to [sick host, good host]: every one answered 200 (the sick host's 503s retried)" " 6 200 " "$codes"
check "a GET to the sick host alone: retried once, then its 503 passed on" 503 "$(code "$U/sick")"
check "a POST is not retried: the 503 passed on" 503 "$(code -d x "$U/sick")"
check "with the retry budget spent, no retry" 503 "$(code "$U/nobudget")"
sleep 1.2  # the health checks (every 200 ms) mark the sick host down after two failures
codes=$(for _ in $(seq 6); do code -d x "$U/checked"; echo; done | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
check "the sick host failing its health checks gets no requests (POSTs, never retried)" " 6 200 " "$codes"
grep -q "upstream checked host 127.0.0.1:$sick is unhealthy: status 500" "$tmp/gw.out" &&
  pass "the gateway says the host is unhealthy and why" || fail "no unhealthy line: $(cat "$tmp/gw.out")"

# --- WAF: OWASP CRS on libmodsecurity3 ------------------------------------------------
W=(-H "Accept: */*" -H "User-Agent: palisade-tests")
check "WAF blocking: a benign query passes" 200 "$(code "${W[@]}" -G --data-urlencode "id=42" "$U/waf")"
check "WAF blocking: SQL injection in the query: 403" 403 "$(code "${W[@]}" -G --data-urlencode "id=1' OR '1'='1" "$U/waf")"
check "WAF blocking: XSS in a form body: 403" 403 "$(code "${W[@]}" --data-urlencode "comment=<script>alert(document.cookie)</script>" "$U/waf")"
check "WAF blocking: path traversal: 403" 403 "$(code "${W[@]}" -G --data-urlencode "file=../../../../etc/passwd" "$U/waf")"
check "WAF detection mode: the same injection passes (and is logged)" 200 "$(code "${W[@]}" -G --data-urlencode "id=1' OR '1'='1" "$U/wafwatch")"

# --- malformed and hostile requests ---------------------------------------------------
raw() { printf "$1" | timeout 5 openssl s_client -quiet -connect "$tls" 2>/dev/null | head -1 | tr -d '\r'; }
check "Content-Length with Transfer-Encoding: 400" "HTTP/1.1 400 Bad Request" \
  "$(raw 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc')"
check "a bare LF line end: 400" "HTTP/1.1 400 Bad Request" "$(raw 'GET / HTTP/1.1\nHost: a\n\n')"
check "HTTP/2.0 on the HTTP/1.1 port: 505" "HTTP/1.1 505 HTTP Version Not Supported" "$(raw 'GET / HTTP/2.0\r\nHost: a\r\n\r\n')"
check "a dot-segment path: 400" 400 "$(code --path-as-is "$U/public/../v1/echo")"
check "HTTP/1.0 without Host still reaches the upstream" "HTTP/1.1 200 OK" "$(raw 'GET /old HTTP/1.0\r\n\r\n')"
t0=$(date +%s%N)
first=$( (printf 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: '; sleep 4) | timeout 8 openssl s_client -quiet -connect "$tls" 2>/dev/null | head -1 | tr -d '\r')
ms=$((($(date +%s%N) - t0) / 1000000))
check "a slow client's half-sent head is answered 408" "HTTP/1.1 408 Request Timeout" "$first"
# The same client, timed: from its first byte to the gateway closing on it.
ms=$(/usr/bin/python3 - "$tmp/pki/ca.pem" "$port" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2]))), server_hostname="api.test")
s.settimeout(10)
t0 = time.monotonic()
s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
try:
    while s.recv(4096):
        pass
except (ssl.SSLError, OSError):
    pass
print(int((time.monotonic() - t0) * 1000))
PY
)
[ -n "$ms" ] && [ "$ms" -lt 3000 ] && pass "and cut off by the 1 s header timeout (closed after ${ms} ms)" ||
  fail "slow client held for ${ms:-?} ms"

# --- health, metrics, audit ----------------------------------------------------------
check "/healthz" '{"status":"ok"}' "$(curl -s "http://$health/healthz")"
out=$(printf 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n' | timeout 5 nc -N "${health%:*}" "${health##*:}" | tail -1)
check "a client that shuts its side right after its request still gets the answer" '{"status":"ok"}' "$out"
check "the health port serves nothing else" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://$health/v1/echo")"
curl -s "http://$health/metrics" >"$tmp/metrics"
for m in 'palisade_gateway_requests_total{route="public",code="200"}' \
  'palisade_gateway_requests_total{route="orders",code="401"}' \
  'palisade_gateway_denied_total{route="orders",reason="content"}' \
  'palisade_gateway_denied_total{route="limited",reason="rate_limited"} 3' \
  'palisade_gateway_request_duration_seconds_bucket{route="public",le="+Inf"}' \
  'palisade_gateway_route_availability{route="public"} 1.000000' \
  'palisade_gateway_upstream_errors_total{upstream="flaky",host="127.0.0.1:'"$dead"'",kind="connect"} 1' \
  'palisade_gateway_upstream_retries_total{upstream="mixed",host="127.0.0.1:'"$sick"'"} 2' \
  'palisade_gateway_upstream_ejections_total{upstream="mixed",host="127.0.0.1:'"$sick"'"} 1' \
  'palisade_gateway_upstream_host_available{upstream="mixed",host="127.0.0.1:'"$sick"'"} 0' \
  'palisade_gateway_upstream_host_available{upstream="checked",host="127.0.0.1:'"$sick"'"} 0' \
  'palisade_gateway_upstream_host_available{upstream="checked",host="127.0.0.1:'"$up"'"} 1' \
  'palisade_gateway_upstream_retries_total{upstream="sickonly",host="127.0.0.1:'"$sick"'"} 1' \
  'palisade_gateway_retry_budget_exhausted_total{upstream="nobudget"} 1' \
  'palisade_gateway_waf_requests_total{route="waf",result="match"} 3' \
  'palisade_gateway_waf_requests_total{route="waf",result="pass"} 1' \
  'palisade_gateway_denied_total{route="waf",reason="waf"} 3'; do
  grep -qF "$m" "$tmp/metrics" && pass "metric: $m" || fail "metric missing: $m"
done
reqs=$(sed -n 's/^palisade_gateway_upstream_requests_total{upstream="api".*} //p' "$tmp/metrics")
conns=$(sed -n 's/^palisade_gateway_upstream_connections_total{upstream="api".*} //p' "$tmp/metrics")
[ -n "$conns" ] && [ "$conns" -lt "$reqs" ] && pass "upstream keep-alive pool: $reqs requests over $conns connections" ||
  fail "pooling: $reqs requests over $conns connections"

kill -TERM "$gw"
wait "$gw"
rc=$?
gw=
check "SIGTERM: clean exit" 0 "$rc"

# --- two workers: one port (SO_REUSEPORT), one rate limit shared between them ---------
sed -e 's/^timeouts:/workers: 2\ntimeouts:/' "$tmp/gw.yaml" >"$tmp/gw2.yaml"
"$palisade" gateway -c "$tmp/gw2.yaml" >"$tmp/gw2.out" 2>&1 &
gw=$!
for _ in $(seq 50); do grep -q "route(s), 2 worker(s)" "$tmp/gw2.out" 2>/dev/null && break; sleep 0.1; done
port2=$(sed -n 's|.*listening on https://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/gw2.out")
C2=(curl -sS --max-time 10 --cacert "$tmp/pki/ca.pem" --resolve "api.test:$port2:127.0.0.1")
codes=$(for _ in $(seq 8); do "${C2[@]}" -o /dev/null -w '%{http_code}' "https://api.test:$port2/limited"; echo; done | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
check "2 workers, 8 connections: the 5/m limit holds across them" " 5 200  3 429 " "$codes"
health2=$(sed -n 's|.*listening on http://\(127.0.0.1:[0-9]*\).*|\1|p' "$tmp/gw2.out")
accepted=$(curl -s "http://$health2/metrics" | sed -n 's/^palisade_gateway_connections_accepted_total //p')
[ "${accepted:-0}" -ge 8 ] && pass "2 workers: $accepted connections accepted" || fail "2 workers: accepted ${accepted:-none}"
kill -TERM "$gw"
wait "$gw"
rc=$?
gw=
check "2 workers: SIGTERM, clean exit" 0 "$rc"
/usr/bin/python3 - "$tmp/eve.json" >"$tmp/audit" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert e["event_type"] == "audit", e
    g = e["gateway"]
    n += 1
    print(g["route"], g["status"], g["outcome"], g.get("identity", "-"), g.get("reason", "-"), g.get("retries", 0))
    if "waf" in g:
        w = g["waf"]
        print("waf", g["route"], g["status"], w["action"], "score>=5" if w["anomaly_score"] >= 5 else "score<5",
              " ".join(str(r) for r in w["rules"]))
print("events", n)
PY
[ $? -eq 0 ] && pass "every audit line is EVE JSON ($(tail -1 "$tmp/audit"))" || fail "audit log: $(head -3 "$tmp/eve.json")"
for want in "orders 200 forwarded billing" "orders 401 denied - invalid API key" \
  "orders 403 denied reader identity lacks a role" "certonly 200 forwarded client1" \
  "orders 401 denied old-client credential revoked" \
  "orders 400 denied billing XML document type declarations are refused" \
  "orders 400 denied billing JSON nesting too deep" "orders 413 denied billing request body too large" \
  "limited 429 denied - rate limit for this address" "blocked 403 denied - client address is denied" \
  "failover 200 forwarded - - 1" "- 408 denied - request head not received in time" \
  "tokens 200 forwarded svc-orders" "tokens 401 denied - bad token signature" \
  "tokens 401 denied - token expired" "tokens 401 denied - token audience not accepted" \
  "tokens 403 denied svc-reader" "tokens 401 denied svc-jti credential revoked" \
  "retry 200 forwarded - - 1" "sick 503 forwarded - - 1" "sick 503 forwarded - - 0" \
  "nobudget 503 forwarded - - 0" "waf 403 denied - blocked by the WAF" \
  "waf waf 403 blocked score>=5 942100" "waf waf 200 pass score<5" "waf wafwatch 200 detected score>=5"; do
  grep -qF -e "$want" "$tmp/audit" && pass "audit: $want" || fail "audit lacks: $want"
done

echo "gateway: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
