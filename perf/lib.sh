# shellcheck shell=bash
# The caller sets these before using the helpers:
# shellcheck disable=SC2154
# Helpers for the perf/ scripts that start servers and drive them with
# ringkv-bench: `. "$root/perf/lib.sh"` after setting prog (the script's
# name, for messages); the helpers that need them also read pin (1:
# taskset, 0: not), server_pid and out (where the server logs go).
# compare.sh, cluster-compare.sh, cluster-ab.sh, metrics-cost.sh,
# resp-compare.sh, flamegraph.sh, idle-node-ab.sh, restart-storm.sh,
# replication-instructions.sh, replication-cpu.sh and
# storage/vs-db_bench.sh use it. Nothing
# here prints unless a script asks: the scripts' output is quoted in
# docs/PERFORMANCE.md and must not change.

# The lines from the second to `set -euo` of the script: its help.
usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

# Reads the command line. "--NAME VALUE" sets the variable NAME (dashes as
# underscores) when NAME is one of the caller's value_options; "--NAME"
# alone sets NAME to 1 when NAME is one of its flag_options (if it has
# any); -h and --help print usage and exit 0. Anything else goes to the
# caller's other_option, given the rest of the line, which sets `taken` to
# the number of words it used (or exits on what it does not know).
parse_options() {
	local opt_name
	while [ $# -gt 0 ]; do
		case $1 in
		-h | --help) usage; exit 0 ;;
		--*)
			opt_name=${1#--}
			opt_name=${opt_name//-/_}
			if [[ $1 != *_* && " ${value_options[*]} " == *" $opt_name "* ]]; then
				[ -n "${2:-}" ] || die "$1 needs a value (see --help)"
				printf -v "$opt_name" '%s' "$2"
				shift 2
				continue
			fi
			if [[ $1 != *_* && " ${flag_options[*]:-} " == *" $opt_name "* ]]; then
				printf -v "$opt_name" 1
				shift
				continue
			fi
			;;
		esac
		taken=0
		other_option "$@"
		[ "$taken" -ge 1 ] || die "other_option took nothing of '$1'"
		shift "$taken"
	done
}

# Whether $1 is a whole number from $2 to $3.
in_range() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# For the scripts that drive redis-benchmark against one or two builds
# (replication-instructions.sh, replication-cpu.sh): the defaults of the
# options they share, REQUESTS requests, 10,000 keys, 50 connections,
# pipeline 16, 100-byte values, no --out (the script picks one); the CLI
# ($RINGKV, or the build's); and their value_options, to which the script
# adds its own.
bench_defaults() { # REQUESTS
	requests=$1
	keys=10000
	connections=50
	pipeline=16
	value_size=100
	out=""
	builds=()
	cli=${RINGKV:-$root/build/tools/ringkv}
	value_options=(requests keys connections pipeline value_size out)
}

# Their --net (the first three parts of a loopback address, the nodes'
# NET.1, NET.2, ...) and --ports (where their port ranges begin), checked.
check_net_options() {
	[[ $net =~ ^127\.[0-9]+\.[0-9]+$ ]] || die "--net takes the first three parts of a loopback address"
	in_range "$ports" 1024 64000 || die "--ports must be 1024..64000"
}

# Their other_option (`other_option() { bench_build_option "$@"; }`): a
# word that is not an option is a build, appended to builds; an unknown
# option exits 2.
bench_build_option() {
	case $1 in
	-*) echo "$prog: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	*) builds+=("$1"); taken=1 ;;
	esac
}

# For the same scripts, once the command line is read: checks $requests (at
# least MIN), $keys, $connections, $pipeline, $value_size, that builds
# holds one or two executables, and that the CLI ($cli) and each TOOL are
# there.
check_bench_options() { # MIN-REQUESTS TOOL...
	local b tool
	in_range "$requests" "$1" 100000000 || die "--requests must be $1..100000000"
	shift
	in_range "$keys" 1 100000000 || die "--keys must be 1..100000000"
	in_range "$connections" 1 10000 || die "--connections must be 1..10000"
	in_range "$pipeline" 1 1024 || die "--pipeline must be 1..1024"
	in_range "$value_size" 1 1048576 || die "--value-size must be 1..1048576"
	if [ ${#builds[@]} -lt 1 ] || [ ${#builds[@]} -gt 2 ]; then
		die "give one or two ringkvd binaries (see --help)"
	fi
	for b in "${builds[@]}"; do
		[ -x "$b" ] || die "not an executable: $b"
	done
	[ -x "$cli" ] || die "ringkv (the CLI) not found at $cli"
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is needed (perf/deps.sh installs it)"
	done
}

# Prints the sides (the arguments after ROUND) one a line, reversed in even
# rounds (A B C, C B A, A B C, ...) so that drift favours none of them.
round_order() { # ROUND SIDE...
	local round=$1 i
	shift
	if [ $((round % 2)) -eq 0 ]; then
		for ((i = $#; i >= 1; i--)); do
			echo "${!i}"
		done
	else
		printf '%s\n' "$@"
	fi
}

# Stops processes: SIGTERM to each, up to 5 s for all of them to leave,
# then SIGKILL to any left.
stop_pids() {
	local pid alive
	for pid in "$@"; do
		kill "$pid" 2>/dev/null || true
	done
	for _ in $(seq 50); do
		alive=0
		for pid in "$@"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "$@"; do
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# Stops the server of server_pid, if there is one, and forgets it.
stop_server() {
	if [ -n "$server_pid" ]; then
		stop_pids "$server_pid"
		server_pid=
	fi
}

# Sets ncpu, and pin=1 unless the machine has a single CPU (then it says
# so and sets pin=0).
pin_setup() {
	ncpu=$(nproc)
	pin=1
	if [ "$ncpu" -lt 2 ]; then
		echo "$prog: only $ncpu CPU; running without pinning" >&2
		pin=0
	fi
}

# Runs a command pinned to a CPU list (or not, with pin=0). exec, so that
# "pinned ... &" leaves $! naming the command itself, not a subshell whose
# death would orphan it.
pinned() {
	local cpus=$1
	shift
	if [ "$pin" = 1 ]; then
		exec taskset -c "$cpus" "$@"
	else
		exec "$@"
	fi
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for 127.0.0.1:PORT to accept; dies if the server left.
wait_listening() {
	local port=$1 what=$2
	for _ in $(seq 100); do
		if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || die "$what exited at start-up (log in $out)"
		sleep 0.1
	done
	die "$what does not listen on port $port"
}

# For the scripts that start nodes of many replicas (idle-node-ab.sh,
# restart-storm.sh): checks their --shards, --cores and --rounds.
check_node_options() {
	in_range "$shards" 1 100000 || die "--shards: 1 to 100000"
	in_range "$cores" 1 64 || die "--cores: 1 to 64"
	in_range "$rounds" 1 50 || die "--rounds: 1 to 50"
}

# Starts the ringkvd BINARY in the background as a node of $shards replicas
# on $cores cores, serving LISTEN (admin: ADMIN) from DATA_DIR, with the
# OPTIONs first; warnings and worse appended to LOG. Sets node_pid.
start_ringkvd() { # BINARY LISTEN ADMIN DATA_DIR LOG [OPTION...]
	local bin=$1 listen=$2 admin=$3 data=$4 log=$5
	shift 5
	"$bin" "$@" --cores "$cores" --shards "$shards" --listen "$listen" --admin-listen "$admin" \
		--data-dir "$data" --log-level warn >>"$log" 2>&1 &
	# shellcheck disable=SC2034 # the caller's
	node_pid=$!
}

# Replicas of a node that lead, from the /metrics of its admin address
# HOST:PORT (0 while it does not answer yet).
leaders_of() {
	{ curl -s --max-time 2 "http://$1/metrics" 2>/dev/null || true; } |
		awk '/^ringkv_raft_replicas\{.*role="leader"/ { n += $2 } END { print n + 0 }'
}

# Waits up to SECONDS for N replicas of the node PID (admin address ADMIN)
# to lead, polling every 0.1 s; dies, with the end of LOG, if the node exits
# or the time runs out.
wait_leaders() { # PID ADMIN N SECONDS LOG
	local n=0
	for _ in $(seq $(($4 * 10))); do
		n=$(leaders_of "$2")
		[ "$n" -ge "$3" ] && return 0
		kill -0 "$1" 2>/dev/null || die "the node exited: $(tail -2 "$5")"
		sleep 0.1
	done
	die "$n of $3 replicas lead after $4 s"
}

# A process's CPU time so far, utime + stime from /proc/PID/stat, in clock
# ticks (getconf CLK_TCK a second).
cpu_ticks() { # PID
	local f
	read -r -a f <"/proc/$1/stat"
	echo $((f[13] + f[14]))
}

# A process's resident memory, KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# An awk function for the scripts' awk programs (awk "$awk_median"'...'):
# med(S), the median of the numbers in the space-separated string S.
# shellcheck disable=SC2034
awk_median='
function med(s,   x, k, i, j, t) {
	k = split(s, x, " ")
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
		if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
	return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
}'
