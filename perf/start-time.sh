#!/usr/bin/env bash
# Start-up time with many replicas (issue #18: a node with 10,000 replicas
# restarts and serves within 10 s): one node (a one-node cluster) with
# --shards N starts on an empty data dir, then again on the same data dir;
# each time, the seconds from exec to every replica leading (polled from
# /metrics every 0.1 s), the node's RSS and its open descriptors then.
#
#   perf/start-time.sh [--shards N] [--cores C] [--rounds R] [--data-root DIR]
#       [--host IP] [--port P]
#
# Defaults: 2,000 shards, 2 cores, 1 round (a first start and a restart a
# round). Each idle replica holds one descriptor: N above about (open-file
# limit - 256) is refused by ringkvd (server/fd_limit.c). The node
# listens on --host:--port, default 127.0.7.42:27651 (admin: the next port).
#
# Environment: RINGKVD (default build/server/ringkvd).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

shards=2000
cores=2
rounds=1
data_root=${TMPDIR:-/var/tmp}
host=127.0.7.42
port=27651
value_options=(shards cores rounds data_root host port)
other_option() { die "unknown option $1 (see --help)"; }
parse_options "$@"
in_range "$shards" 1 100000 || die "--shards: 1 to 100000"
in_range "$cores" 1 64 || die "--cores: 1 to 64"
in_range "$rounds" 1 20 || die "--rounds: 1 to 20"
in_range "$port" 1 65534 || die "--port: 1 to 65534"
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
[ -x "$ringkvd" ] || die "no $ringkvd: build first (ninja -C build)"
command -v curl >/dev/null || die "needs curl"

work=$(mktemp -d "$data_root/ringkv-start.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || stop_pids "$pid"
	rm -rf "$work"
}
trap cleanup EXIT

start() { # ROUND WHAT: one start, one line of the table
	local t0 t1
	t0=$(date +%s.%N)
	"$ringkvd" --cores "$cores" --shards "$shards" --listen "$host:$port" \
		--admin-listen "$host:$((port + 1))" --data-dir "$work/data" --log-level warn \
		>>"$work/node.log" 2>&1 &
	pid=$!
	wait_leaders "$pid" "$host:$((port + 1))" "$shards" 600 "$work/node.log"
	t1=$(date +%s.%N)
	printf '%-5s %-8s %10.2f %10d %8d\n' "$1" "$2" "$(echo "$t1 - $t0" | bc)" \
		"$(rss_kib "$pid")" "$(ls "/proc/$pid/fd" | wc -l)"
	stop_pids "$pid"
	pid=
}

printf '%-5s %-8s %10s %10s %8s\n' round start seconds "RSS KiB" fds
for r in $(seq "$rounds"); do
	rm -rf "$work/data"
	start "$r" first
	start "$r" restart
done
