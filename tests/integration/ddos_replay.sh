#!/usr/bin/env bash
# The DDoS stage in the data plane: `palisade replay` of examples/cloud.yaml,
# whose ddos section protects the two VIPs. A real SYN-ACK reflection capture
# (../shared/data/ddos) readdressed to contoso's VIP (tcprewrite) is detected
# there and its packets are dropped with the reason `ddos`, with start and end
# events in the flow log; `palisade trace` of one of its packets names the
# attack; the demo's everyday traffic raises nothing and loses nothing to it;
# capture rules select the attack's packets by vector (and refuse an unknown
# one); a profile's rate limits hold a spoofed SYN flood back (ddos_limit);
# a detected flood's refused packets are summarised by its events, not logged
# one by one; the same flood on the https endpoint is answered by the SYN
# proxy once detected;
# and a policy without a ddos section runs no DDoS stage at all.
# Usage: ddos_replay.sh PALISADE PALISADE_TRAFFIC SOURCE_DIR
set -uo pipefail
palisade=${1:?usage: ddos_replay.sh PALISADE PALISADE_TRAFFIC SOURCE_DIR}
traffic=${2:?}
src=${3:?}
data=$src/../shared/data
capture=$data/ddos/amp.TCP.reflection.SYNACK.pcap
[ -f "$capture" ] || { echo "SKIP: $capture is absent (../shared/data)"; exit 77; }
command -v tcprewrite >/dev/null || { echo "SKIP: tcprewrite is not installed (scripts/install-deps.sh)"; exit 77; }
tmp=$(mktemp -d)
cp "$src/examples/ids.rules" "$src/examples/classification.config" "$tmp/"  # beside policy copies
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
py=/usr/bin/python3

tcprewrite --dstipmap=10.10.10.0/24:203.0.113.10/32 --infile="$capture" --outfile="$tmp/attack.pcap" ||
  { echo "FAIL: tcprewrite"; exit 1; }
"$palisade" replay -p "$src/examples/cloud.yaml" -r "$tmp/attack.pcap" --json -e "$tmp/events.json" \
  >"$tmp/attack.json" 2>"$tmp/attack.err" || { fail "replay of the attack failed: $(cat "$tmp/attack.err")"; }
if out=$($py - "$tmp/attack.json" "$tmp/events.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
dropped = r["drop_reasons"].get("ddos", 0)
ev = [json.loads(l) for l in open(sys.argv[2]) if '"event_type":"ddos"' in l]
starts = [e["ddos"] for e in ev if e["ddos"]["event"] == "start"]
ends = [e["ddos"] for e in ev if e["ddos"]["event"] == "end"]
assert dropped > 4000, f"only {dropped} packets dropped as ddos"
assert r["layers"]["ddos"]["dropped"] == dropped
assert len(starts) == 1 and len(ends) == 1, f"{len(starts)} starts, {len(ends)} ends"
s, e = starts[0], ends[0]
assert s["target"] == "203.0.113.10" and s["protect"] == "contoso-vip" and s["profile"] == "web", s
assert s["attack"] == "synack_reflection", s
assert e["dropped"] == dropped, (e["dropped"], dropped)
print(f"{dropped} of {r['packets']} packets dropped as ddos; attack {s['attack']} on {s['target']}, "
      f"peak {e['peak_pps']} pps")
PY
); then pass "reflection on contoso's VIP: $out"; else fail "reflection on contoso's VIP: $out"; fi

tr=$("$palisade" trace -p "$src/examples/cloud.yaml" -r "$tmp/attack.pcap" -n 4000)
if grep -q "ddos *DENY.*under attack #1 (synack_reflection): dropped by the scrubbing path" <<<"$tr" &&
   grep -q "verdict: DROP (ddos, layer ddos)" <<<"$tr"; then
  pass "trace names the attack and the layer"
else
  fail "trace of packet 4000: $tr"
fi

"$traffic" -p "$src/examples/cloud.yaml" -o "$tmp/day.pcapng" >/dev/null || { echo "FAIL: palisade-traffic"; exit 1; }
"$palisade" replay -p "$src/examples/cloud.yaml" -r "$tmp/day.pcapng" --json -e "$tmp/day-events.json" \
  >"$tmp/day.json" 2>/dev/null
if out=$($py - "$tmp/day.json" "$tmp/day-events.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["drop_reasons"].get("ddos", 0) == 0, r["drop_reasons"]
assert r["layers"]["ddos"]["passed"] > 0, r["layers"]["ddos"]
assert '"event_type":"ddos"' not in open(sys.argv[2]).read(), "a ddos event"
print(f"{r['layers']['ddos']['passed']} packets from the uplink through the ddos stage, none dropped")
PY
); then pass "everyday traffic: $out"; else fail "everyday traffic: $out"; fi

# Capture by attack: the reflection's packets, with their verdicts.
$py - "$src/examples/cloud.yaml" "$tmp/capture.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
text = text.replace("\n  rules:\n", "\n  rules:\n    - name: reflection\n      attack: synack_reflection\n"
                    "    - name: any-attack\n      attack: any\n    - name: floods\n      attack: syn_flood\n", 1)
open(sys.argv[2], "w").write(text)
PY
"$palisade" replay -q -p "$tmp/capture.yaml" -r "$tmp/attack.pcap" --capture-dir "$tmp/cap" 2>/dev/null
n_ref=$(cat "$tmp"/cap/reflection/*.pcapng 2>/dev/null | tshark -r - -T fields -e frame.number 2>/dev/null | wc -l)
n_any=$(cat "$tmp"/cap/any-attack/*.pcapng 2>/dev/null | tshark -r - -T fields -e frame.number 2>/dev/null | wc -l)
n_syn=$(ls "$tmp"/cap/floods/*.pcapng 2>/dev/null | wc -l)
comment=$(tshark -r "$(ls "$tmp"/cap/reflection/*.pcapng | head -1)" -c 1 -T fields -e frame.comment 2>/dev/null)
if [ "$n_ref" -gt 4000 ] && [ "$n_any" -ge "$n_ref" ] && [ "$n_syn" -eq 0 ] &&
   grep -q "dropped on uplink: ddos.*DDoS: synack_reflection during an attack" <<<"$comment"; then
  pass "capture by attack: $n_ref reflection packets ($n_any of any attack, none of a SYN flood), commented '$comment'"
else
  fail "capture by attack: $n_ref reflection, $n_any any, $n_syn SYN-flood files; comment '$comment'"
fi
sed 's/attack: synack_reflection/attack: synack_reflexion/' "$tmp/capture.yaml" >"$tmp/capture-bad.yaml"
err=$("$palisade" replay -q -p "$tmp/capture-bad.yaml" -r "$tmp/attack.pcap" --capture-dir "$tmp/cap2" 2>&1)
status=$?
if [ $status -ne 0 ] && grep -q "unknown attack vector 'synack_reflexion'" <<<"$err"; then
  pass "an unknown attack vector is refused (exit $status)"
else
  fail "unknown attack vector: exit $status: $err"
fi

# Rate limits: a spoofed SYN flood on contoso's VIP, held to target_pps.
flood=$data/ddos/pkt.TCP.synflood.spoofed.pcap
tcprewrite --dstipmap=10.10.10.0/24:203.0.113.10/32 --infile="$flood" --outfile="$tmp/flood.pcap"
sed 's/        syn: {pps: 2k}/        syn: {pps: 2k}\n      limits: {target_pps: 500, source_pps: 20}/' \
  "$src/examples/cloud.yaml" >"$tmp/limits.yaml"
"$palisade" replay -p "$tmp/limits.yaml" -r "$tmp/flood.pcap" --json >"$tmp/limits.json" 2>/dev/null
if out=$($py - "$tmp/limits.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
limited = r["drop_reasons"].get("ddos_limit", 0)
assert limited > 20000, f"{limited} over the limits: {r['drop_reasons']}"
print(f"{limited} of {r['packets']} SYNs over the limits (ddos_limit)")
PY
); then pass "limits: $out"; else fail "limits: $out"; fi

# A flood's packets that the layers refuse (SYNs to a port with no endpoint)
# are in the attack's events, not one flow record each once it is detected.
"$palisade" replay -p "$src/examples/cloud.yaml" -r "$tmp/flood.pcap" -q -e "$tmp/flood-events.json" 2>/dev/null
denied=$(grep -c '"decision":"deny"' "$tmp/flood-events.json")
attacks=$(grep -c '"event_type":"ddos"' "$tmp/flood-events.json")
if [ "$denied" -lt 5000 ] && [ "$attacks" -ge 2 ]; then
  pass "37,841 spoofed SYNs to a closed port: $denied denied-flow records (before detection) and $attacks attack events"
else
  fail "flood logging: $denied denied-flow records, $attacks attack events"
fi

# The SYN proxy: the same flood aimed at the https endpoint (port 443): its
# first SYNs open flows until the flood is detected, then the proxy (on
# attack, as shipped) answers the rest with cookies and keeps nothing.
tcprewrite --dstipmap=10.10.10.0/24:203.0.113.10/32 --portmap=25565:443 --infile="$flood" \
  --outfile="$tmp/flood443.pcap"
"$palisade" replay -p "$src/examples/cloud.yaml" -r "$tmp/flood443.pcap" --json >"$tmp/proxy.json" 2>/dev/null
if out=$($py - "$tmp/proxy.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
sp, d = r["syn_proxy"], r["ddos"]
assert d["attacks"] == 1, d
assert sp["cookies_sent"] > 30000 and sp["cookies_valid"] == 0, sp
assert r["flows"]["created"] < 5000, r["flows"]
assert r["answered"] == sp["cookies_sent"], (r["answered"], sp)
print(f"{sp['cookies_sent']} of {r['packets']} SYNs answered with cookies, "
      f"{r['flows']['created']} flows opened before detection")
PY
); then pass "SYN proxy on attack: $out"; else fail "SYN proxy on attack: $out"; fi

# Without the section there is no stage.
$py - "$src/examples/cloud.yaml" "$tmp/noddos.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
start = text.index("\nddos:")
end = text.index("\n\n", start + 1)  # the section ends at a blank line
open(sys.argv[2], "w").write(text[:start] + text[end:])
PY
"$palisade" replay -p "$tmp/noddos.yaml" -r "$tmp/attack.pcap" --json >"$tmp/plain.json" 2>/dev/null
if $py -c "
import json,sys
r=json.load(open('$tmp/plain.json'))
assert r['layers']['ddos']=={'passed':0,'dropped':0}, r['layers']['ddos']
assert 'ddos' not in r['drop_reasons']" 2>/dev/null; then
  pass "no ddos section: no DDoS stage (the attack meets the endpoint layer)"
else
  fail "no ddos section: $(head -c 300 "$tmp/plain.json")"
fi

echo
echo "ddos_replay: $((9 - fails)) passed, $fails failed"
[ $fails -eq 0 ]
