#!/usr/bin/env bash
# IP reassembly in the IDS against tshark, on a real capture: the fragmented
# DNS amplification of ../shared/data/ddos (large RRSIG answers cut into IP
# fragments). `palisade ids -r` must reassemble as many datagrams as tshark
# does, and a rule on the size of the whole DNS answer (dsize:>1400, true
# only of a reassembled datagram: a first fragment carries at most 1,472
# bytes but the rule counts only those answers tshark also sees whole) must
# alert once per answer tshark reassembles; with `defrag.enabled=no` the
# fragments are inspected as they come (the first as a UDP packet), as before.
# Skips (77) when the shared data or tshark is absent.
set -uo pipefail
palisade=$1 data=$2
cap="$data/ddos/amp.dns.RRSIG.fragmented.pcap"
if [ ! -f "$cap" ]; then
  echo "SKIP: $cap is absent (the DDoS captures from ../shared/data)"
  exit 77
fi
command -v tshark >/dev/null || { echo "SKIP: tshark is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

cat >"$tmp/frag.rules" <<'R'
alert udp any 53 -> any any (msg:"whole DNS answer over 1400 bytes"; dsize:>1400; sid:1; rev:1;)
R
want=$(tshark -r "$cap" -Y "ip.fragments and udp.srcport == 53 and udp.length > 1408" 2>/dev/null | wc -l)
whole=$(tshark -r "$cap" -Y "ip.fragments" 2>/dev/null | wc -l)
"$palisade" ids -r "$cap" -S "$tmp/frag.rules" -l "$tmp/on" >"$tmp/on.txt" 2>&1 || bad "palisade ids failed: $(tail -2 "$tmp/on.txt")"
got_whole=$(sed -n 's/^defrag: [0-9]* fragments, \([0-9]*\) datagrams.*/\1/p' "$tmp/on.txt")
alerts=$(grep -c '"signature_id":1' "$tmp/on/eve.json")
[ "$whole" -gt 0 ] && [ "$got_whole" = "$whole" ] &&
  ok "$got_whole datagrams reassembled, as tshark reassembles $whole" ||
  bad "reassembled '$got_whole' datagrams; tshark $whole: $(grep defrag "$tmp/on.txt")"
[ "$alerts" -eq "$want" ] && ok "$alerts alerts on whole answers over 1400 bytes (tshark: $want)" ||
  bad "$alerts alerts on whole answers over 1400 bytes; tshark counts $want"
if grep -q '"src_port":53' "$tmp/on/eve.json" && grep -q '"proto":"UDP"' "$tmp/on/eve.json"; then
  ok "the alerts name the reassembled datagram's UDP ports"
else
  bad "the alerts lack the UDP ports: $(head -c 300 "$tmp/on/eve.json")"
fi
"$palisade" ids -r "$cap" -S "$tmp/frag.rules" -l "$tmp/off" --set defrag.enabled=no >"$tmp/off.txt" 2>&1
if ! grep -q "^defrag:" "$tmp/off.txt"; then
  ok "with defrag.enabled=no nothing is reassembled"
else
  bad "defrag.enabled=no still reassembles: $(grep defrag "$tmp/off.txt")"
fi
err=$("$palisade" ids -r "$cap" -S "$tmp/frag.rules" -l "$tmp/bad" --set defrag.timeout=0 2>&1)
[ $? -ne 0 ] && grep -q "defrag.timeout" <<<"$err" && ok "a bad defrag setting is refused: $err" ||
  bad "defrag.timeout=0 was accepted: $err"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
