#!/usr/bin/env bash
# The API gateway beside nginx as a plain TLS reverse proxy, in one run, on
# loopback: wrk (keep-alive, TLS) against each proxy in front of the same
# nginx upstream, every proxy on one worker (one core; wrk and the upstream
# share the other). Three gateway set-ups:
#   pass-through  one anonymous route, no content checks
#   api checks    API key (SHA-256 lookup), role, per-client rate limit (set
#                 high enough never to refuse), JSON check of a 1.1 kB body (POST)
#   CRS           the OWASP CRS (paranoia 1, blocking) on libmodsecurity3,
#                 a GET with a query string
#   nginx         proxy_pass with an upstream keep-alive pool (same GET, and
#                 the same POST for the api-checks row)
# Prints requests/s and p50/p99 latency for each, and the gateway's share of
# nginx's rate. Bounded: each run lasts SECONDS (default 10).
# Usage: bench/gateway.sh PALISADE_BINARY [SECONDS] [CONNECTIONS]
set -uo pipefail
palisade=${1:?usage: gateway.sh PALISADE_BINARY [SECONDS] [CONNECTIONS]}
secs=${2:-10}
conns=${3:-50}
src=$(cd "$(dirname "$0")/.." && pwd)
for t in wrk nginx openssl; do
  command -v $t >/dev/null || { echo "gateway bench: $t missing (scripts/install-deps.sh)"; exit 77; }
done
tmp=$(mktemp -d)
chmod 755 "$tmp"
gw=
cleanup() {
  [ -n "$gw" ] && kill "$gw" 2>/dev/null
  for p in "$tmp"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bash "$src/tests/integration/make_certs.sh" "$tmp/pki" api.test >/dev/null
chmod 600 "$tmp/pki/"*.key
up=$(freeport) px=$(freeport)

nginx_conf() { # name, server block
  cat >"$tmp/$1.conf" <<EOF
worker_processes 1;
pid $tmp/$1.pid;
error_log $tmp/$1-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/$1-body; proxy_temp_path $tmp/$1-proxy;
  fastcgi_temp_path $tmp/$1-fcgi; uwsgi_temp_path $tmp/$1-uwsgi; scgi_temp_path $tmp/$1-scgi;
  keepalive_requests 1000000;
  $2
}
EOF
  nginx -c "$tmp/$1.conf" || exit 1
}
nginx_conf upstream "server { listen 127.0.0.1:$up; location / { return 200 \"ok\n\"; } }"
nginx_conf proxy "upstream api { server 127.0.0.1:$up; keepalive 64; }
  server {
    listen 127.0.0.1:$px ssl;
    ssl_certificate $tmp/pki/api.test.pem; ssl_certificate_key $tmp/pki/api.test.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"

key=bench-key-0123456789
hash=$(printf '%s' "$key" | "$palisade" gateway --hash-key)
cat >"$tmp/gw.yaml" <<EOF
listen:
  - {address: 127.0.0.1:0, cert: pki/api.test.pem, key: pki/api.test.key}
upstreams:
  - {name: api, hosts: [127.0.0.1:$up], pool: 64}
credentials:
  api_keys:
    - {id: bench, sha256: $hash, roles: [orders]}
routes:
  - {name: open, path: /, upstream: api, json: off, xml: off}
  - name: checked
    path: /v1/orders
    upstream: api
    auth: [api_key]
    roles: [orders]
    rate_limit: {client: 1000000/s, burst: 1000000}
    json: {max_depth: 16}
  - {name: crs, path: /v1/search, upstream: api, json: off, xml: off, waf: {mode: blocking, paranoia: 1}}
limits: {max_connections: 100000}
EOF
"$palisade" gateway -c "$tmp/gw.yaml" >"$tmp/gw.out" 2>&1 &
gw=$!
for _ in $(seq 50); do grep -q "listening on https" "$tmp/gw.out" && break; sleep 0.1; done
gport=$(sed -n 's|.*listening on https://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/gw.out")
[ -n "$gport" ] || { echo "gateway did not start: $(cat "$tmp/gw.out")"; exit 1; }

body=$(/usr/bin/python3 -c 'import json; print(json.dumps({"order": [{"sku": "A%03d" % i, "qty": i} for i in range(40)]}))')
cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.body = [[${body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$key"
EOF

# Runs wrk; prints "requests/s p50 p99" (latencies in ms).
run() { # url, [script]
  local args=(-t1 -c"$conns" -d"${secs}s" --latency)
  [ -n "${2:-}" ] && args+=(-s "$2")
  wrk "${args[@]}" "$1" >"$tmp/wrk.out" 2>&1
  /usr/bin/python3 - "$tmp/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"%\s+([\d.]+)(us|ms|s)", t, re.M)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print("%.0f %.2f %.2f %s" % (rps, ms("50"), ms("99"), errs.group(1) if errs else "0"))
PY
}
echo "gateway bench: wrk -t1 -c$conns -d${secs}s, TLS to each proxy, one worker each, nginx upstream"
printf '%-34s %12s %9s %9s %8s\n' "set-up" "requests/s" "p50 ms" "p99 ms" "non-2xx"
read -r n_rps n_50 n_99 n_e < <(run "https://127.0.0.1:$px/")
printf '%-34s %12s %9s %9s %8s\n' "nginx TLS proxy, GET" "$n_rps" "$n_50" "$n_99" "$n_e"
read -r g_rps g_50 g_99 g_e < <(run "https://127.0.0.1:$gport/")
printf '%-34s %12s %9s %9s %8s\n' "palisade gateway pass-through, GET" "$g_rps" "$g_50" "$g_99" "$g_e"
read -r np_rps np_50 np_99 np_e < <(run "https://127.0.0.1:$px/v1/orders" "$tmp/post.lua")
printf '%-34s %12s %9s %9s %8s\n' "nginx TLS proxy, POST 1.1 kB" "$np_rps" "$np_50" "$np_99" "$np_e"
read -r c_rps c_50 c_99 c_e < <(run "https://127.0.0.1:$gport/v1/orders" "$tmp/post.lua")
printf '%-34s %12s %9s %9s %8s\n' "palisade gateway API checks, POST" "$c_rps" "$c_50" "$c_99" "$c_e"
cat >"$tmp/get.lua" <<EOF
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "bench/1.0"
EOF
read -r w_rps w_50 w_99 w_e < <(run "https://127.0.0.1:$gport/v1/search?q=palisade&page=2" "$tmp/get.lua")
printf '%-34s %12s %9s %9s %8s\n' "palisade gateway CRS (PL1), GET" "$w_rps" "$w_50" "$w_99" "$w_e"
/usr/bin/python3 -c "import sys; a=list(map(float, sys.argv[1:])); print('pass-through: %.0f%% of nginx; with API checks: %.0f%% of nginx POST; with CRS: %.0f%% of nginx GET' % (100*a[0]/a[1], 100*a[2]/a[3], 100*a[4]/a[1]))" \
  "$g_rps" "$n_rps" "$c_rps" "$np_rps" "$w_rps"
