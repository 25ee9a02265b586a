#!/usr/bin/env bash
# What TLS costs: SET throughput, and ringkvd's CPU time per SET, of the
# same binary with plaintext client ports and with --tls-cert/--tls-key
# (TLS 1.3 through OpenSSL memory BIOs on the ring, server/tls.h), on the
# same machine in the same run (issue #19).
#
#   plain  ringkvd --cores 1; ringkv-bench without TLS
#   tls    ringkvd --cores 1 --tls-cert --tls-key (a P-256 certificate made
#          here with openssl); ringkv-bench --tls-ca
#
# Each round starts every side fresh (new data dir, new port), runs one
# SET-only workload, and stops it; the order of the sides alternates from
# round to round (plain tls, tls plain, ...) so drift favours neither. The
# table gives medians over rounds and the median of the per-round ratios
# tls/plain. ringkvd's CPU time (utime + stime of /proc/PID/stat) is read
# at the start and the end of the measured window: CPU µs per SET is the
# noise-robust figure on a loaded machine, ops/s the one users see.
#
#   perf/tls-cost.sh [--rounds N] [--duration S] [--warmup S]
#                    [--connections N] [--pipeline D] [--keys N]
#                    [--value-size B] [--protocol native|resp] [--rate R]
#                    [--server-cpus LIST] [--bench-cpus LIST] [--out DIR]
#
# --rate R runs the load open loop at R SET/s (ringkv-bench --rate) on both
# sides: then both do the same work at the same pace, and CPU per SET
# compares what TLS adds without the batching that a slower side loses
# (closed loop, a side that serves fewer SET/s batches fewer per Raft
# write, which costs CPU per SET of its own).
#
# Pinning: ringkvd --cores 1 on --server-cpus (default CPU 0), ringkv-bench
# on --bench-cpus (default CPU 1).
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
rate=0
protocol=native
server_cpus=0
bench_cpus=1
out=
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
server_pid=
# usage, die, parse_options, round_order, stop_pids, stop_server, pin_setup,
# pinned, free_port, wait_listening
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(rounds duration warmup connections pipeline keys value_size protocol rate
	       server_cpus bench_cpus out)
other_option() {
	echo "$prog: unknown argument '$1' (see --help)" >&2
	exit 2
}
parse_options "$@"

[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $protocol == native || $protocol == resp ]] || die "--protocol takes native or resp"
[[ $rate =~ ^[0-9]+$ ]] || die "--rate takes SET/s (0: closed loop)"
[ -x "$ringkvd" ] || die "ringkvd not found at $ringkvd (build with: ninja -C build)"
[ -x "$bench" ] || die "ringkv-bench not found at $bench (build with: ninja -C build)"
for tool in python3 openssl; do
	command -v "$tool" >/dev/null || die "$tool is needed (scripts/deps.sh installs it)"
done

sides=(plain tls)
pin_setup

if [ -z "$out" ]; then
	out=$root/perf/out/tls-cost-$(date +%Y%m%d-%H%M%S)
fi
mkdir -p "$out"
runs=$out/runs.jsonl
: >"$runs"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-tls-cost.XXXXXX")
cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A throwaway CA and a server certificate for 127.0.0.1.
pki=$tmp/pki
mkdir -p "$pki"
(
	cd "$pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout ca.key -out ca.pem -days 2 -subj "/CN=ringkv tls-cost CA"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout server.key -out server.csr -subj "/CN=127.0.0.1"
	echo "subjectAltName=IP:127.0.0.1" >server.ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out server.pem -days 2 -extfile server.ext
) >"$out/openssl.log" 2>&1 || die "openssl could not make the certificates (see $out/openssl.log)"

# utime + stime of a process, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

start_side() {
	local side=$1 round=$2 dir tls=()
	dir=$tmp/$side-$round
	mkdir -p "$dir"
	port=$(free_port)
	[ "$side" = tls ] && tls=(--tls-cert "$pki/server.pem" --tls-key "$pki/server.key")
	if [ "$protocol" = resp ]; then
		pinned "$server_cpus" "$ringkvd" --cores 1 --listen 127.0.0.1:0 \
			--resp-listen "127.0.0.1:$port" --data-dir "$dir" "${tls[@]}" \
			>"$out/$side-$round.log" 2>&1 &
	else
		pinned "$server_cpus" "$ringkvd" --cores 1 --listen "127.0.0.1:$port" \
			--data-dir "$dir" "${tls[@]}" >"$out/$side-$round.log" 2>&1 &
	fi
	server_pid=$!
	wait_listening "$port" "$side"
}

run_side() {
	local side=$1 round=$2 json tls=() before after hz
	echo "$prog: round $round, $side" >&2
	[ "$side" = tls ] && tls=(--tls-ca "$pki/ca.pem")
	hz=$(getconf CLK_TCK)
	# ringkvd's CPU time over the measured window, read beside the load.
	(
		sleep "$warmup"
		before=$(cpu_ticks "$server_pid")
		sleep "$duration"
		after=$(cpu_ticks "$server_pid")
		echo "$before $after" >"$tmp/cpu"
	) &
	local sampler=$!
	json=$( (pinned "$bench_cpus" "$bench" --protocol "$protocol" --addr "127.0.0.1:$port" \
		--ratio 0:1 --connections "$connections" --pipeline "$pipeline" \
		--keys "$keys" --value-size "$value_size" --duration "$duration" \
		--warmup "$warmup" --seed "$round" --rate "$rate" --json "${tls[@]}" \
		2>>"$out/bench.log") |
		tail -n 1) || true
	wait "$sampler" || die "round $round: could not read ringkvd's CPU time"
	read -r before after <"$tmp/cpu"
	python3 - "$side" "$round" "$before" "$after" "$hz" "$json" >>"$runs" <<'EOF' ||
import json, sys
side, rnd, before, after, hz, text = sys.argv[1:7]
print(json.dumps({"side": side, "round": int(rnd),
                  "server_cpu_s": (int(after) - int(before)) / int(hz),
                  "result": json.loads(text)}))
EOF
		die "ringkv-bench gave no JSON for $side round $round (see $out/bench.log)"
}

for round in $(seq "$rounds"); do
	mapfile -t order < <(round_order "$round" "${sides[@]}")
	for side in "${order[@]}"; do
		start_side "$side" "$round"
		run_side "$side" "$round"
		stop_server
	done
done

grep -h "tls: " "$out"/tls-*.log | sed 's/^[0-9:.]* info \[main\] //' | sort -u >"$out/tls-path"
python3 - "$runs" "$rounds" "$pin" "$server_cpus" "$bench_cpus" "$ncpu" "$duration" "$warmup" \
	"$connections" "$pipeline" "$keys" "$value_size" "$protocol" "$out/tls-path" "$rate" <<'EOF'
import json, statistics, sys

(runs_path, rounds, pin, server_cpus, bench_cpus, ncpu, duration, warmup, connections,
 pipeline, keys, value_size, protocol, path_file, rate) = sys.argv[1:16]
runs = [json.loads(line) for line in open(runs_path)]
sides = ("plain", "tls")
ops = {s: {r["round"]: r["result"]["ops_per_sec"] for r in runs if r["side"] == s}
       for s in sides}
cpu = {s: {r["round"]: 1e6 * r["server_cpu_s"] / max(1, r["result"]["requests"])
           for r in runs if r["side"] == s} for s in sides}
p99 = {s: [r["result"]["latency_us"]["p99"] for r in runs if r["side"] == s] for s in sides}

print("| side | SET/s (median) | ringkvd CPU µs per SET (median) | p99 µs (median) "
      "| SET/s per round | CPU µs/SET per round |")
print("|---|---:|---:|---:|---|---|")
for s in sides:
    rs = sorted(ops[s])
    print("| %s | %.0f | %.2f | %.0f | %s | %s |" % (
        s, statistics.median(ops[s][k] for k in rs), statistics.median(cpu[s][k] for k in rs),
        statistics.median(p99[s]), " ".join("%.0f" % ops[s][k] for k in rs),
        " ".join("%.2f" % cpu[s][k] for k in rs)))
both = [k for k in sorted(ops["tls"]) if k in ops["plain"]]
ratio = [ops["tls"][k] / ops["plain"][k] for k in both]
cratio = [cpu["tls"][k] / cpu["plain"][k] for k in both]
print()
print("tls/plain SET/s: median of per-round ratios %.3f (%s); CPU per SET: %.3f (%s)." % (
    statistics.median(ratio), " ".join("%.3f" % r for r in ratio),
    statistics.median(cratio), " ".join("%.3f" % r for r in cratio)))
print("%s rounds alternated, SET only (ringkv-bench --protocol %s --ratio 0:1), %s connections "
      "x pipeline %s, %s s measured after %s s warm-up, %s keys, %s-byte values, "
      "ringkvd --cores 1; %s." % (rounds, protocol, connections, pipeline, duration, warmup,
                                  keys, value_size,
                                  "open loop at %s SET/s" % rate if rate != "0" else "closed loop"))
print("TLS path: %s" % "; ".join(l.strip() for l in open(path_file)) or "not logged")
if pin == "1":
    print("ringkvd pinned to CPU %s, ringkv-bench to CPU %s (%s CPUs)." % (
        server_cpus, bench_cpus, ncpu))
else:
    print("Not pinned (%s CPU)." % ncpu)
for r in runs:
    if r["result"].get("errors"):
        print("- errors: %s round %d: %d" % (r["side"], r["round"], r["result"]["errors"]))
EOF
echo "$prog: raw results in $runs" >&2
