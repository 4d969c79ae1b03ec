#!/usr/bin/env bash
# Live suite, IPv6: `palisade run` as host hv1 of examples/cloud.yaml, whose
# deployment contoso/shop is dual stack (203.0.113.10 and 2001:db8:ff::10),
# between an Internet namespace on the uplink and contoso's web1
# (2001:db8:a:1::4), with the kernels' own IPv6 stacks on both sides.
#
#   ip6-inet  2001:db8:77::7/64 (later ::8), fe80::7, and 2001:db8:99::9 off-link behind it
#             --veth-- up0 ┐
#   ip6-web1  contoso/web1 2001:db8:a:1::4/64, default via fe80::1 ├─ palisade run --host hv1
#             --veth-- pweb1 ┘   --uplink-address 2001:db8:77::1/64 --gateway fe80::7
#
# What it shows: proxy ND (the Internet host resolves the VIP to the uplink's
# MAC), an input endpoint on the IPv6 VIP (DNAT to web1's IPv6 address and
# back), a port with no endpoint closed, outbound SNAT to the IPv6 VIP, the
# switch's own neighbour solicitations for an unresolved on-link next hop
# (the first SYN dropped as neighbour_unresolved, the retransmission through)
# and for the configured link-local gateway (an off-link destination), and
# the SYN proxy over IPv6: an 8 MB download through it intact with window
# scaling and SACK on both handshakes, and at least 99 of 100 requests
# answered during a bounded, spoofed IPv6 SYN flood.
# Exit 77 (skipped) without root or namespaces.
set -uo pipefail
PALISADE=${1:?usage: live_ipv6.sh PALISADE_BINARY POLICY}
POLICY=${2:?usage: live_ipv6.sh PALISADE_BINARY POLICY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init ip6$$ ip curl python3 ethtool tcpdump sha256sum timeout

VIP=2001:db8:ff::10
newns sw
vm inet sw up0 02:00:c6:33:64:07 "" ""
vm web1 sw pweb1 02:00:0a:00:00:04 "" ""
for ns in inet web1; do nsx $ns sysctl -qw net.ipv6.conf.eth0.accept_ra=0; done
nsx inet ip -6 addr add 2001:db8:77::7/64 dev eth0 nodad
nsx inet ip -6 addr add fe80::7/64 dev eth0 nodad
nsx inet ip -6 addr add 2001:db8:99::9/128 dev lo
nsx inet ip -6 route add 2001:db8:ff::/64 dev eth0   # the VIPs: on the uplink's segment
nsx web1 ip -6 addr add 2001:db8:a:1::4/64 dev eth0 nodad
nsx web1 ip -6 route add default via fe80::1 dev eth0
# The switch's own link-local address must not race its ports' (DAD off).
nsx sw sysctl -qw net.ipv6.conf.all.accept_dad=0

mkdir -p "$TMP/web1" "$TMP/inet"
echo contoso-web1 >"$TMP/web1/index.html"
echo internet >"$TMP/inet/index.html"
head -c 8M /dev/urandom >"$TMP/web1/big.bin"
want=$(sha256sum <"$TMP/web1/big.bin" | cut -d' ' -f1)
ip netns exec "$P-web1" python3 -m http.server 443 --bind :: --directory "$TMP/web1" \
  >"$TMP/web1.log" 2>&1 &
PIDS+=($!)
ip netns exec "$P-inet" python3 -m http.server 8000 --bind :: --directory "$TMP/inet" \
  >"$TMP/inet.log" 2>&1 &
PIDS+=($!)
# Listening before the first request (python starts slowly on a loaded
# machine: a CI run's first curl met web1's RST).
tcp_listening web1 443 && tcp_listening inet 8000 ||
  { echo "FAIL: the HTTP servers did not start:"; cat "$TMP/web1.log" "$TMP/inet.log"; exit 1; }

cp "$POLICY" "$TMP/policy.yaml"
sed "s/      mode: on-demand/      mode: on-demand\n      syn_proxy: always/" "$POLICY" >"$TMP/proxy.yaml"
grep -q "syn_proxy: always" "$TMP/proxy.yaml" || { echo "FAIL: could not set syn_proxy"; exit 1; }
CURL=(curl -s -6 --max-time 4)
SWITCH_ARGS=(--host hv1 --uplink up0 --port contoso/web1=pweb1
  --uplink-address 2001:db8:77::1/64 --gateway fe80::7)

# --- 1. the switch on the policy as shipped ---------------------------------------
start_switch sw -p "$TMP/policy.yaml" "${SWITCH_ARGS[@]}"
sleep 0.5
expect_out contoso-web1 "curl -6 to the IPv6 VIP [$VIP]:443 reaches web1 (DNAT to 2001:db8:a:1::4)" \
  nsx inet "${CURL[@]}" "http://[$VIP]:443/"
uplink_mac=$(nsx sw cat /sys/class/net/up0/address)
vip_mac=$(nsx inet ip -j -6 neigh show "$VIP" dev eth0 |
  python3 -c "import json,sys; n=json.load(sys.stdin); print(n[0].get('lladdr','') if n else '')")
sleep 0.3
nd=$(jstat sw answers.proxy_nd)
if [ "$vip_mac" = "$uplink_mac" ] && [ "$nd" -ge 1 ]; then
  pass "proxy ND: the Internet host resolved $VIP to the uplink's MAC $uplink_mac ($nd advertisements)"
else
  fail "proxy ND: $VIP resolved to '$vip_mac' (uplink $uplink_mac), proxy_nd $nd"
fi
if grep -q "2001:db8:77::7" "$TMP/web1.log"; then
  pass "web1 saw the client's own address 2001:db8:77::7 (inbound DNAT keeps the source)"
else
  fail "web1's log does not show 2001:db8:77::7: $(tail -2 "$TMP/web1.log")"
fi
expect_drop sw no_endpoint endpoint "a port of the IPv6 VIP with no endpoint ([$VIP]:8080)" \
  nsx inet curl -s -6 --max-time 2 "http://[$VIP]:8080/"

# Outbound: SNAT to the IPv6 VIP. 2001:db8:77::8 is new and has sent
# nothing, so the switch must ask for it: the first SYN waits for no answer
# (dropped as unresolved), curl's retransmission a second later goes through.
nsx inet ip -6 addr add 2001:db8:77::8/64 dev eth0 nodad
before_ns=$(jstat sw uplink.neighbour_solicitations)
before_un=$(drops sw neighbour_unresolved)
expect_out internet "web1 reaches an unresolved on-link Internet address [2001:db8:77::8]:8000" \
  nsx web1 "${CURL[@]}" "http://[2001:db8:77::8]:8000/"
sleep 0.3
after_ns=$(jstat sw uplink.neighbour_solicitations)
after_un=$(drops sw neighbour_unresolved)
if [ "$after_ns" -gt "$before_ns" ] && [ "$after_un" -gt "$before_un" ]; then
  pass "the switch solicited 2001:db8:77::8 ($((after_ns - before_ns)) solicitations, $((after_un - before_un)) frames waited)"
else
  fail "no neighbour solicitation for 2001:db8:77::8: solicitations $before_ns -> $after_ns, unresolved $before_un -> $after_un"
fi
if grep -q "2001:db8:ff::10" "$TMP/inet.log"; then
  pass "the Internet server saw the IPv6 VIP as the client (outbound SNAT to $VIP)"
else
  fail "outbound SNAT: the Internet server's log: $(tail -2 "$TMP/inet.log")"
fi
sleep 1.1  # the switch asks for a next hop at most once a second
expect_out internet "web1 reaches an off-link address [2001:db8:99::9]:8000 through the gateway fe80::7" \
  nsx web1 "${CURL[@]}" "http://[2001:db8:99::9]:8000/"
gw_ok=$(nsx sw "$PALISADE" stats --json --control "$TMP/sw.sock" | python3 -c "
import json,sys; j=json.load(sys.stdin); print(j['uplink']['neighbours'])")
[ "$gw_ok" -ge 3 ] && pass "the uplink knows $gw_ok neighbours (2001:db8:77::7, ::8 and fe80::7 among them)" ||
  fail "the uplink knows only $gw_ok neighbours"
stop_switch sw

# --- 2. the SYN proxy over IPv6 ------------------------------------------------
start_switch sw -p "$TMP/proxy.yaml" "${SWITCH_ARGS[@]}"
sleep 0.5
nsx web1 tcpdump -l -i eth0 -nn -c 1 'ip6[6] == 6 and ip6[53] & 2 != 0' >"$TMP/syn.txt" 2>"$TMP/td.err" &
td=$!
sleep 0.5
got=$(nsx inet curl -s -6 --max-time 30 "http://[$VIP]:443/big.bin" | sha256sum | cut -d' ' -f1)
wait "$td" 2>/dev/null
sleep 0.3
valid=$(jstat sw syn_proxy.cookies_valid)
oow=$(drops sw tcp_out_of_window)
if [ "$got" = "$want" ] && [ "$valid" -ge 1 ] && [ "$oow" -eq 0 ]; then
  pass "an 8 MB download through the SYN proxy over IPv6 arrives intact ($valid cookies valid, none out of window)"
else
  fail "8 MB through the IPv6 SYN proxy: sha256 ${got:0:16}... (want ${want:0:16}...), cookies valid $valid, out of window $oow"
fi
if grep -q "wscale" "$TMP/syn.txt" && grep -q "sackOK" "$TMP/syn.txt"; then
  pass "the proxy's SYN to web1 over IPv6 offers window scaling and SACK: $(grep -o 'options \[.*\]' "$TMP/syn.txt")"
else
  fail "the proxy's SYN to web1: '$(cat "$TMP/syn.txt")'"
fi

# A spoofed SYN flood from 2001:db8:66::/64 (off-link: the cookies go to the
# gateway, which drops them), bounded by count and time, while a real client
# makes 100 requests.
cat >"$TMP/flood.py" <<'EOF'
import socket, struct, sys, time

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

iface, dst_mac, src_mac, vip, seconds, limit = sys.argv[1:7]
dst = socket.inet_pton(socket.AF_INET6, vip)
frames = []
for i in range(512):
    src = socket.inet_pton(socket.AF_INET6, "2001:db8:66::%x" % (i + 1))
    tcp = struct.pack("!HHIIBBHHH", 1024 + i, 443, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!I3xB", len(tcp), 6)
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src + dst
    frames.append(bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) +
                  b"\x86\xdd" + ip6 + tcp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
end, sent = time.time() + float(seconds), 0
while time.time() < end and sent < int(limit):
    for f in frames:
        s.send(f)
    sent += len(frames)
    time.sleep(0.002)
print(sent)
EOF
inet_mac=$(nsx inet cat /sys/class/net/eth0/address)
ip netns exec "$P-inet" timeout 30 python3 "$TMP/flood.py" eth0 "$uplink_mac" "$inet_mac" "$VIP" 12 2000000 \
  >"$TMP/flood.out" 2>&1 &
flood=$!
sleep 1
ok=0
for _ in $(seq 100); do
  [ "$(nsx inet "${CURL[@]}" "http://[$VIP]:443/")" = contoso-web1 ] && ok=$((ok + 1))
done
wait "$flood"
sent=$(cat "$TMP/flood.out")
sleep 0.3
cookies=$(jstat sw syn_proxy.cookies_sent)
if [ "$ok" -ge 99 ] && [ "${sent:-0}" -gt 10000 ] 2>/dev/null; then
  pass "$ok of 100 requests answered during a spoofed IPv6 SYN flood of $sent SYNs ($cookies cookies sent)"
else
  fail "during the IPv6 SYN flood ($sent SYNs sent): $ok of 100 requests answered, cookies sent $cookies"
fi
stop_switch sw

live_summary live_ipv6
