#!/usr/bin/env bash
# Two ringkvd builds side by side as 3-node clusters: A and B alternate,
# each round on fresh data dirs, servers pinned to one CPU and ringkv-bench
# to the other; prints put/s, p50 and p99 per run and the median of the
# per-round B/A ratios. For a change to the replication path, where
# perf/compare.sh (one node) does not show it. Each run also gives the
# three servers' CPU time per put (user + system from /proc/PID/stat over
# the measured seconds, warm-up excluded), which a loaded machine disturbs
# far less than put/s: the median of its per-round B/A ratios is printed
# too.
#
#   perf/cluster-ab.sh [--rounds N] [--duration S] [--warmup S]
#       [--connections N] [--pipeline D] [--keys N] [--value-size B]
#       [--env-b VAR=VALUE] [--peer-tls-b] [--server-cpus LIST]
#       [--bench-cpus LIST] RINGKVD_A RINGKVD_B
#
# --peer-tls-b: B's nodes talk mutual TLS 1.3 on the peer port
# (--peer-tls-cert/--peer-tls-key/--peer-tls-ca, certificates made here
# with openssl); client ports stay plaintext on both sides, so the
# difference is the peers' TLS alone. Give the same binary twice for it.
#
# Defaults: 3 rounds, 5 s after 1 s warm-up, 50 connections, pipeline 1,
# 100,000 keys, 100-byte values, servers on CPU 0, load on CPU 1; data
# under $TMPDIR or /var/tmp. --env-b sets an environment variable for B's
# servers only (an experiment's switch). Nodes: 127.0.7.31-33, ports
# 27301-27326. The same ringkv-bench and ringkv (build/) drive both.
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3 duration=5 warmup=1 connections=50 pipeline=1 keys=100000 value_size=100
server_cpus=0 bench_cpus=1 env_b=
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
cli=${RINGKV_CLI:-$root/build/tools/ringkv}
data_root=${TMPDIR:-/var/tmp}

# usage, die, parse_options, in_range, round_order, stop_pids
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

args=()
value_options=(rounds duration warmup connections pipeline keys value_size env_b server_cpus
	       bench_cpus)
peer_tls_b=0
other_option() {
	case $1 in
	--peer-tls-b) peer_tls_b=1; taken=1 ;;
	-*) echo "$prog: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) args+=("$1"); taken=1 ;;
	esac
}
parse_options "$@"
[ ${#args[@]} -eq 2 ] || { echo "$prog: two ringkvd binaries expected (see --help)" >&2; exit 2; }
in_range "$rounds" 1 20 || die "--rounds must be 1..20"
in_range "$duration" 1 300 || die "--duration must be 1..300 seconds"
in_range "$warmup" 0 60 || die "--warmup must be 0..60 seconds"
in_range "$connections" 1 1000 || die "--connections must be 1..1000"
in_range "$pipeline" 1 1024 || die "--pipeline must be 1..1024"
for f in "${args[@]}" "$bench" "$cli"; do [ -x "$f" ] || die "$f: not an executable"; done
[ -z "$env_b" ] || [[ $env_b == *=* ]] || die "--env-b takes VAR=VALUE"

tmp=$(mktemp -d "$data_root/cluster-ab.XXXXXX")
pids=()
stop_nodes() {
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	pids=()
}
trap 'stop_nodes; rm -rf "$tmp"' EXIT

# A cluster CA and one certificate a node (SAN URI ringkv://node/ID).
if [ "$peer_tls_b" = 1 ]; then
	pki=$tmp/pki
	mkdir -p "$pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=cluster-ab CA" 2>/dev/null
	for i in 1 2 3; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$pki/n$i.key" -out "$pki/n$i.csr" -subj "/CN=node$i" 2>/dev/null
		printf 'subjectAltName=URI:ringkv://node/%d\n' "$i" >"$pki/n$i.ext"
		openssl x509 -req -in "$pki/n$i.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
			-CAcreateserial -days 2 -extfile "$pki/n$i.ext" -out "$pki/n$i.pem" 2>/dev/null
	done
fi

# CPU ticks (user + system) of the running servers.
cpu_ticks() {
	local pid sum=0
	for pid in "${pids[@]}"; do
		sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$sum"
}

# run SIDE BINARY ROUND: prints "put/s p50 p99 cpu_us_per_put" of one run.
run() {
	local side=$1 bin=$2 round=$3 i ic="" dir=$tmp/$1-$3 env=() tls=()
	for i in 1 2 3; do ic+="${ic:+,}$i=127.0.7.3$i:$((27310 + i))"; done
	[ "$side" = B ] && [ -n "$env_b" ] && env=("$env_b")
	for i in 1 2 3; do
		mkdir -p "$dir/n$i"
		tls=()
		[ "$side" = B ] && [ "$peer_tls_b" = 1 ] &&
			tls=(--peer-tls-cert "$pki/n$i.pem" --peer-tls-key "$pki/n$i.key"
			     --peer-tls-ca "$pki/ca.pem")
		env "${env[@]}" taskset -c "$server_cpus" "$bin" --node-id "$i" --initial-cluster "$ic" \
			--cluster-token "ab$round$side" --cores 1 --listen "127.0.7.3$i:$((27300 + i))" \
			--data-dir "$dir/n$i" --log-level info "${tls[@]}" >"$dir/n$i.log" 2>&1 &
		pids+=($!)
	done
	# Leaders for every shard: 64 keys written through node 1 (routed).
	local ok=0 k
	for _ in $(seq 60); do
		ok=1
		for k in $(seq 0 63); do
			"$cli" -a 127.0.7.31:27301 -t 2 put "ab-probe-$k" ok >/dev/null 2>&1 || { ok=0; break; }
		done
		[ "$ok" = 1 ] && break
		sleep 0.5
	done
	[ "$ok" = 1 ] || { stop_nodes; die "$side: the cluster took no write within 30 s (logs in $dir)"; }
	local pipe=()
	[ "$pipeline" -gt 1 ] && pipe=(--pipeline "$pipeline")
	taskset -c "$bench_cpus" "$bench" --addr 127.0.7.31:27301 --ratio 0:1 --duration "$duration" \
		--warmup "$warmup" --connections "$connections" "${pipe[@]}" --keys "$keys" \
		--value-size "$value_size" --seed "$round" >"$dir/bench.out" &
	local bench_pid=$! t0 t1
	# B's peers must really be on TLS (the start-up line is at info).
	if [ -n "${tls[*]}" ] && ! grep -q "peer port: mutual TLS" "$dir/n1.log"; then
		stop_nodes
		die "$side: node 1 did not start peer TLS (logs in $dir)"
	fi
	sleep "$warmup"
	t0=$(cpu_ticks)
	wait "$bench_pid"
	t1=$(cpu_ticks)
	awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$duration" '$1 == "put" {
		printf "%s %s %s %.1f\n", $2, $4, $6, ticks / hz * 1e6 / ($2 * s) }' "$dir/bench.out"
	stop_nodes
}

declare -a ratios=() cpu_a=() cpu_b=() cpu_ratios=()
printf '%-5s %-4s %10s %10s %10s %12s\n' round side put/s p50_us p99_us cpu_us/put
for r in $(seq "$rounds"); do
	# A then B in odd rounds, B then A in even ones.
	mapfile -t order < <(round_order "$r" A B)
	declare -A got=()
	for side in "${order[@]}"; do
		bin=${args[0]}
		[ "$side" = B ] && bin=${args[1]}
		line=$(run "$side" "$bin" "$r")
		[ -n "$line" ] || die "round $r, $side: no result"
		got[$side]=${line%% *}
		if [ "$side" = A ]; then cpu_a+=("${line##* }"); else cpu_b+=("${line##* }"); fi
		printf '%-5s %-4s %10s %10s %10s %12s\n' "$r" "$side" $line
	done
	ratios+=("$(awk -v a="${got[A]}" -v b="${got[B]}" 'BEGIN { printf "%.3f", b / a }')")
	cpu_ratios+=("$(awk -v a="${cpu_a[-1]}" -v b="${cpu_b[-1]}" 'BEGIN { printf "%.3f", b / a }')")
	unset got
done
median_of() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
median=$(median_of "${ratios[@]}")
echo "B/A per round: ${ratios[*]}; median $median"
echo "CPU us per put (3 servers): A median $(median_of "${cpu_a[@]}"), B median $(median_of "${cpu_b[@]}"); B/A per round: ${cpu_ratios[*]}; median $(median_of "${cpu_ratios[@]}")"
echo "A: ${args[0]}"
echo "B: ${args[1]}${env_b:+ with $env_b}$([ "$peer_tls_b" = 1 ] && echo " with peer TLS")"
echo "3 x ringkvd --cores 1 (R=3, default shards) on CPU $server_cpus, ringkv-bench on CPU $bench_cpus, $connections connections, pipeline $pipeline, $keys keys, $value_size-byte values, PUT only, $duration s after $warmup s warm-up."
