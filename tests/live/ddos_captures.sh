#!/usr/bin/env bash
# DDoS detection on the real attack captures of ../shared/data/ddos, each mixed
# into benign traffic this test records itself: a client namespace browsing a
# server namespace (curl over HTTP and HTTPS to nginx, dig to dnsmasq, ping)
# while the server resolves names through its own resolver (DNS replies it asked
# for, which must not look like amplification). The recording is tcpdump on the
# server's link. Each attack capture is readdressed to the server
# (tcprewrite), shifted so the attack begins 15 s into the benign traffic
# (editcap) and merged with it (mergecap); `palisade ddos` must then report an
# attack on the server with the capture's vector within 2 s of the attack's
# first packet, and nothing before it. The benign traffic alone must raise
# nothing. Every capture runs with the default floors except the one-packet-
# a-second SYN-ACK trickle (amp.TCP.syn.optionallyACK...), which only a
# profile that takes any unsolicited SYN-ACK as an attack can see at once.
# Usage: ddos_captures.sh PALISADE DATA_DIR
set -uo pipefail
PALISADE=${1:?usage: ddos_captures.sh PALISADE DATA_DIR}
DATA=${2:?usage: ddos_captures.sh PALISADE DATA_DIR}
BENIGN_S=${BENIGN_S:-30}
if [ ! -d "$DATA/ddos" ]; then
  echo "SKIP: $DATA/ddos is absent (the reference captures live in ../shared/data)"
  exit 77
fi
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
live_init pdd$$ nginx dnsmasq dig curl ping tcpdump openssl tshark editcap mergecap tcprewrite

# A hub: the client, the server and the server's resolver on one bridge.
newns hub
nsx hub ip link add br0 type bridge ageing_time 0
nsx hub ip link set br0 up
for n in cli srv res; do
  newns $n
  ip link add eth0 netns $P-$n type veth peer name $n netns $P-hub
  nsx hub ip link set $n master br0 up
  nsx $n ip link set eth0 up
done
nsx cli ip addr add 198.51.100.10/24 dev eth0
nsx res ip addr add 198.51.100.53/24 dev eth0
nsx srv ip addr add 192.0.2.10/24 dev eth0
nsx cli ip route add 192.0.2.0/24 dev eth0
nsx res ip route add 192.0.2.0/24 dev eth0
nsx srv ip route add 198.51.100.0/24 dev eth0

mkdir -p "$TMP/www"
for i in $(seq 0 9); do head -c $((2000 + i * 3000)) /dev/urandom | base64 >"$TMP/www/page$i.html"; done
web srv 192.0.2.10 "$TMP/www"
echo "192.0.2.10 shop.example" >"$TMP/site.hosts"
for i in $(seq 1 50); do echo "203.0.113.$i api$i.example" >>"$TMP/upstream.hosts"; done
dns srv 192.0.2.10 "$TMP/site.hosts"
dns res 198.51.100.53 "$TMP/upstream.hosts"
sleep 1

ip netns exec $P-srv tcpdump -i eth0 -s 0 -U -w "$TMP/benign.pcap" >/dev/null 2>&1 &
DUMP=$!
PIDS+=($DUMP)
sleep 1
stop=$TMP/stop
( n=0; while [ ! -e "$stop" ]; do
    nsx cli curl -s -o /dev/null "http://192.0.2.10/page$((n % 10)).html" "http://192.0.2.10/page$(((n + 3) % 10)).html" >/dev/null
    nsx cli curl -s -k -o /dev/null --resolve shop.example:443:192.0.2.10 "https://shop.example/page$((n % 10)).html" >/dev/null
    n=$((n + 1)); done ) &
PIDS+=($!)
( while [ ! -e "$stop" ]; do nsx cli dig +tries=1 +time=1 @192.0.2.10 shop.example >/dev/null; done ) &
PIDS+=($!)
( n=0; while [ ! -e "$stop" ]; do
    nsx srv dig +tries=1 +time=1 @198.51.100.53 "api$((n % 50 + 1)).example" >/dev/null; n=$((n + 1)); done ) &
PIDS+=($!)
nsx cli ping -q -i 0.2 -w "$BENIGN_S" 192.0.2.10 >/dev/null &
PIDS+=($!)
sleep "$BENIGN_S"
touch "$stop"
sleep 1
kill $DUMP
wait $DUMP 2>/dev/null

packets=$(tshark -r "$TMP/benign.pcap" -T fields -e frame.number 2>/dev/null | wc -l)
http=$(tshark -r "$TMP/benign.pcap" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e frame.number 2>/dev/null | wc -l)
dnsq=$(tshark -r "$TMP/benign.pcap" -Y 'dns.flags.response==1' -T fields -e frame.number 2>/dev/null | wc -l)
echo "benign: $packets packets over ${BENIGN_S} s ($http TCP connections, $dnsq DNS replies)"
[ "$packets" -gt 1000 ] && [ "$http" -gt 50 ] && [ "$dnsq" -gt 50 ] ||
  { echo "FAIL: the benign recording is too thin to mean anything"; exit 1; }

cat >"$TMP/policy.yaml" <<'YAML'
version: 1
ddos:
  profiles:
    - name: web
      mode: on-demand
      learning: 10s
  protect:
    - name: web-server
      prefixes: [192.0.2.10/32]
      profile: web
YAML
# A server that never opens a TCP connection may take any unsolicited SYN-ACK
# as an attack on it: the strict profile's SYN-ACK floor is 1 pps.
sed 's/      learning: 10s/      learning: 10s\n      thresholds: {synack: {pps: 1}}/' "$TMP/policy.yaml" >"$TMP/strict.yaml"

for profile in policy strict; do
  rm -rf "$TMP/benign-out"
  "$PALISADE" ddos -r "$TMP/benign.pcap" --policy "$TMP/$profile.yaml" -l "$TMP/benign-out" -q ||
    fail "palisade ddos failed on the benign traffic ($profile.yaml)"
  if [ -s "$TMP/benign-out/eve.json" ]; then
    fail "the benign traffic alone raised ($profile.yaml): $(head -c 400 "$TMP/benign-out/eve.json")"
  else
    pass "the benign traffic alone raises nothing ($profile.yaml)"
  fi
done

benign_t0=$(tshark -r "$TMP/benign.pcap" -c 1 -T fields -e frame.time_epoch 2>/dev/null)
# capture | expected vector | display filter of the attack's own packets (its start) | policy
while IFS='|' read -r file vector filter profile; do
  [ -z "$file" ] && continue
  src=$DATA/ddos/$file
  [ -f "$src" ] || { fail "$file is missing from $DATA/ddos"; continue; }
  start=$(tshark -r "$src" -Y "$filter" -T fields -e frame.time_epoch 2>/dev/null | head -1)
  [ -n "$start" ] || { fail "$file: no packet matches '$filter'"; continue; }
  rm -f "$TMP/shifted.pcap" "$TMP/attack.pcap" "$TMP/mixed.pcap"
  shift_s=$(/usr/bin/python3 -c "print(f'{$benign_t0 + 15 - $start:.6f}')")
  editcap -F pcap -t "$shift_s" "$src" "$TMP/shifted.pcap" >/dev/null 2>&1
  tcprewrite --dstipmap=10.10.10.0/24:192.0.2.10/32 --infile="$TMP/shifted.pcap" \
    --outfile="$TMP/attack.pcap" >/dev/null 2>&1 || { fail "$file: tcprewrite failed"; continue; }
  mergecap -F pcap -w "$TMP/mixed.pcap" "$TMP/benign.pcap" "$TMP/attack.pcap" 2>/dev/null ||
    { fail "$file: mergecap failed"; continue; }
  rm -rf "$TMP/out"
  "$PALISADE" ddos -r "$TMP/mixed.pcap" --policy "$TMP/$profile.yaml" -l "$TMP/out" -q
  verdict=$(/usr/bin/python3 - "$TMP/out/eve.json" "$vector" "$benign_t0" <<'PY'
import json, sys
from datetime import datetime
path, vector, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
attack_start = t0 + 15
def epoch(ts):
    return datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
starts = []
try:
    for line in open(path):
        e = json.loads(line)
        if e.get("event_type") == "ddos" and e["ddos"]["event"] == "start":
            starts.append(e)
except FileNotFoundError:
    pass
if not starts:
    print("no attack reported"); sys.exit(1)
early = [e for e in starts if epoch(e["timestamp"]) < attack_start - 0.5]
if early:
    d = early[0]["ddos"]
    print(f"an attack ({d['attack']}) before the capture's attack began, at {early[0]['timestamp']}"); sys.exit(1)
e = starts[0]; d = e["ddos"]
delay = epoch(e["timestamp"]) - attack_start
where = f"{d['target']} {d['direction']} {'/'.join(d['vectors'])}, detected {delay:.2f} s after the attack's first packet, peak {d['peak_pps']} pps"
if d["target"] != "192.0.2.10" or d["direction"] != "inbound":
    print(f"wrong victim: {where}"); sys.exit(1)
if vector not in d["vectors"]:
    print(f"wrong vector (expected {vector}): {where}"); sys.exit(1)
if delay > 2.0:
    print(f"too late: {where}"); sys.exit(1)
print(where)
PY
  )
  if [ $? -eq 0 ]; then pass "$file: $verdict"; else fail "$file: $verdict"; fi
done <<'CASES'
amp.TCP.reflection.SYNACK.pcap|synack_reflection|tcp.flags.syn==1 && tcp.flags.ack==1|policy
amp.TCP.syn.optionallyACK.optionallysamePort.pcapng|synack_reflection|tcp.flags.syn==1 && tcp.flags.ack==1|strict
amp.UDP.bacnet.IOT.37810.pcapng|bacnet_amplification|udp|policy
amp.UDP.isakmp.pcap|isakmp_amplification|udp.srcport==4500|policy
amp.UDP.snmp.src161.pcapng|snmp_amplification|udp.srcport==161|policy
amp.dns.RRSIG.fragmented.pcap|dns_amplification|udp.srcport==53|policy
pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng|syn_flood|tcp.flags.syn==1 && tcp.flags.cwr==1|policy
pkt.TCP.synflood.spoofed.pcap|syn_flood|tcp.flags.syn==1|policy
CASES

live_summary ddos_captures
