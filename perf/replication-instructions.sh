#!/usr/bin/env bash
# Instructions per replicated write on a 3-node cluster's leader and on a
# follower, for one build or two side by side (issue #12's replication cost):
# a figure the machine's noise does not move. The cluster is three ringkvd
# (--cores 1, --shards 1, R = 3, election timeouts of 10 s so a slowed node
# keeps its role); one of them runs under valgrind's callgrind, the others
# natively: node 1 (the leader of shard 0) for the leader's figure, node 2
# for a follower's. redis-benchmark sends --requests SETs to node 1's RESP
# port after a prefill; the counted node's instructions (Ir) from a zero
# taken once it has applied the prefill to a dump taken once it has applied
# the load (both waits --settle seconds), less its idle rate over that
# window, divided by the requests.
#
# Where perf/instructions.sh --cluster gives the leader beside Redis, this
# splits the cluster's whole cost: with all three nodes on one CPU (as
# perf/cluster-compare.sh --mode replication runs them), the 0.5x target
# needs leader + 2 x follower <= 2 x the one-node write.
#
#   perf/replication-instructions.sh [--requests N] [--keys N]
#       [--connections N] [--pipeline D] [--value-size B] [--settle S]
#       [--out DIR] [--annotate] [--net A.B.C] [--ports BASE]
#       A_RINGKVD [B_RINGKVD]
#
# Defaults: 10,000 requests, 10,000 keys, 50 connections, pipeline 16,
# 100-byte values, 3 s settle. Prints a table: Ir per write, leader and
# follower, for each build, and B / A. --annotate writes each measured
# phase's inclusive callgrind_annotate to DIR. Run it on binaries nobody
# rebuilds meanwhile (callgrind reads symbols lazily). Nodes on
# NET.1-3 (--net, default 127.0.59), ports from PORTS + (pid mod 90) * 10
# (--ports, default 59000).
#
# Environment: RINGKV (the CLI, default build/tools/ringkv).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
# usage, die, bench_defaults, parse_options, in_range, stop_pids
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

bench_defaults 10000
settle=3
net=127.0.59
ports=59000
annotate=0
pids=()
result=0

value_options+=(settle net ports)
flag_options=(annotate)
other_option() { bench_build_option "$@"; }
parse_options "$@"

in_range "$settle" 1 600 || die "--settle must be 1..600 seconds"
check_net_options
check_bench_options 100 valgrind callgrind_control redis-benchmark python3
[ -n "$out" ] || out=$root/perf/out/replication-instructions-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-repl-instr.XXXXXX")
cleanup() {
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base=$((ports + ($$ % 90) * 10))
addr() { echo "$net.$1"; }
ic="1=$(addr 1):$((base + 1)),2=$(addr 2):$((base + 2)),3=$(addr 3):$((base + 3))"

# The counted node's newest dump's Ir.
dump() { # PID NAME FILE-PREFIX
	local f
	callgrind_control --dump="$2" "$1" >/dev/null 2>&1
	for _ in $(seq 100); do
		f=$(find "$out" -maxdepth 1 -name "$3.*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
		[ -n "$f" ] && grep -q "^desc: Trigger: dump $2\$" "$f" && break
		sleep 0.1
	done
	[ -n "$f" ] || die "callgrind wrote no dump ($3)"
	if [ "$annotate" = 1 ] && [ "$2" = load ]; then
		callgrind_annotate --inclusive=yes "$f" >"$f.annotate" 2>/dev/null || true
	fi
	awk '/^summary:/ { print $2 }' "$f"
}

# One cluster, node COUNTED under callgrind; sets result to its Ir per write
# (not printed: in a subshell the cleanup would not see the nodes).
measure() { # BUILD-INDEX COUNTED
	local bin=${builds[$1]} counted=$2 i vpid prefix t0 t1 ir idle_ir
	prefix=b$1-n$counted.cg.out
	rm -rf "$tmp/data"
	rm -f "$out/$prefix"*
	pids=()
	for i in 1 2 3; do
		mkdir -p "$tmp/data/n$i"
		local cmd=("$bin" --node-id "$i" --initial-cluster "$ic" --cluster-token replinstr
			--cores 1 --shards 1 --election-timeout 10s
			--listen "$(addr "$i"):$((base + 4 + i))" --resp-listen "$(addr "$i"):$((base + 7 + i))"
			--data-dir "$tmp/data/n$i" --log-level warn)
		if [ "$i" = "$counted" ]; then
			valgrind --tool=callgrind --callgrind-out-file="$out/$prefix" "${cmd[@]}" \
				>"$out/b$1-n$i.log" 2>&1 &
			vpid=$!
		else
			"${cmd[@]}" >"$out/b$1-n$i.log" 2>&1 &
		fi
		pids+=($!)
	done
	# Up, and node 1 leads shard 0 (its first leader), within 2 minutes.
	local led=0
	for _ in $(seq 60); do
		if "$cli" -a "$(addr 1):$((base + 5))" -t 10 --json cluster status 2>/dev/null |
			python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["shards"][0]["leader"] == 1 else 1)' 2>/dev/null; then
			led=1
			break
		fi
		sleep 2
	done
	[ "$led" = 1 ] || die "build $1: node 1 does not lead shard 0 (logs in $out)"
	redis-benchmark -h "$(addr 1)" -p $((base + 8)) -t set -n $((keys * 2)) -P 16 \
		-c "$connections" -r "$keys" -d "$value_size" -q >"$out/b$1-n$counted-prefill.load" 2>&1 ||
		die "build $1: the prefill failed"
	sleep "$settle"
	callgrind_control --zero "$vpid" >/dev/null 2>&1
	t0=$(date +%s.%N)
	redis-benchmark -h "$(addr 1)" -p $((base + 8)) -t set -n "$requests" -P "$pipeline" \
		-c "$connections" -r "$keys" -d "$value_size" -q >"$out/b$1-n$counted.load" 2>&1 ||
		die "build $1: the load failed"
	sleep "$settle"
	t1=$(date +%s.%N)
	ir=$(dump "$vpid" load "$prefix")
	callgrind_control --zero "$vpid" >/dev/null 2>&1
	sleep "$settle"
	idle_ir=$(dump "$vpid" idle "$prefix")
	stop_pids "${pids[@]}"
	pids=()
	result=$(python3 -c "print(round(($ir - $idle_ir / $settle * ($t1 - $t0)) / $requests))")
}

declare -A fig
for b in "${!builds[@]}"; do
	for node in 1 2; do
		echo "$prog: build $((b + 1)) ($(basename "${builds[$b]}")), node $node under callgrind" >&2
		measure "$b" "$node"
		fig[$b,$node]=$result
	done
done

printf '\n%s requests, pipeline %s, %s connections, %s keys, %s-byte values; Ir per write\n\n' \
	"$requests" "$pipeline" "$connections" "$keys" "$value_size"
if [ ${#builds[@]} -eq 1 ]; then
	echo "| node | Ir per write |"
	echo "| --- | ---: |"
	echo "| leader | ${fig[0,1]} |"
	echo "| follower | ${fig[0,2]} |"
	echo "| leader + 2 followers | $((fig[0,1] + 2 * fig[0,2])) |"
else
	echo "| node | A | B | B / A |"
	echo "| --- | ---: | ---: | ---: |"
	for node in 1 2; do
		name=leader
		[ "$node" = 2 ] && name=follower
		echo "| $name | ${fig[0,$node]} | ${fig[1,$node]} | $(python3 -c "print(round(${fig[1,$node]} / ${fig[0,$node]}, 3))") |"
	done
	ta=$((fig[0,1] + 2 * fig[0,2]))
	tb=$((fig[1,1] + 2 * fig[1,2]))
	echo "| leader + 2 followers | $ta | $tb | $(python3 -c "print(round($tb / $ta, 3))") |"
fi
echo
echo "A: ${builds[0]}${builds[1]:+; B: ${builds[1]}}. Dumps and logs in $out"
