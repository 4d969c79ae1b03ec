#!/usr/bin/env bash
# Live suite, one host: `palisade run` as the switch of host hv1 of
# examples/cloud.yaml, between VMs in network namespaces, with real TCP/IP
# stacks and real tools (curl, python3's http.server, nc, ping).
#
#   plt-inet (198.51.100.7, the Internet) --veth-- uplink ┐
#   plt-web1  contoso/web1  192.0.2.4   (https endpoint   │  plt-sw:
#             of VIP 203.0.113.10:443 -> :443)            ├─ palisade run --host hv1
#   plt-db1   contoso/db1   192.0.2.68  (db tier)         │  (2 workers)
#   plt-jump1 contoso/jump1 192.0.2.100 (management)      │
#   plt-fe1   fabrikam/fe1  192.0.2.4   (same address as  │
#             web1; https of VIP 203.0.113.20:443 -> :8443)┘
#
# Each assertion that expects a drop checks the drop reason (and so its layer)
# in `palisade stats --json`; a failure prints the stats, which name the
# layer and reason of every drop. Exit 77 (skipped) without root or netns.
set -uo pipefail
PALISADE=${1:?usage: live_single_host.sh PALISADE_BINARY POLICY}
POLICY=${2:?usage: live_single_host.sh PALISADE_BINARY POLICY}

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init plt$$ ip nc curl python3 ping ethtool

# --- topology -----------------------------------------------------------------
newns sw
vm inet sw up0 02:00:c6:33:64:07 198.51.100.7/24 ""
nsx inet ip route add 203.0.113.0/24 dev eth0        # the VIPs are on the uplink's segment
vm web1 sw pweb1 02:00:0a:00:00:04 192.0.2.4/27 192.0.2.1
vm db1 sw pdb1 02:00:0a:00:00:44 192.0.2.68/27 192.0.2.65
vm jump1 sw pjump1 02:00:0a:00:00:64 192.0.2.100/28 192.0.2.97
vm fe1 sw pfe1 02:00:0b:00:00:04 192.0.2.4/26 192.0.2.1

# Servers: what each answers says who answered.
mkdir -p "$TMP/web1" "$TMP/fe1" "$TMP/inet"
echo contoso-web1 >"$TMP/web1/index.html"
echo fabrikam-fe1 >"$TMP/fe1/index.html"
echo internet >"$TMP/inet/index.html"
head -c 30000000 /dev/urandom >"$TMP/web1/big.bin"
serve web1 443 "$TMP/web1"
serve fe1 8443 "$TMP/fe1"
serve inet 8000 "$TMP/inet"
ip netns exec $P-db1 nc -lk -p 5432 >/dev/null 2>&1 & PIDS+=($!)
ip netns exec $P-db1 nc -lk -p 22 >/dev/null 2>&1 & PIDS+=($!)
tcp_listening db1 5432 && tcp_listening db1 22 || { echo "FAIL: nc did not listen on db1"; exit 1; }

cp "$POLICY" "$TMP/policy.yaml"
chmod 644 "$TMP/policy.yaml"   # readable by the unprivileged check below
# Refusals: each names what is wrong, with the documented exit status.
refuse() {  # expected-status message-pattern description args...
  local want=$1 pattern=$2 what=$3; shift 3
  local err rc
  err=$(ip netns exec $P-sw "$@" --control "$TMP/refused.sock" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq "$want" ] && grep -q "$pattern" <<<"$err"; then pass "$what: exit $rc, '$err'"
  else fail "$what: exit $rc (wanted $want), '$err'"; fi
}
refuse 2 "interface nosuch0: no such interface" "a missing interface" \
  "$PALISADE" run -p "$TMP/policy.yaml" --host hv1 --uplink nosuch0 --port contoso/web1=pweb1
refuse 2 "no NIC 'contoso/webb1' (did you mean 'contoso/web1'?)" "a port not in the policy" \
  "$PALISADE" run -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/webb1=pweb1
refuse 2 "places NIC contoso/web2 on host hv2" "a NIC of another host" \
  "$PALISADE" run -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/web2=pweb1
if command -v setpriv >/dev/null; then
  refuse 3 "needs CAP_NET_RAW" "no privileges" setpriv --reuid=65534 --regid=65534 --clear-groups \
    --inh-caps=-all "$PALISADE" run -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
fi
mkdir -p "$TMP/keys"
"$PALISADE" log keygen --private "$TMP/keys/log.key" --public "$TMP/keys/log.pub" >/dev/null
start_switch sw -p "$TMP/policy.yaml" --host hv1 --uplink up0 \
  --port contoso/web1=pweb1 --port contoso/db1=pdb1 --port contoso/jump1=pjump1 \
  --port fabrikam/fe1=pfe1 --workers 2 --metrics 127.0.0.1:9469 \
  --log-dir "$TMP/log" --log-key "$TMP/keys/log.key" --report-dir "$TMP/reports" --report-every day \
  --capture-dir "$TMP/capture"
sleep 0.5   # the http servers
CURL=(curl -s --max-time 5)

# --- input endpoints, tenants with the same addresses -------------------------
out=$(nsx inet "${CURL[@]}" http://203.0.113.10:443/)
[ "$out" = contoso-web1 ] && pass "Internet -> contoso VIP :443 reaches web1 (DNAT)" ||
  fail "Internet -> contoso VIP :443: got '$out', expected contoso-web1"
out=$(nsx inet "${CURL[@]}" http://203.0.113.20:443/)
[ "$out" = fabrikam-fe1 ] && pass "Internet -> fabrikam VIP :443 reaches fe1:8443, same private address as web1" ||
  fail "Internet -> fabrikam VIP :443: got '$out', expected fabrikam-fe1"
grep -q '"GET / HTTP/1.1" 200' "$TMP/web1-443.log" && grep -q '198.51.100.7' "$TMP/web1-443.log" &&
  pass "web1 saw the client's own address (DNAT keeps the source)" ||
  fail "web1's log does not show 198.51.100.7: $(cat "$TMP/web1-443.log")"
expect_drop sw no_endpoint Endpoint "Internet -> contoso VIP :8080 (no endpoint)" \
  nsx inet "${CURL[@]}" --max-time 2 http://203.0.113.10:8080/
# The provider's router sends its whole prefix to the switch; here inet gets
# the switch's uplink MAC (as proxy ARP gave it for the VIP) for a non-VIP
# address, since the switch answers ARP for its VIPs only.
uplink_mac=$(nsx inet ip -j neigh show 203.0.113.10 dev eth0 |
  python3 -c "import json,sys; print(json.load(sys.stdin)[0]['lladdr'])")
nsx inet ip neigh replace 203.0.113.30 lladdr "$uplink_mac" dev eth0 nud permanent
expect_drop sw not_a_vip Endpoint "Internet -> a non-VIP address of the provider" \
  nsx inet "${CURL[@]}" --max-time 2 http://203.0.113.30:80/
grep -q '"dest_ip":"203.0.113.30".*"reason":"not_a_vip"' "$TMP/sw-flows.json" &&
  pass "the flow log names the refused connection to 203.0.113.30 (not_a_vip)" ||
  fail "no not_a_vip flow record to 203.0.113.30 in the flow log"

# --- outbound SNAT -------------------------------------------------------------
out=$(nsx web1 "${CURL[@]}" http://198.51.100.7:8000/)
[ "$out" = internet ] && pass "web1 -> Internet server (SNAT)" || fail "web1 -> Internet: got '$out'"
grep -q '^203.0.113.10 ' "$TMP/inet-8000.log" && pass "the Internet server saw the VIP 203.0.113.10, not 192.0.2.4" ||
  fail "Internet server log: $(cat "$TMP/inet-8000.log")"

expect_drop sw perimeter Perimeter "web1 -> Internet SMTP (perimeter no-outbound-smtp)" \
  nsx web1 nc -z -w 2 198.51.100.7 25

# --- fragments: the later ones follow their datagram's first -------------------
# web1's stack cuts a 4,000-byte UDP datagram (and a 3,000-byte echo request)
# into fragments; they go out through SNAT, and inet's answers, cut the same
# way, come back through the reverse rewrite. Both kernels reassemble.
frag_before=$(jstat sw fragments.forwarded)
ip netns exec $P-inet python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.51.100.7', 9053))
s.settimeout(10)
d, a = s.recvfrom(65535)
s.sendto(d, a)" & PIDS+=($!)
udp_bound inet 9053
out=$(nsx web1 python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
m = bytes((i * 7) % 251 for i in range(4000))
s.sendto(m, ('198.51.100.7', 9053))
d, a = s.recvfrom(65535)
print('echoed' if d == m and a[0] == '198.51.100.7' else 'different: %d bytes from %s' % (len(d), a[0]))" 2>&1)
frag_after=$(jstat sw fragments.forwarded)
[ "$out" = echoed ] && [ "$((frag_after - frag_before))" -ge 4 ] &&
  pass "a 4,000-byte UDP datagram out through SNAT and its echo back, in fragments ($((frag_after - frag_before)) later fragments followed their first)" ||
  fail "fragmented UDP through SNAT: '$out', $((frag_after - frag_before)) later fragments forwarded"
nsx web1 ping -c 2 -W 2 -s 3000 198.51.100.7 >/dev/null &&
  pass "a 3,000-byte ping through SNAT, fragmented both ways" ||
  fail "a fragmented ping through SNAT got no answer (fragment drops: $(drops sw fragment))"
# Reordered on the way: web1 sends a datagram's fragments last first (scapy);
# the switch holds the later ones until the first comes, and inet's kernel
# reassembles the datagram, SNAT'd.
if /usr/bin/python3 -c 'import scapy.all' 2>/dev/null; then
  held_before=$(jstat sw fragments.held)
  ip netns exec $P-inet python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.51.100.7', 9054))
s.settimeout(10)
d, a = s.recvfrom(65535)
ok = d == bytes((i * 7) % 251 for i in range(3000))
open('$TMP/reordered.out', 'w').write('%s %d from %s' % ('whole' if ok else 'different', len(d), a[0]))" &
  PIDS+=($!)
  udp_bound inet 9054
  nsx web1 /usr/bin/python3 "$HERE/forge.py" eth0 frag-reversed 02:00:0a:00:00:04 192.0.2.4 \
    198.51.100.7 9054
  for _ in $(seq 50); do [ -s "$TMP/reordered.out" ] && break; sleep 0.1; done
  sleep 0.3  # the workers' counters reach `stats` every 100 ms
  got=$(cat "$TMP/reordered.out" 2>/dev/null)
  held=$(( $(jstat sw fragments.held) - held_before ))
  [[ "$got" == "whole 3000 from 203.0.113."* ]] && [ "$held" -eq 2 ] &&
    pass "a datagram's fragments sent last first: $held held for the first, reassembled after SNAT ($got)" ||
    fail "reordered fragments: inet got '$got', $held held (fragment drops: $(drops sw fragment))"
else
  echo "SKIP reordered fragments: python3-scapy is not installed (scripts/install-deps.sh)"
fi

# --- tiers and isolation ---------------------------------------------------------
nsx jump1 nc -z -w 3 192.0.2.68 22 && pass "jump1 -> db1:22 (db-tier ssh-from-jumpbox)" ||
  fail "jump1 -> db1:22 blocked"
expect_drop sw subnet_group SubnetGroup "web1 -> db1:5432 (db-tier allows the app subnet only)" \
  nsx web1 nc -z -w 2 192.0.2.68 5432
expect_drop sw nic_group NicGroup "web1 -> jump1 (web-nic no-mgmt-subnet, outbound)" \
  nsx web1 nc -z -w 2 192.0.2.100 22
# fe1 is fabrikam's; 192.0.2.68 in its VNet is be1 on hv2 (behind VXLAN), not
# contoso's db1 on this host.
before=$(jstat sw vxlan.encapsulated)
if nsx fe1 nc -z -w 2 192.0.2.68 5432; then fail "fabrikam fe1 reached 192.0.2.68:5432 (contoso's db1?)"
elif [ "$(jstat sw vxlan.encapsulated)" -gt "$before" ]; then
  pass "fabrikam fe1 -> 192.0.2.68 goes by VXLAN to fabrikam's be1 on hv2, not to contoso's db1 here"
else fail "fabrikam fe1 -> 192.0.2.68 was not sent towards hv2"; fi

# --- trusted packet filters ------------------------------------------------------------
nsx web1 ip neigh show 192.0.2.1 | grep -q '12:34:56:78:9a:bc' &&
  pass "web1's gateway ARP answered by the switch (12:34:56:78:9a:bc)" ||
  fail "web1's gateway neighbour: $(nsx web1 ip neigh)"
nsx web1 ip addr add 192.0.2.9/27 dev eth0
expect_drop sw ip_spoof PortSecurity "web1 sending from 192.0.2.9 (not its address)" \
  nsx web1 "${CURL[@]}" --max-time 2 --interface 192.0.2.9 http://198.51.100.7:8000/
nsx web1 ip addr del 192.0.2.9/27 dev eth0
nsx web1 ip link set eth0 address 02:00:0a:00:00:99
nsx web1 ip neigh flush all
expect_drop sw mac_spoof PortSecurity "web1 with a changed MAC" \
  nsx web1 ping -c 1 -W 2 192.0.2.1
nsx web1 ip link set eth0 address 02:00:0a:00:00:04

# --- hot reload ---------------------------------------------------------------------
# A 30 MB download survives a reload that changes an unrelated rule.
nsx inet curl -s --limit-rate 10M -o "$TMP/big.out" http://203.0.113.10:443/big.bin &
DL=$!
sleep 1
sed -i 's/destination_ports: \[23\]/destination_ports: [23, 2323]/' "$TMP/policy.yaml"
msg=$(nsx sw "$PALISADE" reload --control "$TMP/sw.sock")
echo "    reload: $msg"
[ "$(jstat sw policy_generation)" = 2 ] && pass "palisade reload: the workers run generation 2" ||
  fail "after reload the generation is $(jstat sw policy_generation)"
kill -HUP "$PID_sw"
sleep 0.5
[ "$(jstat sw policy_generation)" = 3 ] && pass "SIGHUP: generation 3" || fail "after SIGHUP: $(jstat sw policy_generation)"
echo "garbage: [" >>"$TMP/policy.yaml"
if nsx sw "$PALISADE" reload --control "$TMP/sw.sock" 2>"$TMP/reload.err"; then
  fail "a broken policy was accepted"
else
  [ "$(jstat sw policy_generation)" = 3 ] && pass "a broken policy is refused and generation 3 stays ($(head -1 "$TMP/reload.err"))" ||
    fail "broken reload changed the generation"
fi
wait $DL
cmp -s "$TMP/big.out" "$TMP/web1/big.bin" && pass "a 30 MB download through the endpoint survived three reloads" ||
  fail "the download across the reloads is damaged ($(stat -c %s "$TMP/big.out" 2>/dev/null) bytes)"

# --- operations ----------------------------------------------------------------------
metrics=$(nsx sw curl -s --max-time 3 http://127.0.0.1:9469/metrics)
grep -q '^palisade_drops_total{reason="no_endpoint",layer="endpoint"} [1-9]' <<<"$metrics" &&
  grep -q '^palisade_port_rx_packets_total{port="contoso/web1",interface="pweb1"} [1-9]' <<<"$metrics" &&
  pass "Prometheus metrics on 127.0.0.1:9469 (per port, per layer and reason)" ||
  fail "metrics: $(head -20 <<<"$metrics")"
capeff=$(awk '/^CapEff/ {print $2}' /proc/$(pgrep -f "palisade run -p $TMP" | head -1)/status)
[ "$capeff" = 0000000000000000 ] && pass "the running switch holds no capabilities (CapEff $capeff)" ||
  fail "CapEff of the running switch: $capeff"
[ "$(jstat sw checksums_completed)" -gt 0 ] && pass "checksums left to offload by the VMs were completed ($(jstat sw checksums_completed))" ||
  fail "no checksum completed (veth offload?)"
busy=$(nsx sw "$PALISADE" stats --json --control "$TMP/sw.sock" |
  python3 -c "import json,sys; print(sum(1 for w in json.load(sys.stdin)['per_worker'] if w['packets'] > 0))")
nosyn=$(drops sw tcp_no_syn)
[ "$busy" = 2 ] && [ "$nosyn" = 0 ] &&
  pass "2 workers both busy, and no TCP packet met a worker without its flow (tcp_no_syn 0)" ||
  fail "workers busy: $busy of 2, tcp_no_syn drops: $nosyn (fanout split a flow?)"

dropped_live=$(jstat sw dropped)
stop_switch sw
grep -q '"event_type":"flow"' "$TMP/sw-flows.json" && pass "flow logs written ($(wc -l <"$TMP/sw-flows.json") records)" ||
  fail "no flow-log records"

# --- capture: the policy's rules recorded what they select ----------------------------
# (tshark -r reads every worker's files of a rule; its comment says what the switch did)
capture_rows() { # RULE: "interface<TAB>dst<TAB>comment" lines of its packets
  for f in "$TMP/capture/$1"/*.pcapng; do
    [ -e "$f" ] && tshark -r "$f" -T fields -e frame.interface_name -e ip.dst -e frame.comment 2>/dev/null
  done
}
db=$(capture_rows database)
grep -q $'contoso/web1\t192.0.2.68\tdropped on contoso/web1: subnet_group' <<<"$db" &&
  grep -q $'192.0.2.68\tforwarded contoso/jump1 -> contoso/db1' <<<"$db" &&
  pass "capture 'database': db1's traffic in pcapng, the refused web1 -> db1:5432 and the allowed jump1 -> db1:22 with their verdicts ($(wc -l <<<"$db") packets)" ||
  fail "capture 'database': $(head -5 <<<"$db")"
spoof=$(capture_rows spoofing)
[ -n "$spoof" ] && ! grep -vq 'ip_spoof' <<<"$spoof" &&
  pass "capture 'spoofing': only the forged-source packets ($(wc -l <<<"$spoof"))" ||
  fail "capture 'spoofing': $(head -3 <<<"$spoof")"

# --- reports over the switch's own log ------------------------------------------------
yesterday=$(date -u -d yesterday +%F)
grep -q "No events in this period" "$TMP/reports/palisade-report-$yesterday.html" 2>/dev/null &&
  pass "the daemon wrote its scheduled report of the last complete day at start ($yesterday, no events)" ||
  fail "no scheduled report $TMP/reports/palisade-report-$yesterday.html: $(ls "$TMP/reports" 2>&1)"
"$PALISADE" report "$TMP/log" --json -o "$TMP/report.html" >"$TMP/report.json" 2>"$TMP/report.err"
read -r rep_dropped rep_allowed rep_noep < <(python3 -c "import json; j=json.load(open('$TMP/report.json'))
print(j['dropped']['packets'], j['flows']['allowed'], j['denied_reason'].get('no_endpoint', 0))")
# Packets dropped after the last stats query (stray IPv6 from the namespaces) count too.
[ "${rep_dropped:-0}" -ge "${dropped_live:-1}" ] && [ "${rep_allowed:-0}" -gt 0 ] && [ "${rep_noep:-0}" -gt 0 ] &&
  grep -q "Drops by layer and reason" "$TMP/report.html" &&
  pass "palisade report over the log: $rep_allowed connections allowed, $rep_dropped packets dropped (the switch counted $dropped_live before stopping), no_endpoint refusals listed" ||
  fail "report over the log: dropped $rep_dropped (switch: $dropped_live), allowed $rep_allowed, no_endpoint $rep_noep: $(cat "$TMP/report.err")"
live_summary "live single host"
