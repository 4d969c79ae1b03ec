#!/usr/bin/env bash
# Each broken/NAME.yaml must make `palisade check` exit 1 and print exactly
# broken/NAME.expected on stderr. Run from anywhere: check_broken.sh PALISADE [NAME...]
set -uo pipefail
palisade=$(realpath "$1"); shift
cd "$(dirname "$0")/broken"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls *.yaml | sed 's/\.yaml$//'))
pass=0 fail=0
for n in "${names[@]}"; do
  got=$("$palisade" check -q "$n.yaml" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne 1 ]; then
    echo "FAIL $n: exit $rc, expected 1"; fail=$((fail + 1)); continue
  fi
  if ! diff -u "$n.expected" <(printf '%s\n' "$got") > /tmp/palisade-broken-$$.diff; then
    echo "FAIL $n: output differs from $n.expected:"; cat /tmp/palisade-broken-$$.diff
    fail=$((fail + 1)); continue
  fi
  pass=$((pass + 1))
done
rm -f /tmp/palisade-broken-$$.diff
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
