#!/usr/bin/env bash
# Instructions per request, ringkvd beside Redis (issue #20): a figure free
# of the machine's noise. Each server runs under valgrind's callgrind, which
# counts the instructions it executes (Ir); redis-benchmark, the same client
# for both, sends a fixed number of requests of one kind to its RESP port,
# and the server's count over exactly that phase (callgrind_control --zero
# before, --dump after) divided by the requests is the figure.
#
#   ringkvd  --cores 1 (a one-node cluster: every SET goes through Raft and
#            the per-core log, durable before it is answered)
#   redis    redis-server --appendonly yes --appendfsync always (durable
#            before it is answered, the same promise)
#   ringkvd3 with --cluster: the leader of a 3-node cluster (--cores 1,
#            --shards 1, R = 3) under callgrind, its two followers run
#            natively; GETs are linearizable (ReadIndex). Election timeouts
#            of 10 s keep the slowed leader in office.
#
# Phases, per server: a prefill (SETs over the key space, not counted), then
# for each pipeline depth a SET phase and a GET phase of --requests
# requests (keys drawn from --keys, so GETs hit), and last an idle phase
# (no requests, as long as the longest request phase): the idle rate
# (timers, heartbeats, Redis's serverCron) times a phase's length is taken
# off that phase's count, so what remains is the work the requests caused.
# Under callgrind a server runs 20-50 times slower than natively; the
# request counts stay small (the defaults take about 15 minutes).
#
#   perf/instructions.sh [--requests N] [--keys N] [--connections N]
#                        [--pipelines "1 16"] [--value-size B]
#                        [--out DIR] [--annotate] [--cluster]
#
# Defaults: 10,000 requests per phase, 10,000 keys, 50 connections,
# pipelines 1 and 16, 100-byte values. Prints a table: Ir per request for
# each server and their ratio. --annotate also writes each phase's
# functions by instructions spent in them and what they call (inclusive
# callgrind_annotate) to DIR. Run it on a binary nobody rebuilds meanwhile
# (callgrind reads symbols lazily).
#
# Environment: RINGKVD (default build/server/ringkvd), RINGKV (the CLI,
# default build/tools/ringkv; --cluster reads the leader from it).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)

requests=10000
keys=10000
connections=50
pipelines="1 16"
value_size=100
out=
annotate=0
cluster=0
ringkvd=${RINGKVD:-$root/build/server/ringkvd}
cli=${RINGKV:-$root/build/tools/ringkv}
followers=()
server_pid=
# usage, die, parse_options, in_range, stop_pids, stop_server, free_port,
# wait_listening
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(requests keys connections pipelines value_size out)
other_option() {
	case $1 in
	--annotate) annotate=1; taken=1 ;;
	--cluster) cluster=1; taken=1 ;;
	*) echo "$prog: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
}
parse_options "$@"

in_range "$requests" 100 10000000 || die "--requests must be 100..10000000"
in_range "$keys" 1 100000000 || die "--keys must be 1..100000000"
in_range "$connections" 1 10000 || die "--connections must be 1..10000"
in_range "$value_size" 1 1048576 || die "--value-size must be 1..1048576"
for p in $pipelines; do
	in_range "$p" 1 1024 || die "--pipelines takes depths from 1 to 1024"
done
[ -x "$ringkvd" ] || die "ringkvd not found at $ringkvd (build with: ninja -C build)"
for tool in valgrind callgrind_control redis-server redis-benchmark python3; do
	command -v "$tool" >/dev/null || die "$tool is needed (perf/deps.sh installs it)"
done

if [ -z "$out" ]; then
	out=$root/perf/out/instructions-$(date +%Y%m%d-%H%M%S)
fi
mkdir -p "$out"
results=$out/phases.tsv
: >"$results"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-instructions.XXXXXX")
cleanup() {
	stop_server
	[ ${#followers[@]} -eq 0 ] || stop_pids "${followers[@]}"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The newest of a server's numbered dumps (NAME.cg.out.1, .2, ...).
newest_dump() {
	find "$out" -maxdepth 1 -name "$1.cg.out.*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-
}

# The newest dump's instruction count ("summary:" of callgrind's output).
last_dump_ir() {
	local f
	f=$(newest_dump "$1")
	[ -n "$f" ] || die "callgrind wrote no dump for $1"
	awk '/^summary:/ { print $2 }' "$f"
}

# Runs "$@" (a phase's load, or a sleep) between a zero and a dump of the
# server's counts; appends "server phase requests seconds Ir" to results.
phase() { # SERVER PHASE REQUESTS CMD...
	local server=$1 name=$2 n=$3 t0 t1 ir f
	shift 3
	callgrind_control --zero "$server_pid" >/dev/null 2>&1
	t0=$(date +%s.%N)
	"$@" >"$out/$server-$name.load" 2>&1 || die "$server $name: the load failed (see $out/$server-$name.load)"
	t1=$(date +%s.%N)
	callgrind_control --dump="$name" "$server_pid" >/dev/null 2>&1
	# The dump is written by the server's own threads: wait for the file.
	for _ in $(seq 100); do
		f=$(newest_dump "$server")
		[ -n "$f" ] && grep -q "^desc: Trigger: dump $name\$" "$f" && break
		sleep 0.1
	done
	ir=$(last_dump_ir "$server")
	if [ "$annotate" = 1 ]; then
		callgrind_annotate --inclusive=yes "$f" >"$out/$server-$name.annotate" 2>/dev/null || true
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$server" "$name" "$n" \
		"$(python3 -c "print(round($t1 - $t0, 3))")" "$ir" >>"$results"
}

bench() { # PORT TEST REQUESTS PIPELINE
	redis-benchmark -h 127.0.0.1 -p "$1" -t "$2" -n "$3" -P "$4" -c "$connections" \
		-r "$keys" -d "$value_size" -q
}

run_server() { # NAME
	local name=$1 port data p longest=0 secs
	port=$(free_port)
	data=$tmp/$name
	mkdir -p "$data"
	rm -f "$out/$name".cg.out*
	case $name in
	ringkvd)
		valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg.out" \
			"$ringkvd" --cores 1 --listen 127.0.0.1:0 --resp-listen "127.0.0.1:$port" \
			--data-dir "$data" --log-level warn >"$out/$name.log" 2>&1 &
		;;
	ringkvd3)
		# Nodes 2 and 3 natively, node 1 (shard 0's first leader) under
		# callgrind; all on 127.0.0.1, ports of their own.
		local ic="" i peer=() client=()
		for i in 1 2 3; do
			peer[i]=$(free_port)
			client[i]=$(free_port)
			ic+="${ic:+,}$i=127.0.0.1:${peer[i]}"
		done
		for i in 2 3; do
			mkdir -p "$data/n$i"
			"$ringkvd" --node-id "$i" --initial-cluster "$ic" --cluster-token instr \
				--cores 1 --shards 1 --election-timeout 10s \
				--listen "127.0.0.1:${client[i]}" --resp-listen "127.0.0.1:$(free_port)" \
				--data-dir "$data/n$i" --log-level warn >"$out/$name-n$i.log" 2>&1 &
			followers+=($!)
		done
		mkdir -p "$data/n1"
		valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg.out" \
			"$ringkvd" --node-id 1 --initial-cluster "$ic" --cluster-token instr \
			--cores 1 --shards 1 --election-timeout 10s \
			--listen "127.0.0.1:${client[1]}" --resp-listen "127.0.0.1:$port" \
			--data-dir "$data/n1" --log-level warn >"$out/$name.log" 2>&1 &
		leader_addr=127.0.0.1:${client[1]}
		;;
	redis)
		valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg.out" \
			redis-server --port "$port" --bind 127.0.0.1 --appendonly yes \
			--appendfsync always --save '' --dir "$data" --daemonize no \
			>"$out/$name.log" 2>&1 &
		;;
	esac
	server_pid=$!
	# Start-up under callgrind is slow: up to 60 s.
	for _ in $(seq 6); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 10)" \
			2>/dev/null && break
		kill -0 "$server_pid" 2>/dev/null || die "$name exited at start-up (log in $out)"
		sleep 10
	done
	wait_listening "$port" "$name"
	if [ "$name" = ringkvd3 ]; then
		for _ in $(seq 60); do
			"$cli" -a "$leader_addr" -t 10 --json cluster status 2>/dev/null |
				python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["shards"][0]["leader"] == 1 else 1)' &&
				break
			sleep 2
		done
		"$cli" -a "$leader_addr" -t 10 --json cluster status 2>/dev/null |
			python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["shards"][0]["leader"] == 1 else 1)' ||
			die "$name: node 1 does not lead shard 0 (logs in $out)"
	fi
	bench "$port" set $((keys * 3)) 16 >"$out/$name-prefill.load" 2>&1 ||
		die "$name: the prefill failed (see $out/$name-prefill.load)"
	for p in $pipelines; do
		phase "$name" "set-p$p" "$requests" bench "$port" set "$requests" "$p"
		phase "$name" "get-p$p" "$requests" bench "$port" get "$requests" "$p"
	done
	longest=$(awk -v s="$name" '$1 == s && $4 > m { m = $4 } END { print int(m + 1) }' "$results")
	phase "$name" idle 0 sleep "$longest"
	stop_server
	if [ ${#followers[@]} -gt 0 ]; then
		stop_pids "${followers[@]}"
		followers=()
	fi
}

servers=(ringkvd redis)
[ "$cluster" = 1 ] && servers=(ringkvd ringkvd3 redis)
[ "$cluster" = 0 ] || [ -x "$cli" ] || die "ringkv (the CLI) not found at $cli"
for server in "${servers[@]}"; do
	echo "$prog: $server under callgrind ..." >&2
	run_server "$server"
done

python3 - "$results" "$requests" "$keys" "$connections" "$value_size" <<'EOF'
import sys
path, requests, keys, conns, size = sys.argv[1:6]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
idle = {}
for server, name, n, secs, ir in rows:
    if name == "idle":
        idle[server] = int(ir) / max(float(secs), 0.001)
per = {}
for server, name, n, secs, ir in rows:
    if name == "idle":
        continue
    work = int(ir) - idle.get(server, 0) * float(secs)
    per[(server, name)] = work / int(n)
names = [name for server, name, n, s, i in rows if server == "ringkvd" and name != "idle"]
print("%s requests per phase, %s keys, %s connections, %s-byte values (redis-benchmark)."
      % (requests, keys, conns, size))
sides = [s for s in ("ringkvd", "ringkvd3") if s in idle]
print("Idle Ir/s taken off each phase: " +
      ", ".join("%s %.0f" % (s, idle[s]) for s in sides + ["redis"] if s in idle) + ".")
print()
label = {"ringkvd": "ringkvd", "ringkvd3": "3-node leader"}
head = "| workload | " + " | ".join(label[s] + " Ir/request" for s in sides) + \
    " | redis Ir/request | " + " | ".join(label[s] + " / redis" for s in sides) + " |"
print(head)
print("|" + " --- |" + " ---: |" * (2 * len(sides) + 1))
for name in names:
    b = per.get(("redis", name))
    vals = [per.get((s, name)) for s in sides]
    if b is None or any(v is None for v in vals):
        continue
    print("| %s | %s | %.0f | %s |" % (name.upper(), " | ".join("%.0f" % v for v in vals), b,
                                      " | ".join("%.2f" % (v / b) for v in vals)))
EOF
echo "$prog: phases in $results, callgrind dumps in $out" >&2
