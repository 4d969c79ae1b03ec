#!/usr/bin/env bash
# pcapng written by Palisade reads back in tshark with the same interface ids and
# nanosecond timestamps, and pcapng written by editcap reads back in Palisade.
set -uo pipefail
palisade=$1 traffic=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v tshark >/dev/null && command -v editcap >/dev/null ||
  { echo "SKIP: tshark/editcap not installed (scripts/install-deps.sh installs them)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }

"$traffic" -p "$src/examples/cloud.yaml" -o "$tmp/ours.pcapng" >/dev/null || { echo "FAIL: traffic generator"; exit 1; }
# Interface id and nanosecond time of every packet, as tshark and as palisade see them.
tshark -r "$tmp/ours.pcapng" -T fields -e frame.interface_id -e frame.time_epoch 2>/dev/null |
  awk '{split($2, t, "."); printf "if%s %s\n", $1, substr(t[2], 1, 9)}' > "$tmp/tshark.txt"
"$palisade" decode "$tmp/ours.pcapng" | awk '/^ *[0-9]+ [0-9][0-9]:/ {split($2, t, "."); print $3, t[2]}' > "$tmp/palisade.txt"
check "tshark reads our pcapng with the same interface ids and ns timestamps" 'diff -q "$tmp/tshark.txt" "$tmp/palisade.txt" >/dev/null'
check "tshark sees one interface per port" '[ "$(capinfos -I "$tmp/ours.pcapng" 2>/dev/null | grep -c "Interface #")" -ge 2 ]'

# editcap's pcapng (its writer, not ours) reads back in palisade, packet for packet.
editcap -F pcap "$tmp/ours.pcapng" "$tmp/plain.pcap" 2>/dev/null
editcap -F pcapng "$tmp/plain.pcap" "$tmp/theirs.pcapng" 2>/dev/null
"$palisade" decode "$tmp/plain.pcap" | awk '/^ *[0-9]+ [0-9][0-9]:/ {$1=""; print}' > "$tmp/a.txt"
"$palisade" decode "$tmp/theirs.pcapng" | awk '/^ *[0-9]+ [0-9][0-9]:/ {$1=""; $3=""; print}' | sed 's/  */ /g' > "$tmp/b.txt"
sed -i 's/  */ /g' "$tmp/a.txt"
check "editcap pcapng decodes like the pcap it came from" 'diff -q "$tmp/a.txt" "$tmp/b.txt" >/dev/null'
check "nanosecond timestamps survive pcapng -> pcap -> pcapng" \
  'diff -q <(awk "{print \$1}" "$tmp/a.txt" | cut -d. -f2) <(awk "{print \$2}" "$tmp/palisade.txt") >/dev/null'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
