#!/usr/bin/env bash
# Longer fuzzing campaign: make fuzz-long FUZZ_SECONDS=N. New corpus entries are
# kept in build/fuzz/corpus/NAME (merge them into tests/fuzz/corpus by hand).
set -uo pipefail
build=$1 seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
status=0
for f in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  out="$build/corpus/$name"; mkdir -p "$out" "$build/artifacts/$name"
  echo "=== $name for ${seconds}s"
  "$f" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$build/artifacts/$name/" "$out" "$here/corpus/$name" || status=1
done
exit $status
