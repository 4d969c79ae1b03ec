#!/usr/bin/env bash
# The DDoS stage live: `palisade run` as host hv1 of examples/cloud.yaml (its
# ddos section protects the VIPs) between an Internet namespace and contoso's
# web1 behind VIP 203.0.113.10:443, with real floods from hping3, each bounded
# to a few seconds, from spoofed documentation addresses only. Two runs:
#   1. the policy as shipped (detection, no limits, the SYN proxy on once a
#      SYN flood is detected): a SYN flood on the VIP's endpoint is reported
#      live as a syn_flood attack on 203.0.113.10 (flow log, metrics), the
#      proxy answers the rest of it with cookies, and the endpoint answers
#      (ddos_syn_proxy.sh shows the proxy in full, and the flood without it);
#   2. the same with the profile's rate limits (source_pps 100, target_pps
#      1000): the flood is reported and held back (ddos_limit), and the
#      endpoint answers right after it; a SYN-ACK reflection is reported as
#      synack_reflection and dropped by the DDoS stage (ddos);
#   3. web1 itself floods an Internet address (UDP, 10 kpps for 4 s, out by
#      the VIP's SNAT): the attack from the VIP is detected, web1 is
#      quarantined on its own port (isolate: a quarantine event, drops with
#      reason quarantine, its other traffic cut off), and released when the
#      attack ends.
set -uo pipefail
PALISADE=${1:?usage: ddos_live.sh PALISADE_BINARY POLICY}
POLICY=${2:?usage: ddos_live.sh PALISADE_BINARY POLICY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init pdl$$ ip curl python3 ethtool hping3 timeout

newns sw
vm inet sw up0 02:00:c6:33:64:07 198.51.100.7/24 ""
nsx inet ip route add 203.0.113.0/24 dev eth0
vm web1 sw pweb1 02:00:0a:00:00:04 192.0.2.4/27 192.0.2.1
site web1 443 contoso-web1
cp "$POLICY" "$TMP/policy.yaml"
sed 's/        syn: {pps: 2k}/        syn: {pps: 2k}\n      limits: {source_pps: 100, target_pps: 1000}/' \
  "$POLICY" >"$TMP/limits.yaml"
grep -q "limits: {source_pps: 100" "$TMP/limits.yaml" || { echo "FAIL: could not add limits"; exit 1; }
CURL=(curl -s --max-time 3 --retry 3 --retry-all-errors)

# attack_event VECTOR: the first event (start, or the update of an attack it
# joined) naming VECTOR on 203.0.113.10 in the flow log.
attack_event() {
  python3 - "$TMP/sw-flows.json" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:  # the writer's last line, not yet whole
        continue
    d = e.get("ddos")
    if e.get("event_type") == "ddos" and d["event"] in ("start", "update") \
            and sys.argv[2] in d["vectors"] and d["target"] == "203.0.113.10":
        print(f"{d['event']} of attack #{d['id']} on {d['target']} ({', '.join(d['vectors'])}), "
              f"{d['pps']} pps in the last second")
        break
PY
}
wait_event() {  # VECTOR: up to 15 s for the event (the log is written by its own thread,
  # behind the flood's own flow records when the machine is busy)
  for _ in $(seq 150); do
    out=$(attack_event "$1")
    [ -n "$out" ] && { echo "$out"; return 0; }
    sleep 0.1
  done
  return 1
}
synflood() {  # 3 seconds from one spoofed address, to the endpoint's port
  timeout 3 ip netns exec $P-inet hping3 --flood -q -S -p 443 -a 198.51.100.99 203.0.113.10 \
    >/dev/null 2>&1
}

# --- 1. detection only -----------------------------------------------------------
start_switch sw -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1 \
  --metrics 127.0.0.1:9471
sleep 0.5
expect_out contoso-web1 "before the flood: Internet -> VIP :443 reaches web1" \
  nsx inet "${CURL[@]}" http://203.0.113.10:443/
quota0=$(drops sw nic_quota)
synflood
if ev=$(wait_event syn_flood); then pass "SYN flood seen live: $ev"; else
  fail "no syn_flood attack on 203.0.113.10 in the flow log"; fi
starts=$(grep -c '"event":"start"' "$TMP/sw-flows.json")
[ "$starts" -eq 1 ] && pass "its two workers, each seeing half the flood, report it once (1 start event)" ||
  fail "the flood's start events: $starts (2 workers should report one attack)"
metrics=$(nsx sw curl -s http://127.0.0.1:9471/metrics)
n=$(awk '/^palisade_ddos_attacks_total /{print $2}' <<<"$metrics")
[ "${n:-0}" -eq 1 ] && pass "metrics: palisade_ddos_attacks_total $n" ||
  fail "metrics: palisade_ddos_attacks_total '${n:-missing}'"
out=$(nsx inet "${CURL[@]}" http://203.0.113.10:443/)
quota1=$(drops sw nic_quota)
cookies=$(jstat sw syn_proxy.cookies_sent)
if [ "$out" = contoso-web1 ] && [ "$cookies" -gt 1000 ]; then
  pass "once the flood was detected the SYN proxy answered it with cookies ($cookies) and the endpoint answers (nic_quota +$((quota1 - quota0)))"
else
  fail "on-attack SYN proxy: got '$out', cookies sent $cookies, nic_quota +$((quota1 - quota0))"
fi
stop_switch sw
SWITCHES=()

# --- 2. with the profile's rate limits ----------------------------------------------
: >"$TMP/sw-flows.json"
start_switch sw -p "$TMP/limits.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
sleep 0.5
synflood
if ev=$(wait_event syn_flood); then pass "with limits, the SYN flood is seen: $ev"; else
  fail "with limits: no syn_flood attack in the flow log"; fi
limited=$(drops sw ddos_limit)
[ "$limited" -gt 1000 ] && pass "with limits, the flood is held back by the DDoS stage (ddos_limit $limited)" ||
  fail "with limits: ddos_limit $limited"
expect_out contoso-web1 "with limits, the endpoint answers right after the flood" \
  nsx inet "${CURL[@]}" http://203.0.113.10:443/

# SYN-ACKs nobody asked for, 3 seconds, as reflectors would send them.
before=$(drops sw ddos)
timeout 3 ip netns exec $P-inet hping3 --flood -q -S -A -s 80 -k -p 40000 -a 198.51.100.98 \
  203.0.113.10 >/dev/null 2>&1
if ev=$(wait_event synack_reflection); then pass "SYN-ACK reflection seen live: $ev"; else
  fail "no synack_reflection attack on 203.0.113.10 in the flow log"; fi
after=$(drops sw ddos)
[ "$after" -gt "$before" ] && pass "the reflection was dropped by the DDoS stage (ddos +$((after - before)))" ||
  fail "no ddos drops during the reflection (stayed $before)"
expect_out contoso-web1 "after the reflection: the endpoint answers" \
  nsx inet "${CURL[@]}" http://203.0.113.10:443/

stop_switch sw
SWITCHES=()

# --- 3. an attack launched from a VM ------------------------------------------------
: >"$TMP/sw-flows.json"
start_switch sw -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
sleep 0.5
site inet 8080 internet-site
sleep 0.3
expect_out internet-site "before its flood: web1 reaches an Internet server" \
  nsx web1 "${CURL[@]}" http://198.51.100.7:8080/
# quarantine_event EVENT: the first such event for contoso/web1 in the flow log.
quarantine_event() {
  python3 - "$TMP/sw-flows.json" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line).get("ddos", {})
    except ValueError:  # a line the switch is still writing
        break
    if d.get("event") == sys.argv[2] and d.get("nic") == "contoso/web1":
        print(f"{d['event']} of {d['nic']} ({d['quarantine']}) for attack #{d['id']} "
              f"({d.get('attack', '?')}) from {d['target']}")
        break
PY
}
timeout 4 ip netns exec $P-web1 hping3 --udp -i u100 -q -p 9 198.51.100.7 >/dev/null 2>&1
sleep 0.5
ev=$(quarantine_event quarantine)
n=$(drops sw quarantine)
[ -n "$ev" ] && [ "$n" -gt 100 ] && pass "web1's UDP flood quarantines it: $ev; $n packets dropped (quarantine)" ||
  fail "no quarantine of contoso/web1 ('$ev', quarantine drops $n)"
out=$(nsx web1 curl -s --max-time 2 http://198.51.100.7:8080/)
[ -z "$out" ] && pass "while quarantined, web1's other traffic is cut off too" ||
  fail "web1 reached the Internet while quarantined: '$out'"
for _ in $(seq 30); do
  ev=$(quarantine_event release)
  [ -n "$ev" ] && break
  sleep 0.5
done
[ -n "$ev" ] && pass "the attack ended: $ev" || fail "no release of contoso/web1 within 15 s"
expect_out internet-site "released, web1 reaches the Internet server again" \
  nsx web1 curl -s --max-time 3 http://198.51.100.7:8080/
stop_switch sw
live_summary ddos_live
