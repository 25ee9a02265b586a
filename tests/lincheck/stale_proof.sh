#!/usr/bin/env bash
# The broken-server proof: the recorder talks to a real ringkvd through
# stale_proxy, which answers a share of GETs from a copy lagging behind by
# --lag-ms (a follower serving reads as if linearizable). lincheck must
# flag every such history; with --stale-percent 0 (the honest control) it
# must pass every one. Every process this script starts, it stops.
#
# usage: stale_proof.sh --ringkvd BIN --proxy BIN --recorder BIN --lincheck BIN
#          [--runs 1] [--seconds 3] [--clients 10] [--keys 3]
#          [--stale-percent 20] [--lag-ms 50] [--expect violation|linearizable]
# Prints "caught C of R runs"; exit 0 when every run gave the expected
# verdict, 1 otherwise, 4 when a run recorded too little to mean anything.
set -euo pipefail

ringkvd='' proxy='' recorder='' lincheck='' runs=1 seconds=3 clients=10 keys=3
stale=20 lag=50 expect=violation
while [ $# -gt 0 ]; do
	case "$1" in
	--ringkvd) ringkvd=$2; shift 2 ;;
	--proxy) proxy=$2; shift 2 ;;
	--recorder) recorder=$2; shift 2 ;;
	--lincheck) lincheck=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--keys) keys=$2; shift 2 ;;
	--stale-percent) stale=$2; shift 2 ;;
	--lag-ms) lag=$2; shift 2 ;;
	--expect) expect=$2; shift 2 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
	esac
done
[ -n "$ringkvd" ] && [ -n "$proxy" ] && [ -n "$recorder" ] && [ -n "$lincheck" ] || exit 2
case "$expect" in violation) want=1 ;; linearizable) want=0 ;; *) exit 2 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-stale-XXXXXX")
server_pid='' proxy_pid=''
cleanup() {
	local rc=$?
	set +e
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for "listening on 127.0.0.1:PORT" in a log; prints PORT.
port_of() {
	for _ in $(seq 150); do
		p=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.1
	done
	cat "$1" >&2
	return 1
}

"$ringkvd" --listen 127.0.0.1:0 --data-dir "$work/data" --cores 1 >"$work/ringkvd.log" 2>&1 &
server_pid=$!
server_port=$(port_of "$work/ringkvd.log")

caught=0 matched=0
for run in $(seq "$runs"); do
	"$proxy" --upstream "127.0.0.1:$server_port" --stale-percent "$stale" \
		--lag-ms "$lag" --seed "$run" >"$work/proxy.log" 2>&1 &
	proxy_pid=$!
	proxy_port=$(port_of "$work/proxy.log")
	"$recorder" --nodes "127.0.0.1:$proxy_port" --out "$work/history.txt" \
		--seconds "$seconds" --clients "$clients" --keys "$keys" \
		--prefix "run$run-" --seed "$run" 2>"$work/recorder.log"
	kill "$proxy_pid"
	wait "$proxy_pid" || true
	proxy_pid=
	ok=$(awk '!/^#/ && $7 == "ok"' "$work/history.txt" | wc -l)
	if [ "$ok" -lt 200 ]; then
		cat "$work/recorder.log" "$work/proxy.log" >&2
		echo "stale_proof.sh: run $run: only $ok ok operations" >&2
		exit 4
	fi
	set +e
	"$lincheck" --max-seconds 30 "$work/history.txt" >"$work/verdict.txt"
	rc=$?
	set -e
	[ $rc = 1 ] && caught=$((caught + 1))
	[ $rc = "$want" ] && matched=$((matched + 1))
	if [ "$runs" -eq 1 ] || [ $rc != "$want" ]; then
		cat "$work/recorder.log" "$work/proxy.log"
		cat "$work/verdict.txt"
	fi
done
echo "stale_proof.sh: caught $caught of $runs runs (stale $stale% of gets, lag $lag ms, ${seconds}s, $clients clients, $keys keys); expected: $expect"
[ "$matched" -eq "$runs" ]
