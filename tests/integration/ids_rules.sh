#!/usr/bin/env bash
# The whole ET Open ruleset (../shared/data/rules/et-open) loads through
# `palisade ids check-rules`: at least 95% of its active rules, every refusal
# for a named reason the engine does not inspect (a protocol, buffer or
# keyword) rather than a rule the parser misread, and in bounded time.
# Skips (77) when the shared data is absent.
set -uo pipefail
palisade=$1 src=$2
rules="$src/../shared/data/rules/et-open"
if [ ! -d "$rules" ]; then
  echo "SKIP: $rules is absent (the ET Open ruleset from ../shared/data)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

if ! "$palisade" ids check-rules "$rules" --json --list-rejected >"$tmp/s.json" 2>"$tmp/err"; then
  bad "check-rules failed: $(cat "$tmp/err")"
else
  ok
fi
/usr/bin/python3 - "$tmp/s.json" <<'PY' || fail=$((fail + 1))
import json, sys
j = json.load(open(sys.argv[1]))
loaded, rejected = j["loaded"], j["rejected"]
total = loaded + rejected
print(f"ET Open: {loaded} of {total} rules loaded ({100*loaded/total:.1f}%), {rejected} refused, "
      f"{j['load_ms']:.0f} ms, {j['rss_growth_kb']/1024:.1f} MB")
for r in j["rejected_by_reason"]:
    print(f"  {r['rules']:6}  {r['reason']}")
errors = []
if total < 23000: errors.append(f"only {total} active rules read (ET Open has about 23,600)")
if loaded < 0.95 * total: errors.append("fewer than 95% loaded")
misread = [r for r in j["rejected_rules"]
           if not any(k in r["reason"] for k in ("not inspected", "unsupported keyword", "duplicate sid"))]
for r in misread[:10]:
    errors.append(f"{r['file']}:{r['line']}: sid {r['sid']}: {r['reason']}")
if misread: errors.append(f"{len(misread)} rules refused as malformed: the parser misread them")
if j["load_ms"] > 20000: errors.append("loading took over 20 s")
for e in errors: print("FAIL:", e)
sys.exit(1 if errors else 0)
PY
[ $? -eq 0 ] && ok
echo "ids_rules: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
