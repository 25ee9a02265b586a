#!/usr/bin/env bash
# storage-bench beside RocksDB's db_bench (Debian: rocksdb-tools), same
# workload, same machine, same run: fillrandom then readrandom on a fresh
# directory each time, both pinned to the same CPU, the order of the two
# alternating from round to round. Prints each round's ops/s, the per-round
# ratios storage-bench / db_bench, their medians, and peak RSS.
#
#   perf/storage/vs-db_bench.sh [--rounds N] [--num N] [--cpu CPU] [--sync]
#                               [--dir DIR] [-- EXTRA STORAGE-BENCH FLAGS]
#
# --sync passes --sync=1 to both: an fdatasync per write (db_bench) or per
# group of writes (storage-bench; one write in flight unless --inflight).
#
# Environment: STORAGE_BENCH (default build/perf/storage/ringkv-storage-bench),
# DB_BENCH (default db_bench).
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=5
num=1000000
cpu=1
dir=${TMPDIR:-/tmp}
storage_bench=${STORAGE_BENCH:-$root/build/perf/storage/ringkv-storage-bench}
db_bench=${DB_BENCH:-db_bench}
extra=()
sync_flag=()

# usage, die, parse_options
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

value_options=(rounds num cpu dir)
other_option() {
	case $1 in
	--sync) sync_flag=(--sync=1); taken=1 ;;
	--) extra=("${@:2}"); taken=$# ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
}
parse_options "$@"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[ -x "$storage_bench" ] || die "no storage-bench at $storage_bench (ninja -C build)"
command -v "$db_bench" >/dev/null || die "db_bench not found (apt-get install rocksdb-tools)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"

work=$(mktemp -d "$dir/vs-db_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
flags=(--benchmarks=fillrandom,readrandom --num="$num" --key_size=16 --value_size=100
       --compression_type=none)

# run NAME BINARY [FLAGS...]: prints "NAME fill read maxrss_kib"
run() {
	local name=$1 bin=$2 out
	shift 2
	rm -rf "$work/db"
	sync
	out=$(/usr/bin/time -f "maxrss %M" taskset -c "$cpu" "$bin" "${flags[@]}" \
		${sync_flag[@]+"${sync_flag[@]}"} --db="$work/db" "$@" 2>&1) || die "$name failed: $out"
	awk -v name="$name" '
		/^fillrandom/ { for (i = 1; i <= NF; i++) if ($i == "ops/sec") fill = $(i - 1) }
		/^readrandom/ { for (i = 1; i <= NF; i++) if ($i == "ops/sec") read = $(i - 1) }
		/^maxrss/ { rss = $2 }
		END { if (fill == "" || read == "") exit 1; print name, fill, read, rss }' <<<"$out" ||
		die "$name printed no fillrandom/readrandom line: $out"
}

results=$work/results
: >"$results"
for round in $(seq "$rounds"); do
	if [ $((round % 2)) -eq 1 ]; then
		order=(db_bench storage-bench)
	else
		order=(storage-bench db_bench)
	fi
	for side in "${order[@]}"; do
		echo "$prog: round $round: $side" >&2
		if [ "$side" = db_bench ]; then
			line=$(run db_bench "$db_bench")
		else
			line=$(run storage-bench "$storage_bench" ${extra[@]+"${extra[@]}"})
		fi
		echo "$round $line" >>"$results"
	done
done

python3 - "$results" "$num" "$cpu" "${#sync_flag[@]}" <<'EOF'
import statistics, sys
path, num, cpu, synced = sys.argv[1:5]
rows = {}
for line in open(path):
    rnd, side, fill, read, rss = line.split()
    rows.setdefault(int(rnd), {})[side] = (float(fill), float(read), int(rss) / 1024)
print("| round | db_bench fillrandom | storage-bench fillrandom | ratio "
      "| db_bench readrandom | storage-bench readrandom | ratio "
      "| peak RSS db_bench / storage-bench |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
fr, rr = [], []
for rnd in sorted(rows):
    d, s = rows[rnd]["db_bench"], rows[rnd]["storage-bench"]
    fr.append(s[0] / d[0])
    rr.append(s[1] / d[1])
    print("| %d | %.0f | %.0f | %.2fx | %.0f | %.0f | %.2fx | %.1f / %.1f MiB |" % (
        rnd, d[0], s[0], fr[-1], d[1], s[1], rr[-1], d[2], s[2]))
print("| **median** | | | **%.2fx** | | | **%.2fx** | |" % (
    statistics.median(fr), statistics.median(rr)))
print()
print("%s keys, 16-byte keys, 100-byte values, no compression, %s; both "
      "pinned to CPU %s; order alternating by round." % (
          num, "--sync=1" if synced != "0" else "no fsync per write", cpu))
EOF
