#!/usr/bin/env python3
"""Compares `palisade decode --json` protocol counts with tshark's protocol hierarchy.

tshark runs with IPv4/IPv6 reassembly off, so the two count the same thing per
frame: a transport header is seen in unfragmented packets and first fragments.
Compared: eth, arp, vlan, ip, ipv6, and tcp/udp/icmp/icmpv6 directly under IP
(tunnelled inner headers and ICMP-quoted headers are tshark's nested levels).

usage: phs_compare.py PALISADE PCAP...   exit 0 when every file matches.
"""
import json
import re
import subprocess
import sys


def tshark_counts(path):
    out = subprocess.run(
        ["tshark", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
         "-r", path, "-qz", "io,phs"],
        capture_output=True, text=True, check=True).stdout
    counts = {}
    stack = []
    for line in out.splitlines():
        m = re.match(r"^( *)(\S+)\s+frames:(\d+)", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        name, frames = m.group(2), int(m.group(3))
        stack = stack[:depth] + [name]
        parent = stack[-2] if len(stack) > 1 else None
        key = None
        if depth <= 1 and name in ("eth", "arp", "vlan", "ip", "ipv6"):
            key = name
        elif name == "vlan":
            key = "vlan"
        elif name in ("ip", "ipv6") and parent in ("eth", "vlan"):
            key = name
        elif name in ("tcp", "udp", "icmp", "icmpv6") and parent in ("ip", "ipv6") and \
                len(stack) >= 3 and stack[-3] in ("eth", "vlan"):
            key = name
        elif name == "arp" and parent in ("eth", "vlan"):
            key = "arp"
        if key:
            counts[key] = counts.get(key, 0) + frames
    return counts


def main():
    palisade, files = sys.argv[1], sys.argv[2:]
    failures = 0
    for path in files:
        got = json.loads(subprocess.run([palisade, "decode", "--json", path],
                                        capture_output=True, text=True, check=True).stdout)
        ours = got["protocols"]
        want = tshark_counts(path)
        keys = sorted(set(want) | {k for k in ours if k in
                                   ("eth", "arp", "vlan", "ip", "ipv6", "tcp", "udp", "icmp", "icmpv6")})
        bad = [(k, want.get(k, 0), ours.get(k, 0)) for k in keys if want.get(k, 0) != ours.get(k, 0)]
        if bad:
            failures += 1
            print(f"MISMATCH {path}: " + ", ".join(f"{k} tshark={w} palisade={o}" for k, w, o in bad))
        else:
            print(f"ok {path}: " + ", ".join(f"{k}={want.get(k, 0)}" for k in keys))
    print(f"{len(files) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
