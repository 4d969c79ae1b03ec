#!/usr/bin/env bash
# The SYN proxy live: `palisade run` as host hv1 of examples/cloud.yaml
# between an Internet namespace and contoso's web1 (nginx with TLS) behind
# VIP 203.0.113.10:443, with the VIP's DDoS profile set to `syn_proxy: always`.
# Real clients through it: curl over TLS (each connection's handshake made by
# the proxy, its segments translated), an 8 MB download checked end to end
# (window scaling, SACK and timestamps through the translation), the options
# on the wire to both Linux stacks, a download under loss that nginx recovers
# by the client's translated SACK blocks, and 100 curl
# requests during a SYN flood from hping3 (spoofed documentation address,
# bounded in time): at least 99 must succeed. Then the same flood with
# `syn_proxy: off`, for comparison: its half-open connections fill web1's
# connection quota and the endpoint stops answering. Last, the profile's
# connection limit (2 per client) with the proxy: two slow downloads hold
# it, a third request is refused (conn_limit), and once curl's downloads are
# killed (their connections reset) requests get through again.
set -uo pipefail
PALISADE=${1:?usage: ddos_syn_proxy.sh PALISADE_BINARY POLICY}
POLICY=${2:?usage: ddos_syn_proxy.sh PALISADE_BINARY POLICY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init psp$$ ip curl python3 ethtool hping3 timeout nginx openssl sha256sum tcpdump tc nstat

newns sw
vm inet sw up0 02:00:c6:33:64:07 198.51.100.7/24 ""
nsx inet ip route add 203.0.113.0/24 dev eth0
vm web1 sw pweb1 02:00:0a:00:00:04 192.0.2.4/27 192.0.2.1
mkdir -p "$TMP/www"
echo contoso-web1 >"$TMP/www/index.html"
head -c 8M /dev/urandom >"$TMP/www/big.bin"
want=$(sha256sum <"$TMP/www/big.bin" | cut -d' ' -f1)
web web1 192.0.2.4 "$TMP/www"
for mode in always off; do
  sed "s/      mode: on-demand/      mode: on-demand\n      syn_proxy: $mode/" "$POLICY" >"$TMP/$mode.yaml"
  grep -q "syn_proxy: $mode" "$TMP/$mode.yaml" || { echo "FAIL: could not set syn_proxy"; exit 1; }
done
sed 's/        syn: {pps: 2k}/        syn: {pps: 2k}\n      limits: {source_connections: 2}/' \
  "$TMP/always.yaml" >"$TMP/limits.yaml"
grep -q "source_connections: 2" "$TMP/limits.yaml" || { echo "FAIL: could not add limits"; exit 1; }
CURL=(curl -sk --max-time 3)

synflood() {  # SECONDS from one spoofed address to the endpoint's port, in the background
  timeout "$1" ip netns exec $P-inet hping3 --flood -q -S -p 443 -a 198.51.100.99 203.0.113.10 \
    >/dev/null 2>&1 &
  FLOOD=$!
}
# requests N: how many of N sequential HTTPS requests got the page.
requests() {
  local ok=0
  for _ in $(seq "$1"); do
    [ "$(nsx inet "${CURL[@]}" https://203.0.113.10/)" = contoso-web1 ] && ok=$((ok + 1))
  done
  echo $ok
}

# --- 1. syn_proxy: always ------------------------------------------------------
start_switch sw -p "$TMP/always.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
sleep 0.5
ok=$(requests 20)
sleep 0.3  # the workers' counters reach the control socket every 100 ms
valid=$(jstat sw syn_proxy.cookies_valid)
conns=$(jstat sw syn_proxy.connections)
if [ "$ok" -eq 20 ] && [ "$valid" -ge 20 ] && [ "$conns" -ge 20 ]; then
  pass "20 of 20 HTTPS requests through the SYN proxy (cookies valid $valid, connections completed $conns)"
else
  fail "HTTPS through the SYN proxy: $ok of 20 answered; cookies valid $valid, connections $conns"
fi
got=$(nsx inet curl -sk --max-time 30 https://203.0.113.10/big.bin | sha256sum | cut -d' ' -f1)
oow=$(drops sw tcp_out_of_window)
[ "$got" = "$want" ] && [ "$oow" -eq 0 ] &&
  pass "an 8 MB download through the SYN proxy arrives intact (sha256 matches, no segment out of window)" ||
  fail "8 MB download through the SYN proxy: sha256 ${got:0:16}... (want ${want:0:16}...), tcp_out_of_window $oow"

# What both Linux stacks negotiated through the proxy, on the wire: the
# proxy's SYN-ACK to curl and its SYN to nginx both offer window scaling,
# SACK and timestamps.
ip netns exec "$P-inet" tcpdump -l -i eth0 -nn -c 1 'tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)' \
  >"$TMP/synack.txt" 2>"$TMP/td1.err" &
td1=$!
ip netns exec "$P-web1" tcpdump -l -i eth0 -nn -c 1 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' \
  >"$TMP/syn.txt" 2>"$TMP/td2.err" &
td2=$!
sleep 1
nsx inet "${CURL[@]}" https://203.0.113.10/ >/dev/null
sleep 0.5
kill "$td1" "$td2" 2>/dev/null
wait "$td1" "$td2" 2>/dev/null
offers() { grep -q sackOK "$1" && grep -q "TS val" "$1" && grep -q wscale "$1"; }
if offers "$TMP/synack.txt" && offers "$TMP/syn.txt"; then
  pass "the proxy's SYN-ACK to curl and its SYN to nginx carry SACK, timestamps and window scale ($(grep -o 'options \[.*\]' "$TMP/syn.txt"))"
else
  fail "options through the proxy: SYN-ACK '$(cat "$TMP/synack.txt")', SYN '$(cat "$TMP/syn.txt")' ($(cat "$TMP/td1.err" "$TMP/td2.err" | tr "\n" " "))"
fi
# SACK in use: nginx's side loses segments in a small token-bucket queue; the
# client's SACK blocks reach nginx translated into its sequence space, and it
# recovers by them (TCPSackRecovery) with none discarded as invalid.
nsx web1 tc qdisc add dev eth0 root tbf rate 40mbit burst 16kb limit 24kb
nsx web1 nstat -n >/dev/null
got=$(nsx inet curl -sk --max-time 60 https://203.0.113.10/big.bin | sha256sum | cut -d' ' -f1)
sack=$(nsx web1 nstat -az TcpExtTCPSackRecovery | awk '/TCPSackRecovery/ {print $2}')
discard=$(nsx web1 nstat -az TcpExtTCPSACKDiscard | awk '/TCPSACKDiscard/ {print $2}')
nsx web1 tc qdisc del dev eth0 root
if [ "$got" = "$want" ] && [ "${sack:-0}" -gt 0 ] && [ "${discard:-0}" -eq 0 ]; then
  pass "with loss on nginx's side the download arrives intact and nginx recovers by the client's translated SACKs (TCPSackRecovery $sack, TCPSACKDiscard 0)"
else
  fail "SACK through the proxy: sha256 ${got:0:16}..., TCPSackRecovery '${sack}', TCPSACKDiscard '${discard}'"
fi

sent0=$(jstat sw syn_proxy.cookies_sent)
synflood 8
sleep 1
ok=$(requests 100)
sent=$(( $(jstat sw syn_proxy.cookies_sent) - sent0 ))
quota=$(drops sw nic_quota)
live=$(jstat sw flows.live)
if [ "$ok" -ge 99 ]; then
  pass "during a SYN flood $ok of 100 HTTPS requests succeed (cookies sent $sent, flows live $live, nic_quota $quota)"
else
  fail "during a SYN flood only $ok of 100 HTTPS requests succeeded (cookies sent $sent, flows live $live, nic_quota $quota)"
fi
[ "$sent" -gt 1000 ] && [ "$quota" -eq 0 ] &&
  pass "the flood's SYNs were answered with cookies and opened no connection" ||
  fail "the flood: cookies sent $sent, nic_quota $quota"
wait "$FLOOD" 2>/dev/null
stop_switch sw
SWITCHES=()

# --- 2. syn_proxy: off, for comparison ------------------------------------------
: >"$TMP/sw-flows.json"
start_switch sw -p "$TMP/off.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
sleep 0.5
synflood 8
sleep 3
ok=$(requests 5)
quota=$(drops sw nic_quota)
if [ "$ok" -lt 5 ] && [ "$quota" -gt 0 ]; then
  pass "without the proxy the same flood fills web1's connection quota: $ok of 5 requests succeed (nic_quota $quota)"
else
  fail "without the proxy: $ok of 5 requests succeeded, nic_quota $quota (expected the quota to run out)"
fi
wait "$FLOOD" 2>/dev/null
stop_switch sw
SWITCHES=()

# --- 3. connection limits through the proxy -------------------------------------
: >"$TMP/sw-flows.json"
start_switch sw -p "$TMP/limits.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
sleep 0.5
slow=()
for i in 1 2; do
  # Not through nsx (a subshell): $! must be curl itself.
  ip netns exec "$P-inet" curl -sk --limit-rate 100k -o /dev/null https://203.0.113.10/big.bin &
  slow+=($!)
done
sleep 1.5
out=$(nsx inet "${CURL[@]}" https://203.0.113.10/)
sleep 0.3
limited=$(drops sw conn_limit)
if [ -z "$out" ] && [ "$limited" -gt 0 ]; then
  pass "two slow downloads hold the client's 2 connections: a third is refused (conn_limit $limited)"
else
  fail "connection limit: the third request got '$out', conn_limit $limited"
fi
kill "${slow[@]}" 2>/dev/null
wait "${slow[@]}" 2>/dev/null
# A killed download's connection ends when its RST passes the switch. With
# nothing unread curl's close sends a FIN instead, and the RST comes only
# when nginx next sends (a zero-window probe, backing off): up to seconds on
# a loaded machine. Until then the connection still counts, as netfilter's
# connlimit counts it.
out=
for _ in $(seq 10); do
  out=$(nsx inet "${CURL[@]}" https://203.0.113.10/)
  [ "$out" = contoso-web1 ] && break
  sleep 1
done
if [ "$out" = contoso-web1 ]; then
  pass "the downloads ended (their connections reset): requests get through again"
else
  fail "the downloads ended: requests still refused 10 tries later: got '$out' (conn_limit $(drops sw conn_limit))"
fi
stop_switch sw
live_summary ddos_syn_proxy
