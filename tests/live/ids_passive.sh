#!/usr/bin/env bash
# `palisade ids -i` on a mirror port: a client and a server in two network
# namespaces talk through a switch (a bridge that floods every frame, a hub)
# whose third port is in the namespace where palisade listens, as a switch's
# SPAN port would feed an IDS. Real peers: nginx (HTTP and TLS), dnsmasq, curl, dig.
# Each rule below must alert exactly once, in the right direction: an HTTP
# user agent, a normalised URI, a response body on the stream, a DNS query
# name, a TLS SNI. A clean request must not alert. Then SIGINT stops palisade
# cleanly with its summary. Documentation addresses only; bounded in time.
set -uo pipefail
PALISADE=${1:?usage: ids_passive.sh PALISADE}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
for t in nginx dnsmasq dig curl openssl tc; do
  command -v $t >/dev/null || { echo "SKIP: $t missing (scripts/install-deps.sh)"; exit 77; }
done
P=pip$$
TMP=$(mktemp -d)
chmod 755 "$TMP"  # nginx's workers (www-data) read the site from here
cleanup() {
  [ -n "${IDS_PID:-}" ] && kill "$IDS_PID" 2>/dev/null
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
  [ -n "${DNS_PID:-}" ] && kill "$DNS_PID" 2>/dev/null
  wait 2>/dev/null
  for ns in cli srv ids sw; do ip netns del $P-$ns 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
nsx() { local ns=$1; shift; ip netns exec $P-$ns "$@"; }
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

for ns in cli srv ids sw; do ip netns add $P-$ns || { echo "SKIP: cannot create namespaces"; exit 77; }; done
# The switch: a bridge that floods every frame to every port (ageing 0, a
# hub), so its third port sees both directions, as a SPAN port would.
nsx sw ip link add br0 type bridge ageing_time 0 || { echo "SKIP: no bridge support"; exit 77; }
for ns in cli srv ids; do
  ip link add p-$ns netns $P-sw type veth peer name eth0 netns $P-$ns
  nsx sw ip link set p-$ns master br0
  nsx sw ip link set p-$ns up
  nsx $ns ip link set lo up
  nsx $ns ip link set eth0 up
  nsx $ns ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1
done
nsx sw ip link set br0 up
nsx cli ip addr add 192.0.2.10/24 dev eth0
nsx srv ip addr add 192.0.2.80/24 dev eth0

mkdir -p "$TMP/www"
echo "<html><body>welcome</body></html>" >"$TMP/www/index.html"
echo "root:x:0:0:root:/root:/bin/bash" >"$TMP/www/leak.txt"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 \
  -subj "/CN=shop.example" >/dev/null 2>&1
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $TMP/body; proxy_temp_path $TMP/proxy; fastcgi_temp_path $TMP/fcgi;
  uwsgi_temp_path $TMP/uwsgi; scgi_temp_path $TMP/scgi;
  server {
    listen 192.0.2.80:80; listen 192.0.2.80:443 ssl;
    ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;
    root $TMP/www;
  }
}
EOF
nsx srv nginx -c "$TMP/nginx.conf" || { echo "FAIL: nginx did not start"; cat "$TMP/nginx.err"; exit 1; }
echo "192.0.2.66 c2.badactor.example" >"$TMP/hosts"
ip netns exec $P-srv dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$TMP/hosts" \
  --listen-address=192.0.2.80 --bind-interfaces --log-facility=- >/dev/null 2>&1 &
DNS_PID=$!  # not through nsx (a subshell): ip netns exec execs dnsmasq, the same process

cat >"$TMP/local.rules" <<'EOF'
alert http any any -> any any (msg:"scanner user agent"; flow:to_server; http.user_agent; content:"EvilScanner"; sid:1000001; rev:1;)
alert http any any -> any any (msg:"path traversal to passwd"; http.uri; content:"/etc/passwd"; sid:1000002; rev:1;)
alert tcp any 80 -> any any (msg:"passwd file in a response"; flow:established,to_client; content:"root:x:0:0:"; sid:1000003; rev:1;)
alert dns any any -> any any (msg:"query for a known C2 domain"; dns.query; content:"badactor.example"; endswith; sid:1000004; rev:1;)
alert tls any any -> any any (msg:"TLS to a watched name"; tls.sni; content:"shop.example"; sid:1000005; rev:1;)
EOF
# Not through nsx (a function runs in a subshell): $! must be palisade itself.
ip netns exec $P-ids "$PALISADE" ids -i eth0 -S "$TMP/local.rules" -l "$TMP/out" --duration 60 >"$TMP/summary" 2>"$TMP/err" &
IDS_PID=$!
sleep 1.5
nsx cli curl -s -o /dev/null -m 5 http://192.0.2.80/index.html                      # clean
nsx cli curl -s -o /dev/null -m 5 -A "EvilScanner/2.1" http://192.0.2.80/index.html
nsx cli curl -s -o /dev/null -m 5 --path-as-is "http://192.0.2.80/x/../../etc/%70asswd"
nsx cli curl -s -o /dev/null -m 5 http://192.0.2.80/leak.txt
nsx cli dig +tries=1 +time=2 @192.0.2.80 c2.badactor.example >/dev/null
nsx cli curl -s -o /dev/null -m 5 -k --resolve shop.example:443:192.0.2.80 https://shop.example/
sleep 1.5
kill -INT "$IDS_PID"
for _ in $(seq 1 50); do kill -0 "$IDS_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$IDS_PID" 2>/dev/null; then bad "palisade ids did not stop on SIGINT"; fi
wait "$IDS_PID"
rc=$?
IDS_PID=
if [ "$rc" -eq 0 ]; then ok; else bad "palisade ids -i exited $rc: $(cat "$TMP/err")"; fi
if grep -q "eth0: [1-9][0-9]* packets" "$TMP/summary"; then ok; else bad "no summary: $(cat "$TMP/summary")"; fi
cat "$TMP/summary"

/usr/bin/python3 - "$TMP/out/eve.json" <<'PY' && ok || bad "alerts"
import collections, json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
n = collections.Counter(e["alert"]["signature_id"] for e in ev)
for e in ev:
    print(" ", e["alert"]["signature_id"], e["src_ip"], "->", e["dest_ip"], e["alert"]["signature"])
want = {1000001: "192.0.2.10", 1000002: "192.0.2.10", 1000003: "192.0.2.80",
        1000004: "192.0.2.10", 1000005: "192.0.2.10"}
errors = []
for sid, src in want.items():
    if n[sid] != 1:
        errors.append(f"sid {sid}: {n[sid]} alerts, want 1")
    elif next(e for e in ev if e["alert"]["signature_id"] == sid)["src_ip"] != src:
        errors.append(f"sid {sid}: not from {src}")
if set(n) - set(want):
    errors.append(f"unexpected alerts: {sorted(set(n) - set(want))}")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY

echo "ids_passive: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
