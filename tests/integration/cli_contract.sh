#!/usr/bin/env bash
# The command-line contract: --help everywhere, exit codes that mean something.
set -uo pipefail
palisade=$1 src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
expect() { # description, wanted exit code, command...
  local what=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then pass=$((pass + 1)); else
    echo "FAIL: $what: exit $rc, wanted $want"; sed 's/^/  /' "$tmp/err" | head -5; fail=$((fail + 1)); fi
}
expect_out() { # description, regex, file
  if grep -qE "$2" "$3"; then pass=$((pass + 1)); else echo "FAIL: $1: no /$2/ in output"; fail=$((fail + 1)); fi
}

expect "top-level --help" 0 "$palisade" --help
expect_out "help lists check" '^  check ' "$tmp/out"
expect_out "help lists decode" '^  decode ' "$tmp/out"
for cmd in check decode; do
  expect "$cmd --help" 0 "$palisade" "$cmd" --help
  expect_out "$cmd --help shows usage" 'Usage: .*'"$cmd" "$tmp/out"
done
for sub in keygen verify ship; do
  expect "log $sub --help" 0 "$palisade" log "$sub" --help
  expect_out "log $sub --help shows usage" 'Usage: .*'"$sub" "$tmp/out"
done
expect "log without a subcommand is a usage error" 2 "$palisade" log
expect "collector --help" 0 "$palisade" collector --help
expect_out "collector --help shows usage" 'Usage: .*collector' "$tmp/out"
expect "collector without a store is a usage error" 2 "$palisade" collector --cert a --key b --ca c
expect "ship with a bad --to is a usage error" 2 "$palisade" log ship "$tmp" --to nowhere --cert a --key b --ca c
expect "ship with missing certificates cannot read them" 3 "$palisade" log ship "$tmp" --to 127.0.0.1:6514 --cert "$tmp/none.pem" --key "$tmp/none.key" --ca "$tmp/none.pem"
expect_out "the missing key is named" 'none.key' "$tmp/err"
expect "report --help" 0 "$palisade" report --help
expect_out "report --help shows usage" 'Usage: .*report' "$tmp/out"
expect "ids check-rules --help" 0 "$palisade" ids check-rules --help
expect_out "ids check-rules --help shows usage" 'Usage: .*check-rules' "$tmp/out"
expect "ids without a subcommand is a usage error" 2 "$palisade" ids
expect "ids check-rules of a missing file cannot read" 3 "$palisade" ids check-rules "$tmp/none.rules"
printf 'alert tcp any any -> any any (content:"a"; sid:1;)\nalert smtp any any -> any any (sid:2;)\n' >"$tmp/t.rules"
expect "ids check-rules with a refused rule is ok" 0 "$palisade" ids check-rules "$tmp/t.rules"
expect_out "ids check-rules names the refusal's reason" "protocol 'smtp' not inspected" "$tmp/out"
expect "ids check-rules --strict with a refused rule: findings" 1 "$palisade" ids check-rules --strict "$tmp/t.rules"
expect "ids check-rules --set with a bad value is a usage error" 2 "$palisade" ids check-rules --set address-groups.HOME_NET=nonsense "$tmp/t.rules"
expect "ids verify --help" 0 "$palisade" ids verify --help
expect_out "ids verify --help shows usage" 'Usage: .*verify' "$tmp/out"
expect "ids --help" 0 "$palisade" ids --help
expect_out "ids --help names -r" '\-r,--read' "$tmp/out"
expect "ids without a capture is a usage error" 2 "$palisade" ids -S "$tmp/t.rules"
expect "ids verify of a folder without cases cannot read" 3 "$palisade" ids verify "$tmp"
expect "report without inputs is a usage error" 2 "$palisade" report -o "$tmp/r.html"
expect "run --report-dir without --log-dir is a usage error" 2 "$palisade" run -p "$src/examples/cloud.yaml" --uplink nosuch0 --report-dir "$tmp/reports"
expect "run --report-every takes month or day" 2 "$palisade" run -p "$src/examples/cloud.yaml" --uplink nosuch0 --report-every week
expect "--version" 0 "$palisade" --version
expect_out "version string" '^palisade [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out"
expect "no subcommand is a usage error" 2 "$palisade"
expect "unknown subcommand is a usage error" 2 "$palisade" frobnicate
expect "unknown option is a usage error" 2 "$palisade" decode --bogus x.pcap
expect "bad option value is a usage error" 2 "$palisade" decode --vxlan-port 70000 x.pcap

expect "valid policy" 0 "$palisade" check "$src/examples/cloud.yaml"
expect_out "summary names both tenants" 'tenant fabrikam' "$tmp/out"
expect "invalid policy" 1 "$palisade" check "$src/tests/policies/broken/bad-cidr.yaml"
expect "missing policy file" 3 "$palisade" check "$tmp/none.yaml"
expect_out "missing file is named" 'none.yaml: No such file or directory' "$tmp/err"

expect "missing capture" 3 "$palisade" decode "$tmp/none.pcap"
printf 'not a capture at all' > "$tmp/junk.pcap"
expect "garbage capture" 3 "$palisade" decode "$tmp/junk.pcap"
# A pcapng cut mid-block: packets before the cut are decoded, then exit 1 with the reason.
printf '\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x1c\x00\x00\x00\x01\x00\x00\x00\x14\x00\x00\x00\x01\x00\x00\x00\x00\x00\x04\x00\x14\x00\x00\x00\x06\x00\x00\x00\x40\x00' > "$tmp/cut.pcapng"
expect "corrupt pcapng" 1 "$palisade" decode "$tmp/cut.pcapng"
expect_out "corruption is located" 'corrupt pcapng at byte 48: file ends inside a block' "$tmp/err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
