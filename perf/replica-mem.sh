#!/usr/bin/env bash
# Memory per idle replica (issue #18): one node (a one-node cluster, every
# shard a Raft group of one) started with --shards LOW and then --shards
# HIGH; once every replica leads and the node has settled, its resident
# memory is read from /proc/PID/status. The figure is the slope,
# (RSS_HIGH - RSS_LOW) / (HIGH - LOW): what one more idle replica costs,
# without what an empty node holds. With RINGKVD_B set, the two builds are
# measured alternately, --rounds times, and each round's slopes are printed
# side by side.
#
#   perf/replica-mem.sh [--low N] [--high N] [--cores C] [--settle S]
#       [--rounds R] [--server-cpus LIST] [--data-root DIR]
#
# Defaults: 500 and 1,500 shards, 1 core, 3 s settle, 1 round, unpinned,
# data under $TMPDIR or /var/tmp. The node listens on 127.0.7.41:27641
# (admin 127.0.7.41:27642).
#
# Environment: RINGKVD (A, default build/server/ringkvd), RINGKVD_B (B).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

low=500
high=1500
cores=1
settle=3
rounds=1
server_cpus=
data_root=${TMPDIR:-/var/tmp}
value_options=(low high cores settle rounds server_cpus data_root)
other_option() { die "unknown option $1 (see --help)"; }
parse_options "$@"
in_range "$low" 1 100000 || die "--low: 1 to 100000"
in_range "$high" 2 100000 || die "--high: 2 to 100000"
[ "$high" -gt "$low" ] || die "--high must be above --low"
in_range "$cores" 1 64 || die "--cores: 1 to 64"
in_range "$settle" 0 600 || die "--settle: seconds, 0 to 600"
in_range "$rounds" 1 50 || die "--rounds: 1 to 50"
a=${RINGKVD:-$root/build/server/ringkvd}
b=${RINGKVD_B:-}
[ -x "$a" ] || die "no $a: build first (ninja -C build)"
[ -z "$b" ] || [ -x "$b" ] || die "RINGKVD_B: no $b"
command -v curl >/dev/null || die "needs curl"

work=$(mktemp -d "$data_root/ringkv-mem.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || stop_pids "$pid"
	rm -rf "$work"
}
trap cleanup EXIT

rss_at() { # BINARY SHARDS: sets rss, the node's RSS in KiB once every replica leads
	local bin=$1 shards=$2
	rm -rf "$work/data"
	mkdir -p "$work/data"
	pinned "${server_cpus:-0}" "$bin" --cores "$cores" --shards "$shards" \
		--listen 127.0.7.41:27641 --admin-listen 127.0.7.41:27642 \
		--data-dir "$work/data" --log-level warn >"$work/node.log" 2>&1 &
	pid=$!
	wait_leaders "$pid" 127.0.7.41:27642 "$shards" 60 "$work/node.log"
	sleep "$settle"
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	stop_pids "$pid"
	pid=
}

row() { # ROUND SIDE BINARY: one line of the table
	local lo hi
	rss_at "$3" "$low"
	lo=$rss
	rss_at "$3" "$high"
	hi=$rss
	awk -v r="$1" -v side="$2" -v lo="$lo" -v hi="$hi" -v l="$low" -v h="$high" \
		'BEGIN { printf "%-5s %-4s %16.1f %12d %12d\n", r, side, (hi - lo) / (h - l), lo, hi }'
}

pin=0
[ -n "$server_cpus" ] && pin=1
printf '%-5s %-4s %16s %12s %12s\n' round side "KiB/replica" "RSS low KiB" "RSS high KiB"
for r in $(seq "$rounds"); do
	for side in $(if [ -n "$b" ]; then round_order "$r" A B; else echo A; fi); do
		bin=$a
		[ "$side" = B ] && bin=$b
		row "$r" "$side" "$bin"
	done
done
