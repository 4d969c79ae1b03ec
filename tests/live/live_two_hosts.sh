#!/usr/bin/env bash
# Live suite, two hosts: `palisade run` as the switches of hosts hv1 and hv2 of
# examples/cloud.yaml, whose uplinks meet on an underlay behind an edge router
# that also serves an Internet client and contoso's on-premises network.
#
#   inet 198.51.100.7/25 ──┐                 ┌── up0 plt-hv1 (198.51.100.201): palisade --host hv1
#   prem 198.51.100.130/26 ┴─ edge (router) ─┤     web1 192.0.2.4, db1 192.0.2.68 (DHCP),
#                              br0 .206/29   │     jump1 192.0.2.100, fabrikam fe1 192.0.2.4
#                                            └── up0 plt-hv2 (198.51.100.202): palisade --host hv2
#                                                  web2 192.0.2.5, app1 192.0.2.36,
#                                                  fabrikam be1 192.0.2.68
#
# The edge plays the cloud's load balancer: a VIP's port goes to the host of
# its endpoint's NIC, and a reply to a VIP goes by port to the host whose
# hosts[].snat_ports holds it (hv1 1024-33279, hv2 33280-65535). The underlay
# MTU is 1600 so that VXLAN carries full 1500-byte VM frames.
#
# Every expected drop names the switch, layer, reason and (from the flow log)
# rule; a failure prints both switches' stats. Exit 77 (skipped) without root,
# network namespaces or a tool.
set -uo pipefail
PALISADE=${1:?usage: live_two_hosts.sh PALISADE_BINARY POLICY}
POLICY=${2:?usage: live_two_hosts.sh PALISADE_BINARY POLICY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init plh$$ ip nc curl python3 ethtool busybox arping
FORGE=("$HERE/forge.py")  # run by /usr/bin/python3, where Debian puts scapy
/usr/bin/python3 -c 'import scapy.all' 2>/dev/null ||
  { echo "SKIP: python3-scapy is not installed (scripts/install-deps.sh)"; exit 77; }

# --- topology -----------------------------------------------------------------
newns edge
nsx edge sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
nsx edge ip link add br0 type bridge
nsx edge ip link set br0 mtu 1600 up
nsx edge ip addr add 198.51.100.206/29 dev br0
nooffload edge br0
for h in 1 2; do
  newns hv$h
  ip link add up0 netns $P-hv$h mtu 1600 type veth peer name u$h netns $P-edge mtu 1600
  nsx edge ip link set u$h master br0 up
  nooffload edge u$h
  nsx hv$h ip link set up0 up
  nooffload hv$h up0
done
client() {  # name edge-iface mac addr/len gateway/len
  newns "$1"
  ip link add "$2" netns $P-edge type veth peer name eth0 netns "$P-$1"
  nsx "$1" ip link set eth0 address "$3"
  nsx "$1" ip addr add "$4" dev eth0
  nsx "$1" ip link set eth0 up
  nsx edge ip addr add "$5" dev "$2"
  nsx edge ip link set "$2" up
  nooffload "$1" eth0; nooffload edge "$2"
  nsx "$1" ip route add default via "${5%/*}"
}
client inet einet 02:00:c6:33:64:07 198.51.100.7/25 198.51.100.1/25
client prem eprem 02:00:c6:33:64:82 198.51.100.130/26 198.51.100.129/26

cp "$POLICY" "$TMP/policy.yaml"
chmod 644 "$TMP/policy.yaml"
SSH_PORT=$("$PALISADE" rules -p "$TMP/policy.yaml" --nic contoso/jump1 | grep -o '203\.0\.113\.10:[0-9]*' | cut -d: -f2)
# The edge: VIP ports of hv1's endpoints (https of both tenants, contoso's
# ssh) and hv1's SNAT share go to hv1, the rest to hv2 (a rule's port range
# cannot end at 65535, so hv2's share is the default).
nsx edge ip route add 203.0.113.0/26 via 198.51.100.202
nsx edge ip route add default via 198.51.100.201 table 101
nsx edge ip rule add pref 100 to 203.0.113.10 ipproto tcp dport "$SSH_PORT" lookup 101
nsx edge ip rule add pref 100 to 203.0.113.0/26 ipproto tcp dport 443 lookup 101
for proto in tcp udp; do
  nsx edge ip rule add pref 110 to 203.0.113.0/26 ipproto $proto dport 1024-33279 lookup 101
done

vm web1 hv1 pweb1 02:00:0a:00:00:04 192.0.2.4/27 192.0.2.1
vm db1 hv1 pdb1 02:00:0a:00:00:44 "" ""          # leases its address from hv1
vm jump1 hv1 pjump1 02:00:0a:00:00:64 192.0.2.100/28 192.0.2.97
vm fe1 hv1 pfe1 02:00:0b:00:00:04 192.0.2.4/26 192.0.2.1
vm web2 hv2 pweb2 02:00:0a:00:00:05 192.0.2.5/27 192.0.2.1
vm app1 hv2 papp1 02:00:0a:00:00:24 192.0.2.36/27 192.0.2.33
vm be1 hv2 pbe1 02:00:0b:00:00:44 192.0.2.68/26 192.0.2.65

site web1 443 contoso-web1
mkdir -p "$TMP/www-web2-80"; echo contoso-web2 >"$TMP/www-web2-80/index.html"
head -c 30000000 /dev/urandom >"$TMP/www-web2-80/big.bin"
serve web2 80 "$TMP/www-web2-80"
site app1 8080 contoso-app1
site db1 5432 contoso-db1
site db1 1433 contoso-db1
site be1 1433 fabrikam-be1
ip netns exec $P-jump1 nc -lk -p 22 >/dev/null 2>&1 & PIDS+=($!)
# An Internet server that answers with the address and port it saw.
cat >"$TMP/peer.py" <<'EOF'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s:%d\n" % self.client_address).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
EOF
ip netns exec $P-inet python3 "$TMP/peer.py" & PIDS+=($!)
tcp_listening jump1 22 && tcp_listening inet 8000 ||
  { echo "FAIL: the servers on jump1 and inet did not start"; exit 1; }

UP=(--uplink up0 --gateway 198.51.100.206)
start_switch hv1 -p "$TMP/policy.yaml" --host hv1 "${UP[@]}" --uplink-address 198.51.100.201/29 \
  --port contoso/web1=pweb1 --port contoso/db1=pdb1 --port contoso/jump1=pjump1 \
  --port fabrikam/fe1=pfe1 --workers 2
start_switch hv2 -p "$TMP/policy.yaml" --host hv2 "${UP[@]}" --uplink-address 198.51.100.202/29 \
  --port contoso/web2=pweb2 --port contoso/app1=papp1 --port fabrikam/be1=pbe1 --workers 2 \
  --reevaluate
sleep 0.5   # the servers
CURL=(curl -s --max-time 5)

# --- DHCP: db1 leases the policy's address from its switch -----------------------
cat >"$TMP/udhcpc.sh" <<EOF
#!/bin/sh
[ "\$1" = bound ] || exit 0
echo "ip=\$ip subnet=\$subnet router=\$router dns=\$dns lease=\$lease" >"$TMP/lease"
ip addr add "\$ip/\$subnet" dev "\$interface"
ip route add default via "\$router"
EOF
chmod +x "$TMP/udhcpc.sh"
if nsx db1 busybox udhcpc -i eth0 -n -q -f -t 4 -T 1 -s "$TMP/udhcpc.sh" >"$TMP/udhcpc.log" 2>&1; then
  lease=$(cat "$TMP/lease")
  [ "$lease" = "ip=192.0.2.68 subnet=255.255.255.224 router=192.0.2.65 dns=203.0.113.253 lease=86400" ] &&
    pass "db1's DHCP client (busybox udhcpc) leased the policy's address from hv1: $lease" ||
    fail "db1's lease differs from the policy: $lease"
else
  fail "udhcpc in db1 got no lease: $(tail -3 "$TMP/udhcpc.log")"
fi

# --- input endpoints on both hosts -------------------------------------------------
expect_out contoso-web1 "Internet -> VIP :443 reaches web1 on hv1" nsx inet "${CURL[@]}" http://203.0.113.10:443/
expect_out contoso-web2 "Internet -> VIP :80 reaches web2 on hv2" nsx inet "${CURL[@]}" http://203.0.113.10:80/
nsx prem nc -z -w 3 203.0.113.10 "$SSH_PORT" &&
  pass "on-premises 198.51.100.130 -> VIP :$SSH_PORT reaches jump1:22 (ACL permits the head office)" ||
  fail "on-premises -> ssh endpoint :$SSH_PORT blocked"
expect_drop hv1 endpoint_acl Endpoint "Internet -> VIP :$SSH_PORT (ACL permits on-premises only)" \
  nsx inet nc -z -w 2 203.0.113.10 "$SSH_PORT"
expect_drop hv1 no_endpoint Endpoint "Internet -> VIP :8080 (no endpoint)" \
  nsx inet "${CURL[@]}" --max-time 2 http://203.0.113.10:8080/

# --- east-west across hosts (VXLAN, VNI = VNet) ------------------------------------
enc=$(jstat hv1 vxlan.encapsulated) dec=$(jstat hv2 vxlan.decapsulated)
expect_out contoso-app1 "web1 (hv1) -> app1:8080 (hv2), app-tier from-web" nsx web1 "${CURL[@]}" http://192.0.2.36:8080/
[ "$(jstat hv1 vxlan.encapsulated)" -gt "$enc" ] && [ "$(jstat hv2 vxlan.decapsulated)" -gt "$dec" ] &&
  pass "... carried in VXLAN: hv1 encapsulated, hv2 decapsulated" ||
  fail "web1 -> app1 did not cross in VXLAN"
expect_out contoso-db1 "app1 (hv2) -> db1:5432 (hv1), db-tier from-app" nsx app1 "${CURL[@]}" http://192.0.2.68:5432/
expect_drop hv2 subnet_group SubnetGroup "web2 (hv2) -> db1:5432 (hv1): db-tier admits the app subnet only" \
  nsx web2 "${CURL[@]}" --max-time 2 http://192.0.2.68:5432/
expect_out fabrikam-be1 "fabrikam fe1 (hv1) -> 192.0.2.68:1433 reaches be1 on hv2, not contoso's db1 beside it" \
  nsx fe1 "${CURL[@]}" http://192.0.2.68:1433/
expect_drop hv2 isolation Isolation "fabrikam be1 -> contoso app1's 192.0.2.36 beside it on hv2" \
  nsx be1 "${CURL[@]}" --max-time 2 http://192.0.2.36:8080/
expect_counted hv1 vxlan_unknown_host Overlay "VXLAN from the Internet to hv1, claiming app1 -> db1 (scapy)" \
  nsx inet /usr/bin/python3 "${FORGE[@]}" eth0 vxlan 198.51.100.7 198.51.100.201 5001

# --- outbound SNAT: each host in its own share of the VIP's ports ------------------
for v in web1:1024:33279 app1:33280:65535; do
  IFS=: read -r name lo hi <<<"$v"
  seen=$(nsx "$name" "${CURL[@]}" http://198.51.100.7:8000/)
  port=${seen#203.0.113.10:}
  if [ "${seen%:*}" = 203.0.113.10 ] && [ "$port" -ge "$lo" ] && [ "$port" -le "$hi" ]; then
    pass "$name -> Internet: the server saw $seen, in its host's SNAT share $lo-$hi, and the reply came back"
  else fail "$name -> Internet: the server saw '$seen' (wanted 203.0.113.10 and a port in $lo-$hi)"; fi
done

# --- trusted packet filters with real tools --------------------------------------------
out=$(nsx web1 arping -c 1 -w 2 -I eth0 192.0.2.1 2>&1)
grep -qi '12:34:56:78:9a:bc' <<<"$out" && pass "arping 192.0.2.1 from web1: the switch answers with the gateway MAC" ||
  fail "arping the gateway: $out"
expect_counted hv1 arp_reply_from_vm PortSecurity "web1 sends ARP replies (arping -A)" \
  nsx web1 arping -A -c 2 -w 2 -I eth0 192.0.2.4
expect_counted hv1 arp_spoof PortSecurity "web1 claims db1's 192.0.2.68 in ARP (scapy)" \
  nsx web1 /usr/bin/python3 "${FORGE[@]}" eth0 arp-claim 02:00:0a:00:00:04 192.0.2.68 192.0.2.1
expect_counted hv1 ip_spoof PortSecurity "web1 sends from 192.0.2.99 (scapy)" \
  nsx web1 /usr/bin/python3 "${FORGE[@]}" eth0 ip-from 02:00:0a:00:00:04 192.0.2.99 198.51.100.7
expect_counted hv1 mac_spoof PortSecurity "web1 sends from MAC 02:00:0a:00:00:99 (scapy)" \
  nsx web1 /usr/bin/python3 "${FORGE[@]}" eth0 ip-from 02:00:0a:00:00:99 192.0.2.4 198.51.100.7
expect_counted hv2 dhcp_server_from_vm PortSecurity "app1 plays DHCP server (rogue offer, scapy)" \
  nsx app1 /usr/bin/python3 "${FORGE[@]}" eth0 dhcp-offer 02:00:0a:00:00:24 192.0.2.36 192.0.2.50

# --- a reload with re-evaluation stops a flow its new rules deny ------------------------
# 1 MB/s: the 30 MB take 30 s, so a reload slowed down by a loaded machine
# still lands mid-download (at 3 MB/s one CI run saw the download finish first).
nsx inet curl -s --limit-rate 1M --speed-time 3 --speed-limit 1000 --max-time 60 \
  -o "$TMP/big.out" http://203.0.113.10:80/big.bin &   # gives up after 3 s without data
DL=$!
sleep 1.5
sed -i '/- name: web-in/,/destination_ports/ s/destination_ports: \[80, 443\]/destination_ports: [443]/' "$TMP/policy.yaml"
grep -A6 -- '- name: web-in' "$TMP/policy.yaml" | grep -q 'destination_ports: \[443\]' ||
  fail "the test could not edit web-nic/web-in"
revoked=$(drops hv2 policy_revoked)
msg=$(nsx hv2 "$PALISADE" reload --control "$TMP/hv2.sock" 2>&1)
echo "    reload hv2: $msg"
wait $DL; rc=$?
got=$(stat -c %s "$TMP/big.out" 2>/dev/null || echo 0)
if [ $rc -ne 0 ] && [ "$got" -lt 30000000 ] && [ "$(drops hv2 policy_revoked)" -gt "$revoked" ]; then
  pass "the download from web2 stopped after $got bytes: the reload removed port 80 from web-nic/web-in and --reevaluate revoked the flow (policy_revoked, rule $(last_rule hv2 policy_revoked))"
else
  fail "the download went on after the reload (curl status $rc, $got bytes, policy_revoked $(drops hv2 policy_revoked))"
fi
expect_drop hv2 nic_group NicGroup "a new connection to VIP :80 after the reload" \
  nsx inet "${CURL[@]}" --max-time 2 http://203.0.113.10:80/

stop_switch hv1
stop_switch hv2
live_summary "live two hosts"
