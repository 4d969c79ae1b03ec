#!/usr/bin/env bash
# palisade decode runs over every capture in ../shared/data without a failure:
# exit 0, a summary, no crash; each file's packet count equals capinfos'.
set -uo pipefail
palisade=$1 data=$2
if [ ! -d "$data" ]; then echo "SKIP: $data is absent (the shared reference data)"; exit 77; fi
mapfile -t files < <(find "$data" -name '*.pcap' -o -name '*.pcapng' | sort)
[ ${#files[@]} -gt 0 ] || { echo "SKIP: no captures under $data"; exit 77; }
pass=0 fail=0
for f in "${files[@]}"; do
  out=$("$palisade" decode "$f" 2>&1); rc=$?
  want=$(capinfos -c -M "$f" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
  got=$(grep -E '^[^ ].*: [0-9]+ packets,' <<<"$out" | head -1 | sed -E 's/.*: ([0-9]+) packets,.*/\1/')
  lines=$(grep -cE '^ *[0-9]+ [0-9]{2}:' <<<"$out")
  if [ $rc -ne 0 ] || [ "$got" != "$want" ] || [ "$lines" != "$want" ]; then
    echo "FAIL $f: exit $rc, summary $got packets, $lines lines, capinfos $want"; fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
done
echo "decoded ${#files[@]} captures"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
