#!/usr/bin/env bash
# Per-protocol counts of palisade decode equal tshark -qz io,phs on the DDoS
# captures (and the suricata-verify ones, for breadth).
set -uo pipefail
palisade=$1 data=$2
if [ ! -d "$data" ]; then echo "SKIP: $data is absent (the shared reference data)"; exit 77; fi
command -v tshark >/dev/null || { echo "SKIP: tshark is not installed (scripts/install-deps.sh installs it)"; exit 77; }
mapfile -t files < <(find "$data/ddos" "$data/suricata-verify" -name '*.pcap' -o -name '*.pcapng' 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "SKIP: no captures under $data"; exit 77; }
exec python3 "$(dirname "$0")/phs_compare.py" "$palisade" "${files[@]}"
