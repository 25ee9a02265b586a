#!/usr/bin/env bash
# Restart of one node of a 3-node cluster with many replicas (issue #18's
# "restarts and serves within 10 s", in the 3-node form), alternated
# between two builds:
#
# Each round, for each build (A, then B; B first in even rounds): a 3-node
# cluster (R = 3, --shards N: N replicas per node, --cores C, not pinned)
# starts on empty data dirs, elects (every shard led) and waits until every
# group sleeps; then node 3 is killed with -9, and restarted on its data
# after --pause seconds. From its exec the script times:
#   open:   all N of its replicas reported (/metrics ringkv_raft_replicas);
#   led:    none of its replicas without a leader
#           (ringkv_raft_leaderless_replicas 0, after open);
#   served: then --probes writes through node 3 (ringkv --no-route: node
#           3 forwards each to its shard's leader), each retried until
#           acknowledged, one after the other: when the last is.
# (every 0.1 s, plus the time /metrics takes to answer).
# and, from the restart to "served", the leader changes counted by the
# three nodes (ringkv_raft_leader_changes_total: an election storm shows
# as thousands), the peer reconnects of the survivors, node 3's CPU
# time, and the pre-vote rounds and check-quorum step-downs of all three
# (ringkv_raft_pre_votes_total, ringkv_raft_quorum_losses_total: which of
# the two drives a storm). A round that does not serve within
# --restart-timeout says so.
#
#   perf/restart-storm.sh [--shards N] [--cores C] [--rounds R] [--pause S]
#       [--probes K] [--restart-timeout S] [--start-timeout S]
#       [--data-root DIR] [--out DIR]
#
# Defaults: 10,000 shards, 2 cores, 1 round, 5 s pause, 8 probes, 60 s
# restart bound, 600 s start bound. Nodes on 127.0.61.21-23, ports from
# 61000 + (pid mod 30) * 30.
#
# Environment: RINGKVD (build A, default build/server/ringkvd), RINGKVD_B
# (build B; unset: A alone), RINGKV_CLI.
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

shards=10000
cores=2
rounds=1
pause=5
probes=8
restart_timeout=60
start_timeout=600
data_root=${TMPDIR:-/var/tmp}
out=
value_options=(shards cores rounds pause probes restart_timeout start_timeout data_root out)
other_option() { die "unknown option $1 (see --help)"; }
parse_options "$@"
check_node_options
in_range "$pause" 0 600 || die "--pause: seconds, 0 to 600"
in_range "$probes" 1 100 || die "--probes: 1 to 100"
in_range "$restart_timeout" 5 3600 || die "--restart-timeout: seconds, 5 to 3600"
in_range "$start_timeout" 10 7200 || die "--start-timeout: seconds, 10 to 7200"
build_a=${RINGKVD:-$root/build/server/ringkvd}
build_b=${RINGKVD_B:-}
cli=${RINGKV_CLI:-$root/build/tools/ringkv}
for b in "$build_a" ${build_b:+"$build_b"} "$cli"; do [ -x "$b" ] || die "no $b: build first"; done
command -v curl >/dev/null || die "needs curl"
command -v bc >/dev/null || die "needs bc"

work=$(mktemp -d "$data_root/ringkv-storm.XXXXXX")
out=${out:-$work/out}
mkdir -p "$out"
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	rm -rf "$work/n1" "$work/n2" "$work/n3"
	[ "$out" = "$work/out" ] || rm -rf "$work"
}
trap cleanup EXIT

base=$((61000 + ($$ % 30) * 30))
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
host_of() { echo "127.0.61.$((20 + $1))"; }
client_of() { echo "$(host_of "$1"):$((base + $1))"; }
admin_of() { echo "$(host_of "$1"):$((base + 20 + $1))"; }
metric_sum() { # I NAME
	{ curl -s --max-time 2 "http://$(admin_of "$1")/metrics" 2>/dev/null || true; } |
		awk -v name="$2" 'index($0, name) == 1 { n += $NF } END { print n + 0 }'
}
start_member() { # BUILD I TOKEN
	local initial="" j
	for j in 1 2 3; do initial+="${initial:+,}$j=$(host_of "$j"):$((base + 10 + j))"; done
	mkdir -p "$work/n$2"
	start_ringkvd "$1" "$(client_of "$2")" "$(admin_of "$2")" "$work/n$2" "$out/node$2.log" \
		--node-id "$2" --initial-cluster "$initial" --cluster-token "$3"
	pids[$2 - 1]=$node_pid
}
alive_or_die() {
	local i
	for i in 1 2 3; do
		kill -0 "${pids[i - 1]}" 2>/dev/null || die "node $i exited: $(tail -2 "$out/node$i.log")"
	done
}
sum3() { # NAME: summed over the three nodes
	echo $(($(metric_sum 1 "$1") + $(metric_sum 2 "$1") + $(metric_sum 3 "$1")))
}
min3() { # NAME: the node with the least
	local a b c
	a=$(metric_sum 1 "$1") b=$(metric_sum 2 "$1") c=$(metric_sum 3 "$1")
	printf '%s\n' "$a" "$b" "$c" | sort -n | head -1
}
wait_until() { # SECONDS TARGET COMMAND...: polls until COMMAND prints >= TARGET
	local limit=$1 target=$2 t0=$SECONDS
	shift 2
	while [ $((SECONDS - t0)) -lt "$limit" ]; do
		[ "$("$@")" -ge "$target" ] && return 0
		alive_or_die
		sleep 1
	done
	return 1
}

# One round of one build: sets `result` to "open led served changes
# reconnects cpu" (seconds; "-" for what did not happen in time).
one_restart() { # BUILD ROUND
	local b=$1 round=$2 i t0 t_open=- t_led=- t_served=- changes0 rec0 pv0 ql0 k key
	for i in 1 2 3; do start_member "$b" "$i" "storm$round"; done
	wait_until "$start_timeout" "$shards" sum3 'ringkv_raft_replicas{core="' >/dev/null ||
		die "replicas not all open after $start_timeout s"
	wait_until "$start_timeout" "$shards" led_sum || die "not every shard led after $start_timeout s"
	wait_until "$start_timeout" "$shards" min3 ringkv_raft_groups_sleeping ||
		die "not every group asleep after $start_timeout s"
	kill -9 "${pids[2]}"
	wait "${pids[2]}" 2>/dev/null || true
	sleep "$pause"
	changes0=$(($(metric_sum 1 ringkv_raft_leader_changes_total) + $(metric_sum 2 ringkv_raft_leader_changes_total)))
	rec0=$(($(metric_sum 1 ringkv_peer_reconnects_total) + $(metric_sum 2 ringkv_peer_reconnects_total)))
	pv0=$(($(metric_sum 1 ringkv_raft_pre_votes_total) + $(metric_sum 2 ringkv_raft_pre_votes_total)))
	ql0=$(($(metric_sum 1 ringkv_raft_quorum_losses_total) + $(metric_sum 2 ringkv_raft_quorum_losses_total)))
	t0=$(now)
	start_member "$b" 3 "storm$round"

	k=0
	while [ "$(echo "$(now) - $t0 < $restart_timeout" | bc)" = 1 ]; do
		alive_or_die
		if [ "$t_open" = - ]; then
			[ "$(metric_sum 3 ringkv_raft_replicas)" -ge "$shards" ] && t_open=$(since "$t0")
		elif [ "$t_led" = - ]; then
			[ "$(metric_sum 3 ringkv_raft_leaderless_replicas)" = 0 ] && t_led=$(since "$t0")
		fi
		if [ "$t_led" != - ]; then
			key="storm-$round-$k"
			if "$cli" -a "$(client_of 3)" --no-route -t 2 put "$key" v >/dev/null 2>&1; then
				k=$((k + 1))
				if [ "$k" -ge "$probes" ]; then
					t_served=$(since "$t0")
					break
				fi
				continue
			fi
		fi
		sleep 0.1
	done
	local changes rec cpu pv ql
	# From the restart on, all three (node 3's counters began at it).
	pv=$(($(sum3 ringkv_raft_pre_votes_total) - pv0))
	ql=$(($(sum3 ringkv_raft_quorum_losses_total) - ql0))
	changes=$(($(sum3 ringkv_raft_leader_changes_total) - changes0 -
		$(metric_sum 3 ringkv_raft_leader_changes_total)))
	rec=$(($(metric_sum 1 ringkv_peer_reconnects_total) + $(metric_sum 2 ringkv_peer_reconnects_total) - rec0))
	cpu=$(echo "scale=2; $(cpu_ticks "${pids[2]}") / $hz" | bc)
	stop_pids "${pids[@]}"
	pids=()
	rm -rf "$work/n1" "$work/n2" "$work/n3"
	result="$t_open $t_led $t_served $changes $rec $cpu $pv $ql"
}
led_sum() {
	local n=0 i
	for i in 1 2 3; do n=$((n + $(leaders_of "$(admin_of "$i")"))); done
	echo "$n"
}

echo "# $shards shards, $cores cores a node, pause $pause s, $probes probes; load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-5s %-5s %8s %8s %8s %14s %11s %9s %9s %13s\n' round build open_s led_s served_s survivor_elect \
	reconnects n3_cpu_s pre_votes quorum_losses
: >"$out/restart-storm.tsv"
for round in $(seq "$rounds"); do
	sides=(A)
	[ -z "$build_b" ] || mapfile -t sides < <(round_order "$round" A B)
	for side in "${sides[@]}"; do
		b=$build_a
		[ "$side" = A ] || b=$build_b
		one_restart "$b" "$round"
		read -r t_open t_led t_served changes rec cpu pv ql <<<"$result"
		printf '%-5s %-5s %8s %8s %8s %14s %11s %9s %9s %13s\n' "$round" "$side" "$t_open" "$t_led" \
			"$t_served" "$changes" "$rec" "$cpu" "$pv" "$ql"
		echo "$round $side $t_open $t_led $t_served $changes $rec $cpu $(cut -d' ' -f1 /proc/loadavg) $pv $ql" \
			>>"$out/restart-storm.tsv"
	done
done
if [ -n "$build_b" ]; then
	awk "$awk_median"'
		$2 == "A" { a[$1] = $5 } $2 == "B" { b[$1] = $5 }
		END { for (r in a) if (a[r] != "-" && b[r] != "-" && a[r] > 0) s = s " " b[r] / a[r]
		      if (s != "") printf "median B/A of served_s: %.2f\n", med(s) }' "$out/restart-storm.tsv"
fi
