#!/usr/bin/env bash
# palisade report end to end: a month of traffic (palisade-traffic --month)
# replayed into the hash-chained log, reported on. The report's figures must
# equal what the data plane counted; the HTML must be self-contained and escape
# what events say; the PDF is printed by the real Chromium and read back with
# pdftotext; every misuse gets its exit status.
set -uo pipefail
palisade=$1 traffic=$2 src=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3

policy=$src/examples/cloud.yaml
"$traffic" -p "$policy" --month 2026-10 -o "$tmp/oct.pcapng" >/dev/null || { echo "cannot make traffic"; exit 1; }
mkdir "$tmp/keys"
"$palisade" log keygen --private "$tmp/keys/log.key" --public "$tmp/keys/log.pub" >/dev/null
expect "replay a month into the log" 0 "$palisade" replay -p "$policy" -r "$tmp/oct.pcapng" --json \
  --log-dir "$tmp/log" --log-key "$tmp/keys/log.key" -e "$tmp/oct.json"
cp "$tmp/out" "$tmp/replay.json"
[ "$(jget "$tmp/replay.json" events.dropped)" = 0 ] && ok || bad "the replay dropped events (queue full)"

# The figures: the report over the log equals the data plane's own counters.
expect "report --month over the log" 0 "$palisade" report "$tmp/log" --month 2026-10 --json \
  -o "$tmp/oct.html"
cp "$tmp/out" "$tmp/report.json"
for pair in "dropped.packets=dropped" "dropped.of=packets" "flows.allowed=flows.created"; do
  r=${pair%%=*} p=${pair#*=}
  a=$(jget "$tmp/report.json" "$r") b=$(jget "$tmp/replay.json" "$p")
  [ "$a" = "$b" ] && [ "$a" -gt 0 ] && ok || bad "report $r = $a, replay $p = $b"
done
for reason in no_endpoint endpoint_acl; do
  a=$(jget "$tmp/report.json" "dropped.reasons.$reason") b=$(jget "$tmp/replay.json" "drop_reasons.$reason")
  [ "$a" = "$b" ] && ok || bad "drops $reason: report $a, replay $b"
done
# The plain EVE file and the chained log say the same.
expect "report over the plain event file" 0 "$palisade" report "$tmp/oct.json" --month 2026-10 --json
$py - "$tmp/report.json" "$tmp/out" <<'PY' && ok || bad "log and plain file reports differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("flows", "dropped", "top_src", "denied_reason"):
    assert a[k] == b[k], (k, a[k], b[k])
# The log's own records (file, checkpoint) carry the replay's wall-clock time,
# not October's: outside the period, counted as such.
assert a["outside"] > 0 and b["outside"] == 0, (a["outside"], b["outside"])
PY
# The attack days stand out: the sweeper and the guesser are the most refused sources.
[ "$(jget "$tmp/report.json" denied_src.0.key)" = 198.51.100.250 ] && ok || bad "top refused source is not the sweeper"

# The page: sections, charts, self-contained.
h=$tmp/oct.html
expect_out "monthly title" '<title>Monthly security summary: October 2026</title>' "$h"
for section in Summary Activity "Top talkers" "Drops by layer and reason" "Alerts by signature and severity" Attacks "About these records"; do
  expect_out "section $section" "<h2>$section</h2>" "$h"
done
[ "$(grep -o '<svg' "$h" | wc -l)" -ge 3 ] && ok || bad "fewer than 3 charts"
[ "$(grep -o '<rect x=[^>]*fill="#2563eb"' "$h" | wc -l)" -ge 28 ] && ok || bad "fewer than 28 daily columns of allowed connections"
if grep -qiE '<script|<link|src="http|url\(http' "$h"; then bad "the page fetches or runs something"; else ok; fi

# Hostile events are shown, never executed.
cat >"$tmp/hostile.json" <<'J'
{"timestamp":"2026-10-02T10:00:00Z","event_type":"alert","src_ip":"<script>alert(1)</script>","alert":{"signature_id":9,"signature":"<img src=x onerror=alert(2)>","severity":1}}
{"timestamp":"2026-10-02T11:00:00Z","event_type":"flow","src_ip":"198.51.100.1","flow":{"decision":"deny","reason":"</td></tr></table><iframe>"}}
J
expect "report over hostile events" 0 "$palisade" report "$tmp/hostile.json" -o "$tmp/hostile.html"
if grep -qiE '<script|<img|<iframe' "$tmp/hostile.html"; then bad "hostile markup reached the page"; else ok; fi
expect_out "hostile signature shown escaped" '&lt;img src=x onerror=alert\(2\)&gt;' "$tmp/hostile.html"
expect_out "no dates: the days the events span" '2 October 2026 \(UTC\)' "$tmp/hostile.html"

# PDF through headless Chromium, read back.
if [ -x /usr/bin/chromium ] && command -v pdftotext >/dev/null; then
  # In a directory whose name needs escaping in a file:// URL.
  odd="$tmp/odd #dir"; mkdir -p "$odd"
  expect "report --pdf" 0 "$palisade" report "$tmp/log" --month 2026-10 -o "$odd/r.html" --pdf "$odd/r.pdf"
  [ "$(head -c 5 "$odd/r.pdf")" = "%PDF-" ] && ok || bad "not a PDF"
  cp "$odd/r.pdf" "$tmp/r.pdf"
  pdftotext "$tmp/r.pdf" "$tmp/r.txt"
  expect_out "the PDF reads as the report" 'Monthly security summary: October 2026' "$tmp/r.txt"
  expect_out "the PDF has the drops" 'no_endpoint' "$tmp/r.txt"
  [ "$(pdfinfo "$tmp/r.pdf" | awk '/^Pages:/ {print $2}')" -ge 2 ] && ok || bad "PDF has fewer than 2 pages"
else
  echo "SKIP: PDF checks (chromium or pdftotext not installed; scripts/install-deps.sh installs both)"
fi
PALISADE_CHROMIUM=/nonexistent expect "--pdf without Chromium" 3 "$palisade" report "$tmp/log" --month 2026-10 -o "$tmp/n.html" --pdf "$tmp/n.pdf"
expect_out "says Chromium is missing" 'PDF needs Chromium' "$tmp/err"
[ -s "$tmp/n.html" ] && ok || bad "the HTML was not kept when the PDF failed"

# Misuse.
expect "bad --month" 2 "$palisade" report "$tmp/log" --month 2026-13 -o "$tmp/x.html"
expect_out "says so" "--month '2026-13' is not YYYY-MM" "$tmp/err"
expect "--month with --from" 2 "$palisade" report "$tmp/log" --month 2026-10 --from 2026-10-01 -o "$tmp/x.html"
expect "bad --from" 2 "$palisade" report "$tmp/log" --from yesterday --to 2026-10-02 -o "$tmp/x.html"
expect "--to before --from" 2 "$palisade" report "$tmp/log" --from 2026-10-05 --to 2026-10-01 -o "$tmp/x.html"
expect "nothing to write" 2 "$palisade" report "$tmp/log"
expect "--pdf without -o" 2 "$palisade" report "$tmp/log" --month 2026-10 --pdf "$tmp/x.pdf" --json
expect "missing input" 3 "$palisade" report "$tmp/absent" --month 2026-10 -o "$tmp/x.html"
: >"$tmp/empty.json"
expect "no events and no dates" 1 "$palisade" report "$tmp/empty.json" -o "$tmp/x.html"
expect "unwritable output" 3 "$palisade" report "$tmp/log" --month 2026-10 -o "$tmp/no/such/dir.html"

echo "report: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
