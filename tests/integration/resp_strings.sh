#!/usr/bin/env bash
# Redis 7.0 parity of the string commands: tests/integration/resp_strings.py
# sends the same commands to a fresh ringkvd (2 cores) and to a fresh
# redis-server and requires identical replies. Ports 127.0.17.1:37021-37023.
# usage: resp_strings.sh RINGKVD
set -euo pipefail
ringkvd=$1
here=$(cd "$(dirname "$0")" && pwd)
host=127.0.17.1
dir=$(mktemp -d /tmp/ringkv-resp-strings-XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

for tool in redis-server redis-cli; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
"$ringkvd" --listen "$host:37022" --resp-listen "$host:37021" --cores 2 \
	--data-dir "$dir/data" >"$dir/ringkvd.log" 2>&1 &
pids+=($!)
redis-server --bind "$host" --port 37023 --save '' --appendonly no --dir "$dir" \
	>"$dir/redis.log" 2>&1 &
pids+=($!)
for port in 37021 37023; do
	for _ in $(seq 100); do
		[ "$(redis-cli -h "$host" -p "$port" PING 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
	[ "$(redis-cli -h "$host" -p "$port" PING 2>/dev/null)" = PONG ] ||
		{ echo "FAIL: nothing answers on $host:$port"; cat "$dir"/*.log; exit 1; }
done
timeout 300 /usr/bin/python3 "$here/resp_strings.py" "$host" 37021 "$host" 37023
