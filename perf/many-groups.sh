#!/usr/bin/env bash
# Many Raft groups per node (issue #18's benchmarks), in one run:
#
# 1. Idle cost against the replica count: for each count N in --counts, a
#    3-node cluster (R = 3, --shards N: N replicas per node, --cores C, not
#    pinned) starts on empty data dirs, elects (every shard led), takes one
#    write through each node, and waits until every group sleeps; then,
#    over --duration seconds, each node's CPU (utime + stime from
#    /proc/PID/stat, percent of one CPU) and its RSS.
# 2. At the count --failover-at: the failover of sleeping groups. kill -9 of
#    the node that leads the most of them, then a write, through a
#    survivor, to each of --probes keys of shards that node led (one shard
#    each, retried until accepted): seconds from the kill to the first and
#    to the last acknowledged. Then the killed node restarts on its data
#    (every replica and its log): seconds from exec until all N of its
#    replicas are up and a write through it is acknowledged.
# 3. Write throughput against the shards the load is spread over: a
#    3-node cluster with --tput-shards shards, one core per node, the nodes
#    pinned to --server-cpus and ringkv-bench to --bench-cpus; for each
#    spread in --spreads (ringkv-bench --shard-spread: the keys fall in that
#    many shards, round-robin over the leaders' cores, so 3 is one shard
#    per core), a closed-loop PUT run, spreads alternated round by round.
#    Per spread: PUT/s and the nodes' CPU time per PUT, and the median over
#    rounds of the per-round ratio to the first spread (the baseline).
#
# It prints the tables and writes, into --out, many-groups.tsv (the idle
# and failover rows), many-groups-tput.tsv and, with gnuplot,
# many-groups.png (idle CPU and RSS against the count; throughput against
# the spread).
#
#   perf/many-groups.sh [--counts "100 1000 10000"] [--cores C]
#       [--duration S] [--settle S] [--start-timeout S] [--stall S]
#       [--failover-at N] [--probes K] [--restart-timeout S]
#       [--tput-shards N] [--spreads "3 1 100 1000"] [--rounds R]
#       [--tput-duration S] [--server-cpus LIST] [--bench-cpus LIST]
#       [--skip idle|tput] [--data-root DIR] [--out DIR]
#
# Defaults: counts 100 1000 10000, 2 cores, 60 s measured after 5 s
# settled, 900 s bound on each start (the elections are given up as done
# when the count of led shards has not moved for --stall 60 s: the table
# says how many shards had a leader and slept), failover at the largest
# count with 5 probes, 180 s bound on the restart; throughput on 1,000
# shards, spreads "3 1 100 1000" (3 = one shard per core: the baseline),
# 3 rounds of 8 s (2 s warm-up), servers on CPU 0 and the bench on CPU 1.
# Nodes on 127.0.0.41-43 (idle) and 127.0.0.44-46 (throughput), ports from
# 50000 + (pid mod 50) * 32. Each replica holds a descriptor: ringkvd
# refuses a count its open-file limit cannot carry (server/fd_limit.c).
#
# Environment: RINGKVD, RINGKV_CLI, RINGKV_BENCH (default build/...).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

counts="100 1000 10000"
cores=2
duration=60
settle=5
start_timeout=900
restart_timeout=180
stall=60
failover_at=
probes=5
tput_shards=1000
spreads="3 1 100 1000"
rounds=3
tput_duration=8
server_cpus=0
bench_cpus=1
skip=
data_root=${TMPDIR:-/var/tmp}
out=
value_options=(counts cores duration settle start_timeout restart_timeout stall failover_at probes tput_shards
	spreads rounds tput_duration server_cpus bench_cpus skip data_root out)
other_option() { die "unknown option $1 (see --help)"; }
parse_options "$@"
for n in $counts; do in_range "$n" 1 100000 || die "--counts: 1 to 100000 each"; done
in_range "$cores" 1 64 || die "--cores: 1 to 64"
in_range "$duration" 1 3600 || die "--duration: seconds, 1 to 3600"
in_range "$settle" 0 3600 || die "--settle: seconds, 0 to 3600"
in_range "$start_timeout" 10 7200 || die "--start-timeout: seconds, 10 to 7200"
in_range "$stall" 5 3600 || die "--stall: seconds, 5 to 3600"
in_range "$restart_timeout" 5 7200 || die "--restart-timeout: seconds, 5 to 7200"
read -r -a count_list <<<"$counts"
failover_at=${failover_at:-$(printf '%s\n' "${count_list[@]}" | sort -n | tail -1)}
in_range "$probes" 1 100 || die "--probes: 1 to 100"
in_range "$tput_shards" 1 100000 || die "--tput-shards: 1 to 100000"
for s in $spreads; do in_range "$s" 1 "$tput_shards" || die "--spreads: 1 to --tput-shards"; done
in_range "$rounds" 1 50 || die "--rounds: 1 to 50"
in_range "$tput_duration" 2 600 || die "--tput-duration: seconds, 2 to 600"
case $skip in "" | idle | tput) ;; *) die "--skip: idle or tput" ;; esac
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
cli=${RINGKV_CLI:-$root/build/tools/ringkv}
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
for b in "$ringkvd" "$cli" "$bench"; do [ -x "$b" ] || die "no $b: build first"; done
for tool in curl taskset bc; do command -v "$tool" >/dev/null || die "needs $tool"; done

work=$(mktemp -d "$data_root/ringkv-many.XXXXXX")
out=${out:-$work/out}
mkdir -p "$out"
pids=()
bench_pid=
cleanup() {
	[ -z "$bench_pid" ] || stop_pids "$bench_pid"
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	rm -rf "$work/n1" "$work/n2" "$work/n3"
	[ "$out" = "$work/out" ] || rm -rf "$work"
}
trap cleanup EXIT

base=$((50000 + ($$ % 50) * 32))
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# The sum of a /metrics gauge (lines starting with NAME, labels matching
# the awk pattern LABELS) from an admin address; 0 while it does not answer.
metric_sum() { # ADMIN NAME [LABELS]
	{ curl -s --max-time 2 "http://$1/metrics" 2>/dev/null || true; } |
		awk -v name="$2" -v pat="${3:-}" 'index($0, name) == 1 && $0 ~ pat { n += $NF }
			END { print n + 0 }'
}

# The nodes of one cluster: host_of I, client_of I, admin_of I.
host_of() { echo "127.0.0.$((host0 + $1))"; }
client_of() { echo "$(host_of "$1"):$((base + port0 + $1))"; }
admin_of() { echo "$(host_of "$1"):$((base + port0 + 20 + $1))"; }
node_args() { # I SHARDS CORES TOKEN
	local initial="" j
	for j in 1 2 3; do
		initial+="${initial:+,}$j=$(host_of "$j"):$((base + port0 + 10 + j))"
	done
	echo --node-id "$1" --initial-cluster "$initial" --cluster-token "$4" \
		--cores "$3" --shards "$2" --listen "$(client_of "$1")" \
		--admin-listen "$(admin_of "$1")" --data-dir "$work/n$1" --log-level warn
}
start_node() { # I SHARDS CORES TOKEN CPUS ("" = not pinned): sets pids[I-1]
	local args
	read -r -a args <<<"$(node_args "$1" "$2" "$3" "$4")"
	if [ -n "$5" ]; then
		pin=1 pinned "$5" "$ringkvd" "${args[@]}" >>"$out/node$1.log" 2>&1 &
	else
		"$ringkvd" "${args[@]}" >>"$out/node$1.log" 2>&1 &
	fi
	pids[$1 - 1]=$!
}
alive_or_die() {
	local i
	for i in 1 2 3; do
		kill -0 "${pids[i - 1]}" 2>/dev/null ||
			die "node $i exited: $(tail -2 "$out/node$i.log")"
	done
}
# Polls the command VALUE... (a number) every 0.5 s until it reaches
# TARGET; gives up when, once above 0, it has not changed for STALL
# seconds (a stuck election is a finding to report, not a hang) or after
# SECONDS. Sets
# `reached` to the last value and `reached_at` to when it was first seen
# (now() time); dies if a node exits.
wait_value() { # TARGET SECONDS STALL VALUE...
	local target=$1 limit=$2 stall=$3 t0 changed
	shift 3
	t0=$SECONDS changed=$SECONDS reached=-1
	while [ $((SECONDS - t0)) -lt "$limit" ]; do
		local v
		v=$("$@")
		[ "$v" != "$reached" ] && { reached=$v; changed=$SECONDS; reached_at=$(now); }
		[ "$v" -ge "$target" ] && return 0
		[ "$reached" -gt 0 ] && [ $((SECONDS - changed)) -ge "$stall" ] && return 1
		alive_or_die
		sleep 0.5
	done
	return 1
}
# Shards with a leader (the leaders of the three nodes summed).
led_shards() {
	local n=0 i
	for i in 1 2 3; do n=$((n + $(leaders_of "$(admin_of "$i")"))); done
	echo "$n"
}
# Groups asleep on the node that has the fewest.
asleep_min() {
	local min=-1 v i
	for i in 1 2 3; do
		v=$(metric_sum "$(admin_of "$i")" ringkv_raft_groups_sleeping)
		[ "$min" -lt 0 ] || [ "$v" -lt "$min" ] && min=$v
	done
	echo "$min"
}
# Every shard led, or as many as elect (warns how many did not).
wait_all_led() { # SHARDS SECONDS
	if ! wait_value "$1" "$2" "$stall" led_shards; then
		[ "$reached" -ge 1 ] || die "no shard led after $2 s (logs in $out)"
		echo "$prog: $1 shards: only $reached led, no change for $stall s: continuing" >&2
	fi
	led=$reached
}
put_through() { # I KEY: one write through node I, routed by the CLI
	"$cli" -a "$(client_of "$1")" -t 2 put "$2" v >/dev/null 2>&1
}
stop_cluster() {
	stop_pids "${pids[@]}"
	pids=()
	rm -rf "$work/n1" "$work/n2" "$work/n3"
}

# ---- 1 and 2: idle cost, failover, restart ---------------------------------

idle_count() { # N: one cluster, one row of many-groups.tsv
	local n=$1 t0 t_led i asleep cpu rss victim most
	local -a before
	host0=40 port0=0
	t0=$(now)
	for i in 1 2 3; do start_node "$i" "$n" "$cores" "many$n" ""; done
	wait_all_led "$n" "$start_timeout"
	t_led=$(echo "$reached_at - $t0" | bc)
	for i in 1 2 3; do
		for _ in $(seq 60); do put_through "$i" "idle-probe-$i" && break; sleep 0.5; done
	done
	# Every group asleep on every node, or as many as will.
	if ! wait_value "$n" 600 20 asleep_min; then
		echo "$prog: $n shards: $reached asleep on the node with fewest, no change for 20 s" >&2
	fi
	asleep=$reached
	sleep "$settle"
	for i in 1 2 3; do before[i]=$(cpu_ticks "${pids[i - 1]}"); done
	local load0
	load0=$(loadavg)
	sleep "$duration"
	for i in 1 2 3; do
		cpu=$(echo "scale=2; 100 * ($(cpu_ticks "${pids[i - 1]}") - ${before[i]}) / $hz / $duration" | bc)
		rss=$(rss_kib "${pids[i - 1]}")
		printf '%-8s %6s %8.2f %10.1f %12.2f %6s %6s %8s %8s\n' "$n" "$i" "$cpu" \
			"$(echo "scale=1; $rss / 1024" | bc)" "$t_led" "$led" "$asleep" "$load0" "$(loadavg)"
		echo "idle $n $i $cpu $rss $t_led $load0 $(loadavg) $led $asleep" >>"$out/many-groups.tsv"
	done
	if [ "$n" = "$failover_at" ]; then
		victim=1 most=0
		for i in 1 2 3; do
			local led
			led=$(leaders_of "$(admin_of "$i")")
			[ "$led" -gt "$most" ] && most=$led && victim=$i
		done
		failover "$n" "$victim" "$most"
	fi
	stop_cluster
}

failover() { # N VICTIM LED: kill -9 VICTIM, time writes to its groups, restart it
	local n=$1 victim=$2 led=$3 survivor t0 key first="" last i
	survivor=$((victim % 3 + 1))
	# Keys of distinct shards the victim leads (asleep, like every group).
	mapfile -t probe_keys < <("$bench" --addr "$(client_of "$survivor")" --shard-spread "$n" \
		--keys $((n * 4 > 4000 ? n * 4 : 4000)) --print-keys 2>/dev/null |
		awk -v v="$victim" -v k="$probes" '$3 == v && !seen[$2]++ { print $1; if (++m == k) exit }')
	[ ${#probe_keys[@]} -ge 1 ] || die "no key of a shard node $victim leads"
	t0=$(now)
	kill -9 "${pids[victim - 1]}"
	wait "${pids[victim - 1]}" 2>/dev/null || true
	for key in "${probe_keys[@]}"; do
		for _ in $(seq 120); do
			put_through "$survivor" "$key" && break
			sleep 0.05
		done
		put_through "$survivor" "$key" || die "no write to $key accepted after the kill"
		last=$(since "$t0")
		first=${first:-$last}
	done
	printf 'failover: %s shards, node %s led %s; kill -9 to the first of %s writes (one a shard it led) %.2f s, to the last %.2f s\n' \
		"$n" "$victim" "$led" "${#probe_keys[@]}" "$first" "$last"
	echo "failover $n $victim $led ${#probe_keys[@]} $first $last" >>"$out/many-groups.tsv"
	# Restart on its data: every replica opened (the roles sum to N) and a
	# write through it acknowledged.
	t0=$(now)
	start_node "$victim" "$n" "$cores" "many$n" ""
	local up=0 t_open=
	for _ in $(seq $((restart_timeout * 5))); do
		if [ -z "$t_open" ] &&
			[ "$(metric_sum "$(admin_of "$victim")" ringkv_raft_replicas)" -ge "$n" ]; then
			t_open=$(since "$t0")
		fi
		if [ -n "$t_open" ] && "$cli" -a "$(client_of "$victim")" --no-route -t 2 \
			put restart-probe v >/dev/null 2>&1; then
			up=1
			break
		fi
		kill -0 "${pids[victim - 1]}" 2>/dev/null || die "node $victim exited on restart"
		sleep 0.2
	done
	if [ "$up" != 1 ]; then
		printf 'restart: node %s with %s replicas: all open after %s s, but no write through it acknowledged %s s after its restart\n' \
			"$victim" "$n" "${t_open:-(not all)}" "$restart_timeout"
		echo "restart $n $victim ${t_open:--} -" >>"$out/many-groups.tsv"
		return
	fi
	printf 'restart: node %s with %s replicas: all open after %.2f s, a write through it acknowledged after %.2f s, RSS %s MiB\n' \
		"$victim" "$n" "$t_open" "$(since "$t0")" "$(($(rss_kib "${pids[victim - 1]}") / 1024))"
	echo "restart $n $victim $t_open $(since "$t0")" >>"$out/many-groups.tsv"
}

# ---- 3: throughput against the spread --------------------------------------

tput() {
	local r s i ops t_before t_after cpu_us
	host0=43 port0=3
	for i in 1 2 3; do start_node "$i" "$tput_shards" 1 "tput" "$server_cpus"; done
	wait_all_led "$tput_shards" "$start_timeout"
	printf '%-6s %6s %10s %14s %6s\n' round spread "PUT/s" "CPU µs/PUT" load
	for r in $(seq "$rounds"); do
		read -r -a spread_list <<<"$spreads"
		for s in $(round_order "$r" "${spread_list[@]}"); do
			pin=1 pinned "$bench_cpus" "$bench" --addr "$(client_of 1)" \
				--shard-spread "$s" --ratio 0:1 --keys 10000 --connections 24 \
				--pipeline 8 --duration "$tput_duration" --warmup 2 --json \
				>"$work/bench.json" 2>>"$out/bench.log" &
			bench_pid=$!
			# The nodes' CPU time over the measured window (after the
			# warm-up and the bench's map and key table), per PUT.
			sleep 2.5
			t_before=0
			for i in 1 2 3; do t_before=$((t_before + $(cpu_ticks "${pids[i - 1]}"))); done
			sleep "$((tput_duration - 1))"
			t_after=0
			for i in 1 2 3; do t_after=$((t_after + $(cpu_ticks "${pids[i - 1]}"))); done
			wait "$bench_pid" || die "ringkv-bench failed (see $out/bench.log)"
			bench_pid=
			ops=$(tail -1 "$work/bench.json" | python3 -c 'import json, sys
print("%.0f" % json.load(sys.stdin)["ops_per_sec"])')
			[ "$ops" -gt 0 ] || die "no PUT acknowledged (see $out/bench.log)"
			cpu_us=$(echo "scale=2; 1000000 * ($t_after - $t_before) / $hz / ($ops * ($tput_duration - 1))" | bc)
			printf '%-6s %6s %10s %14s %6s\n' "$r" "$s" "$ops" "$cpu_us" "$(loadavg)"
			echo "$r $s $ops $cpu_us $(loadavg)" >>"$out/many-groups-tput.tsv"
		done
	done
	stop_cluster
	echo
	echo "medians over $rounds rounds (ratio: per round, to spread ${spreads%% *}):"
	awk -v b="${spreads%% *}" "$awk_median"'{ ops[$1, $2] = $3; cpu[$1, $2] = $4; sp[$2] = 1; rs[$1] = 1 }
		END {
			for (s in sp) {
				o = ""; c = ""; ro = ""; rc = ""
				for (r in rs) {
					o = o " " ops[r, s]; c = c " " cpu[r, s]
					ro = ro " " ops[r, s] / ops[r, b]; rc = rc " " cpu[r, s] / cpu[r, b]
				}
				printf "  spread %5d: %8.0f PUT/s (x%.2f), %6.2f CPU µs/PUT (x%.2f)\n",
					s, med(o), med(ro), med(c), med(rc)
			}
		}' "$out/many-groups-tput.tsv" | sort -k2 -n
}

: >"$out/many-groups.tsv"
: >"$out/many-groups-tput.tsv"
echo "$(nproc) CPUs, load average at the start $(loadavg); data under $work"
if [ "$skip" != idle ]; then
	printf '%-8s %6s %8s %10s %12s %6s %6s %8s %8s\n' replicas node "cpu %" "rss MiB" \
		"led after s" led asleep load0 load1
	for n in $counts; do idle_count "$n"; done
	echo
fi
[ "$skip" = tput ] || tput
if command -v gnuplot >/dev/null; then
	"$root/perf/many-groups-plot.sh" "$out" && echo "plot: $out/many-groups.png"
else
	echo "$prog: no gnuplot (perf/deps.sh installs it): no plot" >&2
fi
