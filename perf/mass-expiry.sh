#!/usr/bin/env bash
# Mass expiry (issue #21): GET/SET latency of other keys before and while
# a 3-node cluster's leaders delete KEYS keys whose deadlines all fall at
# one moment.
#
# Three ringkvd nodes (127.0.17.41-43, --cores 1 each, every shard on all
# three) are pinned to the last CPU, the driver (perf/mass_expiry.py) to
# the first. The driver writes KEYS keys `SET exp:N v PXAT T` through the
# three nodes (pipelined, 300 per node per round; a key answered with an
# error, as when a forwarded write meets a leader change, is written again
# at once), T being DUE_AFTER seconds after the load began; from BEFORE
# seconds ahead of T it measures GET and SET of
# 1,000 other keys, one request at a time through the nodes in turn, until
# every key's EXPIRE_DELETE applied (INFO's expired_keys summed over the
# nodes). It prints p50/p99/p99.9/max per window ("before": BEFORE seconds
# up to T; "during": T to the last delete), the ratio of the p99s, the time
# the deletes took, and each node's CPU use per window (/proc/PID/stat).
#
# usage: perf/mass-expiry.sh [--keys N] [--due-after S] [--before S]
#                            [--ringkvd PATH]
#   defaults: 1000000 keys, due 240 s after the load began, 20 s before
set -euo pipefail
cd "$(dirname "$0")/.."

prog=mass-expiry keys=1000000 due_after=240 before=20
ringkvd=${RINGKVD:-build/server/ringkvd}
while [ $# -gt 0 ]; do
	case $1 in
	--keys) keys=$2; shift 2 ;;
	--due-after) due_after=$2; shift 2 ;;
	--before) before=$2; shift 2 ;;
	--ringkvd) ringkvd=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "$prog: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
command -v taskset >/dev/null || { echo "$prog: taskset is missing" >&2; exit 1; }
[ -x "$ringkvd" ] || { echo "$prog: no ringkvd at $ringkvd: build first" >&2; exit 1; }

# stop_pids, pin_setup, pinned
# shellcheck source=perf/lib.sh
. perf/lib.sh
pin_setup
server_cpu=$((ncpu - 1))
client_cpu=0
hosts=(127.0.17.41 127.0.17.42 127.0.17.43)
base=$((48000 + $$ % 600 * 3))
peer=$base native=$((base + 1)) resp=$((base + 2))
work=$(mktemp -d /tmp/ringkv-mass-expiry-XXXXXX)
pids=()
trap 'stop_pids "${pids[@]}"; rm -rf "$work"' EXIT

ic="1=${hosts[0]}:$peer,2=${hosts[1]}:$peer,3=${hosts[2]}:$peer"
for i in 0 1 2; do
	(pinned "$server_cpu" "$ringkvd" --node-id $((i + 1)) --initial-cluster "$ic" --cores 1 \
		--listen "${hosts[$i]}:$native" --resp-listen "${hosts[$i]}:$resp" \
		--data-dir "$work/n$((i + 1))" >"$work/n$((i + 1)).log" 2>&1) &
	pids+=($!)
done
echo "$prog: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $keys keys," \
	"nodes on CPU $server_cpu, driver on CPU $client_cpu, $(nproc) CPUs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
(pinned "$client_cpu" python3 perf/mass_expiry.py "$(IFS=,; echo "${hosts[*]}")" "$resp" \
	"$(IFS=,; echo "${pids[*]}")" "$keys" "$due_after" "$before")
