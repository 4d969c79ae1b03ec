#!/usr/bin/env bash
# The IDS against the Suricata verification suite (../shared/data/suricata-verify):
# `palisade ids verify` runs every case's capture with its rules and settings
# and scores its alert checks; every case must pass. Then `palisade ids -r` on
# one case writes an eve.json whose alert events carry the fields tools that
# read Suricata's eve.json expect, and bad input gets a precise error.
# Skips (77) when the shared data is absent.
set -uo pipefail
palisade=$1 src=$2
cases="$src/../shared/data/suricata-verify/tests"
if [ ! -d "$cases" ]; then
  echo "SKIP: $cases is absent (the suricata-verify cases from ../shared/data)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

"$palisade" ids verify "$cases" >"$tmp/verify" 2>&1
rc=$?
tail -1 "$tmp/verify"
total=$(find "$cases" -name test.yaml | wc -l)
if [ "$rc" -eq 0 ] && grep -qx "$total passed, 0 failed" "$tmp/verify"; then
  ok
else
  grep -A6 '^FAIL' "$tmp/verify" | head -60
  bad "suricata-verify: not all $total cases pass (exit $rc)"
fi

# One case by hand, as an operator would run it.
case_dir="$cases/alert-testmyids-midstream"
if "$palisade" ids -r "$case_dir/input.pcap" -S "$case_dir/test.rules" -l "$tmp/out" \
    --set stream.midstream=true >"$tmp/run" 2>&1; then
  ok
else
  bad "ids -r failed: $(cat "$tmp/run")"
fi
/usr/bin/python3 - "$tmp/out/eve.json" <<'PY' && ok || bad "eve.json alert fields"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
events = [e for e in lines if e["event_type"] == "alert"]
assert len(events) == 1, events
e = events[0]
# By default the flow is logged too, as Suricata's eve.json has it.
flows = [f for f in lines if f["event_type"] == "flow"]
assert any(f["flow_id"] == e["flow_id"] and f["flow"]["alerted"] for f in flows), flows
for k in ("timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip", "src_port", "dest_ip",
          "dest_port", "proto", "alert"):
    assert k in e, k
a = e["alert"]
assert e["event_type"] == "alert" and e["src_port"] == 80 and e["proto"] == "TCP", e
assert a["signature_id"] == 2100498 and a["rev"] == 7 and a["gid"] == 1, a
assert a["signature"] == "GPL ATTACK_RESPONSE id check returned root", a
assert a["category"] and a["severity"] >= 1 and a["action"] == "allowed", a
PY
# Without the mid-stream setting the session is not picked up: the packet
# still matches, but not as part of an established flow.
echo 'alert tcp any any -> any any (flow:established; content:"uid=0|28|root|29|"; sid:9;)' >"$tmp/est.rules"
"$palisade" ids -r "$case_dir/input.pcap" -S "$tmp/est.rules" -l "$tmp/out2" -q
"$palisade" ids -r "$case_dir/input.pcap" -S "$tmp/est.rules" -l "$tmp/out3" -q --set stream.midstream=true
alerts() { grep -c '"event_type":"alert"' "$1"; }
if [ "$(alerts "$tmp/out2/eve.json")" -eq 0 ] && [ "$(alerts "$tmp/out3/eve.json")" -eq 1 ]; then
  ok
else
  bad "flow:established: $(alerts "$tmp/out2/eve.json") alerts without mid-stream pickup (want 0), $(alerts "$tmp/out3/eve.json") with (want 1)"
fi
# --eve-types: alerts only, and an unknown type refused.
"$palisade" ids -r "$case_dir/input.pcap" -S "$tmp/est.rules" -l "$tmp/out4" -q --set stream.midstream=true \
  --eve-types alert
if [ "$(wc -l <"$tmp/out4/eve.json")" -eq 1 ] && [ "$(alerts "$tmp/out4/eve.json")" -eq 1 ]; then
  ok
else
  bad "--eve-types alert wrote $(wc -l <"$tmp/out4/eve.json") lines (want the 1 alert)"
fi
err=$("$palisade" ids -r "$case_dir/input.pcap" -S "$tmp/est.rules" -l "$tmp/out5" --eve-types alert,smtp 2>&1)
if [ $? -eq 2 ] && grep -q "unknown EVE event type 'smtp'" <<<"$err"; then ok; else bad "--eve-types alert,smtp: $err"; fi

# Bad input: a precise error and a usage or read exit code, never a crash.
"$palisade" ids -r "$case_dir/input.pcap" -S "$case_dir/test.rules" -l "$tmp/o3" \
  --set stream.midstream=maybe >"$tmp/e1" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "not a boolean" "$tmp/e1"; then ok; else bad "bad --set: rc $rc $(cat "$tmp/e1")"; fi
"$palisade" ids -r "$tmp/missing.pcap" -S "$case_dir/test.rules" -l "$tmp/o4" >"$tmp/e2" 2>&1
rc=$?
if [ "$rc" -eq 3 ]; then ok; else bad "missing capture: rc $rc"; fi
head -c 3000 "$case_dir/input.pcap" >"$tmp/cut.pcap"
"$palisade" ids -r "$tmp/cut.pcap" -S "$case_dir/test.rules" -l "$tmp/o5" -q >"$tmp/e3" 2>&1
rc=$?
if [ "$rc" -le 1 ]; then ok; else bad "truncated capture: rc $rc $(cat "$tmp/e3")"; fi

echo "ids_verify: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
