#!/usr/bin/env bash
# Makes the IDS benchmark capture: real HTTP, HTTPS and DNS sessions between
# two network namespaces, recorded by tcpdump until the file passes SIZE_MB
# (default 220). The server namespace runs nginx (HTTP on 80, TLS on 443 with
# a throwaway self-signed certificate, gzip on for text) and dnsmasq (DNS on
# 53, UDP and TCP); the client namespace runs curl (keep-alive, many URLs per
# connection, GET and POST, several user agents and host names, SNI) and dig.
# The site is generated text, HTML, JSON and binary objects of 1 KB to 2 MB.
# Only documentation addresses (192.0.2.0/24); bounded by size and by
# MAX_SECONDS (default 300); namespaces removed on exit, even on failure.
# Usage: bench/ids_capture.sh OUT.pcap [SIZE_MB] [MAX_SECONDS]
set -uo pipefail
OUT=${1:?usage: ids_capture.sh OUT.pcap [SIZE_MB] [MAX_SECONDS]}
SIZE_MB=${2:-220}
MAX_SECONDS=${3:-300}
# The namespaces, nginx and dnsmasq come from the live suite's helpers
# (tests/live/lib.sh): every process and namespace goes on exit, even on failure.
# shellcheck source=../tests/live/lib.sh
. "$(cd "$(dirname "$0")/.." && pwd)/tests/live/lib.sh"
live_init pic$$ nginx dnsmasq dig curl tcpdump openssl ethtool
newns cli
newns srv
ip link add eth0 netns $P-cli type veth peer name eth0 netns $P-srv
for ns in cli srv; do
  nsx $ns ip link set eth0 up
  nooffload $ns eth0  # real segment sizes on the wire, as a NIC would send them
done
nsx cli ip addr add 192.0.2.10/24 dev eth0
nsx srv ip addr add 192.0.2.80/24 dev eth0

# The site.
www=$TMP/www
mkdir -p "$www/static" "$www/api" "$www/downloads"
/usr/bin/python3 - "$www" <<'PY'
import json, os, random, sys
random.seed(7)
root = sys.argv[1]
words = ("cloud tenant network firewall packet policy router switch gateway session "
         "token account invoice order customer product shipment region zone backup "
         "cluster service deploy metric alert report storage volume snapshot image").split()
def text(n):
    out, size = [], 0
    while size < n:
        w = random.choice(words)
        out.append(w); size += len(w) + 1
    return " ".join(out)[:n]
for i in range(40):
    n = random.choice([1500, 4000, 12000, 30000, 80000, 200000])
    with open(f"{root}/static/page{i}.html", "w") as f:
        f.write(f"<html><head><title>{text(40)}</title></head><body><p>{text(n)}</p>"
                f"<script src=\"/static/app{i % 8}.js\"></script></body></html>")
for i in range(8):
    with open(f"{root}/static/app{i}.js", "w") as f:
        f.write("function f%d(x){return x+%d;}\n" % (i, i) + "// " + text(60000))
for i in range(30):
    items = [{"id": j, "name": text(20), "price": random.randint(1, 9999)} for j in range(random.choice([5, 50, 400]))]
    with open(f"{root}/api/items{i}.json", "w") as f:
        json.dump({"items": items}, f)
for i, n in enumerate([300000, 700000, 1200000, 2000000]):
    with open(f"{root}/downloads/blob{i}.bin", "wb") as f:
        f.write(os.urandom(n))
PY
web srv 192.0.2.80 "$www" \
  "types { text/html html; application/javascript js; application/json json; application/octet-stream bin; }
  gzip on; gzip_types application/javascript application/json; gzip_min_length 1000;
  keepalive_requests 1000;" \
  'location /submit { client_max_body_size 1m; return 200 "accepted\n"; }'
cat >"$TMP/hosts" <<'EOF'
192.0.2.80 shop.example
192.0.2.80 api.example
192.0.2.80 cdn.example
EOF
for i in $(seq 1 200); do echo "192.0.2.$((100 + i % 100)) host$i.example" >>"$TMP/hosts"; done
dns srv 192.0.2.80 "$TMP/hosts"

ip netns exec $P-cli tcpdump -i eth0 -s 0 -U -w "$OUT" >/dev/null 2>&1 &
DUMP_PID=$!
PIDS+=($DUMP_PID)
sleep 1

# Clients: each loop is one kind of traffic; they stop when the file is big enough.
stop=$TMP/stop
agents=("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
        "curl/7.88.1" "python-requests/2.31.0")
http_loop() {
  local scheme=$1 port=$2 n=0
  while [ ! -e "$stop" ]; do
    local host=$([ $((n % 3)) -eq 0 ] && echo shop.example || echo cdn.example)
    local urls=()
    for i in $(seq 0 7); do urls+=("$scheme://$host/static/page$(( (n * 7 + i) % 40 )).html?ref=$n&q=item$i"); done
    urls+=("$scheme://$host/static/app$((n % 8)).js" "$scheme://api.example/api/items$((n % 30)).json")
    [ $((n % 10)) -eq 0 ] && urls+=("$scheme://cdn.example/downloads/blob$((n % 4)).bin")
    nsx cli curl -s -k -o /dev/null --compressed -A "${agents[$((n % 4))]}" \
      --resolve "$host:$port:192.0.2.80" --resolve "api.example:$port:192.0.2.80" \
      --resolve "cdn.example:$port:192.0.2.80" -H "Cookie: session=$n$RANDOM" "${urls[@]}" \
      >/dev/null 2>&1
    nsx cli curl -s -k -o /dev/null --resolve "api.example:$port:192.0.2.80" \
      -d "user=u$n&action=checkout&items=$(printf 'sku%d,' $(seq 1 $((n % 40 + 1))))" \
      "$scheme://api.example/submit" >/dev/null 2>&1
    n=$((n + 1))
  done
}
dns_loop() {
  local n=0
  while [ ! -e "$stop" ]; do
    local names=()
    for i in $(seq 1 20); do names+=("host$(( (n * 20 + i) % 200 + 1 )).example"); done
    nsx cli dig +tries=1 +time=1 @192.0.2.80 "${names[@]}" >/dev/null 2>&1
    nsx cli dig +tcp +tries=1 +time=1 @192.0.2.80 shop.example A api.example TXT >/dev/null 2>&1
    n=$((n + 1))
  done
}
http_loop http 80 &
CLIENTS=($!)
http_loop https 443 &
CLIENTS+=($!)
dns_loop &
CLIENTS+=($!)
PIDS+=("${CLIENTS[@]}")
start=$SECONDS
last=-1
while :; do
  size=$(stat -c %s "$OUT" 2>/dev/null || echo 0)
  mb=$((size >> 20))
  if [ $((SECONDS - start)) -ne "$last" ] && [ $(((SECONDS - start) % 10)) -eq 0 ]; then
    last=$((SECONDS - start))
    echo "ids_capture: ${mb} MB after ${last} s"
  fi
  [ "$mb" -ge "$SIZE_MB" ] && break
  if [ $((SECONDS - start)) -ge "$MAX_SECONDS" ]; then
    echo "ids_capture: stopped at ${MAX_SECONDS} s with ${mb} MB"
    break
  fi
  sleep 0.5
done
touch "$stop"
wait_for=$((SECONDS + 20))
while kill -0 "${CLIENTS[@]}" 2>/dev/null && [ $SECONDS -lt $wait_for ]; do sleep 0.5; done
sleep 1
kill "$DUMP_PID" 2>/dev/null
wait "$DUMP_PID" 2>/dev/null
echo "ids_capture: wrote $OUT ($(( $(stat -c %s "$OUT") >> 20 )) MB)"
