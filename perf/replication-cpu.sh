#!/usr/bin/env bash
# What a replicated write costs outside the instructions callgrind counts
# (issue #12's replication cost): the CPU time, context switches, syscalls,
# io_uring submissions and loop passes per write of one ringkvd (a one-node
# cluster) and of each node of a 3-node cluster (R = 3), under the same
# fixed load, for one build or two side by side.
#
# Each round starts fresh: for each build the one-node server, then the
# cluster (the order reverses every round), all servers --cores 1
# --shards 1 on --server-cpus, redis-benchmark (SET, --pipeline, --connections, --value-size bytes) on
# --bench-cpus, sending --requests writes to the one node or to the
# cluster's leader (node 1, election timeouts of 10 s) after a prefill. Per
# server, over the load alone: CPU time (utime + stime of every thread, from
# /proc/PID/stat), context switches (voluntary + involuntary of every
# thread, /proc/PID/task/*/status), and, from `perf stat -p` over the same
# window, syscalls, io_uring_enter calls, io_uring requests submitted, and
# requests punted to io-wq workers; from the node's /metrics, loop passes,
# WAL syncs and peer bytes sent. Everything is divided by --requests. The
# table gives each figure's median over the rounds; "3 nodes / 1 node" is
# the cluster's sum over its three servers against the one node's (the 0.5x
# throughput target needs CPU at most 2x when the servers share a CPU);
# then that CPU ratio round by round, and with two builds the cluster's
# and the one node's CPU per write B / A round by round, with medians.
#
# CPU time and switches vary with the machine's load; the counts of
# syscalls, submissions and syncs per write do not much.
#
#   perf/replication-cpu.sh [--rounds N] [--requests N] [--keys N]
#       [--connections N] [--pipeline D] [--value-size B] [--prefill N]
#       [--server-cpus LIST] [--bench-cpus LIST] [--out DIR] [--profile]
#       [--net A.B.C] [--ports BASE] A_RINGKVD [B_RINGKVD]
#
# --profile also samples every server during the load (perf record -e
# cpu-clock -g, user and kernel) and writes each one's `perf report
# --no-children` to DIR/profile-SIDE-NODE.txt (the last round's), and
# each one's io_uring requests per write by opcode to
# DIR/opcodes-SIDE-NODE.txt.
#
# Defaults: 3 rounds, 200,000 requests, 10,000 keys, 50 connections,
# pipeline 16, 100-byte values, servers on CPU 0, load on CPU 1, a prefill
# of 600,000 SETs first (about one 64 MiB memtable of 100-byte overwrites).
# A shard's first two memtables are fresh memory, whose first touch (huge
# page faults, zeroing) costs every replica about 0.25 us per write on
# this VM; later memtables reuse a flushed one's arena. The default window
# lies in the second memtable; --prefill 1300000 measures past both.
# Nodes on NET.1-4 (--net, default 127.0.52), ports from PORTS + (pid mod
# 40) * 20 (--ports, default 52000).
#
# Environment: RINGKV (the CLI, default build/tools/ringkv).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

bench_defaults 200000
rounds=3
prefill=600000
server_cpus=0
bench_cpus=1
profile=0
net=127.0.52
ports=52000
pids=()
perf_pids=()
declare -A nodepid

value_options+=(rounds prefill server_cpus bench_cpus net ports)
flag_options=(profile)
other_option() { bench_build_option "$@"; }
parse_options "$@"

in_range "$rounds" 1 50 || die "--rounds must be 1..50"
in_range "$prefill" 0 100000000 || die "--prefill must be 0..100000000"
check_net_options
check_bench_options 1000 perf redis-benchmark python3 curl taskset
pin=1
[ -n "$out" ] || out=$root/perf/out/replication-cpu-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-repl-cpu.XXXXXX")
cleanup() {
	[ ${#perf_pids[@]} -eq 0 ] || stop_pids "${perf_pids[@]}"
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base=$((ports + ($$ % 40) * 20))
addr() { echo "$net.$1"; }
# Node i (1-3 the cluster, 4 the one node): peer base+i, native
# base+4+i, RESP base+8+i, admin base+12+i.
ic="1=$(addr 1):$((base + 1)),2=$(addr 2):$((base + 2)),3=$(addr 3):$((base + 3))"
tick_us=$((1000000 / $(getconf CLK_TCK)))
events=task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_submit_req,io_uring:io_uring_queue_async_work

start_node() { # BUILD NODE [CLUSTER-OPTIONS...]
	local bin=$1 i=$2
	shift 2
	mkdir -p "$tmp/data/n$i"
	pinned "$server_cpus" "$bin" "$@" --cores 1 --shards 1 \
		--listen "$(addr "$i"):$((base + 4 + i))" --resp-listen "$(addr "$i"):$((base + 8 + i))" \
		--admin-listen "$(addr "$i"):$((base + 12 + i))" \
		--data-dir "$tmp/data/n$i" --log-level warn >>"$out/n$i.log" 2>&1 &
	pids+=($!)
	nodepid[$i]=$!
}

# Whether node 1 leads shard 0 (the one node, 4: whether it has a leader).
leads() { # NODE
	local want="l == $1"
	[ "$1" = 4 ] && want="l is not None"
	"$cli" -a "$(addr "$1"):$((base + 4 + $1))" -t 5 --json cluster status 2>/dev/null |
		python3 -c "import json,sys; l = json.load(sys.stdin)['shards'][0]['leader']; sys.exit(0 if $want else 1)" 2>/dev/null
}

# Counters of a process: "cpu_us sys_us switches".
proc_counts() { # PID
	local f sw=0 t
	read -r -a f <"/proc/$1/stat"
	for t in /proc/"$1"/task/*/status; do
		sw=$((sw + $(awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }' "$t" 2>/dev/null || echo 0)))
	done
	echo "$(((f[13] + f[14]) * tick_us)) $((f[14] * tick_us)) $sw"
}

# Counters of a node's /metrics: "iterations syncs peer_bytes".
metric_counts() { # NODE
	curl -s --max-time 5 "http://$(addr "$1"):$((base + 12 + $1))/metrics" |
		awk '/^ringkv_reactor_iterations_total/ { it += $2 }
		     /^ringkv_wal_syncs_total/ { sy += $2 }
		     /^ringkv_peer_sent_bytes_total/ { pb += $2 }
		     END { printf "%d %d %d\n", it, sy, pb }'
}

# One measured load against NODES (their node numbers; the first is the
# one the load goes to); appends "side node cpu_us sw sys enter sqe async
# iter sync peer_bytes" per node, per write, to $tmp/rows.
measure() { # SIDE NODES...
	local side=$1 target i j
	shift
	target=$1
	if [ "$prefill" -gt 0 ]; then
		taskset -c "$bench_cpus" redis-benchmark -h "$(addr "$target")" -p $((base + 8 + target)) \
			-t set -n "$prefill" -P 16 -c "$connections" -r "$keys" -d "$value_size" -q \
			>"$out/prefill-$side.load" 2>&1 || die "$side: the prefill failed"
	fi
	sleep 2
	declare -A before_p before_m
	perf_pids=()
	for i in "$@"; do
		perf stat -x, -e "$events" -p "${nodepid[$i]}" -o "$tmp/perf-$i" &
		perf_pids+=($!)
		if [ "$profile" = 1 ]; then
			perf record -q -e cpu-clock -g -p "${nodepid[$i]}" -o "$out/rec-$side-$i.data" \
				>/dev/null 2>&1 &
			perf_pids+=($!)
			perf record -q -e io_uring:io_uring_submit_req -p "${nodepid[$i]}" \
				-o "$out/sqe-$side-$i.data" >/dev/null 2>&1 &
			perf_pids+=($!)
		fi
	done
	sleep 0.5
	for i in "$@"; do
		before_p[$i]=$(proc_counts "${nodepid[$i]}")
		before_m[$i]=$(metric_counts "$i")
	done
	taskset -c "$bench_cpus" redis-benchmark -h "$(addr "$target")" -p $((base + 8 + target)) -t set \
		-n "$requests" -P "$pipeline" -c "$connections" -r "$keys" -d "$value_size" -q \
		>>"$out/load-$side.load" 2>&1 || die "$side: the load failed"
	sleep 0.5 # the followers' last applies
	for i in "$@"; do
		local p m
		p=$(proc_counts "${nodepid[$i]}")
		m=$(metric_counts "$i")
		echo "$side $i ${before_p[$i]} $p ${before_m[$i]} $m" >>"$tmp/raw"
	done
	for j in "${perf_pids[@]}"; do
		kill -INT "$j" 2>/dev/null || true
	done
	for j in "${perf_pids[@]}"; do
		wait "$j" 2>/dev/null || true
	done
	perf_pids=()
	if [ "$profile" = 1 ]; then
		for i in "$@"; do
			perf report -i "$out/rec-$side-$i.data" --no-children --percent-limit 0.5 --stdio \
				>"$out/profile-$side-$i.txt" 2>/dev/null || true
			perf script -i "$out/sqe-$side-$i.data" 2>/dev/null |
				grep -o 'opcode [A-Z_]*' | sort | uniq -c |
				awk -v n="$requests" '{ printf "%-24s %.4f per write\n", $3, $1 / n }' \
				>"$out/opcodes-$side-$i.txt" || true
		done
	fi
	for i in "$@"; do
		python3 - "$side" "$i" "$requests" "$tmp/perf-$i" "$(tail -n "$#" "$tmp/raw" | awk -v n="$i" '$2 == n')" \
			"$cur_round" >>"$tmp/rows" <<'EOF'
import sys
side, node, req, perf_file, raw = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5].split()
c = {}
for line in open(perf_file):
    f = line.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        c[f[2]] = float(f[0])
v = [int(x) for x in raw[2:]]
cpu = v[3] - v[0]; sys_us = v[4] - v[1]; sw = v[5] - v[2]
it = v[9] - v[6]; sy = v[10] - v[7]; pb = v[11] - v[8]
row = [cpu / req, sys_us / req, sw / req, c.get("raw_syscalls:sys_enter", 0) / req,
       c.get("syscalls:sys_enter_io_uring_enter", 0) / req,
       c.get("io_uring:io_uring_submit_req", 0) / req,
       c.get("io_uring:io_uring_queue_async_work", 0) / req,
       it / req, sy / req, pb / req]
print(side, node, " ".join("%.4f" % x for x in row), sys.argv[6])
EOF
	done
}

run_one() { # BUILD-INDEX ROUND
	local b=$1 side=b$1-one
	rm -rf "$tmp/data"
	pids=()
	start_node "${builds[$b]}" 4
	for _ in $(seq 60); do leads 4 && break; sleep 0.5; done
	leads 4 || die "$side: the one node does not lead its shard (log in $out)"
	measure "$side" 4
	stop_pids "${pids[@]}"
	pids=()
}

run_three() { # BUILD-INDEX ROUND
	local b=$1 side=b$1-three i
	rm -rf "$tmp/data"
	pids=()
	for i in 1 2 3; do
		start_node "${builds[$b]}" "$i" --node-id "$i" --initial-cluster "$ic" \
			--cluster-token replcpu --election-timeout 10s
	done
	for _ in $(seq 60); do leads 1 && break; sleep 2; done
	leads 1 || die "$side: node 1 does not lead shard 0 (logs in $out)"
	measure "$side" 1 2 3
	stop_pids "${pids[@]}"
	pids=()
}

: >"$tmp/rows"
: >"$tmp/raw"
sides=()
for b in "${!builds[@]}"; do
	sides+=("$b:one" "$b:three")
done
for round in $(seq "$rounds"); do
	cur_round=$round
	while IFS=: read -r b what; do
		echo "$prog: round $round, build $((b + 1)), $what" >&2
		"run_$what" "$b" "$round"
	done < <(round_order "$round" "${sides[@]}")
done
cp "$tmp/rows" "$out/rows"

python3 - "$out/rows" "${#builds[@]}" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
nb = int(sys.argv[2])
names = ["CPU us", "of it sys", "switches", "syscalls", "io_uring_enter", "SQEs", "io-wq punts",
         "loop passes", "WAL syncs", "peer bytes"]
def med(side, node):
    rs = [[float(x) for x in r[2:-1]] for r in rows if r[0] == side and r[1] == node]
    return [statistics.median(col) for col in zip(*rs)]
print("\nper write, median of %d rounds\n" % (len(rows) // (4 * nb)))
print("| build | server | " + " | ".join(names) + " |")
print("| --- | --- |" + " ---: |" * len(names))
for b in range(nb):
    one = med("b%d-one" % b, "4")
    three = [med("b%d-three" % b, n) for n in "123"]
    fmt = lambda v: " | ".join(("%.3f" % x) if x < 100 else ("%.0f" % x) for x in v)
    print("| %s | one node | %s |" % ("AB"[b], fmt(one)))
    for n, v in zip(("leader", "follower 2", "follower 3"), three):
        print("| %s | %s | %s |" % ("AB"[b], n, fmt(v)))
    tot = [sum(c) for c in zip(*three)]
    print("| %s | 3 nodes / 1 node | %s |" % ("AB"[b], " | ".join(
        "%.2f" % (t / o) if o else "-" for t, o in zip(tot, one))))
# CPU per write per round: the 3 servers' sum, and against the one node
def cpu(side, rnd, nodes):
    return sum(float(r[2]) for r in rows if r[0] == side and r[-1] == rnd and r[1] in nodes)
rounds = sorted({r[-1] for r in rows}, key=int)
print()
for b in range(nb):
    per = [cpu("b%d-three" % b, k, "123") / cpu("b%d-one" % b, k, "4") for k in rounds]
    print("%s: 3 nodes' CPU / 1 node's, per round: %s; median %.2f" % (
        "AB"[b], " ".join("%.2f" % x for x in per), statistics.median(per)))
if nb == 2:
    per = [cpu("b1-three", k, "123") / cpu("b0-three", k, "123") for k in rounds]
    print("3 nodes' CPU per write, B / A per round: %s; median %.3f" % (
        " ".join("%.3f" % x for x in per), statistics.median(per)))
    per = [cpu("b1-one", k, "4") / cpu("b0-one", k, "4") for k in rounds]
    print("1 node's CPU per write, B / A per round: %s; median %.3f" % (
        " ".join("%.3f" % x for x in per), statistics.median(per)))
EOF
echo
echo "A: ${builds[0]}${builds[1]:+; B: ${builds[1]}}. Servers on CPU $server_cpus, load on CPU $bench_cpus; $requests SETs, pipeline $pipeline, $connections connections, $keys keys, $value_size-byte values. Logs in $out"
