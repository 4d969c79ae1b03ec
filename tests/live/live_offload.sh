#!/usr/bin/env bash
# Live suite, offloads on: `palisade run` as host hv1 of examples/cloud.yaml
# between an Internet namespace and contoso's web1 whose interfaces keep
# their default offloads (TSO, GSO and GRO on, as real VMs' virtio and tap
# devices have them), so the switch receives TCP super-frames of up to 64 KB.
# It cuts each into MTU-sized segments on arrival (src/live/segment.h) and
# forwards those: a 30 MB download through the VIP and an 8 MB one out
# through SNAT arrive intact (sha256), the switch counts the super-frames it
# cut and drops nothing as oversize.
# Exit 77 (skipped) without root or namespaces.
set -uo pipefail
PALISADE=${1:?usage: live_offload.sh PALISADE_BINARY POLICY}
POLICY=${2:?usage: live_offload.sh PALISADE_BINARY POLICY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
live_init pof$$ ip curl python3 ethtool sha256sum

newns sw
vm inet sw up0 02:00:c6:33:64:07 198.51.100.7/24 ""
nsx inet ip route add 203.0.113.0/24 dev eth0
vm web1 sw pweb1 02:00:0a:00:00:04 192.0.2.4/27 192.0.2.1
# vm() turned the offloads off; back on, on both ends of both links.
for x in "inet eth0" "web1 eth0" "sw up0" "sw pweb1"; do
  set -- $x
  nsx "$1" ethtool -K "$2" tso on gso on gro on >/dev/null 2>&1
done
tso=$(nsx web1 ethtool -k eth0 | awk '/^tcp-segmentation-offload:/ {print $2}')
[ "$tso" = on ] || { echo "SKIP: cannot turn TSO on for a veth here ($tso)"; exit 77; }

mkdir -p "$TMP/web1" "$TMP/inet"
head -c 30M /dev/urandom >"$TMP/web1/big.bin"
head -c 8M /dev/urandom >"$TMP/inet/up.bin"
want_down=$(sha256sum <"$TMP/web1/big.bin" | cut -d' ' -f1)
want_up=$(sha256sum <"$TMP/inet/up.bin" | cut -d' ' -f1)
serve web1 443 "$TMP/web1"
serve inet 8000 "$TMP/inet"
cp "$POLICY" "$TMP/policy.yaml"
start_switch sw -p "$TMP/policy.yaml" --host hv1 --uplink up0 --port contoso/web1=pweb1
sleep 0.5

got=$(nsx inet curl -s --max-time 60 http://203.0.113.10:443/big.bin | sha256sum | cut -d' ' -f1)
[ "$got" = "$want_down" ] && pass "a 30 MB download through the VIP with TSO/GSO/GRO on arrives intact" ||
  fail "30 MB download with offloads on: sha256 ${got:0:16}... (want ${want_down:0:16}...)"
got=$(nsx web1 curl -s --max-time 60 http://198.51.100.7:8000/up.bin | sha256sum | cut -d' ' -f1)
[ "$got" = "$want_up" ] && pass "an 8 MB download out through SNAT with offloads on arrives intact" ||
  fail "8 MB outbound download with offloads on: sha256 ${got:0:16}... (want ${want_up:0:16}...)"
sleep 0.3
frames=$(jstat sw gso.super_frames)
segs=$(jstat sw gso.segments)
oversize=$(drops sw oversize)
if [ "$frames" -gt 0 ] && [ "$segs" -gt "$frames" ] && [ "$oversize" -eq 0 ]; then
  pass "the switch cut $frames super-frames into $segs segments, none dropped as oversize"
else
  fail "super-frames $frames, segments $segs, oversize drops $oversize"
fi
stop_switch sw
live_summary live_offload
