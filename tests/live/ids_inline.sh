#!/usr/bin/env bash
# Inline IPS in the live switch: `palisade run` with the policy's ids section
# (examples/cloud.yaml plus rules), between VMs in network namespaces with real
# stacks and real peers (curl, python3's http.server, nginx with TLS).
#
#   pii-inet (198.51.100.7, the Internet; http.server on :8000) --- uplink ┐ pii-sw:
#   pii-web1 contoso/web1 192.0.2.4 (nginx :443, endpoint 203.0.113.10:443) ┘ palisade run
#
# Asserts: a clean request passes; a request matching a drop rule never
# reaches the server (its log shows it) and is counted as ids_drop; an alert
# rule alerts and lets the request through; a TLS SNI drop rule stops a
# handshake through the input endpoint while another name passes; the EVE
# alerts carry the NIC's private address, tenant, NIC and "blocked"/"allowed";
# Prometheus counts them; a reload with a new rule enforces it; under
# overload (ids capacity) fail-closed refuses and fail-open passes, counted;
# capture by alert writes the alerted flows' packets to pcapng. Documentation
# addresses only; bounded in time. Exit 77 (skipped) without root or netns.
set -uo pipefail
PALISADE=${1:?usage: ids_inline.sh PALISADE POLICY}
POLICY=${2:?usage: ids_inline.sh PALISADE POLICY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init pii$$ ip curl python3 nginx openssl ethtool

newns sw
vm inet sw up0 02:00:c6:33:64:07 198.51.100.7/24 ""
nsx inet ip route add 203.0.113.0/24 dev eth0
vm web1 sw pweb1 02:00:0a:00:00:04 192.0.2.4/27 192.0.2.1
mkdir -p "$TMP/inet" "$TMP/www"
echo internet >"$TMP/inet/index.html"
echo contoso-web1 >"$TMP/www/index.html"
head -c 4000000 /dev/urandom >"$TMP/inet/big.bin"
serve inet 8000 "$TMP/inet"
web web1 192.0.2.4 "$TMP/www"

cat >"$TMP/local.rules" <<'RULES'
drop http $HOME_NET any -> $EXTERNAL_NET any (msg:"path traversal to passwd"; flow:to_server; http.uri; content:"/etc/passwd"; classtype:web-application-attack; sid:9100001; rev:1;)
alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"scanner user agent"; flow:to_server; http.user_agent; content:"EvilScanner"; sid:9100002; rev:1;)
drop tls any any -> $HOME_NET 443 (msg:"TLS to a blocked name"; tls.sni; content:"blocked.example"; sid:9100003; rev:1;)
reject http $HOME_NET any -> $EXTERNAL_NET any (msg:"refused download"; flow:to_server; http.uri; content:"/reject-me"; sid:9100005; rev:1;)
RULES
# The example policy (its capture rule ids-alerts keeps alerted flows) with
# its ids section replaced by one for these rules.
sed '/^ids:$/,/^$/d' "$POLICY" >"$TMP/policy.yaml"
cat >>"$TMP/policy.yaml" <<'YAML'

ids:
  mode: ips
  rules: [local.rules]
  overload: fail-closed
YAML
grep -q "name: ids-alerts" "$TMP/policy.yaml" || { echo "FAIL: the capture rule was not added"; exit 1; }
start_switch sw -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1 \
  --workers 2 --metrics 127.0.0.1:9471 --capture-dir "$TMP/capture"
sleep 0.5
CURL=(curl -s --max-time 5)

expect_out internet "web1 -> Internet, a clean request passes inspection" \
  nsx web1 "${CURL[@]}" http://198.51.100.7:8000/
expect_drop sw ids_drop Ids "web1 -> Internet /etc/passwd (drop rule 9100001)" \
  nsx web1 "${CURL[@]}" --max-time 3 --path-as-is "http://198.51.100.7:8000/x/../etc/passwd"
if grep -q "etc/passwd" "$TMP/inet-8000.log"; then
  fail "the server received the dropped request: $(grep passwd "$TMP/inet-8000.log")"
else
  pass "the request matching the drop rule never reached the server"
fi
# reject: the client gets a RST at once (curl: connection reset, exit 56).
start=$(date +%s%N)
nsx web1 curl -s -o /dev/null --max-time 5 http://198.51.100.7:8000/reject-me
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 56 ] && [ "$ms" -lt 3000 ] && pass "reject rule 9100005: the client's request is reset (curl exit 56 in $ms ms)" ||
  fail "reject rule 9100005: curl exit $rc after $ms ms (wanted 56, a reset, at once)"
sleep 0.3  # the workers' next snapshot
[ "$(jstat sw ids.rejects)" -ge 1 ] && pass "the reject is counted (ids.rejects)" || fail "ids.rejects: $(jstat sw ids.rejects)"
expect_out internet "an alert rule alerts and lets the request through" \
  nsx web1 "${CURL[@]}" -A "EvilScanner/1.0" http://198.51.100.7:8000/
expect_out contoso-web1 "Internet -> VIP :443 with SNI shop.example passes inspection (TLS, DNAT)" \
  nsx inet "${CURL[@]}" -k --resolve shop.example:443:203.0.113.10 https://shop.example/
expect_drop sw ids_drop Ids "Internet -> VIP :443 with SNI blocked.example (drop rule 9100003)" \
  nsx inet "${CURL[@]}" --max-time 3 -k --resolve blocked.example:443:203.0.113.10 https://blocked.example/

sleep 1.2   # the event writer's flush
if python3 - "$TMP/sw-flows.json" <<'PY'; then pass "EVE alerts: NIC side, tenant and NIC, blocked/allowed"; else fail "EVE alerts"; fi
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"event_type":"alert"' in l]
for e in ev:
    print("   ", e["alert"]["signature_id"], e["alert"]["action"], e["src_ip"], "->", e["dest_ip"], e.get("nic"))
want = {9100001: ("blocked", "192.0.2.4"), 9100002: ("allowed", "192.0.2.4"),
        9100003: ("blocked", "198.51.100.7"), 9100005: ("blocked", "192.0.2.4")}
ok = True
for sid, (action, src) in want.items():
    got = [e for e in ev if e["alert"]["signature_id"] == sid]
    if len(got) != 1 or got[0]["alert"]["action"] != action or got[0]["src_ip"] != src \
            or got[0].get("tenant") != "contoso" or got[0].get("nic") != "contoso/web1":
        print(f"    sid {sid}: {len(got)} alert(s), want one {action} from {src} on contoso/web1")
        ok = False
sys.exit(0 if ok else 1)
PY
metrics=$(nsx sw curl -s http://127.0.0.1:9471/metrics)
if grep -q '^palisade_ids_alerts_total 4$' <<<"$metrics" &&
   grep -q '^palisade_ids_flows_dropped_total 3$' <<<"$metrics" &&
   grep -Eq '^palisade_ids_rejects_total [1-9][0-9]*$' <<<"$metrics"; then
  pass "Prometheus: 4 IDS alerts, 3 flows dropped, the reject's answer counted"
else
  fail "Prometheus: $(grep palisade_ids <<<"$metrics")"
fi

# A reload with a new drop rule: enforced for the next request.
expect_out internet "before the reload, /index.html?token=leak passes" \
  nsx web1 "${CURL[@]}" "http://198.51.100.7:8000/index.html?token=leak"
echo 'drop http $HOME_NET any -> any any (msg:"token in a URL"; http.uri; content:"token="; sid:9100004; rev:1;)' \
  >>"$TMP/local.rules"
msg=$(nsx sw "$PALISADE" reload --control "$TMP/sw.sock" 2>&1)
echo "    reload: $msg"
expect_drop sw ids_drop Ids "after the reload, the new drop rule 9100004 stops it" \
  nsx web1 "${CURL[@]}" --max-time 3 "http://198.51.100.7:8000/index.html?token=leak"

# Overload: a capacity far below a download's rate. fail-closed refuses what
# it cannot inspect; fail-open lets it through uninspected. Both counted.
sed -i 's/^  overload: fail-closed$/  overload: fail-closed\n  capacity: 2M/' "$TMP/policy.yaml"
msg=$(nsx sw "$PALISADE" reload --control "$TMP/sw.sock" 2>&1)
echo "    reload: $msg"
before=$(drops sw ids_overload)
nsx web1 curl -s -o /dev/null --max-time 4 http://198.51.100.7:8000/big.bin
after=$(drops sw ids_overload)
[ "$after" -gt "$before" ] && pass "fail-closed under overload: $((after - before)) packets refused (ids_overload)" ||
  fail "fail-closed: no ids_overload drop ($before -> $after)"
sed -i 's/^  overload: fail-closed$/  overload: fail-open/' "$TMP/policy.yaml"
msg=$(nsx sw "$PALISADE" reload --control "$TMP/sw.sock" 2>&1)
echo "    reload: $msg"
before=$(jstat sw ids.bypassed)
closed_before=$(drops sw ids_overload)
size=$(nsx web1 curl -s -o /dev/null -w '%{size_download}' --max-time 20 http://198.51.100.7:8000/big.bin)
sleep 0.3  # the workers' next snapshot
after=$(jstat sw ids.bypassed)
closed_after=$(drops sw ids_overload)
[ "$size" = 4000000 ] && [ "$after" -gt "$before" ] && [ "$closed_after" = "$closed_before" ] &&
  pass "fail-open under overload: the download completes, $((after - before)) packets passed uninspected, none refused" ||
  fail "fail-open: downloaded $size bytes, bypassed $before -> $after, ids_overload $closed_before -> $closed_after"

stop_switch sw
files=$(find "$TMP/capture/ids-alerts" -name '*.pcapng' 2>/dev/null | sort)
if [ -n "$files" ]; then
  n=0
  for f in $files; do n=$((n + $("$PALISADE" decode -q --json "$f" | python3 -c "import json,sys; print(json.load(sys.stdin)['packets'])"))); done
  comments=$(for f in $files; do tshark -r "$f" -T fields -e frame.comment 2>/dev/null; done | grep -c "IDS alert sid" || true)
  [ "$n" -gt 0 ] && pass "capture by alert: $n packets of alerted flows in $(echo "$files" | wc -l) pcapng file(s)" ||
    fail "capture by alert: no packets"
  if command -v tshark >/dev/null; then
    [ "$comments" -gt 0 ] && pass "their comments name the alert ($comments say 'IDS alert sid')" ||
      fail "no packet comment names an IDS alert"
  fi
else
  fail "capture by alert: no pcapng under $TMP/capture/ids-alerts"
fi
live_summary ids_inline
