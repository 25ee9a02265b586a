#!/usr/bin/env bash
# Idle CPU of one node with many replicas, two builds side by side: one
# data dir of --shards N (a one-node cluster, every shard a Raft group of
# one) is made once by RINGKVD; then, --rounds times, each build in turn
# (A B, B A, ...) restarts on it, waits until every replica leads and every
# group sleeps, settles, and its CPU time (utime + stime from
# /proc/PID/stat) over --duration seconds is taken, as a percentage of one
# CPU. Prints a line per run, then the medians and the median of the
# per-round ratios B/A.
#
#   perf/idle-node-ab.sh [--shards N] [--cores C] [--rounds R]
#       [--settle S] [--duration S] [--host IP] [--port P] [--data-root DIR]
#
# Defaults: 10,000 shards, 2 cores, 3 rounds, 5 s settle, 30 s measured,
# 127.0.0.47:51800 (admin: the next port).
#
# Environment: RINGKVD (A, default build/server/ringkvd), RINGKVD_B (B).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

shards=10000
cores=2
rounds=3
settle=5
duration=30
host=127.0.0.47
port=51800
data_root=${TMPDIR:-/var/tmp}
value_options=(shards cores rounds settle duration host port data_root)
other_option() { die "unknown option $1 (see --help)"; }
parse_options "$@"
check_node_options
in_range "$settle" 0 600 || die "--settle: seconds, 0 to 600"
in_range "$duration" 1 3600 || die "--duration: seconds, 1 to 3600"
in_range "$port" 1 65534 || die "--port: 1 to 65534"
a=${RINGKVD:-$root/build/server/ringkvd}
b=${RINGKVD_B:-}
[ -x "$a" ] || die "no $a: build first"
{ [ -n "$b" ] && [ -x "$b" ]; } || die "RINGKVD_B: the build to compare (an executable)"
command -v curl >/dev/null || die "needs curl"

work=$(mktemp -d "$data_root/ringkv-idle-ab.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || stop_pids "$pid"
	rm -rf "$work"
}
trap cleanup EXIT
admin="$host:$((port + 1))"
hz=$(getconf CLK_TCK)

start() { # BINARY: sets pid once every replica leads
	start_ringkvd "$1" "$host:$port" "$admin" "$work/data" "$work/node.log"
	pid=$node_pid
	wait_leaders "$pid" "$admin" "$shards" 600 "$work/node.log"
}

start "$a" # the data dir, made once
stop_pids "$pid"
pid=
printf '%-5s %-4s %8s %8s\n' round side "cpu %" asleep
results=$(mktemp "$work/results.XXXXXX")
for r in $(seq "$rounds"); do
	for side in $(round_order "$r" A B); do
		bin=$a
		[ "$side" = B ] && bin=$b
		start "$bin"
		asleep=0
		for _ in $(seq 120); do
			asleep=$({ curl -s --max-time 2 "http://$admin/metrics" || true; } |
				awk '/^ringkv_raft_groups_sleeping/ { n += $2 } END { print n + 0 }')
			[ "$asleep" -ge "$shards" ] && break
			sleep 0.5
		done
		sleep "$settle"
		t0=$(cpu_ticks "$pid")
		sleep "$duration"
		cpu=$(echo "scale=2; 100 * ($(cpu_ticks "$pid") - $t0) / $hz / $duration" | bc)
		stop_pids "$pid"
		pid=
		printf '%-5s %-4s %8s %8s\n' "$r" "$side" "$cpu" "$asleep"
		echo "$r $side $cpu" >>"$results"
	done
done
awk "$awk_median"'{ v[$2] = v[$2] " " $3; c[$1, $2] = $3; rs[$1] = 1 }
	END {
		for (r in rs) if (c[r, "A"] > 0) q = q " " c[r, "B"] / c[r, "A"]
		printf "medians: A %.2f%%, B %.2f%%, B/A per round%s, median %.2f\n",
			med(v["A"]), med(v["B"]), q, med(q)
	}' "$results"
