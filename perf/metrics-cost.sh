#!/usr/bin/env bash
# What the metrics cost: SET throughput of ringkvd with the admin port off
# against the same binary with the admin port on and scraped, on the same
# machine in the same run (issue #16: the cost must stay under 2%).
#
#   off  ringkvd --admin-listen none (the default): nothing is scraped
#   on   ringkvd --admin-listen 127.0.0.1:PORT, GET /metrics every
#        --scrape-interval seconds (a Prometheus server scrapes every 15 s
#        or so; 1 s is the pessimistic case) for the whole run
#
# "off" is not metrics compiled out: the per-core counters and the write
# latency histogram are updated on every request whatever the flag (plain
# increments on the core's own row, see core/metrics.h); the flag only
# opens the port. So this measures what a scrape costs the data path
# (one message per core, a copy of its row, core 0 formatting the text),
# not what counting costs. --baseline RINGKVD adds a third side: another
# binary (say, a build with the counting taken out) with the port off.
#
# Each round starts every side fresh (new temp dir, new ports), runs one
# SET-only workload, and stops it; the order of the sides alternates from
# round to round (off on, on off, ...) so drift favours neither. The table
# gives medians over rounds and the median of the per-round ratios on/off;
# cost = 1 - that ratio.
#
#   perf/metrics-cost.sh [--rounds N] [--duration S] [--warmup S]
#                        [--connections N] [--pipeline D] [--keys N]
#                        [--value-size B] [--scrape-interval S]
#                        [--server-cpus LIST] [--bench-cpus LIST]
#                        [--baseline RINGKVD] [--out DIR]
#
# Pinning: ringkvd --cores 1 on --server-cpus (default CPU 0), ringkv-bench
# and the scraper on --bench-cpus (default CPU 1).
#
# Environment: RINGKVD (default build/server/ringkvd), RINGKV_BENCH (default
# build/perf/bench/ringkv-bench).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)

rounds=5
duration=10
warmup=2
connections=50
pipeline=16
keys=100000
value_size=100
scrape_interval=1
server_cpus=0
bench_cpus=1
baseline=
out=
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
server_pid=
scraper_pid=
# usage, die, parse_options, round_order, stop_pids, stop_server, pin_setup,
# pinned, free_port, wait_listening
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(rounds duration warmup connections pipeline keys value_size scrape_interval
	       server_cpus bench_cpus baseline out)
other_option() {
	echo "$prog: unknown argument '$1' (see --help)" >&2
	exit 2
}
parse_options "$@"

[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $scrape_interval =~ ^[0-9]*\.?[0-9]+$ ]] || die "--scrape-interval takes seconds"
[ -x "$ringkvd" ] || die "ringkvd not found at $ringkvd (build with: ninja -C build)"
[ -x "$bench" ] || die "ringkv-bench not found at $bench (build with: ninja -C build)"
command -v python3 >/dev/null || die "python3 is needed (scraper, ringkv-bench --json)"
if [ -n "$baseline" ]; then
	[ -x "$baseline" ] || die "--baseline: no ringkvd at $baseline"
fi

sides=(off on)
[ -n "$baseline" ] && sides+=(baseline)

pin_setup

if [ -z "$out" ]; then
	out=$root/perf/out/metrics-cost-$(date +%Y%m%d-%H%M%S)
fi
mkdir -p "$out"
runs=$out/runs.jsonl
: >"$runs"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-metrics-cost.XXXXXX")

stop_side() {
	if [ -n "$scraper_pid" ]; then
		stop_pids "$scraper_pid"
		scraper_pid=
	fi
	stop_server
}

cleanup() {
	stop_side
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The scraper: GET /metrics every interval until killed; one line per
# scrape to its log ("ok BYTES" or the error), so the run can prove it ran.
scraper() {
	local port=$1 log=$2
	pinned "$bench_cpus" python3 -u - "$port" "$scrape_interval" >"$log" 2>&1 <<'EOF'
import sys, time, urllib.request
port, interval = int(sys.argv[1]), float(sys.argv[2])
url = "http://127.0.0.1:%d/metrics" % port
next_at = time.monotonic()
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            print("ok", len(r.read()))
    except Exception as e:  # a failed scrape is reported, not fatal
        print("error", e)
    next_at += interval
    time.sleep(max(0.0, next_at - time.monotonic()))
EOF
}

# start_side SIDE ROUND: starts the server of SIDE (and its scraper); sets port.
start_side() {
	local side=$1 round=$2 dir binary=$ringkvd admin=none admin_port=
	dir=$tmp/$side-$round
	mkdir -p "$dir"
	port=$(free_port)
	[ "$side" = baseline ] && binary=$baseline
	if [ "$side" = on ]; then
		admin_port=$(free_port)
		admin=127.0.0.1:$admin_port
	fi
	pinned "$server_cpus" "$binary" --cores 1 --listen "127.0.0.1:$port" \
		--admin-listen "$admin" --data-dir "$dir" >"$out/$side-$round.log" 2>&1 &
	server_pid=$!
	wait_listening "$port" "$side"
	if [ -n "$admin_port" ]; then
		wait_listening "$admin_port" "$side (admin port)"
		scraper "$admin_port" "$out/scrapes-$round.log" &
		scraper_pid=$!
		# The load starts once scraping does (python starts slowly on a busy CPU).
		for _ in $(seq 100); do
			grep -q '^ok ' "$out/scrapes-$round.log" 2>/dev/null && return 0
			sleep 0.1
		done
		die "round $round: the scraper got no answer from the admin port"
	fi
}

# Lines of the round's scrape log starting with $1 (0 without a log).
scrape_count() {
	grep -c "^$1" "$out/scrapes-$2.log" 2>/dev/null || true
}

run_side() {
	local side=$1 round=$2 json scrapes=0 failed=0 before=0
	echo "$prog: round $round, $side" >&2
	[ "$side" = on ] && before=$(scrape_count ok "$round")
	json=$( (pinned "$bench_cpus" "$bench" --protocol native --addr "127.0.0.1:$port" \
		--ratio 0:1 --connections "$connections" --pipeline "$pipeline" \
		--keys "$keys" --value-size "$value_size" --duration "$duration" \
		--warmup "$warmup" --seed "$round" --json 2>>"$out/bench.log") | tail -n 1) || true
	if [ "$side" = on ]; then
		scrapes=$(($(scrape_count ok "$round") - before))
		failed=$(scrape_count error "$round")
		[ "$scrapes" -gt 0 ] || die "round $round: no scrape during the load (see $out/scrapes-$round.log)"
	fi
	python3 - "$side" "$round" "$scrapes" "$failed" "$json" >>"$runs" <<'EOF' ||
import json, sys
side, rnd, scrapes, failed, text = sys.argv[1:6]
print(json.dumps({"side": side, "round": int(rnd), "scrapes": int(scrapes),
                  "scrapes_failed": int(failed), "result": json.loads(text)}))
EOF
		die "ringkv-bench gave no JSON for $side round $round (see $out/bench.log)"
}

for round in $(seq "$rounds"); do
	mapfile -t order < <(round_order "$round" "${sides[@]}")
	for side in "${order[@]}"; do
		start_side "$side" "$round"
		run_side "$side" "$round"
		stop_side
	done
done

python3 - "$runs" "$rounds" "$pin" "$server_cpus" "$bench_cpus" "$ncpu" "$duration" "$warmup" \
	"$connections" "$pipeline" "$keys" "$value_size" "$scrape_interval" <<'EOF'
import json, statistics, sys

(runs_path, rounds, pin, server_cpus, bench_cpus, ncpu, duration, warmup, connections,
 pipeline, keys, value_size, interval) = sys.argv[1:14]
runs = [json.loads(line) for line in open(runs_path)]
sides = [s for s in ("off", "on", "baseline") if any(r["side"] == s for r in runs)]
ops = {s: {r["round"]: r["result"]["ops_per_sec"] for r in runs if r["side"] == s}
       for s in sides}
p99 = {s: [r["result"]["latency_us"]["p99"] for r in runs if r["side"] == s] for s in sides}

print("| side | ops/s (median) | p99 µs (median) | ops/s per round | / off (median of rounds) |")
print("|---|---:|---:|---|---:|")
for s in sides:
    per_round = [ops[s][k] for k in sorted(ops[s])]
    ratios = [ops[s][k] / ops["off"][k] for k in sorted(ops[s]) if ops["off"].get(k)]
    ratio = "%.3f" % statistics.median(ratios) if s != "off" and ratios else "1"
    print("| %s | %.0f | %.0f | %s | %s |" % (
        s, statistics.median(per_round), statistics.median(p99[s]),
        " ".join("%.0f" % v for v in per_round), ratio))
ratios = [ops["on"][k] / ops["off"][k] for k in sorted(ops["on"]) if ops["off"].get(k)]
print()
print("Metrics cost (1 - median of per-round on/off ratios): %.1f%%; per-round ratios %s." % (
    (1 - statistics.median(ratios)) * 100, " ".join("%.3f" % r for r in ratios)))
scrapes = sum(r["scrapes"] for r in runs if r["side"] == "on")
failed = sum(r["scrapes_failed"] for r in runs if r["side"] == "on")
print("%s rounds, SET only (ringkv-bench --ratio 0:1), %s connections x pipeline %s, "
      "%s s measured after %s s warm-up, %s keys, %s-byte values, ringkvd --cores 1; "
      "on: GET /metrics every %s s (%d scrapes during the load, %d failed)." % (
          rounds, connections, pipeline, duration, warmup, keys, value_size, interval,
          scrapes, failed))
if pin == "1":
    print("ringkvd pinned to CPU %s, ringkv-bench and the scraper to CPU %s (%s CPUs)." % (
        server_cpus, bench_cpus, ncpu))
else:
    print("Not pinned (%s CPU)." % ncpu)
for r in runs:
    if r["result"].get("errors"):
        print("- errors: %s round %d: %d" % (r["side"], r["round"], r["result"]["errors"]))
EOF
echo "$prog: raw results in $runs" >&2
