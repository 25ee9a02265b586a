#!/usr/bin/env bash
# The plot of perf/many-groups.sh: from DIR/many-groups.tsv (idle rows:
# "idle COUNT NODE CPU% RSS_KIB ...") and DIR/many-groups-tput.tsv ("ROUND
# SPREAD PUT/s CPU_US_PER_PUT LOAD"), writes DIR/many-groups.png with
# gnuplot: left, each node's idle CPU (percent of one CPU) and RSS against
# the replicas per node, log scale, with issue #18's 5% line; right, the
# median PUT/s and CPU per PUT against the shards the writes spread over.
#
#   perf/many-groups-plot.sh DIR
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/perf/lib.sh"
value_options=()
dir=
other_option() {
	case "$1" in
	-*) die "unknown option $1 (see --help)" ;;
	*) dir=$1; taken=1 ;;
	esac
}
parse_options "$@"
{ [ -n "$dir" ] && [ -d "$dir" ]; } || die "give the directory perf/many-groups.sh wrote into"
command -v gnuplot >/dev/null || die "needs gnuplot (perf/deps.sh)"

# Idle: per count, the mean and the largest of the nodes' CPU; mean RSS MiB.
awk '$1 == "idle" { c[$2] += $4; k[$2]++; m[$2] += $5 / 1024
		if ($4 > x[$2]) x[$2] = $4 }
	END { for (n in c) printf "%d %.3f %.3f %.1f\n", n, c[n] / k[n], x[n], m[n] / k[n] }' \
	"$dir/many-groups.tsv" | sort -n >"$dir/plot-idle.dat"
# Throughput: per spread, the medians over rounds.
awk "$awk_median"'{ o[$2] = o[$2] " " $3; c[$2] = c[$2] " " $4 }
	END { for (s in o) printf "%d %.0f %.2f\n", s, med(o[s]), med(c[s]) }' \
	"$dir/many-groups-tput.tsv" | sort -n >"$dir/plot-tput.dat"

gnuplot <<GP
set terminal pngcairo size 1100,420 font "sans,10"
set output "$dir/many-groups.png"
set multiplot layout 1,2
set title "Idle 3-node cluster, R = 3: cost per node"
set logscale x
set xlabel "replicas per node"
set ylabel "CPU, % of one CPU (60 s, /proc/PID/stat)"
set y2label "RSS, MiB"
set ytics nomirror
set y2tics
stats "$dir/plot-idle.dat" using 3 nooutput
set yrange [0:(STATS_max > 5 ? 1.2 * STATS_max : 6)]
set y2range [0:*]
set key top left
set grid
plot "$dir/plot-idle.dat" using 1:2 with linespoints lw 2 title "CPU, mean of nodes", \
     "" using 1:3 with points pt 2 title "CPU, busiest node", \
     5 with lines dt 2 lc rgb "red" title "target 5%", \
     "" using 1:4 axes x1y2 with linespoints dt 3 title "RSS, mean of nodes"
set title "PUT throughput against the shards the load spreads over"
set xlabel "shards the keys fall in (3 = one per core)"
set ylabel "PUT/s (median)"
set yrange [0:*]
set y2label "nodes' CPU µs per PUT (median)"
plot "$dir/plot-tput.dat" using 1:2 with linespoints lw 2 title "PUT/s", \
     "" using 1:3 axes x1y2 with linespoints dt 3 title "CPU µs/PUT"
unset multiplot
GP
