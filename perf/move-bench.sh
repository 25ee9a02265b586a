#!/usr/bin/env bash
# Moves one replica of a shard holding --size MiB under client load and
# reports what the move cost: snapshot bytes, the move's time, the rate it
# achieved against the --rate asked, and client put/s and p99 before and
# during the move (issue #17's performance item; figures in docs/PERFORMANCE.md).
#
#   perf/move-bench.sh [--size MIB] [--value-size B] [--rate BYTES/s]
#       [--connections N] [--slice S] [--memtable BYTES] [--server-cpus LIST]
#       [--bench-cpus LIST] [RINGKVD]
#
# Four nodes (127.0.16.41-44, client ports 36401-36404, peers 36411-36414),
# one core each, one shard with R = 3 on nodes 1, 2, 3, --memtable-size
# --memtable (default 16MiB) and --snapshot-lag 1024: tables flush and the
# leader keeps no log for a replica that far behind, so the new replica
# gets a snapshot, as it would after a day of writes. The shard is filled
# with --size MiB of distinct keys (--value-size, default 65536, keys of 24
# bytes, written twice over at random: about 86% distinct); then client
# load (--connections closed-loop PUTs of 100-byte values on other keys,
# routed to the leader) runs in slices of --slice seconds (default 2):
# five slices before the move, then slices while `ringkv shard move 0
# --from 3 --to 4 --wait --rate RATE` runs. Default --rate 32M (k, M, G:
# powers of 1024). Servers on --server-cpus (default 0), the load and the
# fill on --bench-cpus (default 1); data under $TMPDIR or /var/tmp, removed
# at the end (kept, for a look at the logs, with MOVE_BENCH_KEEP=1).
# RINGKVD defaults to build/server/ringkvd.
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
size=1024 value_size=65536 rate=32M connections=8 slice=2 server_cpus=0 bench_cpus=1
memtable=16MiB
bench=${RINGKV_BENCH:-$root/build/perf/bench/ringkv-bench}
cli=${RINGKV_CLI:-$root/build/tools/ringkv}
ringkvd=$root/build/server/ringkvd
data_root=${TMPDIR:-/var/tmp}

# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(size value_size rate connections slice server_cpus bench_cpus memtable)
other_option() {
	case $1 in
	-*) echo "$prog: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) ringkvd=$1; taken=1 ;;
	esac
}
parse_options "$@"
in_range "$size" 1 65536 || die "--size must be 1..65536 MiB"
in_range "$value_size" 1024 1048576 || die "--value-size must be 1024..1048576"
in_range "$connections" 1 1000 || die "--connections must be 1..1000"
in_range "$slice" 1 60 || die "--slice must be 1..60 seconds"
for f in "$ringkvd" "$bench" "$cli"; do [ -x "$f" ] || die "$f: not an executable"; done
command -v python3 >/dev/null || die "python3 is needed to read the move's JSON"
pin_setup

tmp=$(mktemp -d "$data_root/move-bench.XXXXXX")
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
	if [ -n "${MOVE_BENCH_KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

ic=""
for i in 1 2 3 4; do ic+="${ic:+,}$i=127.0.16.4$i:$((36410 + i))"; done
for i in 1 2 3 4; do
	mkdir -p "$tmp/n$i"
	(pinned "$server_cpus" "$ringkvd" --node-id "$i" --initial-cluster "$ic" \
		--cluster-token "move-bench" --cores 1 --shards 1 --replicas 3 \
		--memtable-size "$memtable" --snapshot-lag 1024 \
		--listen "127.0.16.4$i:$((36400 + i))" --data-dir "$tmp/n$i" \
		--log-level warn >"$tmp/n$i.log" 2>&1) &
	pids+=($!)
done
addr=127.0.16.41:36401
ok=0
for _ in $(seq 60); do
	"$cli" -a "$addr" -t 2 put move-bench-probe ok >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.5
done
[ "$ok" = 1 ] || die "the cluster took no write within 30 s (logs in $tmp)"

# bench ARGS...: "put/s p50_us p99_us" of one PUT-only run.
bench_puts() {
	(pinned "$bench_cpus" "$bench" --addr "$addr" --ratio 0:1 "$@") 2>>"$tmp/bench.log" |
		awk '$1 == "put" { print $2, $4, $6 }'
}

keys=$((size * 1048576 / value_size))
echo "filling shard 0: $keys keys of $value_size bytes, written twice over"
t0=$(date +%s.%N)
bench_puts --keys "$keys" --key-size 24 --value-size "$value_size" --requests $((2 * keys)) \
	--warmup 0 --connections 16 --pipeline 4 --seed 7 >/dev/null
t1=$(date +%s.%N)
echo "filled in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s;" \
	"node 3's shard-0 directory: $(du -sm "$tmp/n3/shard-0" | cut -f1) MiB"

# load SECONDS_LEFT_FILE: slices of client load until the file goes away.
load_slices() {
	local n=0
	while [ -e "$1" ] || [ "$n" -lt 1 ]; do
		bench_puts --keys 100000 --key-size 16 --value-size 100 --duration "$slice" \
			--warmup 0 --connections "$connections" --seed $((100 + n))
		n=$((n + 1))
	done
}

echo "load before the move ($connections connections, 100-byte PUTs, $slice s slices):"
for s in 1 2 3 4 5; do
	bench_puts --keys 100000 --key-size 16 --value-size 100 --duration "$slice" \
		--warmup 0 --connections "$connections" --seed "$s"
done >"$tmp/before"
sed 's/^/  /' "$tmp/before"

running=$tmp/move-running
touch "$running"
load_slices "$running" >"$tmp/during" &
load_pid=$!
t0=$(date +%s.%N)
"$cli" -a "$addr" -t 10 shard move 0 --from 3 --to 4 --wait --rate "$rate" --json \
	>"$tmp/move.json" 2>"$tmp/move.err" || { rm -f "$running"; wait "$load_pid" || true;
	cat "$tmp/move.err" >&2; die "the move failed (logs in $tmp)"; }
t1=$(date +%s.%N)
rm -f "$running"
wait "$load_pid"
echo "load during the move:"
sed 's/^/  /' "$tmp/during"

python3 - "$tmp/move.json" "$t0" "$t1" "$rate" "$tmp/during" "$tmp/before" <<'EOF'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
last = lines[-1]
wall = float(sys.argv[3]) - float(sys.argv[2])
unit = {"k": 1 << 10, "M": 1 << 20, "G": 1 << 30}
r = sys.argv[4].replace("/s", "")
asked = float(r[:-1]) * unit[r[-1]] if r[-1] in unit else float(r)
# The final line (--json prints the move once it is over): bytes streamed,
# and the leader's rate over the catch-up (rate_bytes_per_s).
snap = max(last.get("snapshot_bytes", 0), last.get("snapshot_total", 0))
def slices(path):
    return [tuple(float(x) for x in l.split()) for l in open(path) if l.strip()]
during, before = slices(sys.argv[5]), slices(sys.argv[6])
print(f"move: phase {last['phase']}, snapshot {snap / 1048576:.1f} MiB, "
      f"{wall:.1f} s by the CLI ({last['elapsed_ms'] / 1000:.1f} s by the leader)")
print(f"snapshot stream: {last['rate_bytes_per_s'] / 1048576:.1f} MiB/s achieved "
      f"(the leader's measure), {asked / 1048576:.1f} MiB/s asked; "
      f"{snap / 1048576 / wall:.1f} MiB/s over the whole move")
for name, s in (("before", before), ("during", during)):
    if s:
        print(f"put/s {name} the move: median {statistics.median(x[0] for x in s):.0f}, "
              f"min {min(x[0] for x in s):.0f}; p99 median {statistics.median(x[2] for x in s):.0f} us "
              f"({len(s)} slices)")
if before and during:
    print(f"during/before put/s: {statistics.median(x[0] for x in during) / statistics.median(x[0] for x in before):.2f}")
EOF
echo "4 x ringkvd --cores 1 --shards 1 (R=3) on CPU $server_cpus, load on CPU $bench_cpus;" \
	"$size MiB asked, $value_size-byte values; move --rate $rate."
