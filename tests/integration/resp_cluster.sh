#!/usr/bin/env bash
# The RESP door of a 3-node cluster (R = 3, 127.0.1.21-23), used through
# nodes that do not lead most shards: the scripted redis-cli session against
# node 2, the redis-py suite against node 3 and redis-benchmark against
# node 2 with zero errors allowed. Every request for a shard led elsewhere
# is forwarded to its leader (docs/cluster/forwarding.md).
# usage: resp_cluster.sh RINGKVD
set -euo pipefail
ringkvd=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/ringkv-resp-cluster-XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

for tool in redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

# Ports from the pid (this helper's range 21000-21999), so parallel runs differ.
port=$((21800 + $$ % 60 * 3))
ic="1=127.0.1.21:$port,2=127.0.1.22:$port,3=127.0.1.23:$port"
for i in 1 2 3; do
	"$ringkvd" --node-id "$i" --initial-cluster "$ic" --cores 2 \
		--listen "127.0.1.2$i:$((port + 1))" --resp-listen "127.0.1.2$i:$((port + 2))" \
		--data-dir "$dir/n$i" >"$dir/out$i" 2>"$dir/err$i" &
	pids+=($!)
done
# Ready when a write through every node succeeds (leaders elected).
ready=0
for _ in $(seq 150); do
	ok=0
	for i in 1 2 3; do
		out=$(redis-cli -h "127.0.1.2$i" -p $((port + 2)) SET ready:$i 1 2>/dev/null || true)
		[ "$out" = OK ] && ok=$((ok + 1))
	done
	[ $ok -eq 3 ] && { ready=1; break; }
	sleep 0.2
done
if [ $ready -ne 1 ]; then
	echo "FAIL: the cluster did not start"; tail -n 5 "$dir"/err*; exit 1
fi
redis-cli -h 127.0.1.21 -p $((port + 2)) DEL ready:1 ready:2 ready:3 >/dev/null

failed=0
run() {
	echo "== $*"
	if ! "$@"; then
		echo "FAIL: $*"
		failed=$((failed + 1))
	fi
}
export RESP_TARGET=ringkv
run bash "$here/resp_cli_session.sh" 127.0.1.22 $((port + 2))
# Every redis-py test but one timing bound: a SCAN call with a pathological
# MATCH makes one step per key, and in a cluster each step is a ReadIndex
# round at its shard's leader, so "each call under 1 s" is a one-node
# figure (docs/cluster/forwarding.md, "Limits"). Its correctness (every match
# found) is the same code path as test_scan_many_keys.
tests=$(grep -o '^    def test_[a-z0-9_]*' "$here/resp_redis_py.py" | sed 's/ *def /RespTest./' |
	grep -v '^RespTest.test_scan_pathological_match_is_bounded$')
# shellcheck disable=SC2086
run /usr/bin/python3 "$here/resp_redis_py.py" 127.0.1.23 $((port + 2)) $tests

echo "== redis-benchmark -t set,get,incr,mset -n 20000 -c 20 against node 2"
bench="$dir/bench.txt"
if ! timeout 300 redis-benchmark -h 127.0.1.22 -p $((port + 2)) -t set,get,incr,mset \
	-n 20000 -c 20 -q >"$bench" 2>&1; then
	echo "FAIL: redis-benchmark exited non-zero"; failed=$((failed + 1))
fi
tr '\r' '\n' <"$bench" | grep -E 'requests per second|rror' || true
if grep -qi -E "error|ERR" "$bench"; then
	echo "FAIL: redis-benchmark saw errors"; failed=$((failed + 1))
fi
[ "$failed" -eq 0 ] && echo "resp cluster: all passed" || echo "resp cluster: $failed failed"
exit $((failed > 0))
