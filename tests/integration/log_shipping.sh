#!/usr/bin/env bash
# Log shipping end to end, on loopback: `palisade log ship` sends a chained
# log over mutual TLS to `palisade collector`, which verifies and stores it.
# Shown here: the stored copy verifies and holds every record once; clients
# without a certificate from the CA are refused; the log directory spools
# while the collector is down; kill -9 of the collector and of the shipper
# loses and duplicates nothing; one shipper per state file; a torn store
# file and two shippers resending at once store every record once; a source whose writer dies raises
# feed_stopped; a resent record with other content raises chain_break; and a
# real rsyslog (omfwd/imtcp with its OpenSSL driver) receives from the
# shipper and relays to the collector.
set -uo pipefail
palisade=$1 traffic=$2 src=$3
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${PALISADE_KEEP_TMP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
} 2>/dev/null
trap cleanup EXIT
pass=0 fail=0 failed=()
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); failed+=("$*"); }
check() { if eval "$2"; then ok; else bad "$1"; return 1; fi; }  # fails, so `check ... || detail` shows why
free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_for() { # seconds, condition
  local i
  for ((i = 0; i < $1 * 20; i++)); do eval "$2" && return 0; sleep 0.05; done
  return 1
}
records() { cat "$1"/events-*.jsonl 2>/dev/null | wc -l; }

for tool in openssl mergecap editcap; do
  command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/install-deps.sh)"; exit 0; }
done
"$src/tests/integration/make_certs.sh" "$tmp/pki" collector.test sender1 rsyslog.test rogue-sender \
  || { echo "cannot make test certificates"; exit 1; }
pki=$tmp/pki
policy=$src/examples/cloud.yaml
"$traffic" -p "$policy" -o "$tmp/t.pcapng" >/dev/null || { echo "cannot make traffic"; exit 1; }
mkdir "$tmp/keys"
"$palisade" log keygen --private "$tmp/keys/log.key" --public "$tmp/keys/log.pub" >/dev/null
replay() { # log dir, extra args...
  local dir=$1; shift
  "$palisade" replay -q -p "$policy" -r "$tmp/t.pcapng" --log-dir "$dir" --log-key "$tmp/keys/log.key" \
    --log-rotate-size 16K "$@"
}
for i in 1 2 3; do replay "$tmp/log" || bad "replay $i"; done
total=$(records "$tmp/log")

cport=$(free_port)
start_collector() {
  "$palisade" collector --listen 127.0.0.1:$cport --store "$tmp/store" --cert "$pki/collector.test.pem" \
    --key "$pki/collector.test.key" --ca "$pki/ca.pem" --pubkey "$tmp/keys/log.pub" \
    >>"$tmp/collector.out" 2>>"$tmp/collector.err" &
  collector=$!
  pids+=("$collector")
  wait_for 5 "grep -q 'listening on 127.0.0.1:$cport' '$tmp/collector.out' 2>/dev/null && [ \$(grep -c listening '$tmp/collector.out') -ge $1 ]"
}
ship() { # client name, extra args...
  local who=$1; shift
  "$palisade" log ship "$tmp/log" --to 127.0.0.1:$cport --server-name collector.test \
    --cert "$pki/$who.pem" --key "$pki/$who.key" --ca "$pki/ca.pem" "$@"
}
# In the background, as the process itself ($! is the shipper, which kill -9 reaches).
ship_bg() { # out file, client name, extra args...
  local out=$1 who=$2; shift 2
  ( exec "$palisade" log ship "$tmp/log" --to 127.0.0.1:$cport --server-name collector.test \
    --cert "$pki/$who.pem" --key "$pki/$who.key" --ca "$pki/ca.pem" "$@" >>"$out.out" 2>>"$out.err" ) &
}
start_collector 1 || bad "the collector did not start"
store() { echo "$tmp/store/$1/$(ls "$tmp/store/$1" | grep -v syslog | head -1)"; }

# 1. Ship everything once: the stored copy is the log, record for record.
ship sender1 --once --deadline 20s >"$tmp/ship.out" 2>"$tmp/ship.err"
check "ship --once exits 0 when everything is acknowledged" '[ $? -eq 0 ]'
check "ship reports every record acknowledged" "grep -q 'acknowledged up to record $total' '$tmp/ship.out'"
s1=$(store sender1)
check "the store holds each record once ($total)" "[ \"\$(records '$s1')\" -eq $total ]"
check "the stored copy verifies intact with the source's key" \
  "'$palisade' log verify '$s1' --pubkey '$tmp/keys/log.pub' >'$tmp/v.out'"
check "the stored files mirror the source files" "[ \"\$(ls '$s1')\" = \"\$(ls '$tmp/log' | grep events-)\" ]"

# 2. Resending all of it (state lost) stores nothing twice.
rm -f "$tmp/log"/ship-*.state
ship sender1 --once --deadline 20s >/dev/null 2>&1
check "a full resend is acknowledged" '[ $? -eq 0 ]'
check "a full resend stores no duplicate" "[ \"\$(records '$s1')\" -eq $total ]"
"$palisade" log verify "$s1" --pubkey "$tmp/keys/log.pub" >/dev/null
check "the store still verifies after the resend" '[ $? -eq 0 ]'

# 3. Refused clients: a certificate from another CA, no certificate, not TLS.
ship rogue-sender --once --deadline 3s --state "$tmp/rogue.state" >/dev/null 2>"$tmp/rogue.err"
check "a client with a rogue CA's certificate cannot ship" '[ $? -ne 0 ]'
check "the collector says why it refused" "grep -q 'refused: TLS handshake' '$tmp/collector.err'"
check "nothing stored for the rogue client" "[ ! -e '$tmp/store/rogue-sender' ]"
refusals() { grep -c 'refused: TLS handshake' "$tmp/collector.err"; }
before=$(refusals)
timeout 5 openssl s_client -connect 127.0.0.1:$cport -CAfile "$pki/ca.pem" -servername collector.test \
  </dev/null >"$tmp/noclient.out" 2>&1
wait_for 10 "[ \$(refusals) -gt $before ]"
check "a client without a certificate is refused" "[ \$(refusals) -gt $before ]"
before=$(refusals)
printf '<13>1 - - plain - - - not over TLS\n' | timeout 5 nc -q 1 127.0.0.1 $cport >/dev/null 2>&1
wait_for 10 "[ \$(refusals) -gt $before ]"
check "plain TCP syslog is refused" "[ \$(refusals) -gt $before ] && ! grep -rqs 'not over TLS' '$tmp/store'"

# 4. The collector is down: the log spools; it is shipped when the collector returns.
ship_bg "$tmp/follow" sender1
shipper=$!; pids+=("$shipper")
kill -9 "$collector"; wait "$collector" 2>/dev/null
for i in 1 2; do replay "$tmp/log" || bad "replay while the collector is down"; done
total=$(records "$tmp/log")
sleep 1
check "while the collector is down, nothing new is stored" "[ \"\$(records '$s1')\" -lt $total ]"
start_collector 2 || bad "the collector did not restart"
wait_for 20 "[ \"\$(records '$s1')\" -ge $total ]"
check "after the collector returns, the spooled records arrive ($total)" "[ \"\$(records '$s1')\" -eq $total ]"

# 5. kill -9 of the collector and of the shipper while records flow.
for round in 1 2 3; do
  replay "$tmp/log" &
  writer=$!
  sleep 0.0$((round * 3))
  kill -9 "$collector"; wait "$collector" 2>/dev/null
  kill -9 "$shipper"; wait "$shipper" 2>/dev/null
  wait "$writer"
  start_collector $((round + 2)) || bad "collector restart $round"
  ship_bg "$tmp/follow" sender1
  shipper=$!; pids+=("$shipper")
done
total=$(records "$tmp/log")
wait_for 20 "[ \"\$(records '$s1')\" -ge $total ]"
check "after kill -9 of both sides, every record arrived once ($total)" "[ \"\$(records '$s1')\" -eq $total ]"
"$palisade" log verify "$s1" --pubkey "$tmp/keys/log.pub" >"$tmp/v.out"
check "the store verifies intact after the kills" '[ $? -eq 0 ]' || sed 's/^/  /' "$tmp/v.out" | head
diff <(cat "$tmp/log"/events-*.jsonl) <(cat "$s1"/events-*.jsonl) >/dev/null
check "the store is byte for byte the source log" '[ $? -eq 0 ]'

# 5b. One shipper per state file: a second one is refused, naming the first.
ship sender1 --once --deadline 5s >/dev/null 2>"$tmp/second.err"
check "a second shipper with the same state file is refused" \
  "[ $? -ne 0 ] && grep -q 'another shipper (pid $shipper) is shipping with this state file' '$tmp/second.err'"

# 5c. The collector died between creating a store file and writing its first
# record (an empty newest file), and two shippers with their own state files
# resend the whole log at once: the collector goes on from the file before
# and takes the source over from the older connection; every record is
# stored once.
kill -9 "$collector"; wait "$collector" 2>/dev/null
kill -9 "$shipper"; wait "$shipper" 2>/dev/null
last_file=$(ls "$s1" | grep events- | tail -1)
last_seq=$(tail -1 "$s1/$last_file" | grep -o '"seq":[0-9]*' | tail -1 | cut -d: -f2)
torn=$(printf 'events-%016d.jsonl' $((last_seq + 1)))
: >"$s1/$torn"
rm -f "$tmp/log"/ship-*.state
start_collector 6 || bad "collector restart over a torn store file"
ship_bg "$tmp/twin1" sender1 --state "$tmp/twin1.state"
twin1=$!; pids+=("$twin1")
ship_bg "$tmp/twin2" sender1 --state "$tmp/twin2.state"
twin2=$!; pids+=("$twin2")
replay "$tmp/log" || bad "replay while two shippers resend"
total=$(records "$tmp/log")
wait_for 30 "[ \"\$(records '$s1')\" -ge $total ]"
sleep 1  # both shippers acknowledged to the end: nothing more may arrive
check "two shippers resending at once over a torn store file: every record once ($total)" \
  "[ \"\$(records '$s1')\" -eq $total ]" || echo "  stored $(records "$s1")"
check "the collector removed the torn store file and went on from the one before" \
  "grep -q 'removed .*$torn (0 bytes, no whole record)' '$tmp/collector.err'"
"$palisade" log verify "$s1" --pubkey "$tmp/keys/log.pub" >"$tmp/v.out"
check "the store verifies after the twin resend" '[ $? -eq 0 ]' || sed 's/^/  /' "$tmp/v.out" | head
diff <(cat "$tmp/log"/events-*.jsonl) <(cat "$s1"/events-*.jsonl) >/dev/null
check "the store is still byte for byte the source log" '[ $? -eq 0 ]'
kill -9 "$twin1" "$twin2" 2>/dev/null; wait "$twin1" "$twin2" 2>/dev/null

# 5d. The writer creates a new file before it writes the file's first record
# (which names the log): a shipper that reaches the file in between reads
# the log's id from that record once it is there, and sends its records
# under their own log. (A CI run once stored a whole file's records under
# no log id, and raised chain_break for the gap they left in the right one.)
replay "$tmp/grow" || bad "replay into a new log"
grow_total=$(records "$tmp/grow")
grow_last=$(ls "$tmp/grow" | grep events- | tail -1)
mv "$tmp/grow/$grow_last" "$tmp/grow.last"
grow_id=$(head -1 "$tmp/grow.last" | grep -o '"log_id":"[0-9a-f]*"' | cut -d'"' -f4)
( exec "$palisade" log ship "$tmp/grow" --to 127.0.0.1:$cport --server-name collector.test \
  --cert "$pki/sender1.pem" --key "$pki/sender1.key" --ca "$pki/ca.pem" \
  >"$tmp/grow.out" 2>"$tmp/grow.err" ) &
grower=$!; pids+=("$grower")
grow_store=$tmp/store/sender1/$grow_id
wait_for 20 "[ \"\$(records '$grow_store')\" -eq $((grow_total - $(wc -l <"$tmp/grow.last"))) ]"
: >"$tmp/grow/$grow_last"
sleep 0.5  # the shipper polls every 20 ms: it is at the empty file now
cat "$tmp/grow.last" >>"$tmp/grow/$grow_last"
wait_for 20 "[ \"\$(records '$grow_store')\" -ge $grow_total ]"
check "a file the shipper reached before its first record: stored under its log ($grow_total)" \
  "[ \"\$(records '$grow_store')\" -eq $grow_total ] && [ ! -e '$tmp/store/sender1/_' ]" ||
  echo "  stored $(records "$grow_store"); under no log id: $(records "$tmp/store/sender1/_")"
kill -9 "$grower" 2>/dev/null; wait "$grower" 2>/dev/null
# And a collector given a record that names no log stores it nowhere, and says so.
/usr/bin/python3 - "$cport" "$pki" "$(sed -n 2p "$tmp/grow.last")" <<'PY'
import socket, ssl, sys
port, pki, record = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seq = record.rsplit('"seq":', 1)[1].split(",", 1)[0]
msg = ('<134>1 - sender1 palisade - log [palisade@32473 log="" seq="%s"] %s' % (seq, record)).encode()
ctx = ssl.create_default_context(cafile=pki + "/ca.pem")
ctx.load_cert_chain(pki + "/sender1.pem", pki + "/sender1.key")
with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 5), server_hostname="collector.test") as c:
    c.sendall(b"%d %s" % (len(msg), msg))
PY
wait_for 5 "grep -q 'names no log' '$tmp/store/alarms.jsonl'"
check "a record that names no log raises chain_break and is not stored" \
  "grep -q '\"kind\":\"chain_break\".*names no log' '$tmp/store/alarms.jsonl' && [ ! -e '$tmp/store/sender1/_' ]"

# 6. Feed stop: a writer with a 1 s heartbeat dies (kill -9); the collector alarms within 2 s.
editcap -t 60 "$tmp/t.pcapng" "$tmp/late.pcapng" >/dev/null 2>&1
mergecap -w "$tmp/long.pcapng" "$tmp/t.pcapng" "$tmp/late.pcapng" 2>/dev/null
"$palisade" replay -q -p "$policy" -r "$tmp/long.pcapng" --capture-speed --log-dir "$tmp/log2" \
  --log-key "$tmp/keys/log.key" --log-heartbeat 1s &
writer=$!; pids+=("$writer")
wait_for 5 "[ -d '$tmp/log2' ]"
"$palisade" log ship "$tmp/log2" --to 127.0.0.1:$cport --server-name collector.test \
  --cert "$pki/sender1.pem" --key "$pki/sender1.key" --ca "$pki/ca.pem" >/dev/null 2>&1 &
pids+=("$!")
wait_for 15 "grep -rqs '\"event\":\"heartbeat\"' '$tmp/store/sender1'"
check "heartbeats flow while the writer lives" "grep -rqs '\"event\":\"heartbeat\"' '$tmp/store/sender1'"
sleep 3  # over the alarm's 2.5 heartbeats: only heartbeats keep the feed alive now
check "no feed alarm while heartbeats arrive" "! grep -q feed_stopped '$tmp/store/alarms.jsonl'"
{ kill -9 "$writer"; wait "$writer"; } 2>/dev/null
wait_for 6 "grep -q feed_stopped '$tmp/store/alarms.jsonl'"
check "feed_stopped is raised when the heartbeats stop" "grep -q '\"kind\":\"feed_stopped\"' '$tmp/store/alarms.jsonl'"
check "feed_stopped is a critical EVE alarm" "grep feed_stopped '$tmp/store/alarms.jsonl' | grep -q '\"event_type\":\"alarm\".*\"severity\":\"critical\"'"

# 7. A source that sends different content for a record the collector has: chain_break.
forged=$tmp/forged; mkdir "$forged"
cp "$tmp/log"/events-*.jsonl "$forged/"
last=$(ls "$forged" | tail -1)
sed -i '$s/"event_type":"log"/"event_type":"l0g"/' "$forged/$last"
"$palisade" log ship "$forged" --to 127.0.0.1:$cport --server-name collector.test \
  --cert "$pki/sender1.pem" --key "$pki/sender1.key" --ca "$pki/ca.pem" --once --deadline 10s >/dev/null 2>&1
check "a resent record with other content raises chain_break" \
  "grep -q '\"kind\":\"chain_break\".*sent again with different content' '$tmp/store/alarms.jsonl'"
check "the forged copy was not stored" "[ \"\$(records '$s1')\" -eq $total ]"

# 7b. A receiver that starts reading only after the shipper has written
# everything still gets every record of a --once --no-acks shipment: the
# shipper ends the session gracefully (close_notify, its side shut) and waits
# for the receiver to close. (One CI run saw rsyslog get 292 of 730 records at
# the end of such a shipment; the cause was not reproduced here. A close with
# unread bytes, which resets the connection, is one way to lose them.)
sport=$(free_port)
/usr/bin/python3 - "$sport" "$pki" "$tmp/slow.count" <<'PY' &
import socket, ssl, sys, time
port, pki, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(pki + "/collector.test.pem", pki + "/collector.test.key")
ctx.load_verify_locations(pki + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(1); ls.settimeout(30)
conn, _ = ls.accept()
c = ctx.wrap_socket(conn, server_side=True)
time.sleep(2)  # the shipper has written everything and is closing by now
data = b""
c.settimeout(10)
try:
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
except (OSError, ssl.SSLError):
    pass
# Octet-counted frames: "LEN SP MSG".
n, i = 0, 0
while i < len(data):
    sp = data.index(b" ", i)
    i = sp + 1 + int(data[i:sp]); n += 1
open(out, "w").write(str(n))
PY
slow=$!
wait_for 5 "ss -ltn 2>/dev/null | grep -q ':$sport '" || sleep 1
"$palisade" log ship "$tmp/log" --to 127.0.0.1:$sport --server-name collector.test --no-acks \
  --state "$tmp/slow.state" --cert "$pki/sender1.pem" --key "$pki/sender1.key" --ca "$pki/ca.pem" \
  --once --deadline 30s >/dev/null 2>"$tmp/slow.err"
wait "$slow"
check "a slow receiver gets every record of a --once shipment ($total)" \
  "[ \"\$(cat '$tmp/slow.count' 2>/dev/null)\" = $total ]" || echo "  got $(cat "$tmp/slow.count" 2>/dev/null): $(head -3 "$tmp/slow.err")"

# 8. rsyslog, both ways: the shipper sends to rsyslog's imtcp (TLS, client
# certificate required); rsyslog relays what it gets, and messages of its
# own, to the collector with omfwd (TLS, octet counting).
if ! command -v rsyslogd >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ]; then
  echo "SKIP rsyslog interop: rsyslog and rsyslog-openssl are not installed (scripts/install-deps.sh)"
else
  rport=$(free_port)
  mkdir -p "$tmp/rs-work" "$tmp/rs-out"
  cat >"$tmp/rs.conf" <<EOF
global(workDirectory="$tmp/rs-work" maxMessageSize="64k" net.enableDNS="off"
  DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="$pki/ca.pem"
  DefaultNetstreamDriverCertFile="$pki/rsyslog.test.pem" DefaultNetstreamDriverKeyFile="$pki/rsyslog.test.key")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="$rport" address="127.0.0.1")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$tmp/rs.sock")
template(name="msgonly" type="string" string="%msg%\n")
if \$inputname == "imtcp" then action(type="omfile" file="$tmp/rs-out/records.jsonl" template="msgonly")
action(type="omfwd" target="127.0.0.1" port="$cport" protocol="tcp" StreamDriver="ossl"
  StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="collector.test"
  TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
  queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1")
EOF
  rsyslogd -n -f "$tmp/rs.conf" -i "$tmp/rs.pid" >"$tmp/rs.log" 2>&1 &
  pids+=("$!")
  wait_for 5 "[ -S '$tmp/rs.sock' ]" || bad "rsyslogd did not start: $(head -3 "$tmp/rs.log")"
  "$palisade" log ship "$tmp/log" --to 127.0.0.1:$rport --server-name rsyslog.test --no-acks \
    --state "$tmp/rs.state" --cert "$pki/sender1.pem" --key "$pki/sender1.key" --ca "$pki/ca.pem" \
    --once --deadline 20s >/dev/null 2>"$tmp/rs-ship.err"
  check "palisade ships to rsyslog over TLS" '[ $? -eq 0 ]'
  for i in 1 2 3; do logger -u "$tmp/rs.sock" -t rsyslog-test "interop message $i"; done
  # Generous bounds: rsyslog is slow when the machine is loaded (CI runs tests in parallel).
  wait_for 60 "[ \"\$(wc -l <'$tmp/rs-out/records.jsonl' 2>/dev/null || echo 0)\" -ge $total ]"
  check "rsyslog received every record ($total)" "[ \"\$(wc -l <'$tmp/rs-out/records.jsonl')\" -eq $total ]"
  "$palisade" log verify "$tmp/rs-out/records.jsonl" --pubkey "$tmp/keys/log.pub" >"$tmp/v.out"
  check "the records rsyslog wrote still verify (hash chain and signatures)" '[ $? -eq 0 ]' ||
    sed 's/^/  /' "$tmp/v.out" | head
  rs_store=$tmp/store/rsyslog.test
  wait_for 60 "[ -d '$rs_store' ] && [ \"\$(records \$(store rsyslog.test))\" -ge $total ] && grep -qs 'interop message 3' '$rs_store/syslog.log'"
  check "rsyslog's own messages reach the collector" "grep -q 'rsyslog-test.*interop message 1' '$rs_store/syslog.log'"
  check "records relayed by rsyslog are stored under rsyslog's name" "[ \"\$(records \$(store rsyslog.test))\" -eq $total ]"
  "$palisade" log verify "$(store rsyslog.test)" --pubkey "$tmp/keys/log.pub" >"$tmp/v.out"
  check "the relayed records verify at the collector" '[ $? -eq 0 ]' || sed 's/^/  /' "$tmp/v.out" | head
fi

kill -TERM "$collector"; wait "$collector" 2>/dev/null
check "the collector stops cleanly on SIGTERM" "grep -q 'stopped;' '$tmp/collector.out'"
check "no unexpected chain_break (only the forged resend and the record of no log)" \
  "[ \"\$(grep -c chain_break '$tmp/store/alarms.jsonl')\" -eq \"\$(grep -Ec 'sent again with different content|names no log' '$tmp/store/alarms.jsonl')\" ]"
echo "log_shipping: $pass passed, $fail failed"
if [ "$fail" -ne 0 ]; then
  echo "--- collector stderr"; tail -20 "$tmp/collector.err"
  echo "--- alarms"; tail -5 "$tmp/store/alarms.jsonl"
  # Last, so that a log showing only the end of the output still names them.
  echo "--- failed checks"; printf 'FAIL: %s\n' "${failed[@]}"
fi
[ "$fail" -eq 0 ]
