#!/usr/bin/env bash
# make demo: the shipped example end to end, with a readable summary.
#   1. validate the example policy and summarise the topology it defines
#   2. show that a broken policy is refused with precise, located errors
#   3. generate traffic through that topology (one pcapng interface per port)
#   4. replay it through the data plane: passes and drops per layer and reason
#      (the inline IPS last: the demo's web attacks dropped, their alerts);
#      then as one host sees it, with the other host's NICs behind VXLAN
#   5. trace single packets layer by layer; the effective rules on a NIC
#   6. DDoS detection on the real attack captures of ../shared/data (and the SYN
#      proxy answering one readdressed to a VIP); the IDS on
#      the suricata-verify cases and ET Open (when the shared data is present)
#   7. the tamper-evident log of step 4: verified intact, then edited and caught
#   7b. the packets the policy's capture rules selected, in pcapng files
#   8. reports: the day of step 4, and a month of everyday traffic as a monthly
#      summary (HTML with charts; PDF when Chromium is installed)
#   9. the API gateway (examples/gateway.yaml) in front of nginx on loopback:
#      credentials, revocation, content checks, the CRS WAF, smuggling shapes
set -euo pipefail
build=${1:-build/release}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
palisade="$build/src/cli/palisade"
out="$build/demo"
mkdir -p "$out"
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bold "1. The example policy: two tenants sharing 192.0.2.0/25, three tiers, two hosts"
"$palisade" check "$here/cloud.yaml"

bold "2. A broken policy is refused, every problem located (exit status 1)"
set +e
(cd "$root/tests/policies/broken" && "$root/$palisade" check dangling-reference.yaml)
echo "(exit status $?)"
set -e

bold "3. Traffic through the topology: boot (DHCP, ARP, ND, DNS), Internet clients, tiers, attacks"
"$build/tools/palisade-traffic" -p "$here/cloud.yaml" -o "$out/traffic.pcapng"

bold "4. The data plane over that traffic: what each layer passed and dropped, and why"
rm -rf "$out/log" "$out/keys" "$out/capture"
mkdir -p "$out/keys"
"$palisade" log keygen --private "$out/keys/log.key" --public "$out/keys/log.pub" >/dev/null
"$palisade" replay -p "$here/cloud.yaml" -r "$out/traffic.pcapng" -w "$out/forwarded.pcapng" \
  -e "$out/flows.json" --log-dir "$out/log" --log-key "$out/keys/log.key" \
  --log-checkpoints "$out/keys/checkpoints.jsonl" --capture-dir "$out/capture"
echo "(one flow-log record, EVE JSON:)"
head -1 "$out/flows.json"
echo "(the inline IPS's alerts: examples/ids.rules on the flows of every NIC)"
python3 - "$out/flows.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event_type") != "alert":
        continue
    a = e["alert"]
    print(f"  {a['action']:8} {e['src_ip']}:{e.get('src_port', '')} -> {e['dest_ip']}:{e.get('dest_port', '')}"
          f" ({e.get('nic', '?')}) sid {a['signature_id']}: {a['signature']}"
          f" [{e.get('http', {}).get('url', '')}]")
PY

bold "4b. The same topology as host hv1's switch sees it: NICs on hv2 are behind VXLAN"
"$build/tools/palisade-traffic" -p "$here/cloud.yaml" --host hv1 -o "$out/hv1.pcapng"
"$palisade" replay -p "$here/cloud.yaml" --host hv1 -r "$out/hv1.pcapng" -w "$out/hv1-forwarded.pcapng"
echo
"$palisade" trace -p "$here/cloud.yaml" --host hv1 'tcp 192.0.2.4:40000 -> 192.0.2.36:8080 via contoso/web1'

bold "5. Why: palisade trace, layer by layer"
"$palisade" trace -p "$here/cloud.yaml" 'tcp 198.51.100.7:5555 -> 203.0.113.10:443 via uplink'
echo
"$palisade" trace -p "$here/cloud.yaml" 'tcp 192.0.2.4:40000 -> 192.0.2.68:5432 via contoso/web1'
echo
"$palisade" trace -p "$here/cloud.yaml" 'tcp 198.51.100.66:1234 -> 203.0.113.20:443 via uplink'
echo
"$palisade" rules -p "$here/cloud.yaml" --nic contoso/db1 | head -24

data="$root/../shared/data"
bold "6. Real attacks (../shared/data/ddos): DDoS detection, vector and victim"
if [ -d "$data/ddos" ]; then
  "$palisade" ddos -r "$data/ddos/pkt.TCP.synflood.spoofed.pcap" --protect 10.10.10.0/24 \
    -l "$out/ddos/synflood"
  echo
  echo "(every capture: its first attack's main vector, victim, how soon it was seen, its peak;"
  echo " the 1 pps SYN-ACK trickle is seen by a strict profile, as the ddos_captures test shows)"
  for f in "$data"/ddos/*.pcap "$data"/ddos/*.pcapng; do
    name=$(basename "$f")
    "$palisade" ddos -q -r "$f" --protect 10.10.10.0/24 -l "$out/ddos/$name"
    /usr/bin/python3 - "$out/ddos/$name/eve.json" "$name" <<'PY'
import json, sys
from datetime import datetime
def t(s):
    return datetime.fromisoformat(s).timestamp()
events = [json.loads(l) for l in open(sys.argv[1])]
starts = [e for e in events if e["ddos"]["event"] == "start"]
if not starts:
    print(f"  {sys.argv[2]:52} no attack at the default floors")
for e in starts[:1]:
    d = e["ddos"]
    end = [x["ddos"] for x in events if x["ddos"]["event"] == "end" and x["ddos"]["id"] == d["id"]]
    peak = end[0]["peak_pps"] if end else d["peak_pps"]
    print(f"  {sys.argv[2]:52} {d['attack']:21} -> {d['target']:11} seen after "
          f"{t(e['timestamp']) - t(d['start']):.2f} s, peak {peak:>6} pps")
PY
  done
else
  echo "skipped: $data/ddos is absent (the shared reference data)"
fi

bold "6a. The SYN proxy: that spoofed SYN flood readdressed to contoso's VIP:443, through the data plane"
if [ -f "$data/ddos/pkt.TCP.synflood.spoofed.pcap" ] && command -v tcprewrite >/dev/null; then
  tcprewrite --dstipmap=10.10.10.0/24:203.0.113.10/32 --portmap=25565:443 \
    --infile="$data/ddos/pkt.TCP.synflood.spoofed.pcap" --outfile="$out/synflood-vip.pcap"
  "$palisade" replay -p "$here/cloud.yaml" -r "$out/synflood-vip.pcap" -e "$out/synflood.json" 2>/dev/null |
    sed -n '1,4p'
  echo "(before the flood was detected its SYNs opened flows toward web1; after it, the proxy"
  echo " answered each with a SYN cookie and kept nothing: see tests/live/ddos_syn_proxy.sh for"
  echo " real clients completing their handshakes through it during a flood)"
else
  echo "skipped: the SYN flood capture or tcprewrite is absent"
fi

bold "6b. The IDS: Suricata's own verification cases, and the ET Open ruleset loaded"
if [ -d "$data/suricata-verify/tests" ]; then
  "$palisade" ids verify "$data/suricata-verify/tests" -q
  "$palisade" ids check-rules "$data/rules/et-open" | head -2
else
  echo "skipped: $data is absent (the shared reference data)"
fi

bold "7. The same events in the tamper-evident log: chained, signed, verified"
log1=$(ls "$out/log" | head -1)
"$palisade" log verify "$out/log" --pubkey "$out/keys/log.pub" --checkpoints "$out/keys/checkpoints.jsonl"
n=$(grep -n -m1 'ssh-from-office' "$out/log/$log1" | cut -d: -f1)
echo "(an intruder hides who opened the SSH session of line $n: its source address is changed)"
cp -a "$out/log" "$out/log-tampered"
sed -i "${n}s/\"src_ip\":\"[0-9.]*\"/\"src_ip\":\"198.51.100.99\"/" "$out/log-tampered/$log1"
set +e
"$palisade" log verify "$out/log-tampered" --pubkey "$out/keys/log.pub" \
  --checkpoints "$out/keys/checkpoints.jsonl"
echo "(exit status $?)"
set -e
rm -rf "$out/log-tampered"

bold "7b. Traffic kept as evidence: the policy's capture rules wrote pcapng files"
find "$out/capture" -name '*.pcapng' | sort | sed "s|^$out/||"
if command -v tshark >/dev/null; then
  echo "(the database rule's file, as tshark reads it: port, addresses, what the switch did)"
  tshark -r "$(find "$out/capture/database" -name '*.pcapng' | head -1)" -T fields \
    -e frame.interface_name -e ip.src -e ip.dst -e tcp.dstport -e frame.comment 2>/dev/null |
    grep -v 'answered by the switch' | head -6
fi

bold "8. Reports: the day above, and a monthly summary of a month of everyday traffic"
"$palisade" report "$out/log" -o "$out/report-day.html"
"$build/tools/palisade-traffic" -p "$here/cloud.yaml" --month 2026-10 -o "$out/october.pcapng"
rm -rf "$out/log-october"
"$palisade" replay -q -p "$here/cloud.yaml" -r "$out/october.pcapng" --log-dir "$out/log-october" \
  --log-key "$out/keys/log.key"
pdf=()
if [ -x /usr/bin/chromium ]; then pdf=(--pdf "$out/report-2026-10.pdf"); fi
"$palisade" report "$out/log-october" --month 2026-10 -o "$out/report-2026-10.html" "${pdf[@]}"
"$palisade" report "$out/log-october" --month 2026-10 --json --top 3 >"$out/report-2026-10.json"
/usr/bin/python3 - "$out/report-2026-10.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
f, d = j["flows"], j["dropped"]
print("October 2026: %s connections allowed (%.1f MB), %s refused; %s of %s packets dropped"
      % (format(f["allowed"], ","), f["bytes"] / 1e6, format(f["denied"], ","),
         format(d["packets"], ","), format(d["of"], ",")))
print("  top sources:  " + ", ".join(r["key"] for r in j["top_src"]))
print("  most refused: " + ", ".join("%s (%d)" % (r["key"], r["count"]) for r in j["denied_src"]))
PY

bold "9. The API gateway: TLS, API keys, client certificates, limits, content checks, the CRS WAF"
if command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ]; then
  gdir="$(cd "$out" && pwd)/gateway"  # absolute: nginx reads it from its own directory
  rm -rf "$gdir"
  mkdir -p "$gdir"
  chmod 755 "$gdir"
  bash "$root/tests/integration/make_certs.sh" "$gdir/certs" api.test client1 >/dev/null
  chmod 600 "$gdir/certs/"*.key
  cp "$here/gateway.yaml" "$gdir/gateway.yaml"
  : >"$gdir/revoked.txt"
  cat >"$gdir/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
pid $gdir/nginx.pid;
error_log $gdir/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $gdir/b; proxy_temp_path $gdir/p; fastcgi_temp_path $gdir/f;
  uwsgi_temp_path $gdir/u; scgi_temp_path $gdir/s;
  server {
    listen 127.0.0.1:18481;
    location / { echo_read_request_body; echo "orders API: \$request_method \$uri for \$http_x_authenticated_identity"; }
  }
}
NGINX
  gw_pid=
  stop_gateway() {
    [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
    [ -f "$gdir/nginx.pid" ] && kill "$(cat "$gdir/nginx.pid")" 2>/dev/null
    gw_pid=
  }
  trap stop_gateway EXIT
  nginx -c "$gdir/nginx.conf"
  "$palisade" gateway -c "$gdir/gateway.yaml" -e "$gdir/audit.json" >"$gdir/gateway.out" 2>&1 &
  gw_pid=$!
  for _ in $(seq 100); do grep -q "route(s)" "$gdir/gateway.out" 2>/dev/null && break; sleep 0.1; done
  cat "$gdir/gateway.out"
  C=(curl -s --max-time 5 --cacert "$gdir/certs/ca.pem" --resolve api.test:18443:127.0.0.1 -H "Accept: */*")
  K=(-H "X-API-Key: demo-key-billing-0123456789")
  ask() { # what, curl args...
    local what=$1; shift
    printf '  %-52s -> %s\n' "$what" "$("${C[@]}" -o /dev/null -w '%{http_code}' "$@")"
  }
  ask "GET /v1/orders with the billing key" "${K[@]}" https://api.test:18443/v1/orders
  ask "GET /v1/orders without credentials" https://api.test:18443/v1/orders
  ask "GET /v1/orders with client1's certificate (read role)" --cert "$gdir/certs/client1.pem" \
    --key "$gdir/certs/client1.key" https://api.test:18443/v1/orders
  ask "POST an order (JSON)" "${K[@]}" -H 'Content-Type: application/json' -d '{"sku":"A1","qty":2}' \
    https://api.test:18443/v1/orders
  ask "POST XML with a DOCTYPE (XXE)" "${K[@]}" -H 'Content-Type: application/xml' \
    -d '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>' https://api.test:18443/v1/orders
  ask "POST JSON nested 40 deep" "${K[@]}" -H 'Content-Type: application/json' \
    -d "$(printf '%.0s[' $(seq 40))$(printf '%.0s]' $(seq 40))" https://api.test:18443/v1/orders
  ask "GET with SQL injection (WAF blocking)" "${K[@]}" -G --data-urlencode "id=1' OR '1'='1" \
    https://api.test:18443/v1/orders
  ask "GET the catalogue with XSS (WAF detection only)" -G \
    --data-urlencode "q=<script>alert(1)</script>" https://api.test:18443/v1/catalogue
  ask "a smuggling shape (Content-Length and chunked)" "${K[@]}" -H 'Transfer-Encoding: chunked' \
    -H 'Content-Length: 3' -d 'abc' https://api.test:18443/v1/orders
  ask "GET /v1/orders/../admin (ambiguous path)" --path-as-is https://api.test:18443/v1/orders/../admin
  echo "billing-svc" >"$gdir/revoked.txt"
  kill -HUP "$gw_pid"
  sleep 0.3
  ask "GET with the billing key after its revocation" "${K[@]}" https://api.test:18443/v1/orders
  stop_gateway
  trap - EXIT
  echo "(one audit event:)"
  grep '"waf"' "$gdir/audit.json" | grep '"blocked"' | head -1
  /usr/bin/python3 - "$gdir/audit.json" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    g = json.loads(line)["gateway"]
    c[(g["outcome"], g.get("reason", ""))] += 1
print("audit: " + "; ".join("%d %s%s" % (n, o, (" (" + r + ")") if r else "") for (o, r), n in sorted(c.items())))
PY
else
  echo "(skipped: nginx with its echo module is not installed; scripts/install-deps.sh installs it)"
fi

cat <<MSG

Done. What ran: policy validation (palisade check), traffic generated from the
topology with one pcapng interface per switch port, the layered data plane over
it (palisade replay: port security, infrastructure, isolation, endpoints with
NAT and ACLs, perimeter / subnet / NIC groups, conntrack, IP fragments
following their first through SNAT, even when they came before it (and
fragment attacks dropped), the inline
IPS dropping web attacks; VXLAN between the two hosts with the receiving host
checking the sender), per-packet traces
(palisade trace) and effective rules (palisade rules), DDoS detection on real
attack captures (palisade ddos) and the IDS on Suricata's verification cases,
the flow logs kept in a hash-chained, signed log that palisade log verify
checks, and the API gateway (palisade gateway) in front of nginx with one
audit event per request.
Files: $out/traffic.pcapng (input), $out/forwarded.pcapng (what left each port,
rewritten), $out/flows.json (flow logs), $out/hv1.pcapng and
$out/hv1-forwarded.pcapng (host hv1's view, VXLAN on the uplink), $out/capture/ids-alerts
(the alerted flows' packets), $out/log
(the tamper-evident log; its public key in $out/keys), $out/report-day.html and
$out/report-2026-10.html (.pdf): reports to open in a browser; $out/capture:
the capture rules' pcapng files; $out/gateway/audit.json: the gateway's audit
events. Open the pcapng
files in Wireshark.
MSG
