#!/usr/bin/env bash
# Each lint/NAME.yaml is a valid policy: `palisade check` must exit 0 and print
# exactly lint/NAME.expected on stderr; with --strict it must exit 1 when that
# file lists warnings and 0 when it is empty.
# Run from anywhere: check_lint.sh PALISADE [NAME...]
set -uo pipefail
palisade=$(realpath "$1"); shift
cd "$(dirname "$0")/lint"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls *.yaml | sed 's/\.yaml$//'))
pass=0 fail=0
diffs=$(mktemp); trap 'rm -f "$diffs"' EXIT
for n in "${names[@]}"; do
  got=$("$palisade" check -q "$n.yaml" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAIL $n: exit $rc, expected 0"; fail=$((fail + 1)); continue
  fi
  if ! diff -u "$n.expected" <([ -z "$got" ] || printf '%s\n' "$got") > "$diffs"; then
    echo "FAIL $n: output differs from $n.expected:"; cat "$diffs"
    fail=$((fail + 1)); continue
  fi
  want_strict=0; [ -s "$n.expected" ] && want_strict=1
  "$palisade" check -q --strict "$n.yaml" >/dev/null 2>&1; rc=$?
  if [ "$rc" -ne "$want_strict" ]; then
    echo "FAIL $n: --strict exit $rc, expected $want_strict"; fail=$((fail + 1)); continue
  fi
  pass=$((pass + 1))
done
# Every check can be silenced by name.
if "$palisade" check -q --strict --disable internet-management --disable endpoint-without-acl \
    --disable shadowed --disable broad-allow --disable unused-group --disable unused-tag \
    every-check.yaml >/dev/null 2>&1; then
  pass=$((pass + 1))
else
  echo "FAIL disable: --disable of every check still left warnings"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
