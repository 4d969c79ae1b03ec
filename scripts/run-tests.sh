#!/usr/bin/env bash
# Runs every test suite through ctest and prints one closing tally.
#   $1 release build dir: unit + integration + format check
#   $2 sanitizer build dir: unit tests under ASan + UBSan
#   $3 fuzz build dir: a short run of each fuzzer over its checked-in corpus
set -uo pipefail
rel=$1 san=$2 fuzz=$3
total_pass=0 total_fail=0 status=0

run() { # dir label-args...
  local dir=$1; shift
  local log; log=$(mktemp)
  echo "=== ctest in $dir $*"
  ctest --test-dir "$dir" --output-on-failure -j 2 "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line; line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [ -n "$line" ]; then
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    total_pass=$((total_pass + total - failed)); total_fail=$((total_fail + failed))
  elif [ "$rc" -ne 0 ]; then
    total_fail=$((total_fail + 1))
  fi
  [ "$rc" -eq 0 ] || status=1
  rm -f "$log"
}

run "$rel" -LE 'fuzz'
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run "$san" -L unit
run "$fuzz" -L fuzz

echo
echo "tests: $total_pass passed, $total_fail failed"
exit $status
