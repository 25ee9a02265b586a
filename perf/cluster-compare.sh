#!/usr/bin/env bash
# A 3-node ringkv cluster beside a 3-node etcd cluster on this machine, same
# durability, same workload shape, side by side in one run (issue #12,
# "Performance"):
#
#   put-p1     PUT only, 50 connections, one request in flight on each
#   put-pD     PUT only, 50 connections, D in flight on each (--pipeline D)
#
# ringkv: three ringkvd (--cores 1 each) on 127.0.7.11-13, a Raft group of 3
# per shard, driven by ringkv-bench. etcd: three etcd (Debian's etcd-server)
# on 127.0.7.21-23, driven by perf/etcd-load (etcd's own Go client, gRPC; see
# perf/etcd-load/main.go for why its pipelining is the fair analogue).
# Durability is equal: both acknowledge a write only once it is fdatasync'ed
# in the log of a majority (etcd's default; ringkvd always). Every server of
# both clusters runs on --server-cpus, the load generator on --bench-cpus.
# Each round starts both clusters fresh (new data dirs), the order of the
# sides alternates from round to round, and the table gives medians and the
# median of the per-round ratios ringkv/etcd. Targets (issue #12): put/s at
# least 5x etcd unpipelined and 10x pipelined, p99 no worse than etcd's.
#
# --mode replication measures the cost of replication instead: the same
# ringkv 3-node cluster against one ringkvd --cores 1 (durable, no peers)
# on the same CPU, alternated; target: 3-node put/s at least 0.5x one node.
#
# How load reaches ringkv (--ringkv-path):
#   leader  every shard's leader on one node: --shards 1, so the cluster is
#           one Raft group like etcd's; the leader is found by a probe write
#           and all connections go to it. Works without forwarding/routing.
#   forward default shards (leaders spread over the nodes), every
#           connection to node 1 (ringkv-bench --no-route where it routes),
#           which serves the shards it leads and forwards the others to
#           their leaders; needs server-side forwarding.
#   route   default shards (leaders spread over the nodes); ringkv-bench
#           fetches the cluster map and sends each connection's keys to
#           their shard's leader itself (needs a ringkv-bench that routes:
#           one whose --help lists --no-route).
#   auto    route if ringkv-bench routes, else leader.
# etcd's clients likewise all connect to its leader (no follower hop).
#
#   perf/cluster-compare.sh [--mode compare|replication] [--rounds N]
#       [--duration S] [--warmup S] [--connections N] [--pipeline D]
#       [--keys N] [--value-size B] [--ringkv-path auto|leader|forward|route]
#       [--only ringkv|etcd] [--server-cpus LIST] [--bench-cpus LIST]
#       [--data-root DIR] [--out DIR]
#
# Defaults: compare, 3 rounds, 10 s after 2 s warm-up, 50 connections,
# pipeline 16, 100,000 keys, 100-byte values, servers on CPU 0 and load on
# CPU 1, data under $TMPDIR or /var/tmp (refused if tmpfs: fdatasync would
# cost nothing there). Prerequisites: perf/deps.sh, then ninja -C build.
#
# Environment: RINGKVD, RINGKV_BENCH, RINGKV_CLI (default build/...), ETCD,
# ETCDCTL (default etcd, etcdctl), ETCD_LOAD (default
# build/perf/etcd-load/etcd-load, built by perf/etcd-load/build.sh when
# missing or older than its source).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)

mode=compare
rounds=3
duration=10
warmup=2
connections=50
pipeline=16
keys=100000
value_size=100
ringkv_path=auto
only=
server_cpus=0
bench_cpus=1
data_root=${TMPDIR:-/var/tmp}
out=
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
cli=${RINGKV_CLI:-$root/build/tools/ringkv}
etcd=${ETCD:-etcd}
etcdctl=${ETCDCTL:-etcdctl}
etcd_load=${ETCD_LOAD:-$root/build/perf/etcd-load/etcd-load}

# usage, die, parse_options, in_range, round_order, stop_pids, pin_setup,
# pinned
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(mode rounds duration warmup connections pipeline keys value_size ringkv_path only
	       server_cpus bench_cpus data_root out)
other_option() {
	echo "$prog: unknown argument '$1' (see --help)" >&2
	exit 2
}
parse_options "$@"

# Bounded: a typo must not start an hour-long run.
in_range "$rounds" 1 20 || die "--rounds must be 1..20"
in_range "$duration" 1 300 || die "--duration must be 1..300 seconds"
in_range "$warmup" 0 60 || die "--warmup must be 0..60 seconds"
in_range "$connections" 1 1000 || die "--connections must be 1..1000"
in_range "$pipeline" 2 1024 || die "--pipeline (the pipelined depth) must be 2..1024"
in_range "$keys" 1 100000000 || die "--keys must be 1..100000000"
in_range "$value_size" 0 1048576 || die "--value-size must be 0..1048576"
case $mode in compare | replication) ;; *) die "--mode takes compare or replication" ;; esac
case $ringkv_path in
auto | leader | forward | route) ;;
*) die "--ringkv-path takes auto, leader, forward or route" ;;
esac
case $only in "" | ringkv | etcd) ;; *) die "--only takes ringkv or etcd" ;; esac
[ "$mode" = replication ] && [ -n "$only" ] && die "--only is for --mode compare"

# Sides: ringkv3 (the cluster), and etcd3 or ringkv1 (the reference).
sides=()
if [ "$mode" = compare ]; then
	[ "$only" != ringkv ] && sides+=(etcd3)
	[ "$only" != etcd ] && sides+=(ringkv3)
else
	sides=(ringkv1 ringkv3)
fi
uses_ringkv=0 uses_etcd=0
for s in "${sides[@]}"; do
	case $s in ringkv*) uses_ringkv=1 ;; etcd*) uses_etcd=1 ;; esac
done

# Prerequisites, each with the way to get it.
for tool in python3 taskset timeout; do
	command -v "$tool" >/dev/null || die "$tool is missing (perf/deps.sh installs it)"
done
if [ "$uses_ringkv" = 1 ]; then
	for f in "$ringkvd" "$bench" "$cli"; do
		[ -x "$f" ] || die "no $f: build first (meson setup build && ninja -C build)"
	done
fi
if [ "$uses_etcd" = 1 ]; then
	command -v "$etcd" >/dev/null || die "etcd is missing (perf/deps.sh installs etcd-server)"
	command -v "$etcdctl" >/dev/null || die "etcdctl is missing (perf/deps.sh installs etcd-client)"
	if [ -z "${ETCD_LOAD:-}" ]; then
		stale=0
		[ -x "$etcd_load" ] || stale=1
		for src in "$root"/perf/etcd-load/*.go; do
			if [ "$src" -nt "$etcd_load" ]; then
				stale=1
			fi
		done
		if [ "$stale" = 1 ]; then
			echo "$prog: building $etcd_load (perf/etcd-load/build.sh)" >&2
			"$root/perf/etcd-load/build.sh" "$etcd_load" ||
				die "could not build etcd-load (perf/deps.sh installs golang-go and golang-etcd-server-dev)"
		fi
	fi
	[ -x "$etcd_load" ] || die "no etcd-load at $etcd_load"
fi

# Whether ringkv-bench and the CLI route requests to leaders by themselves
# (they do once they know --no-route, which turns it off).
bench_routes=0 cli_no_route=()
if [ "$uses_ringkv" = 1 ]; then
	help=$("$bench" --help 2>&1 || true)
	[[ $help == *--no-route* ]] && bench_routes=1
	help=$("$cli" --help 2>&1 || true)
	[[ $help == *--no-route* ]] && cli_no_route=(--no-route)
fi
if [ "$ringkv_path" = auto ]; then
	ringkv_path=leader
	[ "$bench_routes" = 1 ] && ringkv_path=route
fi
[ "$ringkv_path" != route ] || [ "$bench_routes" = 1 ] || [ "$uses_ringkv" = 0 ] ||
	die "--ringkv-path route: $bench does not route (no --no-route in its --help); use leader or forward"

pin_setup

[ -d "$data_root" ] || die "--data-root $data_root is not a directory"
[ "$(stat -f -c %T "$data_root")" != tmpfs ] ||
	die "--data-root $data_root is tmpfs: fdatasync is free there, pick a disk (e.g. /var/tmp)"

if [ -z "$out" ]; then
	out=$root/perf/out/cluster-$mode-$(date +%Y%m%d-%H%M%S)
fi
mkdir -p "$out"
runs=$out/runs.jsonl
: >"$runs"

tmp=$(mktemp -d "$data_root/ringkv-cluster-compare.XXXXXX")
server_pids=()
bench_pid=

stop_servers() {
	[ ${#server_pids[@]} -gt 0 ] || return 0
	stop_pids "${server_pids[@]}"
	server_pids=()
}

cleanup() {
	if [ -n "$bench_pid" ]; then
		kill "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
	stop_servers
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_node_listening() { # HOST PORT WHAT
	local host=$1 port=$2 what=$3 pid
	for _ in $(seq 150); do
		if python3 -c "import socket; socket.create_connection(('$host', $port), 0.2)" 2>/dev/null; then
			return 0
		fi
		for pid in "${server_pids[@]}"; do
			kill -0 "$pid" 2>/dev/null || die "$what: a server exited at start-up (logs in $out)"
		done
		sleep 0.1
	done
	die "$what does not listen on $host:$port (logs in $out)"
}

# Ports come from this helper's range 27000-27999, shifted each round so a
# socket of the previous round's servers (TIME_WAIT) never gets in the way.
# Per round, from base: ringkv clients +1..3, peers +4..6, one-node ringkvd
# +7 (admin +8), etcd clients +11..13, peers +14..16, ringkv admin +17..19.
round_ports() { # ROUND -> base
	base=$((27100 + ((($1 - 1) % 40) * 20)))
}

# start_ringkv3 ROUND: three ringkvd; sets target (the address to load).
start_ringkv3() {
	local round=$1 i ic="" shards=()
	round_ports "$round"
	for i in 1 2 3; do
		ic+="${ic:+,}$i=127.0.7.1$i:$((base + 3 + i))"
	done
	# leader: one shard, so one node leads every key (found below).
	[ "$ringkv_path" = leader ] && shards=(--shards 1)
	for i in 1 2 3; do
		mkdir -p "$tmp/ringkv3-$round/n$i"
		pinned "$server_cpus" "$ringkvd" --node-id "$i" --initial-cluster "$ic" \
			--cluster-token "cc$round" --cores 1 "${shards[@]}" \
			--listen "127.0.7.1$i:$((base + i))" --data-dir "$tmp/ringkv3-$round/n$i" \
			--admin-listen "127.0.7.1$i:$((base + 16 + i))" --log-level warn >"$out/ringkv3-$round-n$i.log" 2>&1 &
		server_pids+=($!)
	done
	for i in 1 2 3; do
		wait_node_listening "127.0.7.1$i" $((base + i)) "ringkvd node $i"
	done
	# A probe write until one node takes it: that node leads the shard
	# (leader path) or the cluster has elected leaders (route path).
	target=
	for _ in $(seq 60); do
		for i in 1 2 3; do
			if "$cli" "${cli_no_route[@]}" -a "127.0.7.1$i:$((base + i))" -t 2 \
				put cluster-compare-probe ok \
				>/dev/null 2>>"$out/probe.log"; then
				target=127.0.7.1$i:$((base + i))
				break 2
			fi
		done
		sleep 0.5
	done
	[ -n "$target" ] || die "ringkv cluster: no node accepted a write within 30 s (logs in $out)"
	metrics_urls=()
	for i in 1 2 3; do
		metrics_urls+=("http://127.0.7.1$i:$((base + 16 + i))/metrics")
	done
	# forward and route: the probe only showed that leaders exist; wait
	# until every shard has one (64 keys written through node 1: by
	# forwarding, or by the CLI's routing on the route path), then load
	# node 1.
	if [ "$ringkv_path" != leader ]; then
		target=127.0.7.11:$((base + 1))
		local k ok=0 probe_route=()
		[ "$ringkv_path" = forward ] && probe_route=("${cli_no_route[@]}")
		for _ in $(seq 60); do
			ok=1
			for k in $(seq 0 63); do
				"$cli" "${probe_route[@]}" -a "$target" -t 2 put "cluster-compare-probe-$k" ok \
					>/dev/null 2>>"$out/probe.log" || { ok=0; break; }
			done
			[ "$ok" = 1 ] && break
			sleep 0.5
		done
		[ "$ok" = 1 ] || die "ringkv cluster: node 1 could not write to every shard within 30 s" \
			"(does this ringkvd forward? logs in $out)"
	fi
	echo "$prog: round $round, ringkv3: load to $target ($ringkv_path path)" >&2
}

# start_ringkv1 ROUND: one ringkvd --cores 1, a one-node cluster.
start_ringkv1() {
	local round=$1
	round_ports "$round"
	mkdir -p "$tmp/ringkv1-$round"
	pinned "$server_cpus" "$ringkvd" --cores 1 --listen "127.0.7.14:$((base + 7))" \
		--data-dir "$tmp/ringkv1-$round" --admin-listen "127.0.7.14:$((base + 8))" \
		--log-level warn >"$out/ringkv1-$round.log" 2>&1 &
	server_pids+=($!)
	wait_node_listening 127.0.7.14 $((base + 7)) "ringkvd (one node)"
	target=127.0.7.14:$((base + 7))
	metrics_urls=("http://127.0.7.14:$((base + 8))/metrics")
	for _ in $(seq 60); do
		"$cli" -a "$target" -t 2 put cluster-compare-probe ok >/dev/null 2>>"$out/probe.log" && return 0
		sleep 0.5
	done
	die "one-node ringkvd did not accept a write within 30 s (log in $out)"
}

# start_etcd3 ROUND: three etcd; sets target (the leader's client address).
start_etcd3() {
	local round=$1 i ic="" endpoints=""
	round_ports "$round"
	for i in 1 2 3; do
		ic+="${ic:+,}n$i=http://127.0.7.2$i:$((base + 13 + i))"
		endpoints+="${endpoints:+,}127.0.7.2$i:$((base + 10 + i))"
	done
	for i in 1 2 3; do
		local client=http://127.0.7.2$i:$((base + 10 + i)) peer=http://127.0.7.2$i:$((base + 13 + i))
		mkdir -p "$tmp/etcd3-$round"
		# Defaults otherwise: fsync of the WAL before a write is acknowledged
		# (leader and followers), snapshot every 100,000 entries, no pre-vote.
		pinned "$server_cpus" "$etcd" --name "n$i" --data-dir "$tmp/etcd3-$round/n$i" \
			--listen-client-urls "$client" --advertise-client-urls "$client" \
			--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
			--initial-cluster "$ic" --initial-cluster-state new \
			--initial-cluster-token "cc$round" --logger zap --log-level warn \
			>"$out/etcd3-$round-n$i.log" 2>&1 &
		server_pids+=($!)
	done
	metrics_urls=()
	for i in 1 2 3; do
		wait_node_listening "127.0.7.2$i" $((base + 10 + i)) "etcd node $i"
		metrics_urls+=("http://127.0.7.2$i:$((base + 10 + i))/metrics")
	done
	target=
	for _ in $(seq 60); do
		target=$(ETCDCTL_API=3 timeout 10 "$etcdctl" --endpoints="$endpoints" \
			--command-timeout=2s endpoint status -w json 2>>"$out/probe.log" |
			python3 -c '
import json, sys
try:
    st = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for e in st:
    s = e.get("Status", {})
    if s.get("leader") and s.get("leader") == s.get("header", {}).get("member_id"):
        print(e["Endpoint"])
') || true
		[ -n "$target" ] && break
		sleep 0.5
	done
	[ -n "$target" ] || die "etcd cluster: no leader within 30 s (logs in $out)"
	echo "$prog: round $round, etcd3: load to the leader $target" >&2
}

workloads=(put-p1 "put-p$pipeline")

# fsyncs: each node's count of log fdatasyncs so far, from its /metrics
# (ringkvd: ringkv_wal_syncs_total over its cores; etcd:
# etcd_disk_wal_fsync_duration_seconds_count), space-separated in node order.
# Recorded around every run, as evidence that both sides sync every node's
# log and of how many writes each fdatasync carried.
fsyncs() {
	python3 - "${metrics_urls[@]}" <<'EOF'
import sys, urllib.request
counts = []
for url in sys.argv[1:]:
    total = None
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        for line in text.splitlines():
            name = line.split("{")[0].split(" ")[0]
            if name in ("ringkv_wal_syncs_total", "etcd_disk_wal_fsync_duration_seconds_count"):
                total = (total or 0) + float(line.rsplit(" ", 1)[1])
    except (OSError, ValueError):
        pass
    counts.append("-1" if total is None else "%d" % total)
print(" ".join(counts))
EOF
}

# The load generator's CPU use over its whole run (user + system over
# wall time): near 1 means it, not the servers, may have
# been the limit; the summary warns then.
run_workload() { # SIDE ROUND WORKLOAD
	local side=$1 round=$2 workload=$3 depth=${3#put-p} limit cmd=() route=()
	limit=$((warmup + duration + 60))
	echo "$prog: round $round, $side, $workload" >&2
	case $side in
	etcd3)
		cmd=("$etcd_load" --endpoints "$target" --duration "${duration}s" --warmup "${warmup}s")
		;;
	*)
		# route: ringkv-bench routes by default; leader: one shard, one
		# leader, nothing to route; forward: every request to node 1.
		[ "$side" = ringkv3 ] && [ "$ringkv_path" = forward ] && [ "$bench_routes" = 1 ] &&
			route=(--no-route)
		cmd=("$bench" --addr "$target" "${route[@]}" --ratio 0:1 --duration "$duration"
			--warmup "$warmup")
		;;
	esac
	cmd+=(--connections "$connections" --pipeline "$depth" --keys "$keys"
		--value-size "$value_size" --seed "$round" --json)
	: >"$tmp/bench.json"
	local syncs_before syncs_after
	syncs_before=$(fsyncs)
	local pin_cmd=() started ended
	[ "$pin" = 1 ] && pin_cmd=(taskset -c "$bench_cpus")
	# In the background and waited for, so that a TERM or INT reaches the
	# trap at once rather than after the run; the shell's children times
	# before and after (times, not in a subshell) give its CPU use.
	times >"$tmp/times.before"
	started=$EPOCHREALTIME
	"${pin_cmd[@]}" timeout "$limit" "${cmd[@]}" >"$tmp/bench.json" 2>>"$out/bench.log" &
	bench_pid=$!
	wait "$bench_pid" || true
	bench_pid=
	ended=$EPOCHREALTIME
	times >"$tmp/times.after"
	syncs_after=$(fsyncs)
	python3 - "$side" "$round" "$workload" "$tmp/bench.json" "$tmp/times.before" \
		"$tmp/times.after" "$started" "$ended" "$syncs_before" "$syncs_after" >>"$runs" <<'EOF' ||
import json, re, sys
(side, rnd, workload, json_path, times_before, times_after, started, ended,
 before, after) = sys.argv[1:11]

def children_cpu(path):
    # times: the shell's user/system, then its children's, as "1m2.345s".
    fields = re.findall(r"(\d+)m([\d.]+)s", open(path).read())
    return sum(int(m) * 60 + float(sec) for m, sec in fields[2:4])

real = float(ended) - float(started)
cpu = children_cpu(times_after) - children_cpu(times_before)
syncs = [int(b) - int(a) if int(a) >= 0 and int(b) >= 0 else None
         for a, b in zip(before.split(), after.split())]
lines = open(json_path).read().splitlines()
result = json.loads(lines[-1])
print(json.dumps({"side": side, "round": int(rnd), "workload": workload,
                  "load_cpu": cpu / real if real > 0 else 0,
                  "fsyncs_per_node": syncs, "run_s": real, "result": result}))
EOF
		die "no JSON from the load generator for $side/$workload (see $out/bench.log)"
}

for round in $(seq "$rounds"); do
	mapfile -t order < <(round_order "$round" "${sides[@]}")
	for side in "${order[@]}"; do
		"start_$side" "$round"
		for workload in "${workloads[@]}"; do
			run_workload "$side" "$round" "$workload"
		done
		stop_servers
		rm -rf "${tmp:?}/$side-$round"
	done
done

python3 - "$runs" "$mode" "$rounds" "$pin" "$server_cpus" "$bench_cpus" "$ncpu" \
	"$duration" "$warmup" "$connections" "$keys" "$value_size" "$ringkv_path" \
	"$data_root" <<'EOF'
import json, statistics, sys

(runs_path, mode, rounds, pin, server_cpus, bench_cpus, ncpu, duration, warmup,
 connections, keys, value_size, ringkv_path, data_root) = sys.argv[1:15]
runs = [json.loads(line) for line in open(runs_path)]
names = {"etcd3": "etcd 3 nodes", "ringkv3": "ringkv 3 nodes", "ringkv1": "ringkvd 1 node"}
sides = [s for s in ("etcd3", "ringkv1", "ringkv3") if any(r["side"] == s for r in runs)]
workloads = []
for r in runs:
    if r["workload"] not in workloads:
        workloads.append(r["workload"])
ref = "etcd3" if mode == "compare" else "ringkv1"
if ref not in sides:
    ref = None

def get(side, workload, rnd):
    for r in runs:
        if (r["side"], r["workload"], r["round"]) == (side, workload, rnd):
            return r["result"]
    return None

def us(v):
    return "%.0f" % v if v >= 100 else "%.1f" % v

print("Per round (put/s, p50 / p99 in µs):")
print()
head = ["round", "workload"]
for s in sides:
    head += ["%s put/s" % s, "%s p50" % s, "%s p99" % s]
if ref and len(sides) > 1:
    head.append("ringkv3 / %s" % ref)
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
rnds = sorted({r["round"] for r in runs})
for w in workloads:
    for n in rnds:
        row = [str(n), w]
        for s in sides:
            r = get(s, w, n)
            row += [("%.0f" % r["ops_per_sec"], us(r["latency_us"]["p50"]),
                     us(r["latency_us"]["p99"])) if r else ("-", "-", "-")][0]
        if ref and len(sides) > 1:
            a, b = get("ringkv3", w, n), get(ref, w, n)
            row.append("%.2fx" % (a["ops_per_sec"] / b["ops_per_sec"])
                       if a and b and b["ops_per_sec"] > 0 else "n/a")
        print("| " + " | ".join(row) + " |")
print()
print("Medians over %s rounds (ratio: median of the per-round put/s ratios):" % rounds)
print()
head = ["workload"]
for s in sides:
    head += ["%s put/s" % s, "%s p50 µs" % s, "%s p99 µs" % s]
if ref and len(sides) > 1:
    head.append("ringkv3 / %s" % ref)
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
verdicts = []
errors = []
for w in workloads:
    row = [w]
    med = {}
    for s in sides:
        rs = [r["result"] for r in runs if r["side"] == s and r["workload"] == w]
        med[s] = {k: statistics.median(f(r) for r in rs) for k, f in (
            ("ops", lambda r: r["ops_per_sec"]), ("p50", lambda r: r["latency_us"]["p50"]),
            ("p99", lambda r: r["latency_us"]["p99"]))}
        row += ["%.0f" % med[s]["ops"], us(med[s]["p50"]), us(med[s]["p99"])]
        for n in rnds:
            r = get(s, w, n)
            if r and r.get("errors"):
                errors.append("%s %s round %d: %d errors %s" % (
                    s, w, n, r["errors"], json.dumps(r.get("errors_by_status", {}))))
            cpu = [x.get("load_cpu", 0) for x in runs
                   if (x["side"], x["workload"], x["round"]) == (s, w, n)]
            if cpu and cpu[0] > 0.85:
                errors.append("%s %s round %d: the load generator used %.0f%% of its CPU "
                              "(warm-up and start-up included): it may be the limit" % (
                                  s, w, n, 100 * cpu[0]))
    if ref and len(sides) > 1:
        ratios = []
        for n in rnds:
            a, b = get("ringkv3", w, n), get(ref, w, n)
            if a and b and b["ops_per_sec"] > 0:
                ratios.append(a["ops_per_sec"] / b["ops_per_sec"])
        ratio = statistics.median(ratios) if ratios else None
        row.append("%.2fx" % ratio if ratio is not None else "n/a")
        if ratio is not None:
            if mode == "compare":
                goal = 5.0 if w == "put-p1" else 10.0
                p99_ok = med["ringkv3"]["p99"] <= med["etcd3"]["p99"]
                verdicts.append("%s: %.2fx etcd's put/s (target %.0fx: %s), p99 %s µs against %s "
                                "(target no worse: %s)" % (
                                    w, ratio, goal, "met" if ratio >= goal else "NOT met",
                                    us(med["ringkv3"]["p99"]), us(med["etcd3"]["p99"]),
                                    "met" if p99_ok else "NOT met"))
            else:
                verdicts.append("%s: 3 nodes at %.2fx one node's put/s (target 0.5x: %s)" % (
                    w, ratio, "met" if ratio >= 0.5 else "NOT met"))
    print("| " + " | ".join(row) + " |")
print()
print("%s connections, %s keys, %s-byte values, PUT only, %s s measured after %s s "
      "warm-up per run; data under %s." % (connections, keys, value_size, duration, warmup,
                                           data_root))
print("ringkv3: 3 x ringkvd --cores 1, R=3, load through the %s path%s, ringkv-bench." % (
    ringkv_path, " (--shards 1, all load to the leader)" if ringkv_path == "leader" else ""))
if "etcd3" in sides:
    print("etcd3: 3 x etcd (WAL fdatasync'ed before a write is acknowledged, etcd's default), "
          "etcd-load (clientv3, gRPC) to the leader.")
if "ringkv1" in sides:
    print("ringkv1: one ringkvd --cores 1 (a one-node cluster, fdatasync before the answer), "
          "ringkv-bench.")
cpu = {}
for r in runs:
    cpu.setdefault((r["side"], r["workload"]), []).append(r.get("load_cpu", 0))
print("Load generator CPU (median over rounds, start-up and warm-up included): " + ", ".join(
    "%s %s %.0f%%" % (s, w, 100 * statistics.median(v)) for (s, w), v in sorted(cpu.items())))
if pin == "1":
    print("Servers pinned to CPU %s, load generator to CPU %s (%s CPUs)." % (
        server_cpus, bench_cpus, ncpu))
else:
    print("Not pinned (%s CPU)." % ncpu)
print()
print("Log fdatasyncs per node during each run (warm-up included), median over rounds; "
      "writes per fdatasync = measured put/s / the busiest node's fdatasyncs/s:")
for s in sides:
    for w in workloads:
        rs = [r for r in runs if r["side"] == s and r["workload"] == w]
        per_node = []
        for r in rs:
            f = r.get("fsyncs_per_node") or []
            if f and all(x is not None for x in f):
                per_node.append(f)
        if not per_node:
            print("- %s %s: no fsync counts (metrics not readable)" % (s, w))
            continue
        nodes = [statistics.median(f[i] for f in per_node) for i in range(len(per_node[0]))]
        wps = [r["result"]["ops_per_sec"] / (max(r["fsyncs_per_node"]) / r["run_s"])
               for r in rs if r.get("fsyncs_per_node") and all(x is not None for x in r["fsyncs_per_node"])
               and max(r["fsyncs_per_node"]) > 0 and r.get("run_s")]
        print("- %s %s: %s fdatasyncs; about %s writes per fdatasync" % (
            s, w, " / ".join("%.0f" % n for n in nodes),
            "%.1f" % statistics.median(wps) if wps else "n/a"))
print()
for v in verdicts:
    print("- " + v)
for e in errors:
    print("- warning: " + e)
EOF
echo "$prog: raw results in $runs, logs in $out" >&2
