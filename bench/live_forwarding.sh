#!/usr/bin/env bash
# Forwarding through `palisade run` between two network namespaces, next to
# the same two namespaces joined by a plain Linux bridge, in one run:
#   TCP throughput (iperf3, one stream), packet rate of 64-byte UDP
#   (iperf3 -u -l 18 -b 0: the client sends as fast as it can; the rate is what
#   the server received), the same 64-byte packets from trafgen (netsniff-ng:
#   a TX ring, one flow, no socket stack; the rate is what the receiving
#   interface counted), and palisade's CPU time per forwarded packet.
# Paths through palisade (every layer): TCP from an Internet client on the
# uplink to contoso/web1 behind its input endpoint (VIP 203.0.113.10:443 ->
# 192.0.2.4:443, DNAT); UDP from web1 to the Internet host (SNAT to the VIP),
# since the example policy's endpoints are TCP. Bounded: each measurement
# runs SECONDS (default 5).
# Usage: bench/live_forwarding.sh PALISADE_BINARY [SECONDS] [WORKERS]
set -uo pipefail
PALISADE=${1:?usage: live_forwarding.sh PALISADE_BINARY [SECONDS] [WORKERS]}
SECS=${2:-5}
WORKERS=${3:-1}
POLICY=$(cd "$(dirname "$0")/.." && pwd)/examples/cloud.yaml
[ "$(id -u)" -eq 0 ] || { echo "live_forwarding: needs root (network namespaces)"; exit 77; }
command -v iperf3 >/dev/null || { echo "live_forwarding: iperf3 missing (scripts/install-deps.sh)"; exit 77; }
P=plb$$
TMP=$(mktemp -d)
cleanup() {
  pkill -f "iperf3 -s -p 443 -B" 2>/dev/null
  [ -n "${RUN_PID:-}" ] && kill "$RUN_PID" 2>/dev/null
  wait 2>/dev/null
  for ns in sw cli srv bcli bsrv br; do ip netns del $P-$ns 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
nsx() { local ns=$1; shift; ip netns exec $P-$ns "$@"; }
host() {  # ns iface-in-sw sw-ns mac addr
  ip netns add $P-$1 2>/dev/null
  ip link add "$2" netns $P-$3 type veth peer name eth0 netns $P-$1
  nsx $1 ip link set lo up
  nsx $1 ip link set eth0 address "$4"
  nsx $1 ip addr add "$5" dev eth0
  nsx $1 ip link set eth0 up
  nsx $1 ethtool -K eth0 tso off gso off >/dev/null 2>&1
  nsx $3 ip link set "$2" up
  nsx $3 ethtool -K "$2" gro off tso off gso off >/dev/null 2>&1
}

# Through palisade.
ip netns add $P-sw
host cli up0 sw 02:00:c6:33:64:07 198.51.100.7/24
nsx cli ip route add 203.0.113.0/24 dev eth0
host srv pweb1 sw 02:00:0a:00:00:04 192.0.2.4/27
nsx srv ip route add default via 192.0.2.1
ip netns exec $P-sw "$PALISADE" run -p "$POLICY" --host hv1 --uplink up0 \
  --port contoso/web1=pweb1 --workers "$WORKERS" --control "$TMP/ctl.sock" >"$TMP/run.out" 2>&1 &
RUN_PID=$!
# Through a bridge: the same two kinds of host, same offload settings.
ip netns add $P-br
nsx br ip link add br0 type bridge
nsx br ip link set br0 up
host bcli b-cli br 02:00:c6:33:64:07 198.51.100.7/24
host bsrv b-srv br 02:00:0a:00:00:04 198.51.100.8/24
nsx br ip link set b-cli master br0
nsx br ip link set b-srv master br0
for _ in $(seq 50); do [ -S "$TMP/ctl.sock" ] && break; sleep 0.1; done
[ -S "$TMP/ctl.sock" ] || { echo "palisade run did not start:"; cat "$TMP/run.out"; exit 1; }
nsx srv iperf3 -s -p 443 -B 192.0.2.4 -D
nsx cli iperf3 -s -p 443 -B 198.51.100.7 -D
nsx bsrv iperf3 -s -p 443 -B 198.51.100.8 -D
sleep 1

cpu_ticks() { awk '{print $14 + $15}' /proc/$RUN_PID/stat; }
forwarded() {
  ip netns exec $P-sw "$PALISADE" stats --json --control "$TMP/ctl.sock" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['forwarded'])"
}
tcp_gbps() {  # ns target
  nsx "$1" iperf3 -c "$2" -p 443 -t "$SECS" -J 2>/dev/null |
    python3 -c "import json,sys; j=json.load(sys.stdin); print('%.2f' % (j['end']['sum_received']['bits_per_second']/1e9))"
}
udp_kpps() {  # ns target
  nsx "$1" iperf3 -c "$2" -p 443 -u -l 18 -b 0 -t "$SECS" -J 2>/dev/null |
    python3 -c "
import json,sys
j=json.load(sys.stdin)['end']['sum']
recv = j['packets'] - j['lost_packets']
print('%.0f %.0f %.1f' % (recv / j['seconds'] / 1e3, j['packets'] / j['seconds'] / 1e3, j['lost_percent']))"
}
hz=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "command: bench/live_forwarding.sh $PALISADE $SECS $WORKERS (palisade workers: $WORKERS)"
t0=$(cpu_ticks); f0=$(forwarded)
pal_tcp=$(tcp_gbps cli 203.0.113.10)
t1=$(cpu_ticks); f1=$(forwarded)
pal_udp=$(udp_kpps srv 198.51.100.7)
t2=$(cpu_ticks); f2=$(forwarded)
br_tcp=$(tcp_gbps bcli 198.51.100.8)
br_udp=$(udp_kpps bcli 198.51.100.8)
# trafgen: one 60-byte UDP flow (64 bytes with the FCS) at full speed for
# SECS seconds; web1 -> Internet through palisade (SNAT), cli -> srv on the bridge.
pal_gen='' br_gen=''
if command -v trafgen >/dev/null; then
  gen_kpps() {  # sender receiver src-mac dst-mac src-ip dst-ip
    cat >"$TMP/gen.cfg" <<EOF
{ eth(sa=$3, da=$4), ipv4(sa=$5, da=$6, ttl=64), udp(sp=40000, dp=9), fill(0x41, 18) }
EOF
    local rx0 rx1 tx0 tx1
    rx0=$(nsx "$2" cat /sys/class/net/eth0/statistics/rx_packets)
    tx0=$(nsx "$1" cat /sys/class/net/eth0/statistics/tx_packets)
    nsx "$1" timeout -s INT "$SECS" trafgen -o eth0 -c "$TMP/gen.cfg" -P 1 >/dev/null 2>&1
    sleep 0.5
    rx1=$(nsx "$2" cat /sys/class/net/eth0/statistics/rx_packets)
    tx1=$(nsx "$1" cat /sys/class/net/eth0/statistics/tx_packets)
    python3 -c "print('%.0f %.0f' % (($rx1 - $rx0) / $SECS / 1e3, ($tx1 - $tx0) / $SECS / 1e3))"
  }
  t3=$(cpu_ticks); f3=$(forwarded)
  pal_gen=$(gen_kpps srv cli 02:00:0a:00:00:04 12:34:56:78:9a:bc 192.0.2.4 198.51.100.7)
  t4=$(cpu_ticks); f4=$(forwarded)
  br_gen=$(gen_kpps bcli bsrv 02:00:c6:33:64:07 02:00:0a:00:00:04 198.51.100.7 198.51.100.8)
fi
ns_per() { python3 -c "print('%.0f' % (($2 - $1) / $hz * 1e9 / max(1, $4 - $3)))"; }
printf '%-34s %14s %14s\n' "" "palisade run" "linux bridge"
printf '%-34s %14s %14s\n' "TCP, 1 stream (Gbit/s)" "$pal_tcp" "$br_tcp"
read -r p_rx p_tx p_loss <<<"$pal_udp"
read -r b_rx b_tx b_loss <<<"$br_udp"
printf '%-34s %14s %14s\n' "64-byte UDP received (kpps)" "$p_rx" "$b_rx"
printf '%-34s %14s %14s\n' "  offered by the client (kpps)" "$p_tx" "$b_tx"
printf '%-34s %14s %14s\n' "  lost (%)" "$p_loss" "$b_loss"
if [ -n "$pal_gen" ]; then
  read -r p_grx p_gtx <<<"$pal_gen"
  read -r b_grx b_gtx <<<"$br_gen"
  printf '%-34s %14s %14s\n' "trafgen 64-byte, received (kpps)" "$p_grx" "$b_grx"
  printf '%-34s %14s %14s\n' "  sent by trafgen (kpps)" "$p_gtx" "$b_gtx"
else
  echo "trafgen: not installed (netsniff-ng), skipped"
fi
echo "palisade CPU per forwarded packet: TCP $(ns_per "$t0" "$t1" "$f0" "$f1") ns, UDP $(ns_per "$t1" "$t2" "$f1" "$f2") ns${pal_gen:+, trafgen $(ns_per "$t3" "$t4" "$f3" "$f4") ns} (user+system time of the process / packets forwarded)"
