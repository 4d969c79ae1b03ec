#!/usr/bin/env bash
# The pipeline over traffic the project generates from the example topology:
# every layer must both pass and drop what the example is built to show, the
# rewritten output must carry valid checksums (tshark checks them), and
# `palisade trace` on a captured packet must agree with replay.
set -euo pipefail
palisade=$1 traffic=$2 root=$3
tmp=$(mktemp -d)
cp "$root/examples/ids.rules" "$root/examples/classification.config" "$tmp/"  # beside policy copies
trap 'rm -rf "$tmp"' EXIT
policy="$root/examples/cloud.yaml"
"$traffic" -p "$policy" -o "$tmp/in.pcapng" >/dev/null
"$palisade" replay -p "$policy" -r "$tmp/in.pcapng" -w "$tmp/out.pcapng" -e "$tmp/flows.json" \
  --json --seed 7 >"$tmp/summary.json"
python3 - "$tmp/summary.json" "$tmp/flows.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
fail = []
want_drops = ["mac_spoof", "ip_spoof", "arp_reply_from_vm", "dhcp_server_from_vm", "ethertype",
              "infrastructure", "not_a_vip", "no_endpoint", "endpoint_acl", "perimeter",
              "subnet_group", "nic_group", "tcp_no_syn", "tcp_out_of_window", "ids_drop",
              "malformed", "fragment", "fragment_overlap"]
for r in want_drops:
    if s["drop_reasons"].get(r, 0) == 0:
        fail.append(f"no drop with reason {r}")
for layer in ["port_security", "infrastructure", "isolation", "endpoint", "perimeter",
              "subnet_group", "nic_group", "conntrack", "ids"]:
    if s["layers"][layer]["passed"] == 0:
        fail.append(f"nothing passed layer {layer}")
if s["ids"]["alerts"] < 3 or s["ids"]["flows_dropped"] < 2:
    fail.append(f"the IPS raised {s['ids']['alerts']} alerts and stopped {s['ids']['flows_dropped']} flows (want 3 and 2: the demo's web attacks)")
if s["fragments"]["forwarded"] < 4 or s["fragments"]["held"] < 2:
    fail.append(f"{s['fragments']['forwarded']} later fragments followed their first, "
                f"{s['fragments']['held']} held for it (want the demo's 4 and 2)")
if s["answers"]["arp"] == 0 or s["answers"]["dhcp"] == 0:
    fail.append("the switch answered no ARP or no DHCP")
if s["flows"]["created"] < 10:
    fail.append(f"only {s['flows']['created']} flows created")
if s["packets"] != s["forwarded"] + s["dropped"] + s["answered"]:
    fail.append("packets != forwarded + dropped + answered")
records = [json.loads(l) for l in open(sys.argv[2])]
events = [e for e in records if e["event_type"] == "flow"]
# The stats records add up to the summary's counters (one at the end of a short capture).
stats = [e["stats"] for e in records if e["event_type"] == "stats"]
for k in ("packets", "dropped", "forwarded"):
    if sum(x[k] for x in stats) != s[k]:
        fail.append(f"stats events sum {k} to {sum(x[k] for x in stats)}, the summary says {s[k]}")
if sum(x["drop_reasons"].get("ip_spoof", 0) for x in stats) != s["drop_reasons"]["ip_spoof"]:
    fail.append("stats events disagree with the summary on ip_spoof")
states = {e["flow"]["state"] for e in events}
if not {"begin", "end"} <= states:
    fail.append(f"flow-log states {states}")
if not any(e["flow"].get("decision") == "deny" for e in events):
    fail.append("no deny record in the flow log")
for f in fail:
    print("FAIL:", f)
print(f"replay: {s['packets']} packets, {s['forwarded']} forwarded, {s['dropped']} dropped, "
      f"{len(events)} flow-log records")
sys.exit(1 if fail else 0)
PY
if command -v tshark >/dev/null; then
  bad=$(tshark -r "$tmp/out.pcapng" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
        -o udp.check_checksum:TRUE \
        -Y 'ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0' 2>/dev/null |
        wc -l)
  total=$(tshark -r "$tmp/out.pcapng" 2>/dev/null | wc -l)
  echo "tshark: $total output frames, $bad with a bad checksum"
  [ "$total" -gt 50 ] && [ "$bad" -eq 0 ]
  # Both fragmented datagrams (in order, and last fragment first) come out
  # whole to the receiver's reassembly, through SNAT.
  whole=$(tshark -r "$tmp/out.pcapng" -Y 'udp.dstport == 514 && udp.length == 3008' 2>/dev/null |
          wc -l)
  echo "tshark: $whole fragmented datagrams reassembled from the output (want 2)"
  [ "$whole" -eq 2 ]
fi
# Trace the first packet replay dropped as a tier skip; trace must say the same.
n=$(tshark -r "$tmp/in.pcapng" -Y 'frame.comment contains "web1 to db1"' -T fields -e frame.number \
    2>/dev/null | head -1 || true)
if [ -n "$n" ]; then
  "$palisade" trace -p "$policy" -r "$tmp/in.pcapng" -n "$n" | tee "$tmp/trace.txt"
  grep -q 'deny-rest-of-vnet' "$tmp/trace.txt"
  grep -q '^verdict: DROP (subnet_group' "$tmp/trace.txt"
fi
# Bursts (the default) and one packet at a time must agree on every byte sent,
# every counter and every flow-log record (same --seed: same SNAT ports, ids).
"$palisade" replay -p "$policy" -r "$tmp/in.pcapng" -w "$tmp/out1.pcapng" -e "$tmp/flows1.json" \
  --json --burst 1 --seed 7 >"$tmp/summary1.json"
cmp "$tmp/out.pcapng" "$tmp/out1.pcapng"
cmp "$tmp/flows.json" "$tmp/flows1.json"
"$palisade" replay -p "$policy" -r "$tmp/in.pcapng" -w "$tmp/out7.pcapng" -q --burst 7 --seed 7
cmp "$tmp/out.pcapng" "$tmp/out7.pcapng"
diff <(grep -v '"seconds"' "$tmp/summary.json") <(grep -v '"seconds"' "$tmp/summary1.json")
echo "replay: bursts and one by one agree"
# The policy's conntrack settings apply; the command line overrides them.
sed -e 's/per_nic_limit: 50000/per_nic_limit: 1/' -e 's/    udp: 30/    udp: 5/' "$policy" \
  >"$tmp/quota.yaml"
"$palisade" check "$tmp/quota.yaml" | grep -q "per-NIC limit 1;.* udp 5 s"
quota=$("$palisade" replay -p "$tmp/quota.yaml" -r "$tmp/in.pcapng" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["drop_reasons"].get("nic_quota", 0))')
free=$("$palisade" replay -p "$tmp/quota.yaml" -r "$tmp/in.pcapng" --json --per-nic-limit 0 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["drop_reasons"].get("nic_quota", 0))')
echo "replay: nic_quota drops $quota under the policy's limit of 1, $free with --per-nic-limit 0"
[ "$quota" -gt 0 ] && [ "$free" -eq 0 ]
# A loose policy picks up a mid-stream segment; --strict overrides it.
sed -e 's/tcp_tracking: strict/tcp_tracking: loose/' "$policy" >"$tmp/loose.yaml"
midstream='tcp 198.51.100.7:5555 -> 203.0.113.10:443 in via uplink flags A'
"$palisade" trace -p "$tmp/loose.yaml" "$midstream" | grep -q '^verdict: FORWARD'
"$palisade" trace -p "$tmp/loose.yaml" --strict "$midstream" | grep -q '^verdict: DROP (tcp_no_syn'
"$palisade" trace -p "$policy" "$midstream" | grep -q '^verdict: DROP (tcp_no_syn'
"$palisade" trace -p "$policy" --loose "$midstream" | grep -q '^verdict: FORWARD'
echo "trace: loose policy forwards a mid-stream segment, --strict drops it"
# Per host: NICs of the other host are behind VXLAN on the uplink.
for host in hv1 hv2; do
  "$traffic" -p "$policy" --host "$host" -o "$tmp/$host.pcapng" >/dev/null
  "$palisade" replay -p "$policy" --host "$host" -r "$tmp/$host.pcapng" -w "$tmp/$host-out.pcapng" \
    --json --seed 7 >"$tmp/$host.json"
  "$palisade" replay -p "$policy" --host "$host" -r "$tmp/$host.pcapng" \
    -w "$tmp/$host-out1.pcapng" --json --burst 1 --seed 7 >"$tmp/$host-1.json"
  cmp "$tmp/$host-out.pcapng" "$tmp/$host-out1.pcapng"
  diff "$tmp/$host.json" "$tmp/$host-1.json"
  python3 - "$tmp/$host.json" "$host" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
fail = []
if s["vxlan"]["decapsulated"] < 5 or s["vxlan"]["encapsulated"] < 5:
    fail.append(f"VXLAN counters {s['vxlan']}")
for r in ["vxlan_unknown_host", "vxlan_spoof"]:
    if s["drop_reasons"].get(r, 0) == 0:
        fail.append(f"no drop with reason {r}")
if s["layers"]["overlay"]["passed"] == 0:
    fail.append("nothing passed layer overlay")
if s["packets"] != s["forwarded"] + s["dropped"] + s["answered"]:
    fail.append("packets != forwarded + dropped + answered")
for f in fail:
    print("FAIL:", sys.argv[2], f)
print(f"replay --host {sys.argv[2]}: {s['packets']} packets, VXLAN in {s['vxlan']['decapsulated']}, "
      f"out {s['vxlan']['encapsulated']}")
sys.exit(1 if fail else 0)
PY
  if command -v tshark >/dev/null; then
    # tshark decodes the inner frames of VXLAN on 4789 and checks their checksums too.
    vx=$(tshark -r "$tmp/$host-out.pcapng" -Y 'vxlan && tcp' 2>/dev/null | wc -l)
    bad=$(tshark -r "$tmp/$host-out.pcapng" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
          -o udp.check_checksum:TRUE \
          -Y 'ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0' \
          2>/dev/null | wc -l)
    echo "tshark: $host sent $vx VXLAN frames with TCP inside; $bad frames with a bad checksum"
    [ "$vx" -gt 0 ] && [ "$bad" -eq 0 ]
    n=$(tshark -r "$tmp/$host.pcapng" -Y 'frame.comment contains "VXLAN spoofing"' \
        -T fields -e frame.number 2>/dev/null | head -1 || true)
    "$palisade" trace -p "$policy" --host "$host" -r "$tmp/$host.pcapng" -n "$n" \
      >"$tmp/trace-$host.txt"
    grep -q '^verdict: DROP (vxlan_spoof' "$tmp/trace-$host.txt" || {
      cat "$tmp/trace-$host.txt"
      exit 1
    }
  fi
done
if "$palisade" replay -p "$policy" --host hv9 -r "$tmp/hv1.pcapng" 2>"$tmp/err.txt"; then
  echo "FAIL: an unknown --host was accepted"
  exit 1
fi
grep -q "not a host of the policy (hosts: hv1, hv2)" "$tmp/err.txt"
echo "replay_demo: ok"
