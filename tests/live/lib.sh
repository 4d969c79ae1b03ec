# Shared by the live suites (sourced, not run). The caller sets PALISADE and
# calls live_init PREFIX TOOLS...; every namespace it makes with newns is
# removed on exit, even on failure, with every process it started.
#
# A switch is a namespace running `palisade run` with control socket
# $TMP/SW.sock and flow log $TMP/SW-flows.json (start_switch SW ARGS...).

# live_init PREFIX TOOL...: skips (exit 77) without root, a tool or netns.
live_init() {
  P=$1; shift
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the live suite needs root (network namespaces)"; exit 77; fi
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "SKIP: $t is not installed (scripts/install-deps.sh)"; exit 77; }
  done
  if ! ip netns add "$P-probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces here"; exit 77; fi
  ip netns del "$P-probe"
  TMP=$(mktemp -d)
  # Policies copied into $TMP find the example's IDS rules beside them.
  cp "$(dirname "${BASH_SOURCE[0]}")/../../examples/ids.rules" \
    "$(dirname "${BASH_SOURCE[0]}")/../../examples/classification.config" "$TMP/"
  chmod 755 "$TMP"
  PIDS=() NAMESPACES=() SWITCHES=()
  fails=0 passes=0
  trap live_cleanup EXIT INT TERM
}

live_cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  # Whatever still runs in a namespace (a server started through a function
  # is the child of a subshell) goes with it.
  local ns pids
  for ns in "${NAMESPACES[@]}"; do
    pids=$(ip netns pids "$P-$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  wait 2>/dev/null
  for ns in "${NAMESPACES[@]}"; do ip netns del "$P-$ns" 2>/dev/null; done
  rm -rf "$TMP"
}

pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() {
  echo "FAIL: $*"; fails=$((fails + 1))
  for sw in "${SWITCHES[@]}"; do echo "  stats of $sw:"; stats "$sw" | sed 's/^/    /'; done
}
live_summary() {  # NAME: prints the tally; the status is the suite's
  echo
  echo "$1: $passes passed, $fails failed"
  [ $fails -eq 0 ]
}

nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
newns() { ip netns add "$P-$1"; NAMESPACES+=("$1"); nsx "$1" ip link set lo up; }
# Neither end of a link hands the other 64 KB super-frames: a VM's virtual
# NIC does not, and the switch drops what its ring cannot hold.
nooffload() { nsx "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1; }

# vm NAME SWITCH PORT MAC ADDR/LEN GATEWAY: a VM whose eth0 is PORT of SWITCH.
# An empty ADDR leaves the address to DHCP.
vm() {
  local name=$1 sw=$2 port=$3 mac=$4 addr=$5 gw=$6
  newns "$name"
  ip link add "$port" netns "$P-$sw" type veth peer name eth0 netns "$P-$name"
  nsx "$name" ip link set eth0 address "$mac"
  [ -n "$addr" ] && nsx "$name" ip addr add "$addr" dev eth0
  nsx "$name" ip link set eth0 up
  nooffload "$name" eth0
  [ -n "$gw" ] && nsx "$name" ip route add default via "$gw"
  nsx "$sw" ip link set "$port" up
  nooffload "$sw" "$port"
}

# serve NS PORT DIR: python's http.server; its log is $TMP/NS-PORT.log.
# Returns once the server listens: a loaded machine can take seconds to start
# Python, and a request before that is refused (one CI run's empty download).
serve() {
  ip netns exec "$P-$1" python3 -m http.server "$2" --directory "$3" >"$TMP/$1-$2.log" 2>&1 &
  PIDS+=($!)
  tcp_listening "$1" "$2" ||
    { echo "FAIL: the HTTP server on $1 port $2 did not start:"; cat "$TMP/$1-$2.log"; exit 1; }
}
# tcp_listening NS PORT: waits (up to 15 s) until a TCP socket listens on PORT in NS.
tcp_listening() {
  local _
  for _ in $(seq 150); do
    ip netns exec "$P-$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}
# udp_bound NS PORT: waits (up to 5 s) until a UDP socket is bound to PORT in NS
# (python starts slowly on a loaded machine: a fixed sleep lost a datagram).
udp_bound() {
  for _ in $(seq 50); do nsx "$1" ss -Hlun "sport = :$2" | grep -q . && return 0; sleep 0.1; done
  echo "FAIL: no UDP socket on port $2 in $1"; return 1
}
# site NS PORT TEXT: a server whose index page is TEXT (says who answered).
site() {
  mkdir -p "$TMP/www-$1-$2"
  echo "$3" >"$TMP/www-$1-$2/index.html"
  serve "$1" "$2" "$TMP/www-$1-$2"
}

# start_switch SW ARGS...: `palisade run ARGS` in namespace SW; waits for its
# control socket.
start_switch() {
  local sw=$1; shift
  # Not through nsx: $! must be palisade's own PID (signals, exit status).
  ip netns exec "$P-$sw" "$PALISADE" run "$@" --control "$TMP/$sw.sock" -e "$TMP/$sw-flows.json" \
    >"$TMP/$sw.out" 2>"$TMP/$sw.err" &
  PIDS+=($!)
  SWITCHES+=("$sw")
  eval "PID_$sw=$!"
  for _ in $(seq 50); do [ -S "$TMP/$sw.sock" ] && return 0; sleep 0.1; done
  echo "FAIL: palisade run in $sw did not start:"; cat "$TMP/$sw.err"; exit 1
}
stats() { nsx "$1" "$PALISADE" stats --control "$TMP/$1.sock" 2>&1; }
stats_json() { nsx "$1" "$PALISADE" stats --json --control "$TMP/$1.sock"; }
# jstat SW PATH: one value of `palisade stats --json`, PATH like flows.live.
jstat() {
  stats_json "$1" | python3 -c "import json,sys; j=json.load(sys.stdin)
for k in '$2'.split('.'): j=j[k]
print(j)"
}
# drops SW REASON: the counter of a drop reason (pipeline or port).
drops() {
  stats_json "$1" | python3 -c "import json,sys; j=json.load(sys.stdin)
print(j['drop_reasons'].get('$2', j['port_drops'].get('$2', 0)))"
}
# last_rule SW REASON: the rule of the newest flow record with REASON in the
# switch's flow log: the denying rule of a denied flow, the new rule that
# revoked an established one ("none" when no rule decided, empty when none
# was logged).
last_rule() {
  python3 - "$TMP/$1-flows.json" "$2" <<'EOF' 2>/dev/null
import json, sys
rule = ""
for line in open(sys.argv[1]):
    try:
        f = json.loads(line).get("flow", {})
    except ValueError:
        continue
    if f.get("reason") == sys.argv[2]:
        rule = f.get("revoked_by", f.get("rule", ""))
print(rule)
EOF
}

# counted SW REASON LAYER WHAT BEFORE: passes when REASON grew past BEFORE,
# naming the layer and the rule the flow log gives.
counted() {
  local sw=$1 reason=$2 layer=$3 what=$4 before=$5 after rule
  sleep 0.3
  after=$(drops "$sw" "$reason")
  rule=$(last_rule "$sw" "$reason")
  if [ "$after" -gt "$before" ]; then
    pass "$what: dropped by $layer on $sw ($reason +$((after - before))${rule:+, rule $rule})"
  else
    fail "$what: not dropped by $layer on $sw ($reason stayed $before)"
  fi
}
# expect_drop SW REASON LAYER WHAT COMMAND...: the command fails and SW counts REASON.
expect_drop() {
  local sw=$1 reason=$2 layer=$3 what=$4; shift 4
  local before; before=$(drops "$sw" "$reason")
  if "$@" >/dev/null 2>&1; then
    fail "$what: it got through (expected a $layer drop on $sw, $reason)"; return
  fi
  counted "$sw" "$reason" "$layer" "$what" "$before"
}
# expect_counted SW REASON LAYER WHAT COMMAND...: COMMAND sends frames that get
# no answer (spoofed, rogue); SW counts REASON for them.
expect_counted() {
  local sw=$1 reason=$2 layer=$3 what=$4; shift 4
  local before; before=$(drops "$sw" "$reason")
  "$@" >/dev/null 2>&1 || { fail "$what: the sender failed: $*"; return; }
  counted "$sw" "$reason" "$layer" "$what" "$before"
}
# expect_out WANT WHAT COMMAND...: COMMAND prints WANT.
expect_out() {
  local want=$1 what=$2 out; shift 2
  out=$("$@" 2>&1)
  if [ "$out" = "$want" ]; then pass "$what"; else fail "$what: got '$out', expected '$want'"; fi
}
# stop_switch SW: SIGTERM; passes on a clean exit.
stop_switch() {
  local pid; eval "pid=\$PID_$1"
  kill -TERM "$pid"
  wait "$pid"; local rc=$?
  [ $rc -eq 0 ] && pass "$1: SIGTERM, clean exit" || fail "$1: exit status $rc after SIGTERM: $(tail -3 "$TMP/$1.err")"
}

# web NS ADDR ROOT [HTTP_CONF] [SERVER_CONF]: nginx in NS on ADDR:80 and
# ADDR:443 (TLS with a throwaway self-signed certificate for shop.example,
# api.example, cdn.example) serving ROOT; HTTP_CONF and SERVER_CONF are more
# lines for its http and server blocks. Its error log is $TMP/nginx-NS.err.
web() {
  local ns=$1 addr=$2 root=$3 http_conf=${4:-} server_conf=${5:-}
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/$ns-key.pem" -out "$TMP/$ns-cert.pem" \
    -days 1 -subj "/CN=shop.example" \
    -addext "subjectAltName=DNS:shop.example,DNS:api.example,DNS:cdn.example" >/dev/null 2>&1 ||
    { echo "FAIL: openssl could not make a certificate"; exit 1; }
  mkdir -p "$TMP/nginx-$ns"
  cat >"$TMP/nginx-$ns.conf" <<CONF
worker_processes 1;
pid $TMP/nginx-$ns.pid;
error_log $TMP/nginx-$ns.err;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx-$ns/body; proxy_temp_path $TMP/nginx-$ns/proxy;
  fastcgi_temp_path $TMP/nginx-$ns/fcgi; uwsgi_temp_path $TMP/nginx-$ns/uwsgi;
  scgi_temp_path $TMP/nginx-$ns/scgi;
  $http_conf
  server {
    listen $addr:80; listen $addr:443 ssl;
    ssl_certificate $TMP/$ns-cert.pem; ssl_certificate_key $TMP/$ns-key.pem;
    root $root;
    $server_conf
  }
}
CONF
  # nginx daemonizes inside the namespace; live_cleanup ends it with the namespace's processes.
  nsx "$ns" nginx -c "$TMP/nginx-$ns.conf" ||
    { echo "FAIL: nginx did not start"; cat "$TMP/nginx-$ns.err"; exit 1; }
}

# dns NS ADDR HOSTS: dnsmasq in NS answering from the hosts file HOSTS on
# ADDR:53, UDP and TCP, nothing cached or forwarded.
dns() {
  # Not through nsx (a subshell): $! must be dnsmasq itself.
  ip netns exec "$P-$1" dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$3" \
    --listen-address="$2" --bind-interfaces --cache-size=0 --log-facility=- >/dev/null 2>&1 &
  PIDS+=($!)
}
