#!/usr/bin/env bash
# The recorder's outcome rule, end to end, against servers that misbehave
# on purpose (a small Python stand-in speaking the native protocol):
#   nobody listening          -> every operation fails (never sent)
#   accepts, never answers    -> every operation is unknown
#   answers NOT_LEADER        -> fail;  answers INTERNAL -> unknown
#   answers OK, gets "bogus"  -> ok, and lincheck finds the history not
#                                linearizable (a value never written)
# usage: recorder_outcomes.sh RECORDER LINCHECK
set -euo pipefail
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }
recorder=$1 lincheck=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-outcomes-XXXXXX")
server_pid=
cleanup() {
	local rc=$?
	set +e
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

# One Python process (slow to start on a loaded machine) serves every mode,
# one port each, and holds one more port bound but not listening (refused).
cat >"$work/server.py" <<'PY'
import socket, struct, sys, threading
modes = ["silent", "not_leader", "internal", "bogus"]

def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])

def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]; i += 1; n |= (b & 0x7f) << shift; shift += 7
        if not b & 0x80: return n, i

def serve(c, mode):
    buf = b""
    while True:
        data = c.recv(4096)
        if not data: return
        if mode == "silent": continue
        buf += data
        while len(buf) >= 4:
            n = struct.unpack("<I", buf[:4])[0]
            if len(buf) < 4 + n: break
            req, buf = buf[4:4 + n], buf[4 + n:]
            rid, i = read_varint(req, 1)     # field 1 (id) comes first
            op = req[i] >> 3                  # 2 get, 3 put, 4 delete
            if mode == "not_leader": body = b"\x10\x06"
            elif mode == "internal": body = b"\x10\x08"
            elif op == 2: body = b"\x1a\x05bogus"  # OK, value "bogus"
            else: body = b""
            msg = b"\x08" + varint(rid) + body
            c.sendall(struct.pack("<I", len(msg)) + msg)

def accept(ls, mode):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()

closed = socket.socket(); closed.bind(("127.0.0.1", 0))
ports = {"refused": closed.getsockname()[1]}
for mode in modes:
    ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(64)
    ports[mode] = ls.getsockname()[1]
    threading.Thread(target=accept, args=(ls, mode), daemon=True).start()
print(" ".join("%s=%d" % kv for kv in ports.items()), flush=True)
threading.Event().wait()
PY

record() { # MODE -> history in $work/MODE.txt
	# A short timeout only where no answer comes (silent): an answer the
	# stand-in is slow to send (a loaded machine, a sanitizer build) must
	# not turn into "unknown" where the mode answers.
	local timeout_ms=3000
	[ "$1" = silent ] && timeout_ms=100
	"$recorder" --nodes "127.0.0.1:${port[$1]}" --out "$work/$1.txt" --clients 3 \
		--keys 2 --seconds 1 --timeout-ms "$timeout_ms" 2>"$work/$1.log"
	cat "$work/$1.log"
}
count() { # MODE OUTCOME
	awk -v o="$2" '!/^#/ && $7 == o' "$work/$1.txt" | wc -l
}
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$work/server.py" >"$work/ports" &
server_pid=$!
for _ in $(seq 300); do [ -s "$work/ports" ] && break; sleep 0.1; done
declare -A port
for kv in $(cat "$work/ports"); do port[${kv%=*}]=${kv#*=}; done
[ -n "${port[bogus]:-}" ] || fail "the stand-in server did not start"

record refused
[ "$(count refused fail)" -gt 0 ] && [ "$(count refused ok)" = 0 ] &&
	[ "$(count refused unknown)" = 0 ] || fail "refused: want only fail"

for mode in silent not_leader internal bogus; do
	record "$mode"
	total=$(awk '!/^#/' "$work/$mode.txt" | wc -l)
	[ "$total" -gt 0 ] || fail "$mode: nothing recorded"
	case $mode in
	silent|internal) [ "$(count $mode unknown)" = "$total" ] || fail "$mode: want only unknown" ;;
	not_leader) [ "$(count $mode fail)" = "$total" ] || fail "$mode: want only fail" ;;
	bogus) [ "$(count $mode ok)" = "$total" ] || fail "$mode: want only ok" ;;
	esac
	set +e
	"$lincheck" "$work/$mode.txt" >"$work/$mode.verdict"
	rc=$?
	set -e
	want=0
	[ $mode = bogus ] && want=1
	[ $rc = $want ] || { cat "$work/$mode.verdict"; fail "$mode: lincheck exit $rc, want $want"; }
done
head -4 "$work/bogus.verdict"
echo "recorder outcomes: all as expected"
