#!/usr/bin/env bash
# Runs the benchmarks and prints their figures with the machine they ran on.
# Record the output in bench/RESULTS.md (machine, command, figures).
set -euo pipefail
build=${1:-build/release}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "command: $build/bench/decode_bench --benchmark_min_time=1"
"$build/bench/decode_bench" --benchmark_min_time=1 --benchmark_counters_tabular=true
echo "command: $build/bench/pipeline_bench"
"$build/bench/pipeline_bench"
echo "command: $build/bench/acl_compare"
"$build/bench/acl_compare"
