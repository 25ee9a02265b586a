# shellcheck shell=bash
# The caller sets these before using the helpers:
# shellcheck disable=SC2154
# Helpers for the perf/ scripts that start servers and drive them with
# ringkv-bench: `source "$(dirname "$0")/lib.sh"` after setting prog (the
# script's name, for messages), pin (1: taskset, 0: not), server_pid and
# out (where the server logs go). perf/metrics-cost.sh and cluster-ab.sh
# (usage, die, stop_pid) use it;
# compare.sh, cluster-compare.sh and resp-compare.sh still carry their own
# copies of these and can move to it.

# The lines from the second to `set -euo` of the script: its help.
usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

# Stops a process: SIGTERM, up to 5 s for it to leave, then SIGKILL.
stop_pid() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
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
