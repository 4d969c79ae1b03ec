#!/usr/bin/env bash
# Every C++ source is formatted as .clang-format says.
set -uo pipefail
cd "$1"
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find src tests bench tools -name '*.cc' -o -name '*.h')
bad=0
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f (run: make format)"; bad=$((bad + 1)); }
done
echo "${#files[@]} files checked, $bad not formatted"
[ $bad -eq 0 ]
