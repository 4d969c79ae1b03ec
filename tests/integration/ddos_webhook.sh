#!/usr/bin/env bash
# The DDoS webhook against a real HTTP server (python3's http.server on
# loopback) that answers its first POST with 503 and the rest with 200:
# `palisade ddos` and `palisade replay` over a real SYN-ACK reflection
# (../shared/data/ddos, readdressed to 203.0.113.10) POST each attack event,
# in order (start, the update when ack_rst joins, end), the refused one again
# after a backoff; an endpoint that is down
# costs a bounded wait and is counted as failed; over https (python's server
# wrapped in TLS with a throwaway certificate for 127.0.0.1) the events
# arrive when the policy names the certificate's CA, and fail certificate
# verification when it does not; malformed URLs and TLS files that do not go
# together are refused when the policy loads.
# Usage: ddos_webhook.sh PALISADE SOURCE_DIR
set -uo pipefail
palisade=${1:?usage: ddos_webhook.sh PALISADE SOURCE_DIR}
src=${2:?}
capture=$src/../shared/data/ddos/amp.TCP.reflection.SYNACK.pcap
[ -f "$capture" ] || { echo "SKIP: $capture is absent (../shared/data)"; exit 77; }
command -v tcprewrite >/dev/null || { echo "SKIP: tcprewrite is not installed (scripts/install-deps.sh)"; exit 77; }
py=/usr/bin/python3
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0 passes=0
pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

tcprewrite --dstipmap=10.10.10.0/24:203.0.113.10/32 --infile="$capture" --outfile="$tmp/attack.pcap" ||
  { echo "FAIL: tcprewrite"; exit 1; }

$py - "$tmp" <<'PY' &
import http.server, json, sys, os
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    seen = 0
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        H.seen += 1
        if H.seen == 1:
            self.send_response(503); self.end_headers(); return
        with open(os.path.join(out, "received.jsonl"), "ab") as f:
            f.write(body + b"\n")
        with open(os.path.join(out, "types.txt"), "a") as f:
            f.write(self.headers.get("Content-Type", "") + " " + self.path + "\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(os.path.join(out, "port"), "w").write(str(s.server_port))
s.serve_forever()
PY
server=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

policy() {  # URL [RETRIES] [TIMEOUT] [MORE WEBHOOK LINES]
  cat <<YAML
version: 1
ddos:
  webhook:
    url: $1
    retries: ${2:-3}
    timeout: ${3:-2s}
${4:-}
  protect:
    - name: vip
      prefixes: [203.0.113.10/32]
YAML
}
policy "http://127.0.0.1:$port/palisade/attacks" >"$tmp/policy.yaml"
out=$("$palisade" ddos -r "$tmp/attack.pcap" --policy "$tmp/policy.yaml" 2>&1)
if grep -q "webhook http://127.0.0.1:$port/palisade/attacks: 3 events sent, 0 failed, 0 dropped, 1 retries" <<<"$out" &&
   $py - "$tmp/received.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert [e["ddos"]["event"] for e in ev] == ["start", "update", "end"], ev  # ack_rst joined
assert all(e["event_type"] == "ddos" and e["ddos"]["target"] == "203.0.113.10" for e in ev)
assert ev[0]["ddos"]["attack"] == "synack_reflection"
PY
then
  pass "palisade ddos POSTed start, update and end in order, the 503 retried ($(grep webhook <<<"$out"))"
else
  fail "palisade ddos webhook: $out; received: $(cat "$tmp/received.jsonl" 2>/dev/null)"
fi
grep -q "^application/json /palisade/attacks$" "$tmp/types.txt" && pass "Content-Type application/json, the URL's path" ||
  fail "request: $(cat "$tmp/types.txt")"

: >"$tmp/received.jsonl"
"$palisade" replay -p "$tmp/policy.yaml" -r "$tmp/attack.pcap" -q 2>"$tmp/replay.err"
if [ "$(grep -c '"event_type":"ddos"' "$tmp/received.jsonl")" -eq 3 ]; then
  pass "palisade replay's DDoS stage POSTed its 3 events"
else
  fail "replay webhook: $(cat "$tmp/replay.err"); received $(wc -l <"$tmp/received.jsonl")"
fi

# An endpoint that is down: counted as failed, within the retries' bounds.
kill $server; wait $server 2>/dev/null; server=
policy "http://127.0.0.1:$port/" 1 1s >"$tmp/down.yaml"
start=$(date +%s)
out=$("$palisade" ddos -r "$tmp/attack.pcap" --policy "$tmp/down.yaml" 2>&1); rc=$?
took=$(($(date +%s) - start))
if [ $rc -eq 0 ] && grep -q "0 events sent, 3 failed" <<<"$out" && [ $took -le 8 ]; then
  pass "an endpoint that is down: 3 events failed after retries, in ${took}s, exit 0"
else
  fail "down endpoint: exit $rc in ${took}s: $out"
fi

# https: the same server behind TLS (a throwaway certificate for 127.0.0.1).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 ||
  { echo "FAIL: openssl could not make a certificate"; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other-key.pem" -out "$tmp/other.pem" \
  -days 1 -subj "/CN=someone else" >/dev/null 2>&1
: >"$tmp/received.jsonl"
rm -f "$tmp/port"
$py - "$tmp" <<'PY' &
import http.server, os, ssl, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(os.path.join(out, "received.jsonl"), "ab") as f:
            f.write(body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(out, "cert.pem"), os.path.join(out, "key.pem"))
s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(os.path.join(out, "port"), "w").write(str(s.server_port))
s.serve_forever()
PY
server=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
policy "https://127.0.0.1:$port/hooks" 1 2s "    ca: $tmp/cert.pem" >"$tmp/https.yaml"
out=$("$palisade" ddos -r "$tmp/attack.pcap" --policy "$tmp/https.yaml" 2>&1)
if grep -q "3 events sent, 0 failed" <<<"$out" &&
   [ "$(grep -c '"event_type":"ddos"' "$tmp/received.jsonl")" -eq 3 ]; then
  pass "over https, verified against the policy's CA: 3 events sent ($(grep webhook <<<"$out"))"
else
  fail "https webhook: $out; received $(wc -l <"$tmp/received.jsonl")"
fi
policy "https://127.0.0.1:$port/hooks" 0 2s "    ca: $tmp/other.pem" >"$tmp/wrongca.yaml"
out=$("$palisade" ddos -r "$tmp/attack.pcap" --policy "$tmp/wrongca.yaml" 2>&1)
if grep -q "0 events sent, 3 failed" <<<"$out" && grep -qi "certificate" <<<"$out"; then
  pass "a server whose certificate does not chain to the CA gets nothing: $(grep -m1 -i certificate <<<"$out" | cut -c1-160)"
else
  fail "https with the wrong CA: $out"
fi
kill $server; wait $server 2>/dev/null; server=

for url in "ftp://hooks.example/" "http://"; do
  policy "$url" >"$tmp/bad.yaml"
  err=$("$palisade" ddos -r "$tmp/attack.pcap" --policy "$tmp/bad.yaml" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q "webhook url" <<<"$err"; then
    pass "url '$url' refused: $(grep -m1 'webhook url' <<<"$err" | sed 's/.*error: //')"
  else
    fail "url '$url': exit $rc: $err"
  fi
done
policy "https://hooks.example/x" 1 1s "    cert: $tmp/cert.pem" >"$tmp/bad.yaml"
err=$("$palisade" ddos -r "$tmp/attack.pcap" --policy "$tmp/bad.yaml" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "cert and key go together" <<<"$err"; then
  pass "a client certificate without its key refused: $(grep -m1 'go together' <<<"$err" | sed 's/.*error: //')"
else
  fail "cert without key: exit $rc: $err"
fi

echo
echo "ddos_webhook: $passes passed, $fails failed"
[ $fails -eq 0 ]
