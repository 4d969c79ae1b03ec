# Helpers the integration scripts share. Source it after setting $tmp (a
# scratch directory the script removes); the script prints its own tally
# from $pass and $fail.
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
expect() { # description, wanted exit code, command...: output in $tmp/out and $tmp/err
  local what=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else
    bad "$what: exit $rc, wanted $want"; sed 's/^/  /' "$tmp/out" "$tmp/err" | head -8; fi
}
expect_out() { # description, extended regex, file
  if grep -qE -e "$2" "$3"; then ok; else bad "$1: no /$2/ in $(basename "$3")"; sed 's/^/  /' "$3" | head -8; fi
}
jget() { # FILE PATH: one value of a JSON file, PATH like flows.allowed or top_src.0.key
  /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'): j=j[int(k)] if isinstance(j, list) else j[k]
print(j)" "$1" "$2"
}
