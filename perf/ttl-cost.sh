#!/usr/bin/env bash
# What a deadline costs GET and SET (issue #21's "expiry costs nothing
# measurable on the GET/SET path: same run, keys with and without TTL").
#
# One ringkvd (--cores 1, pinned to the last CPU; redis-benchmark to the
# first) holds KEYS keys plain:N without a deadline and KEYS keys ttl:N
# with one far in the future (SET ... EX 1000000). Then, round by round,
# the two kinds alternate (plain first in odd rounds, ttl first in even
# ones), each kind measured with GET then SET (SET of a ttl key keeps a
# deadline: SET ... EX 1000000): ops/s and the server's CPU time per
# request (utime + stime from /proc/PID/stat around each run, which the
# machine's other load inflates far less than wall time). The table gives
# medians and the median of the per-round ratios ttl/plain.
#
# usage: perf/ttl-cost.sh [--rounds N] [--requests N] [--keys N] [--clients N]
#                         [--ringkvd PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
prog=perf/ttl-cost.sh

rounds=6 requests=100000 keys=50000 clients=50
ringkvd=${RINGKVD:-build/server/ringkvd}
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--keys) keys=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--ringkvd) ringkvd=$2; shift 2 ;;
	*) echo "usage: $prog [--rounds N] [--requests N] [--keys N] [--clients N] [--ringkvd PATH]" >&2
	   exit 2 ;;
	esac
done
# shellcheck source=perf/lib.sh
. perf/lib.sh
in_range "$rounds" 1 50 || die "--rounds: 1 to 50"
for tool in redis-benchmark redis-cli python3 taskset; do
	command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh installs it)"
done
[ -x "$ringkvd" ] || die "no ringkvd at $ringkvd: build first (scripts/build.sh)"

pin_setup
server_cpu=$((ncpu - 1))
work=$(mktemp -d /tmp/ringkv-ttl-cost-XXXXXX)
out=$work/ringkvd.log
server_pid=
trap '[ -n "$server_pid" ] && stop_pids "$server_pid"; rm -rf "$work"' EXIT

port=$(free_port)
(pinned "$server_cpu" "$ringkvd" --cores 1 --listen 127.0.0.1:0 \
	--resp-listen "127.0.0.1:$port" --data-dir "$work/data" >"$out" 2>&1) &
server_pid=$!
wait_listening "$port" ringkvd
hz=$(getconf CLK_TCK)

bench() { # ARGS... -> "rps ticks"
	local t0 t1
	t0=$(cpu_ticks "$server_pid")
	(pinned 0 redis-benchmark -p "$port" -n "$requests" -c "$clients" -r "$keys" --csv "$@") \
		>"$work/out.csv" 2>"$work/err.txt"
	t1=$(cpu_ticks "$server_pid")
	python3 -c 'import csv,sys
rows=[r for r in csv.reader(open(sys.argv[1])) if r and r[0] != "test"]
print(rows[-1][1])' "$work/out.csv" | tr -d '\n'
	echo " $((t1 - t0))"
}

# Load: every key of both kinds (redis-benchmark's -r picks keys at random,
# so a sequential pipelined load fills them all).
python3 - "$port" "$keys" <<'PY'
import socket, sys
port, keys = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
for kind, extra in ((b"plain", ()), (b"ttl", (b"EX", b"1000000"))):
    for start in range(0, keys, 1000):
        batch = [cmd(b"SET", b"%s:%012d" % (kind, i), b"x" * 16, *extra)
                 for i in range(start, min(keys, start + 1000))]
        s.sendall(b"".join(batch))
        want, got = len(batch) * 5, b""
        while len(got) < want:
            got += s.recv(65536)
PY

results=$work/results.tsv
: >"$results"
for round in $(seq "$rounds"); do
	if [ $((round % 2)) = 1 ]; then order="plain ttl"; else order="ttl plain"; fi
	for kind in $order; do
		extra=()
		[ "$kind" = ttl ] && extra=(EX 1000000)
		read -r rps ticks < <(bench GET "$kind:__rand_int__")
		echo -e "$round\t$kind\tGET\t$rps\t$ticks" >>"$results"
		read -r rps ticks < <(bench SET "$kind:__rand_int__" xxxxxxxxxxxxxxxx "${extra[@]}")
		echo -e "$round\t$kind\tSET\t$rps\t$ticks" >>"$results"
	done
	echo "round $round done" >&2
done

python3 - "$results" "$requests" "$hz" "$rounds" "$keys" "$clients" <<'PY'
import statistics, sys
path, n, hz, rounds, keys, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
d = {}
for line in open(path):
    rnd, kind, test, rps, ticks = line.split()
    d[(test, kind, int(rnd))] = (float(rps), int(ticks) / hz / n * 1e6)
print(f"ringkvd --cores 1, {keys} keys of each kind, redis-benchmark -n {n} -c {clients} "
      f"-r {keys}, {rounds} rounds alternated; medians, ratio = median of per-round ttl/plain")
print()
print("| test | kind | ops/s | server CPU us/op | ops/s ratio | CPU/op ratio |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for test in ("GET", "SET"):
    rs = sorted({k[2] for k in d if k[0] == test})
    for kind in ("plain", "ttl"):
        v = [d[(test, kind, r)] for r in rs]
        row = f"| {test} | {kind} | {statistics.median(x[0] for x in v):,.0f} | " \
              f"{statistics.median(x[1] for x in v):.1f} |"
        if kind == "ttl":
            rr = [d[(test, "ttl", r)][0] / d[(test, "plain", r)][0] for r in rs]
            cr = [d[(test, "ttl", r)][1] / d[(test, "plain", r)][1] for r in rs
                  if d[(test, "plain", r)][1] > 0]
            row += f" {statistics.median(rr):.3f} | {statistics.median(cr):.3f} |"
        else:
            row += " | |"
        print(row)
PY
