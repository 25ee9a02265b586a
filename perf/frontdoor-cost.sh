#!/usr/bin/env bash
# Server-side cost per RESP request, robust to a loaded machine: for each
# binary (alternated round by round) and Redis, redis-benchmark drives one
# test (SET, then GET) while `perf stat -p` counts the server's CPU time
# (task-clock), its system calls, its io_uring_enter calls, io_uring's
# poll arms, SQEs and CQEs, its context switches, and redis-benchmark's
# own CPU time and context switches (the client's share of the loopback
# work); each is divided by the request count.
# Throughput is printed too, but on a loaded machine only the per-request
# counts mean much.
#
# usage: perf/frontdoor-cost.sh [--rounds N] [--requests N] [--clients N]
#                               [--pipeline N] [--no-redis] BIN [BIN...]
# Each BIN is a ringkvd, run as --cores 1 pinned to the last CPU with
# redis-benchmark on CPU 0; VAR=VALUE@BIN runs it with VAR=VALUE in its
# environment (RINGKV_RECV_BUFFERS=0@build/server/ringkvd: plain receives). Addresses 127.0.53.x, ports 53000-53899 (pid
# mixed in). Needs perf with tracepoint access (root).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 requests=100000 clients=50 pipeline=1 redis=1
bins=()
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--pipeline) pipeline=$2; shift 2 ;;
	--no-redis) redis=0; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) bins+=("$1"); shift ;;
	esac
done
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 [options] BIN [BIN...]" >&2; exit 2; }
for tool in redis-benchmark redis-cli perf taskset python3; do
	command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
[ "$redis" = 0 ] || command -v redis-server >/dev/null || { echo "redis-server missing" >&2; exit 1; }

ncpu=$(nproc)
server_cpu=$((ncpu - 1))
host=127.0.53.$((20 + $$ % 200))
port=$((53000 + $$ % 800))
work=$(mktemp -d /tmp/ringkv-frontdoor-cost-XXXXXX)
pid=
stop_server() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
trap 'stop_server; rm -rf "$work"' EXIT

start() { # kind bin
	rm -rf "$work/data"; mkdir -p "$work/data"
	port=$((port + 2)); [ "$port" -lt 53898 ] || port=53000
	if [ "$1" = redis ]; then
		taskset -c "$server_cpu" redis-server --port "$port" --bind "$host" \
			--appendonly yes --appendfsync always --save '' --dir "$work/data" \
			--daemonize no --logfile "$work/redis.log" &
	else
		local envs=() bin=$2
		if [[ $bin == *@* ]]; then envs=("${bin%%@*}"); bin=${bin#*@}; fi
		env "${envs[@]}" taskset -c "$server_cpu" "$bin" --cores 1 --listen "$host:$((port + 1))" \
			--resp-listen "$host:$port" --data-dir "$work/data" \
			>/dev/null 2>"$work/ringkvd.log" &
	fi
	pid=$!
	for _ in $(seq 100); do
		redis-cli -h "$host" -p "$port" PING >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "server did not come up" >&2; cat "$work"/*.log >&2; exit 1
}

events=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_poll_arm,io_uring:io_uring_submit_req,io_uring:io_uring_complete
measure() { # name round
	local t
	for t in set get; do
		perf stat -x, -e "$events" -p "$pid" -o "$work/perf.txt" &
		local ppid=$!
		sleep 0.3
		perf stat -x, -e task-clock,context-switches -o "$work/client.txt" -- \
			taskset -c 0 redis-benchmark -h "$host" -p "$port" -t "$t" -n "$requests" \
			-c "$clients" -P "$pipeline" -d 16 -r 100000 --csv >"$work/out.csv" 2>/dev/null
		kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
		python3 - "$1" "$2" "$t" "$requests" "$work/perf.txt" "$work/out.csv" "$work/client.txt" >>"$work/results.tsv" <<'PY'
import csv, sys
name, rnd, test, n, perf, out, client = sys.argv[1:8]
n = int(n)
def counts(path):
    v = {}
    for line in open(path):
        f = line.strip().split(",")
        if len(f) > 2 and f[0] and f[0][0].isdigit():
            v[f[2]] = float(f[0])
    return v
v = counts(perf)
cv = counts(client)
rps = 0.0
for row in csv.reader(open(out)):
    if row and row[0] in ("SET", "GET"):
        rps = float(row[1])
print("\t".join([name, rnd, test.upper(), f"{v.get('task-clock', 0) * 1000 / n:.2f}",
                 f"{v.get('raw_syscalls:sys_enter', 0) / n:.3f}",
                 f"{v.get('syscalls:sys_enter_io_uring_enter', 0) / n:.3f}",
                 f"{v.get('io_uring:io_uring_poll_arm', 0) / n:.3f}",
                 f"{v.get('io_uring:io_uring_submit_req', 0) / n:.3f}",
                 f"{v.get('io_uring:io_uring_complete', 0) / n:.3f}",
                 f"{cv.get('task-clock', 0) * 1000 / n:.2f}",
                 f"{v.get('context-switches', 0) / n:.3f}",
                 f"{cv.get('context-switches', 0) / n:.3f}", f"{rps:.0f}"]))
PY
	done
}

: >"$work/results.tsv"
for round in $(seq "$rounds"); do
	if [ "$redis" = 1 ]; then
		start redis; measure redis "$round"; stop_server
	fi
	i=0
	for b in "${bins[@]}"; do
		i=$((i + 1))
		start ringkvd "$b"; measure "bin$i" "$round"; stop_server
	done
	echo "round $round done" >&2
done

echo "redis-benchmark -n $requests -c $clients -P $pipeline -d 16 -r 100000, $rounds rounds, medians per request"
for i in $(seq ${#bins[@]}); do echo "bin$i: ${bins[$((i - 1))]}"; done
python3 - "$work/results.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
keys = []
data = {}
for name, rnd, test, *vals in rows:
    if (name, test) not in data:
        keys.append((name, test))
    data.setdefault((name, test), []).append([float(x) for x in vals])
print()
print("| test | server | CPU us/req | syscalls/req | io_uring_enter/req | poll arms/req | SQEs/req | CQEs/req | client CPU us/req | server ctx switches/req | client ctx switches/req | ops/s |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for test in ("SET", "GET"):
    for name, t in keys:
        if t != test:
            continue
        cols = list(zip(*data[(name, t)]))
        med = [statistics.median(c) for c in cols]
        print(f"| {test} | {name} | {med[0]:.2f} | {med[1]:.3f} | {med[2]:.3f} | {med[3]:.3f} | {med[4]:.3f} | {med[5]:.3f} | {med[6]:.2f} | {med[7]:.3f} | {med[8]:.3f} | {med[9]:,.0f} |")
PY
