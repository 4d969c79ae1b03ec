#!/usr/bin/env bash
# Runs one fuzzer for SECONDS over a scratch copy of its corpus (the checked-in
# corpus is not modified). A crash, leak or timeout fails the test and leaves the
# reproducer in build/fuzz/artifacts/.
set -uo pipefail
fuzzer=$1 corpus=$2 seconds=$3
name=$(basename "$fuzzer")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
artifacts="$(dirname "$fuzzer")/artifacts/$name/"
mkdir -p "$artifacts"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$artifacts" -print_final_stats=1 "$work" 2>&1 | tail -25
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && echo "$name: no crash in ${seconds}s" || echo "$name: FAILED (see $artifacts)"
exit "$rc"
