#!/usr/bin/env bash
# What idle replicas cost (issue #18's first figure): a 3-node cluster
# with --shards N (R = 3: every node holds N replicas) starts, elects, takes
# one write through each node, then sits idle; over --duration seconds this
# prints, per node, its CPU time as a percentage of one CPU (utime + stime
# from /proc/PID/stat) and its resident memory, and the memory per replica
# (RSS over N, not excluding what an empty node holds).
#
#   perf/idle-cpu.sh [--shards N] [--cores C] [--settle S] [--duration S]
#       [--server-cpus LIST] [--data-root DIR] [--out DIR]
#
# Defaults: 1,000 shards, 2 cores per node, 20 s to settle (elections and
# the first heartbeats), 30 s measured, the three nodes on every CPU (as a
# deployment would run them; --server-cpus 0 pins them to one), data under
# $TMPDIR or /var/tmp. Nodes on 127.0.7.31-33, ports 27600-27633.
#
# Environment: RINGKVD, RINGKV_CLI (default build/server/ringkvd,
# build/tools/ringkv).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

shards=1000
cores=2
settle=20
duration=30
server_cpus=
data_root=${TMPDIR:-/var/tmp}
out=
value_options=(shards cores settle duration server_cpus data_root out)
other_option() { die "unknown option $1 (see --help)"; }
parse_options "$@"
in_range "$shards" 1 100000 || die "--shards: 1 to 100000"
in_range "$cores" 1 64 || die "--cores: 1 to 64"
in_range "$settle" 1 3600 || die "--settle: seconds, 1 to 3600"
in_range "$duration" 1 3600 || die "--duration: seconds, 1 to 3600"
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
cli=${RINGKV_CLI:-$root/build/tools/ringkv}
[ -x "$ringkvd" ] || die "no $ringkvd: build first (ninja -C build)"
[ -x "$cli" ] || die "no $cli: build first (ninja -C build)"

work=$(mktemp -d "$data_root/ringkv-idle.XXXXXX")
out=${out:-$work}
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	rm -rf "$work"
}
trap cleanup EXIT

pin=0
[ -n "$server_cpus" ] && pin=1
initial="1=127.0.7.31:27631,2=127.0.7.32:27632,3=127.0.7.33:27633"
for i in 1 2 3; do
	mkdir -p "$work/n$i"
	pinned "${server_cpus:-0}" "$ringkvd" --node-id "$i" --initial-cluster "$initial" \
		--cluster-token idle --cores "$cores" --shards "$shards" \
		--listen "127.0.7.3$i:2760$i" --data-dir "$work/n$i" --log-level "${IDLE_LOG_LEVEL:-warn}" \
		>"$out/node$i.log" 2>&1 &
	pids+=($!)
done

# One acknowledged write through each node: the cluster serves.
for i in 1 2 3; do
	ok=0
	for _ in $(seq 100); do
		if "$cli" -a "127.0.7.3$i:2760$i" -t 5 put "idle-probe-$i" ok >/dev/null 2>&1; then
			ok=1
			break
		fi
		for p in "${pids[@]}"; do
			kill -0 "$p" 2>/dev/null || die "a node exited at start-up (logs in $out)"
		done
		sleep 0.5
	done
	[ "$ok" = 1 ] || die "node $i takes no write (logs in $out)"
done
sleep "$settle"

hz=$(getconf CLK_TCK)
declare -a before
for i in 0 1 2; do before[i]=$(cpu_ticks "${pids[i]}"); done
sleep "$duration"
printf '%-6s %10s %12s %16s\n' node "cpu %" "rss MiB" "rss KiB/replica"
for i in 0 1 2; do
	used=$(($(cpu_ticks "${pids[i]}") - before[i]))
	rss=$(rss_kib "${pids[i]}")
	awk -v n=$((i + 1)) -v t="$used" -v hz="$hz" -v d="$duration" -v rss="$rss" -v s="$shards" \
		'BEGIN { printf "%-6s %10.2f %12.1f %16.1f\n", n, 100 * t / hz / d, rss / 1024, rss / s }'
done
