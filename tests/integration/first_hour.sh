#!/bin/bash
# The first hour of a new user (issue 13), against a real ringkvd: the
# README's client examples print what they say, values from stdin larger
# than an argument may be, RINGKV_ADDR, JSON, ping, scan --prefix, the CLI
# aimed at the RESP port, and ringkv-bench's warning about other data.
# usage: first_hour.sh RINGKVD RINGKV RINGKV-BENCH
set -u
ringkvd=$1 ringkv=$2 bench=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-first-hour.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect "WANTED STDOUT" WANTED-EXIT COMMAND...
expect() {
	local want=$1 want_rc=$2 out rc
	shift 2
	out=$("$@" 2>"$work/err"); rc=$?
	[[ $rc == "$want_rc" ]] || fail "$* exited $rc, not $want_rc: $(cat "$work/err")"
	[[ $out == "$want" ]] || fail "$* printed '$out', not '$want'"
}

"$ringkvd" --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --data-dir "$work/data" \
	--cores 2 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 150); do
	grep -q "RESP2" "$work/out" 2>/dev/null && break
	sleep 0.1
done
addr=$(sed -n 's/^ringkvd: listening on \([^ ]*\) .*/\1/p' "$work/out")
resp=$(sed -n 's/^ringkvd: RESP2 (Redis protocol) on \(.*\)$/\1/p' "$work/out")
[[ -n $addr && -n $resp ]] || fail "ringkvd did not start: $(cat "$work/out" "$work/log")"

# The README's lines, as printed there.
expect "OK" 0 "$ringkv" -a "$addr" put hello world
expect "world" 0 "$ringkv" -a "$addr" get hello
expect "1" 0 "$ringkv" -a "$addr" del hello
expect "" 1 "$ringkv" -a "$addr" get hello
grep -q "not found" "$work/err" || fail "get of a deleted key: $(cat "$work/err")"
expect "0" 1 "$ringkv" -a "$addr" del hello
for k in user:1 user:2 userx; do
	expect "OK" 0 "$ringkv" -a "$addr" put "$k" "v-$k"
done
expect $'user:1\tv-user:1\nuser:2\tv-user:2' 0 "$ringkv" -a "$addr" scan user: 'user;'
expect $'user:1\tv-user:1' 0 "$ringkv" -a "$addr" scan "" "" --limit 1
expect $'user:1\tv-user:1\nuser:2\tv-user:2' 0 "$ringkv" scan --prefix user: -a "$addr"

# RINGKV_ADDR, ping, JSON.
RINGKV_ADDR=$addr expect "PONG" 0 "$ringkv" ping
expect '{"key":"user:1","found":true,"value":"v-user:1"}' 0 \
	env RINGKV_ADDR="$addr" "$ringkv" get user:1 --json
expect '[{"key":"user:2","value":"v-user:2"}]' 0 \
	"$ringkv" -a "$addr" -w json scan --prefix user:2

# A 600 KiB binary value from stdin (an argument stops near 128 KiB).
head -c 614400 /dev/urandom >"$work/big"
expect "OK" 0 "$ringkv" -a "$addr" put big - <"$work/big"
"$ringkv" -a "$addr" get big | head -c 614400 | cmp -s - "$work/big" ||
	fail "the stdin value did not come back byte for byte"
# Over the server's value limit (4 MiB less 8 KiB, 4,186,112 bytes) and
# within a frame: refused by the server, exit 3.
head -c 4190000 /dev/zero | "$ringkv" -a "$addr" put huge - 2>"$work/err"
[[ $? == 3 ]] && grep -q TOO_LARGE "$work/err" || fail "4.19 MB value: $(cat "$work/err")"

# The native client at the Redis-protocol port says so; a bad port is a
# usage error.
expect "" 3 "$ringkv" -a "$resp" get hello
grep -q "Redis protocol" "$work/err" || fail "at the RESP port: $(cat "$work/err")"
# A ping frame holds no newline: the RESP port refuses its binary bytes at
# once rather than wait for a line (a timeout here would exit 4).
expect "" 3 "$ringkv" -a "$resp" -t 3 ping
grep -q "Redis protocol" "$work/err" || fail "ping at the RESP port: $(cat "$work/err")"
expect "" 2 "$ringkv" -a 127.0.0.1:99999 get hello
grep -q "1 to 65535" "$work/err" || fail "port 99999: $(cat "$work/err")"

# ringkv-bench says what it writes, and warns: this server holds user:*.
"$bench" --addr "$addr" --requests 200 --warmup 0 --connections 2 >/dev/null 2>"$work/err" ||
	fail "ringkv-bench: $(cat "$work/err")"
grep -q "writes only keys that start with 'key:'" "$work/err" ||
	fail "ringkv-bench did not say which keys it writes: $(cat "$work/err")"
grep -q "holds keys outside the benchmark's prefix 'key:' (e.g. 'big')" "$work/err" ||
	fail "ringkv-bench did not warn about other data: $(cat "$work/err")"

kill "$pid" && wait "$pid"
rc=$?
pid=
[[ $rc == 0 ]] || fail "ringkvd stopped with $rc"
echo "first-hour: ok"
