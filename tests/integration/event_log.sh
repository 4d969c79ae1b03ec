#!/usr/bin/env bash
# The tamper-evident log end to end through the palisade command: replay writes
# it, `palisade log verify` passes it intact and names every kind of tampering
# with exit status 1. Tampering is done with sed and head, as an intruder would.
set -uo pipefail
palisade=$1 traffic=$2 src=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

policy=$src/examples/cloud.yaml
"$traffic" -p "$policy" -o "$tmp/t.pcapng" >/dev/null || { echo "cannot make traffic"; exit 1; }
mkdir "$tmp/keys"
expect "keygen" 0 "$palisade" log keygen --private "$tmp/keys/log.key" --public "$tmp/keys/log.pub"
expect_out "keygen names the key" '^key [0-9a-f]{16}: ' "$tmp/out"
[ "$(stat -c %a "$tmp/keys/log.key")" = 600 ] && ok || bad "private key mode is not 600"
expect "keygen never overwrites a private key" 3 "$palisade" log keygen --private "$tmp/keys/log.key" --public "$tmp/x.pub"

replay() { # log dir, extra args...
  local dir=$1; shift
  "$palisade" replay -q -p "$policy" -r "$tmp/t.pcapng" --log-dir "$dir" --log-key "$tmp/keys/log.key" \
    --log-checkpoints "$tmp/keys/checkpoints.jsonl" "$@"
}
verify() { "$palisade" log verify "$@" --pubkey "$tmp/keys/log.pub" --checkpoints "$tmp/keys/checkpoints.jsonl"; }

# Three runs into one log, rotating at 32 KiB: one chain across files and restarts.
for i in 1 2 3; do expect "replay $i writes the log" 0 replay "$tmp/log" --log-rotate-size 32K; done
nfiles=$(ls "$tmp/log" | wc -l)
[ "$nfiles" -ge 4 ] && ok || bad "expected rotation into several files, got $nfiles"
# Files end at the record that reaches the size (and the checkpoint after it),
# so the tampering below, in records 10 to 30, stays inside the first file.
first=$(ls "$tmp/log" | head -1)
size=$(stat -c %s "$tmp/log/$first") tail2=$(tail -n 2 "$tmp/log/$first" | wc -c)
[ "$size" -ge 32768 ] && [ $((size - tail2)) -lt 32768 ] && ok || bad "the first file is $size bytes, its last two records $tail2"
[ "$(wc -l < "$tmp/log/$first")" -gt 32 ] && ok || bad "the first file holds too few records for the tampering below"
expect "an intact log verifies" 0 verify "$tmp/log"
expect_out "intact" '^INTACT$' "$tmp/out"
expect_out "summary" "^log [0-9a-f]{32}: $nfiles files, [0-9]+ records \(1-[0-9]+\), [0-9]+ checkpoints, [0-9]+ verified .*; closed" "$tmp/out"
expect "as JSON" 0 "$palisade" log verify "$tmp/log" --pubkey "$tmp/keys/log.pub" --json
/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["intact"] and j["closed"] and j["problems"]==[]' "$tmp/out" && ok || bad "JSON report"
expect "without a public key: usage error" 2 "$palisade" log verify "$tmp/log"
expect "--chain-only checks the chain" 0 "$palisade" log verify "$tmp/log" --chain-only
expect_out "and says what it did not check" 'signatures were not checked' "$tmp/out"

# Refusals: the key inside the log directory, a key others can read, no key.
cp -p "$tmp/keys/log.key" "$tmp/log/inside.key"
expect "a key inside the log directory is refused" 3 "$palisade" replay -q -p "$policy" -r "$tmp/t.pcapng" --log-dir "$tmp/log" --log-key "$tmp/log/inside.key"
expect_out "refusal says why" 'inside the log directory' "$tmp/err"
rm "$tmp/log/inside.key"
cp "$tmp/keys/log.key" "$tmp/open.key"; chmod 644 "$tmp/open.key"
expect "a readable key is refused" 3 "$palisade" replay -q -p "$policy" -r "$tmp/t.pcapng" --log-dir "$tmp/l2" --log-key "$tmp/open.key"
expect_out "refusal says why" 'readable by group or others' "$tmp/err"
expect "--log-dir without --log-key" 3 "$palisade" replay -q -p "$policy" -r "$tmp/t.pcapng" --log-dir "$tmp/l3"
expect "bad rotation size" 3 "$palisade" replay -q -p "$policy" -r "$tmp/t.pcapng" --log-dir "$tmp/l4" --log-key "$tmp/keys/log.key" --log-rotate-size 12Q
expect_out "names the flag" '^palisade replay: --log-rotate-size: ' "$tmp/err"

tamper() { # description, kind regex, command that tampers with $tmp/x/$first
  local what=$1 kind=$2; shift 2
  rm -rf "$tmp/x"; cp -a "$tmp/log" "$tmp/x"
  "$@"
  expect "$what is detected" 1 verify "$tmp/x"
  expect_out "$what is located" "$kind" "$tmp/out"
}
tamper "an edited record" "^$first:20: record 20: modified: " sed -i '20s/"TCP"/"UDP"/' "$tmp/x/$first"
tamper "a deleted record" "^between $first:29 and $first:30: record 30: deleted: record 30 is missing" sed -i '30d' "$tmp/x/$first"
tamper "an inserted copy" "^$first:26: record 10: inserted: a copy of the record at $first:10" sed -i '25r /dev/stdin' "$tmp/x/$first" < <(sed -n 10p "$tmp/log/$first")
tamper "two swapped records" "^$first:13: record 12: reordered: found after record 13" sed -i '12{h;d};13G' "$tmp/x/$first"
last=$(ls "$tmp/log" | tail -1)
tamper "a cut-off tail" "record [0-9]+: truncated: the log ends at record" sed -i '$d' "$tmp/x/$last"
tamper "a record cut mid-line" "$last: truncated: the file ends in an incomplete record" truncate -s -30 "$tmp/x/$last"
tamper "a removed oldest file" "record 1-[0-9]+ are missing|records 1-[0-9]+ are missing" rm "$tmp/x/$first"

# A writer that died mid-record: the next run accounts for the torn line.
rm -rf "$tmp/y"; cp -a "$tmp/log" "$tmp/y"
printf '{"timestamp":"2026-11-22T10:00:00.000000+00:00","event_ty' >> "$tmp/y/$last"
cp "$tmp/keys/checkpoints.jsonl" "$tmp/cp-saved"
expect "the writer resumes after a torn record" 0 replay "$tmp/y"
expect "and the log still verifies" 0 verify "$tmp/y"
expect_out "with the crash noted" "note: $last: ends in an incomplete record" "$tmp/out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
