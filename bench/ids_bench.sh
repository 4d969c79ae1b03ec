#!/usr/bin/env bash
# The IDS benchmark: the full ET Open ruleset over a capture of real HTTP,
# HTTPS and DNS sessions (bench/ids_capture.sh makes it, >200 MB, in network
# namespaces; it is kept in build/bench and reused). Prints, for one core
# (the engine is single-threaded): Gbit/s and Mpps of the packet phase, rule
# load and prefilter build time, peak memory, rules evaluated per packet and
# the alerts. HOME_NET is the client's address, so ET's outbound rules apply.
# Only alerts are written (--eve-types alert): the figure is detection's.
# Runs RUNS times (default 3) and prints each run: on a shared 2-core machine
# compare runs made together, not figures across days.
# Usage: bench/ids_bench.sh PALISADE_BINARY [CAPTURE] [RUNS]
set -uo pipefail
PALISADE=${1:?usage: ids_bench.sh PALISADE_BINARY [CAPTURE] [RUNS]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAPTURE=${2:-$ROOT/build/bench/ids-traffic.pcap}
RUNS=${3:-3}
RULES=$ROOT/../shared/data/rules/et-open
if [ ! -d "$RULES" ]; then
  echo "ids_bench: $RULES is absent (the ET Open ruleset from ../shared/data)"
  exit 77
fi
if [ ! -s "$CAPTURE" ]; then
  echo "ids_bench: making $CAPTURE (bench/ids_capture.sh: real sessions in namespaces, a few minutes)"
  mkdir -p "$(dirname "$CAPTURE")"
  bash "$ROOT/bench/ids_capture.sh" "$CAPTURE" 220 900 || exit $?
fi
echo "capture: $CAPTURE ($(( $(stat -c %s "$CAPTURE") >> 20 )) MB)"
command -v capinfos >/dev/null && capinfos -c -d "$CAPTURE" 2>/dev/null | grep -E "packets|Data size" | sed 's/^/  /'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%M" -o "$out/rss" "$PALISADE" ids -r "$CAPTURE" -S "$RULES"/*.rules -l "$out" \
    --set 'vars.address-groups.HOME_NET=[192.0.2.10/32]' --eve-types alert >"$out/summary" 2>/dev/null || {
    echo "ids_bench: palisade ids failed"; cat "$out/summary"; exit 1; }
  echo "run $i:"
  grep -E "^rules:|fast patterns|^capture:|^prefilter:|^alerts:" "$out/summary" | sed 's/^/  /'
  echo "  peak memory: $(( $(cat "$out/rss") / 1024 )) MB (rules, prefilter databases, flows, streams)"
done
