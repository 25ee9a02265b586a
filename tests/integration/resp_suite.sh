#!/usr/bin/env bash
# Runs the RESP2 front-door checks against a fresh ringkvd (2 cores) on
# ephemeral 127.0.0.1 ports: the scripted redis-cli session, the redis-py
# suite, malformed input, a client that never reads its replies, and
# redis-benchmark with zero errors allowed.
# usage: resp_suite.sh RINGKVD [TOOLS_DIR]
set -euo pipefail
ringkvd=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/ringkv-resp-XXXXXX)
out="$dir/stdout"
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

for tool in redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

"$ringkvd" --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --cores 2 \
	--data-dir "$dir/data" >"$out" 2>"$dir/stderr" &
pid=$!
port=
for _ in $(seq 150); do
	port=$(sed -n 's/.*RESP2 (Redis protocol) on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out" 2>/dev/null || true)
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "FAIL: ringkvd did not start"; cat "$dir/stderr"; exit 1
fi
echo "ringkvd RESP on 127.0.0.1:$port"

failed=0
run() {
	echo "== $*"
	if ! "$@"; then
		echo "FAIL: $*"
		failed=$((failed + 1))
	fi
}
export RESP_TARGET=ringkv
run bash "$here/resp_cli_session.sh" 127.0.0.1 "$port"
run /usr/bin/python3 "$here/resp_redis_py.py" 127.0.0.1 "$port"
run /usr/bin/python3 "$here/resp_malformed.py" 127.0.0.1 "$port"
run /usr/bin/python3 "$here/resp_abuse.py" 127.0.0.1 "$port" "$pid"

echo "== redis-benchmark -t set,get,incr,mset -n 100000 -c 50"
bench="$dir/bench.txt"
if ! timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set,get,incr,mset \
	-n 100000 -c 50 -q >"$bench" 2>&1; then
	echo "FAIL: redis-benchmark exited non-zero"; failed=$((failed + 1))
fi
tr '\r' '\n' <"$bench" | grep -E 'requests per second' || true
if grep -qiE 'error|ERR ' "$bench"; then
	echo "FAIL: redis-benchmark saw errors:"; grep -iE 'error|ERR ' "$bench" | head
	failed=$((failed + 1))
fi
if [ "$(tr '\r' '\n' <"$bench" | grep -c 'requests per second')" -ne 4 ]; then
	echo "FAIL: redis-benchmark did not finish all four tests"; failed=$((failed + 1))
fi

# The node must still answer, and stop cleanly.
run test "$(redis-cli -p "$port" PING)" = PONG
kill -TERM "$pid"
if wait "$pid"; then :; else echo "FAIL: ringkvd exit status $?"; failed=$((failed + 1)); fi
pid=
[ "$failed" -eq 0 ] && echo "resp suite: all passed" || echo "resp suite: $failed failed"
exit $((failed > 0))
