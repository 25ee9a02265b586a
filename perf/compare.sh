#!/usr/bin/env bash
# Side-by-side comparison of ringkvd and redis-server on this machine, driven
# by the same load generator (ringkv-bench) with the same workloads:
#
#   set-p1     SET only, 50 connections, pipeline 1
#   set-p16    SET only, 50 connections, pipeline 16
#   get9-put1  GET:PUT 9:1, 50 connections, pipeline 1
#
# against redis-server with --appendonly yes --appendfsync always (every write
# durable before the reply, as ringkvd acknowledges a write only once it is
# in its fsynced log) and ringkvd --cores 1 and --cores 2. Each round starts
# every server fresh (new temp dir, new port), runs the three workloads, and
# stops it; the order of the sides alternates from round to round so drift
# (page cache, thermal, neighbours) does not favour one side. The table gives
# medians over rounds and the median of the per-round ratios ringkvd/redis.
#
# Pinning: servers run on --server-cpus, ringkv-bench on --bench-cpus
# (default: CPU 1 and CPU 0). ringkvd --cores 2 needs two CPUs; on a 2-CPU
# machine it gets both and so shares CPU 0 with the load generator: that
# column is not isolated and says so in the output.
#
#   perf/compare.sh [--rounds N] [--only redis|ringkvd] [--duration S]
#                   [--warmup S] [--keys N] [--value-size B]
#                   [--server-cpus LIST] [--bench-cpus LIST] [--out DIR]
#                   [--baseline RINGKVD]
#
# --baseline adds a side "baseline-1c": another ringkvd binary (say, a build
# of the previous commit) with --cores 1, to measure a change side by side.
# Ratios are then to redis when redis runs, else to the baseline.
#
# Environment: RINGKVD (default build/server/ringkvd), RINGKV_BENCH (default
# build/perf/bench/ringkv-bench), REDIS_SERVER (default redis-server),
# RINGKVD_PROTOCOL (native, or resp for ringkvd's Redis front door).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)

rounds=3
only=
duration=10
warmup=2
keys=100000
value_size=100
server_cpus=1
bench_cpus=0
out=
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
redis=${REDIS_SERVER:-redis-server}
ringkvd_protocol=${RINGKVD_PROTOCOL:-native}
baseline=

# usage, die, parse_options, round_order, stop_server, pin_setup, pinned,
# free_port, wait_listening
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(rounds only duration warmup keys value_size server_cpus bench_cpus out baseline)
other_option() {
	echo "$prog: unknown argument '$1' (see --help)" >&2
	exit 2
}
parse_options "$@"

[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
case $only in "" | redis | ringkvd) ;; *) die "--only takes redis or ringkvd" ;; esac

# Sides: a name, and whether it is isolated from the load generator's CPUs.
sides=()
[ "$only" != ringkvd ] && sides+=(redis)
[ -n "$baseline" ] && sides+=(baseline-1c)
[ "$only" != redis ] && sides+=(ringkvd-1c ringkvd-2c)

[ -x "$bench" ] || die "ringkv-bench not found at $bench (build with: ninja -C build)"
command -v python3 >/dev/null || die "python3 is needed to read ringkv-bench --json"
if [ "$only" != ringkvd ]; then
	command -v "$redis" >/dev/null || die "redis-server not found (apt-get install redis-server)"
fi
if [ "$only" != redis ]; then
	[ -x "$ringkvd" ] || die "ringkvd not found at $ringkvd (set RINGKVD, or use --only redis)"
fi
if [ -n "$baseline" ]; then
	[ -x "$baseline" ] || die "--baseline: no ringkvd at $baseline"
fi

pin_setup

if [ -z "$out" ]; then
	out=$root/perf/out/compare-$(date +%Y%m%d-%H%M%S)
fi
mkdir -p "$out"
runs=$out/runs.jsonl
: >"$runs"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-compare.XXXXXX")
server_pid=

cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_side SIDE ROUND: start the server of SIDE; sets port, protocol, cpus.
start_side() {
	local side=$1 round=$2 dir
	dir=$tmp/$side-$round
	mkdir -p "$dir"
	port=$(free_port)
	case $side in
	redis)
		protocol=resp
		cpus=$server_cpus
		pinned "$cpus" "$redis" --port "$port" --bind 127.0.0.1 --dir "$dir" \
			--appendonly yes --appendfsync always --save '' --daemonize no \
			--logfile "$out/$side-$round.log" &
		server_pid=$!
		;;
	ringkvd-1c | ringkvd-2c | baseline-1c)
		local cores=${side#*-} binary=$ringkvd
		cores=${cores%c}
		[ "$side" = baseline-1c ] && binary=$baseline
		protocol=$ringkvd_protocol
		cpus=$server_cpus
		if [ "$cores" -gt 1 ]; then
			# Not isolated on a 2-CPU machine: see the header.
			cpus=0-$((cores - 1))
			[ "$cores" -le "$ncpu" ] || cpus=0-$((ncpu - 1))
		fi
		# The lead adjusts these flags to ringkvd's final command line.
		pinned "$cpus" "$binary" --cores "$cores" --listen "127.0.0.1:$port" \
			--data-dir "$dir" >"$out/$side-$round.log" 2>&1 &
		server_pid=$!
		;;
	esac
	wait_listening "$port" "$side"
}

# Workloads: name and ringkv-bench arguments.
workloads=(set-p1 set-p16 get9-put1)
workload_args() {
	case $1 in
	set-p1) echo "--ratio 0:1 --connections 50 --pipeline 1" ;;
	set-p16) echo "--ratio 0:1 --connections 50 --pipeline 16" ;;
	get9-put1) echo "--ratio 9:1 --connections 50 --pipeline 1" ;;
	esac
}

run_workload() {
	local side=$1 round=$2 workload=$3 args json
	read -r -a args <<<"$(workload_args "$workload")"
	echo "$prog: round $round, $side, $workload" >&2
	json=$( (pinned "$bench_cpus" "$bench" --protocol "$protocol" --addr "127.0.0.1:$port" \
		"${args[@]}" --keys "$keys" --value-size "$value_size" \
		--duration "$duration" --warmup "$warmup" --seed "$round" --json \
		2>>"$out/bench.log") | tail -n 1) || true
	python3 - "$side" "$round" "$workload" "$cpus" "$json" >>"$runs" <<'EOF' ||
import json, sys
side, rnd, workload, cpus, text = sys.argv[1:6]
result = json.loads(text)
print(json.dumps({"side": side, "round": int(rnd), "workload": workload,
                  "server_cpus": cpus, "result": result}))
EOF
		die "ringkv-bench gave no JSON for $side/$workload (see $out/bench.log)"
}

for round in $(seq "$rounds"); do
	mapfile -t order < <(round_order "$round" "${sides[@]}")
	for side in "${order[@]}"; do
		start_side "$side" "$round"
		for workload in "${workloads[@]}"; do
			run_workload "$side" "$round" "$workload"
		done
		stop_server
	done
done

python3 - "$runs" "$rounds" "$pin" "$server_cpus" "$bench_cpus" "$ncpu" "$duration" "$warmup" "$keys" "$value_size" <<'EOF'
import json, statistics, sys

runs_path, rounds, pin, server_cpus, bench_cpus, ncpu, duration, warmup, keys, value_size = sys.argv[1:11]
runs = [json.loads(line) for line in open(runs_path)]
workloads = []
sides = []
for r in runs:
    if r["workload"] not in workloads:
        workloads.append(r["workload"])
    if r["side"] not in sides:
        sides.append(r["side"])
order = {"redis": 0, "baseline-1c": 1, "ringkvd-1c": 2, "ringkvd-2c": 3}
sides.sort(key=lambda s: order.get(s, 9))
ref = "redis" if "redis" in sides else "baseline-1c" if "baseline-1c" in sides else None

def cell(side, workload):
    return [r for r in runs if r["side"] == side and r["workload"] == workload]

def fmt_ops(v):
    return "%.0f" % v

def fmt_us(v):
    return "%.0f" % v if v >= 100 else "%.1f" % v

header = ["workload"]
for side in sides:
    header += ["%s ops/s" % side, "%s p99 µs" % side]
    if ref and side != ref:
        header.append("%s / %s" % (side, ref))
print("| " + " | ".join(header) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
errors = []
for w in workloads:
    row = [w]
    ref_by_round = {r["round"]: r["result"]["ops_per_sec"] for r in cell(ref, w)} if ref else {}
    for side in sides:
        rs = cell(side, w)
        row.append(fmt_ops(statistics.median(r["result"]["ops_per_sec"] for r in rs)))
        row.append(fmt_us(statistics.median(r["result"]["latency_us"]["p99"] for r in rs)))
        if ref and side != ref:
            ratios = [r["result"]["ops_per_sec"] / ref_by_round[r["round"]]
                      for r in rs if ref_by_round.get(r["round"])]
            row.append("%.2f×" % statistics.median(ratios) if ratios else "n/a")
        for r in rs:
            if r["result"]["errors"]:
                errors.append("%s %s round %d: %d errors %s" % (
                    side, w, r["round"], r["result"]["errors"],
                    json.dumps(r["result"]["errors_by_status"])))
    print("| " + " | ".join(row) + " |")
print()
print("Medians over %s rounds; ratio = median of per-round ops/s ratios. "
      "%s s measured after %s s warm-up per run, %s keys, %s-byte values, "
      "redis-server with appendonly yes, appendfsync always." % (
          rounds, duration, warmup, keys, value_size))
if pin == "1":
    print("Servers pinned to CPU %s, ringkv-bench to CPU %s (%s CPUs)." % (
        server_cpus, bench_cpus, ncpu))
    if "ringkvd-2c" in sides:
        print("ringkvd-2c runs on CPUs 0-1 and so shares a CPU with the load "
              "generator on a 2-CPU machine: not isolated.")
else:
    print("Not pinned (%s CPU)." % ncpu)
for e in errors:
    print("- errors: " + e)
EOF
echo "$prog: raw results in $runs" >&2
