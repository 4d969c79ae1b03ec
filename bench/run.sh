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
echo "command: $build/bench/ddos_bench"
"$build/bench/ddos_bench"
echo "command: $build/bench/log_bench"
"$build/bench/log_bench"
if command -v openssl >/dev/null; then
  pki=$(mktemp -d)
  bash "$(dirname "$0")/../tests/integration/make_certs.sh" "$pki" collector.test sender1
  echo "command: $build/bench/ship_bench --pki PKI --events 300000"
  "$build/bench/ship_bench" --pki "$pki" --events 300000 2>/dev/null
  rm -rf "$pki"
else
  echo "ship_bench: skipped (needs openssl for test certificates)"
fi
echo "command: $build/bench/acl_compare"
"$build/bench/acl_compare"
if [ "$(id -u)" -eq 0 ] && command -v iperf3 >/dev/null; then
  echo "command: bash bench/live_forwarding.sh $build/src/cli/palisade 5 1"
  bash "$(dirname "$0")/live_forwarding.sh" "$build/src/cli/palisade" 5 1
else
  echo "live_forwarding: skipped (needs root and iperf3)"
fi
if command -v wrk >/dev/null && command -v nginx >/dev/null; then
  echo "command: bash bench/gateway.sh $build/src/cli/palisade 10 50"
  bash "$(dirname "$0")/gateway.sh" "$build/src/cli/palisade" 10 50
else
  echo "gateway: skipped (needs wrk and nginx)"
fi
