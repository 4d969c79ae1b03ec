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
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init pip$$ nginx dnsmasq dig curl openssl ethtool

# The switch: a bridge that floods every frame to every port (ageing 0, a
# hub), so its third port sees both directions, as a SPAN port would.
newns sw
nsx sw ip link add br0 type bridge ageing_time 0 || { echo "SKIP: no bridge support"; exit 77; }
nsx sw ip link set br0 up
vm cli sw p-cli 02:00:00:00:00:0a 192.0.2.10/24 ""
vm srv sw p-srv 02:00:00:00:00:50 192.0.2.80/24 ""
vm ids sw p-ids 02:00:00:00:00:99 "" ""
for port in p-cli p-srv p-ids; do nsx sw ip link set "$port" master br0; done

mkdir -p "$TMP/www"
echo "<html><body>welcome</body></html>" >"$TMP/www/index.html"
echo "root:x:0:0:root:/root:/bin/bash" >"$TMP/www/leak.txt"
web srv 192.0.2.80 "$TMP/www"
echo "192.0.2.66 c2.badactor.example" >"$TMP/hosts"
dns srv 192.0.2.80 "$TMP/hosts"

cat >"$TMP/local.rules" <<'EOF'
alert http any any -> any any (msg:"scanner user agent"; flow:to_server; http.user_agent; content:"EvilScanner"; sid:1000001; rev:1;)
alert http any any -> any any (msg:"path traversal to passwd"; http.uri; content:"/etc/passwd"; sid:1000002; rev:1;)
alert tcp any 80 -> any any (msg:"passwd file in a response"; flow:established,to_client; content:"root:x:0:0:"; sid:1000003; rev:1;)
alert dns any any -> any any (msg:"query for a known C2 domain"; dns.query; content:"badactor.example"; endswith; sid:1000004; rev:1;)
alert tls any any -> any any (msg:"TLS to a watched name"; tls.sni; content:"shop.example"; sid:1000005; rev:1;)
EOF
# Not through nsx (a function runs in a subshell): $! must be palisade itself.
ip netns exec $P-ids "$PALISADE" ids -i eth0 -S "$TMP/local.rules" -l "$TMP/out" --duration 60 \
  >"$TMP/summary" 2>"$TMP/err" &
IDS_PID=$!
PIDS+=($IDS_PID)
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
if kill -0 "$IDS_PID" 2>/dev/null; then fail "palisade ids did not stop on SIGINT"; fi
wait "$IDS_PID"
rc=$?
if [ "$rc" -eq 0 ]; then pass "SIGINT: clean exit"; else fail "palisade ids -i exited $rc: $(cat "$TMP/err")"; fi
if grep -q "eth0: [1-9][0-9]* packets" "$TMP/summary"; then
  pass "summary: $(cat "$TMP/summary")"
else
  fail "no summary: $(cat "$TMP/summary")"
fi

if /usr/bin/python3 - "$TMP/out/eve.json" <<'PY'; then pass "each rule alerted once, in its direction"; else fail "alerts"; fi
import collections, json, sys
ev = [e for e in map(json.loads, open(sys.argv[1])) if e["event_type"] == "alert"]
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

# The other EVE event types, as Suricata writes them by default: an http
# event per request (with its response), the DNS query and its answer, the
# TLS ClientHello's name, and a flow event for every flow when it ends.
if /usr/bin/python3 - "$TMP/out/eve.json" <<'PY'; then pass "http, dns, tls and flow events"; else fail "http, dns, tls and flow events"; fi
import collections, json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for e in ev:
    by[e["event_type"]].append(e)
print("  ", {k: len(v) for k, v in sorted(by.items())})
errors = []
urls = sorted(e["http"]["url"] for e in by["http"])
if urls != sorted(["/index.html", "/index.html", "/x/../../etc/%70asswd", "/leak.txt"]):
    errors.append(f"http urls {urls}")
if not all(e["http"].get("status") in (200, 400, 404) for e in by["http"]):
    errors.append("an http event without the response's status")
if any(e["http"].get("http_user_agent", "").startswith("EvilScanner") for e in by["http"]) is False:
    errors.append("no http event with the scanner's user agent")
dns = sorted((e["dns"]["type"], e["dns"]["rrname"]) for e in by["dns"])
if dns != [("answer", "c2.badactor.example"), ("query", "c2.badactor.example")]:
    errors.append(f"dns {dns}")
tls = [e["tls"].get("sni") for e in by["tls"]]
if tls != ["shop.example"]:
    errors.append(f"tls {tls}")
http_flows = [e for e in by["flow"] if e.get("app_proto") == "http"]
if len(http_flows) != 4 or not all(f["flow"]["pkts_toserver"] > 0 and f["flow"]["bytes_toclient"] > 0
                                   for f in http_flows):
    errors.append(f"{len(http_flows)} http flow events (want 4, each with packets both ways)")
ids = {e["flow_id"] for e in by["http"]}
if not ids <= {e["flow_id"] for e in by["flow"]}:
    errors.append("an http event's flow has no flow event")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY

live_summary ids_passive
