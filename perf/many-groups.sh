#!/usr/bin/env bash
# Idle cost against the number of groups (issue #18's table, its idle part):
# for each replica count in --counts, and for each ringkvd given (A/B, the
# rounds alternated: A B A B ...), runs perf/idle-cpu.sh (3 nodes, R = 3,
# --shards N: N replicas per node) and prints one line per run: the build,
# the count, the round, the mean CPU of the three nodes (percent of one
# CPU, utime + stime from /proc/PID/stat) and their mean RSS; then, per
# count, the median over rounds of each build and, with two builds, the
# median of the per-round ratios B/A.
#
#   perf/many-groups.sh [--counts "100 1000"] [--rounds R] [--settle S]
#       [--duration S] [--cores C] RINGKVD [RINGKVD_B]
#
# Not measured here (left for later, see docs/PERFORMANCE.md): write
# throughput spread over many shards, start-up time, memory per idle replica
# excluding data. Failover of sleeping groups: meson test sleeping-groups.
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"

counts="100 1000"
rounds=2
settle=15
duration=20
cores=2
value_options=(counts rounds settle duration cores)
bins=()
other_option() {
	case "$1" in
	-*) die "unknown option $1 (see --help)" ;;
	*) bins+=("$1"); taken=1 ;;
	esac
}
parse_options "$@"
[ ${#bins[@]} -ge 1 ] && [ ${#bins[@]} -le 2 ] || die "give one or two ringkvd binaries"
in_range "$rounds" 1 50 || die "--rounds: 1 to 50"
for b in "${bins[@]}"; do [ -x "$b" ] || die "not executable: $b"; done
cli=${RINGKV_CLI:-$root/build/tools/ringkv}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
printf '%-6s %8s %6s %10s %10s\n' build count round "cpu %" "rss MiB"
for n in $counts; do
	for r in $(seq "$rounds"); do
		for i in "${!bins[@]}"; do
			label=$([ "$i" = 0 ] && echo A || echo B)
			out=$(RINGKVD=${bins[$i]} RINGKV_CLI=$cli "$root/perf/idle-cpu.sh" \
				--shards "$n" --cores "$cores" --settle "$settle" --duration "$duration")
			read -r cpu rss < <(echo "$out" | awk 'NR > 1 { c += $2; m += $3; k++ }
				END { printf "%.2f %.1f\n", c / k, m / k }')
			printf '%-6s %8s %6s %10s %10s\n' "$label" "$n" "$r" "$cpu" "$rss"
			echo "$n $r $label $cpu $rss" >>"$results"
		done
	done
done
echo
echo "medians over $rounds round(s):"
for n in $counts; do
	awk -v n="$n" '$1 == n { v[$3] = v[$3] " " $4; r[$2, $3] = $4 }
		function med(s,   a, k, i, j, t) {
			k = split(s, a, " ")
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
				if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		}
		END {
			line = sprintf("  %6d replicas/node: A %s%%", n, med(v["A"]))
			if ("B" in v) {
				rs = ""
				for (key in r) {
					split(key, p, SUBSEP)
					if (p[2] == "B" && r[p[1], "A"] > 0)
						rs = rs " " r[key] / r[p[1], "A"]
				}
				line = line sprintf(", B %s%%, median B/A %.2f", med(v["B"]), med(rs))
			}
			print line
		}' "$results"
done
