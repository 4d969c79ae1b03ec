#!/usr/bin/env bash
# Policy-driven capture end to end: capture rules select packets by tenant, NIC,
# rule, decision and drop reason; the files rotate by size and by time, the
# ring keeps max_files (across runs too), nothing selected is lost, and
# tshark/capinfos read every file with its interfaces and per-packet comments.
# Broken capture rules are refused with the line and the reason.
set -uo pipefail
palisade=$1 traffic=$2 src=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$src/examples/ids.rules" "$src/examples/classification.config" "$tmp/"  # beside policy copies
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
# policy NAME CAPTURE-YAML: the example policy with its capture section replaced.
policy() {
  $py - "$src/examples/cloud.yaml" "$tmp/$1.yaml" "$2" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("\ncapture:\n") + 1
end = text.index("\n\n", start) + 1
open(sys.argv[2], "w").write(text[:start] + sys.argv[3] + text[end:])
PY
}
packets() { local n=0 f; for f in "$@"; do n=$((n + $(capinfos -M -c -T -r "$f" | awk -F'\t' '{print $2}'))); done; echo $n; }

"$traffic" -p "$src/examples/cloud.yaml" --month 2026-10 -o "$tmp/oct.pcapng" >/dev/null || { echo "cannot make traffic"; exit 1; }
"$traffic" -p "$src/examples/cloud.yaml" -o "$tmp/day.pcapng" >/dev/null || { echo "cannot make traffic"; exit 1; }

# --- rotation by time, and the ring ----------------------------------------------------
policy daily 'capture:
  file_duration: 1d
  max_files: 5
  rules:
    - name: refused
      decision: deny
    - name: web
      tenant: contoso
      rule: contoso/web-tier
'
expect "replay with daily files" 0 "$palisade" replay -p "$tmp/daily.yaml" -r "$tmp/oct.pcapng" --json --capture-dir "$tmp/c1"
cp "$tmp/out" "$tmp/daily.json"
n=$(ls "$tmp/c1/refused" | wc -l)
[ "$n" = 5 ] && ok || bad "refused: $n files kept, max_files is 5"
files=$(jget "$tmp/daily.json" capture.0.files) deleted=$(jget "$tmp/daily.json" capture.0.deleted)
[ "$files" -ge 10 ] && [ "$deleted" = $((files - 5)) ] && ok || bad "refused: $files files opened, $deleted deleted"
for f in "$tmp/c1/refused"/*.pcapng; do
  d=$(capinfos -M -u -T -r "$f" | awk -F'\t' '{print $2}')
  $py -c "import sys; sys.exit(0 if float('$d') < 86400 else 1)" && ok || bad "$(basename "$f") spans $d s, more than a day"
done
# Run again into the same directory: the ring still holds 5 (earlier runs' files count).
expect "replay again into the same directory" 0 "$palisade" replay -q -p "$tmp/daily.yaml" -r "$tmp/oct.pcapng" --capture-dir "$tmp/c1"
n=$(ls "$tmp/c1/refused" | wc -l)
[ "$n" = 5 ] && ok || bad "after a second run: $n files in the ring of 5"
# Every refused packet, and only those: the last day's file against the replay.
[ "$(jget "$tmp/daily.json" capture.0.packets)" = "$(jget "$tmp/daily.json" dropped)" ] && ok ||
  bad "refused captured $(jget "$tmp/daily.json" capture.0.packets), replay dropped $(jget "$tmp/daily.json" dropped)"
web=$(ls "$tmp/c1/web"/*.pcapng | tail -1)
tshark -r "$web" -T fields -e frame.interface_name -e frame.comment 2>/dev/null >"$tmp/web.txt"
expect_out "web: the client's packets on the uplink, with their rules" \
  $'^uplink\tforwarded uplink -> contoso/web1; subnet_group contoso/web-tier/https-in, nic_group contoso/web-nic/web-in, endpoint contoso/https' "$tmp/web.txt"
expect_out "web: web1's replies on its own port" $'^contoso/web1\tforwarded contoso/web1 -> uplink' "$tmp/web.txt"
if grep -q 'contoso/jump1\|fabrikam' "$tmp/web.txt"; then bad "web captured traffic outside its rule"; else ok; fi
capinfos -M "$web" >"$tmp/capinfos.txt"
expect_out "nanosecond timestamps" 'nanoseconds' "$tmp/capinfos.txt"
expect_out "written by palisade" 'Capture application: +palisade' "$tmp/capinfos.txt"
tshark -r "$web" -T fields -e frame.interface_description -c 1 2>/dev/null >"$tmp/desc.txt"
expect_out "interface descriptions" 'uplink: Internet' "$tmp/desc.txt"

# --- rotation by size: nothing lost -----------------------------------------------------
policy small 'capture:
  file_size: 16K
  max_files: 10000
  snaplen: 128
  rules:
    - name: everything-of-db1
      nic: contoso/db1
    - name: acl
      reason: endpoint_acl
    - name: web
      rule: contoso/web-tier
'
expect "replay with 16K files" 0 "$palisade" replay -p "$tmp/small.yaml" -r "$tmp/oct.pcapng" --json --capture-dir "$tmp/c2"
cp "$tmp/out" "$tmp/small.json"
acl=("$tmp/c2/acl"/*.pcapng)
[ "${#acl[@]}" -ge 3 ] && ok || bad "acl: ${#acl[@]} files, expected rotation at 16K"
big=0
for f in "${acl[@]}"; do [ "$(stat -c %s "$f")" -le $((16384 + 1024)) ] || big=$((big + 1)); done
[ "$big" = 0 ] && ok || bad "$big files over 16K (plus one packet and the header)"
[ "$(packets "${acl[@]}")" = "$(jget "$tmp/small.json" drop_reasons.endpoint_acl)" ] && ok ||
  bad "acl: $(packets "${acl[@]}") packets in the files, replay dropped $(jget "$tmp/small.json" drop_reasons.endpoint_acl) by the ACL"
read -r cap wire < <(tshark -r "$(ls "$tmp/c2/web"/*.pcapng | head -1)" -T fields -e frame.cap_len -e frame.len 2>/dev/null |
  sort -n -k2 | tail -1)
[ "$cap" = 128 ] && [ "$wire" -gt 128 ] && ok || bad "snaplen 128: the largest packet kept $cap of $wire bytes"
[ -z "$(ls "$tmp/c2/everything-of-db1" 2>/dev/null)" ] && ok || bad "db1 captured October traffic it never had"

# The demo day: the same rules on the scenario.
expect "replay the demo day" 0 "$palisade" replay -p "$src/examples/cloud.yaml" -r "$tmp/day.pcapng" --json --capture-dir "$tmp/c3"
for rule in database office-ssh fabrikam-refused spoofing ids-alerts; do
  [ "$(jget "$tmp/out" "capture.$(case $rule in database) echo 0;; office-ssh) echo 1;; fabrikam-refused) echo 2;; spoofing) echo 3;; ids-alerts) echo 4;; esac).packets")" -gt 0 ] && ok || bad "$rule captured nothing"
done
tshark -r "$tmp/c3/spoofing/"*.pcapng -T fields -e frame.comment 2>/dev/null >"$tmp/spoof.txt"
expect_out "spoofing comment" 'dropped on contoso/.*: ip_spoof \(port_security layer' "$tmp/spoof.txt"
# Capture by alert: the flows the IPS stopped, from the packet that alerted on.
tshark -r "$tmp/c3/ids-alerts/"*.pcapng -T fields -e frame.comment 2>/dev/null >"$tmp/alerts.txt"
expect_out "alert comment" 'dropped on uplink: ids_drop \(ids layer.*; IDS alert sid 9000001' "$tmp/alerts.txt"
expect_out "later packets of the flow" 'ids_drop .*in a flow with IDS alert sid' "$tmp/alerts.txt"

# --- broken capture rules and unwritable places -----------------------------------------
policy alert 'capture:
  rules:
    - name: by-alert
      alert: 2001
'
sed -i '/^ids:$/,/^$/d' "$tmp/alert.yaml"  # no ids section
expect "capture by alert without an ids section is refused" 1 "$palisade" check "$tmp/alert.yaml"
expect_out "says why, on its line" "alert.yaml:[0-9]+:[0-9]+: error: capture rule 'by-alert' selects IDS alerts, but the policy has no ids section" "$tmp/err"
policy nic 'capture:
  rules:
    - name: ghost
      nic: contoso/db9
'
expect "unknown NIC" 1 "$palisade" check "$tmp/nic.yaml"
expect_out "suggests" "unknown NIC 'db9' in capture rule 'ghost'.*did you mean 'db1'" "$tmp/err"
policy rule 'capture:
  rules:
    - name: typo
      rule: contoso/db-tier/from-ap
'
expect "unknown rule" 1 "$palisade" replay -q -p "$tmp/rule.yaml" -r "$tmp/day.pcapng" --capture-dir "$tmp/c4"
expect_out "names the line and suggests" "rule.yaml:[0-9]+: capture rule 'typo': no rule or group 'contoso/db-tier/from-ap'.*did you mean 'contoso/db-tier/from-app'" "$tmp/err"
policy reason 'capture:
  rules:
    - name: r
      reason: spoofed
'
expect "unknown reason" 1 "$palisade" replay -q -p "$tmp/reason.yaml" -r "$tmp/day.pcapng" --capture-dir "$tmp/c4"
expect_out "lists the reasons" "unknown drop reason 'spoofed'; known: malformed, " "$tmp/err"
policy size 'capture:
  file_size: 12
  rules:
    - name: r
      decision: deny
'
expect "file_size too small" 1 "$palisade" check "$tmp/size.yaml"
expect_out "says the bounds" "file_size '12' must be a size from 4K to 1T" "$tmp/err"
: >"$tmp/notadir"
expect "unwritable capture dir" 3 "$palisade" replay -q -p "$src/examples/cloud.yaml" -r "$tmp/day.pcapng" --capture-dir "$tmp/notadir/x"

echo "capture: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
