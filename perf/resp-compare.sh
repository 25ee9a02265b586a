#!/usr/bin/env bash
# redis-benchmark against ringkvd's RESP port and against redis-server with
# --appendonly yes --appendfsync always (equal durability: every write is on
# disk before its reply), on this machine, in one run.
#
# Pinning: the server gets the last CPU, redis-benchmark the first (taskset);
# ringkvd --cores 2 on a 2-CPU machine necessarily shares the client's CPU.
# Servers alternate round by round (redis, ringkvd --cores 1, ringkvd
# --cores 2), and the table reports medians and the median of the per-round
# ratios ringkvd/redis, as docs/PERFORMANCE.md asks.
#
# usage: perf/resp-compare.sh [--rounds N] [--requests N] [--clients N]
#                             [--size BYTES] [--ringkvd PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 requests=200000 clients=50 size=16
ringkvd=${RINGKVD:-build/server/ringkvd}
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--ringkvd) ringkvd=$2; shift 2 ;;
	*) echo "usage: $0 [--rounds N] [--requests N] [--clients N] [--size B] [--ringkvd PATH]" >&2
	   exit 2 ;;
	esac
done
for tool in redis-server redis-benchmark python3 taskset; do
	command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
[ -x "$ringkvd" ] || { echo "no ringkvd at $ringkvd: build first (scripts/build.sh)" >&2; exit 1; }

ncpu=$(nproc)
server_cpu=$((ncpu - 1))
client_cpu=0
work=$(mktemp -d /tmp/ringkv-resp-compare-XXXXXX)
pid=
# free_port, stop_pids
# shellcheck source=perf/lib.sh
. perf/lib.sh
stop_server() {
	if [ -n "$pid" ]; then
		stop_pids "$pid"
		pid=
	fi
}
trap 'stop_server; rm -rf "$work"' EXIT

wait_port() {
	for _ in $(seq 100); do
		redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "server on port $1 did not come up" >&2
	return 1
}

start_server() { # name -> sets pid, port
	port=$(free_port)
	rm -rf "$work/data"
	mkdir -p "$work/data"
	case $1 in
	redis)
		taskset -c "$server_cpu" redis-server --port "$port" --bind 127.0.0.1 \
			--appendonly yes --appendfsync always --save '' --dir "$work/data" \
			--daemonize no --logfile "$work/redis.log" &
		;;
	ringkvd-1)
		taskset -c "$server_cpu" "$ringkvd" --cores 1 --listen 127.0.0.1:0 \
			--resp-listen "127.0.0.1:$port" --data-dir "$work/data" \
			>/dev/null 2>"$work/ringkvd.log" &
		;;
	ringkvd-2)
		"$ringkvd" --cores 2 --listen 127.0.0.1:0 --resp-listen "127.0.0.1:$port" \
			--data-dir "$work/data" >/dev/null 2>"$work/ringkvd.log" &
		;;
	esac
	pid=$!
	wait_port "$port"
}

results="$work/results.tsv"
: >"$results"
for round in $(seq "$rounds"); do
	for server in redis ringkvd-1 ringkvd-2; do
		start_server "$server"
		taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get \
			-n "$requests" -c "$clients" -d "$size" --csv >"$work/out.csv" 2>"$work/err.txt"
		stop_server
		# CSV: "test","rps","avg_latency_ms","min","p50","p95","p99","max"
		python3 - "$server" "$round" "$work/out.csv" >>"$results" <<'PY'
import csv, sys
server, rnd, path = sys.argv[1:4]
for row in csv.reader(open(path)):
    if row and row[0] in ("SET", "GET"):
        print(f"{server}\t{rnd}\t{row[0]}\t{row[1]}\t{row[6]}")
PY
		echo "round $round $server done" >&2
	done
done

python3 - "$results" "$rounds" "$requests" "$clients" "$size" <<'PY'
import statistics, sys
path, rounds, n, c, d = sys.argv[1:6]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
data = {}
for server, rnd, test, rps, p99 in rows:
    data.setdefault((server, test), {})[int(rnd)] = (float(rps), float(p99))
print(f"redis-benchmark -t set,get -n {n} -c {c} -d {d}, {rounds} rounds, "
      "medians; ratio = median of per-round ringkvd/redis")
print()
print("| test | server | ops/s | p99 ms | ops/s ratio vs redis |")
print("| --- | --- | ---: | ---: | ---: |")
for test in ("SET", "GET"):
    base = data.get(("redis", test), {})
    for server in ("redis", "ringkvd-1", "ringkvd-2"):
        r = data.get((server, test), {})
        if not r:
            continue
        rps = statistics.median(v[0] for v in r.values())
        p99 = statistics.median(v[1] for v in r.values())
        ratios = [r[k][0] / base[k][0] for k in r if k in base and base[k][0] > 0]
        ratio = f"{statistics.median(ratios):.2f}x" if server != "redis" and ratios else ""
        name = {"redis": "redis-server (AOF always)", "ringkvd-1": "ringkvd --cores 1",
                "ringkvd-2": "ringkvd --cores 2"}[server]
        print(f"| {test} | {name} | {rps:,.0f} | {p99:.3f} | {ratio} |")
PY
