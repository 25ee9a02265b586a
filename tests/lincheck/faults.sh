#!/usr/bin/env bash
# Records a history against ringkvd nodes while injecting faults, then
# checks it with lincheck. Every process this script starts, it stops.
#
# Nodes: by default one ringkvd (--ringkvd BIN) on a free loopback port with
# a temporary data dir. For a cluster, --nodes FILE lists one node a line:
#     NAME ADDRESS COMMAND...
# (COMMAND starts the node in the foreground; the script runs it in the
# background, and restarts it with the same command after a kill).
#
# Faults (--faults, comma-separated), one every 0.5-1.5 s on a random node:
#   kill      kill -9, down 0.3-1.2 s, restart
#   pause     SIGSTOP for 0.5-2 s, then SIGCONT
#   partition run "PARTITION_CMD isolate NAME", 1-2.5 s later
#             "PARTITION_CMD heal NAME" (--partition-cmd; e.g. iptables rules
#             dropping NAME's peer and client ports)
# With --leader-probe CMD, pause and partition hit a leader: "CMD I" prints
# the name of the node leading recorded key I's shard (I random in
# [0, --keys)); when it prints nothing, a random node.
#
# Exit: lincheck's (0 linearizable, 1 not, 2 undecided, 3 bad history), or
# 4 when the run is not meaningful (too few operations, no fault injected),
# 5 when a node does not start. With --expect-violation (a deliberately
# broken build under test) 0 and 1 swap: the run passes when lincheck
# finds the violation.
set -euo pipefail

recorder='' lincheck='' ringkvd='' nodes_file='' seconds=20 clients=10 keys=3
timeout_ms=400 faults=kill,pause partition_cmd='' keep='' seed=$$ min_ok=200
leader_probe=''
expect_violation=0
extra_recorder=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	cat <<'USAGE'
usage: faults.sh --recorder BIN --lincheck BIN (--ringkvd BIN | --nodes FILE)
         [--seconds 20] [--clients 10] [--keys 3] [--timeout-ms 400]
         [--faults kill,pause[,partition]] [--partition-cmd CMD]
         [--leader-probe CMD] [--seed N] [--min-ok 200] [--keep DIR]
         [--expect-violation] [-- RECORDER-ARGS...]
USAGE
}

while [ $# -gt 0 ]; do
	case "$1" in
	--recorder) recorder=$2; shift 2 ;;
	--lincheck) lincheck=$2; shift 2 ;;
	--ringkvd) ringkvd=$2; shift 2 ;;
	--nodes) nodes_file=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--keys) keys=$2; shift 2 ;;
	--timeout-ms) timeout_ms=$2; shift 2 ;;
	--faults) faults=$2; shift 2 ;;
	--partition-cmd) partition_cmd=$2; shift 2 ;;
	--leader-probe) leader_probe=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--min-ok) min_ok=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	--expect-violation) expect_violation=1; shift ;;
	--) shift; extra_recorder=("$@"); break ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 3 ;;
	esac
done
if [ -z "$recorder" ] || [ -z "$lincheck" ] || { [ -z "$ringkvd" ] && [ -z "$nodes_file" ]; }; then
	usage >&2
	exit 3
fi
case ",$faults," in *,partition,*)
	if [ -z "$partition_cmd" ]; then
		echo "faults.sh: the partition fault needs --partition-cmd" >&2
		exit 3
	fi ;;
esac
RANDOM=$seed
command -v python3 >/dev/null || { echo "faults.sh: python3 missing: skipped"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-faults-XXXXXX")
names=() addrs=() cmds=() pids=() stopped=() isolated=()
recorder_pid=

log() { printf 'faults.sh: %s %s\n' "$(date +%T.%3N)" "$*" >&2; }

cleanup() {
	local rc=$?
	set +e
	[ -n "$recorder_pid" ] && kill -9 "$recorder_pid" 2>/dev/null && wait "$recorder_pid" 2>/dev/null
	for i in "${!names[@]}"; do
		if [ "${isolated[$i]:-0}" = 1 ]; then
			$partition_cmd heal "${names[$i]}"
		fi
		if [ -n "${pids[$i]:-}" ]; then
			kill -CONT "${pids[$i]}" 2>/dev/null
			kill -9 "${pids[$i]}" 2>/dev/null
			wait "${pids[$i]}" 2>/dev/null
		fi
	done
	if [ -n "$keep" ]; then
		mkdir -p "$keep" && cp -r "$work"/. "$keep"/
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -z "$nodes_file" ]; then
	port=$(free_port)
	mkdir -p "$work/n1"
	nodes_file=$work/nodes
	echo "n1 127.0.0.1:$port $ringkvd --listen 127.0.0.1:$port --data-dir $work/n1 --cores 1" >"$nodes_file"
fi
while read -r name addr cmd; do
	case "$name" in ''|'#'*) continue ;; esac
	names+=("$name") addrs+=("$addr") cmds+=("$cmd") pids+=("") stopped+=(0) isolated+=(0)
done <"$nodes_file"
[ ${#names[@]} -gt 0 ] || { echo "faults.sh: no nodes in $nodes_file" >&2; exit 3; }

start_node() {
	local i=$1
	# shellcheck disable=SC2086 # the command line is split on purpose
	${cmds[$i]} >>"$work/${names[$i]}.log" 2>&1 &
	pids[$i]=$!
}

reachable() {
	local host=${1%:*} port=${1##*:}
	host=${host#[}; host=${host%]}
	(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

for i in "${!names[@]}"; do start_node "$i"; done
for i in "${!names[@]}"; do
	for _ in $(seq 150); do
		reachable "${addrs[$i]}" && break
		kill -0 "${pids[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	if ! reachable "${addrs[$i]}"; then
		log "node ${names[$i]} did not start; its log:"
		cat "$work/${names[$i]}.log" >&2
		exit 5
	fi
done

address_list=$(IFS=,; echo "${addrs[*]}")
history=$work/history.txt
"$recorder" --nodes "$address_list" --out "$history" --seconds "$seconds" \
	--clients "$clients" --keys "$keys" --timeout-ms "$timeout_ms" --seed "$seed" \
	"${extra_recorder[@]}" 2>"$work/recorder.log" &
recorder_pid=$!
start=$(date +%s)
log "recording for ${seconds}s from ${#names[@]} node(s): $address_list; faults $faults"

IFS=, read -r -a actions <<<"$faults"
injected=0
while kill -0 "$recorder_pid" 2>/dev/null && [ $(( $(date +%s) - start )) -lt $((seconds - 2)) ]; do
	sleep "0.$((5 + RANDOM % 10))"
	i=$((RANDOM % ${#names[@]}))
	action=${actions[$((RANDOM % ${#actions[@]}))]}
	leader=''
	if [ -n "$leader_probe" ] && [ "$action" != kill ]; then
		leader=$($leader_probe $((RANDOM % keys)) || true)
		for j in "${!names[@]}"; do
			if [ "${names[$j]}" = "$leader" ]; then i=$j; fi
		done
	fi
	case "$action" in
	kill)
		log "kill -9 ${names[$i]} (pid ${pids[$i]})"
		kill -9 "${pids[$i]}" 2>/dev/null || true
		wait "${pids[$i]}" 2>/dev/null || true
		pids[$i]=
		sleep "0.$((3 + RANDOM % 7))"
		start_node "$i"
		log "restarted ${names[$i]} (pid ${pids[$i]})"
		;;
	pause)
		log "SIGSTOP ${names[$i]}${leader:+ (leader probe: $leader)}"
		kill -STOP "${pids[$i]}"
		stopped[$i]=1
		sleep "$((RANDOM % 2)).$((5 + RANDOM % 5))"
		kill -CONT "${pids[$i]}"
		stopped[$i]=0
		log "SIGCONT ${names[$i]}"
		;;
	partition)
		log "isolate ${names[$i]}${leader:+ (leader probe: $leader)}"
		isolated[$i]=1
		$partition_cmd isolate "${names[$i]}"
		sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"
		$partition_cmd heal "${names[$i]}"
		isolated[$i]=0
		log "healed ${names[$i]}"
		;;
	*)
		echo "faults.sh: unknown fault '$action'" >&2
		exit 3
		;;
	esac
	injected=$((injected + 1))
done

if ! wait "$recorder_pid"; then
	recorder_pid=
	cat "$work/recorder.log" >&2
	log "the recorder failed"
	exit 4
fi
recorder_pid=
cat "$work/recorder.log" >&2
for i in "${!names[@]}"; do
	kill -TERM "${pids[$i]}" 2>/dev/null || true
done
for i in "${!names[@]}"; do
	wait "${pids[$i]}" 2>/dev/null || true
	pids[$i]=
done

ok_gets=$(awk '!/^#/ && $2 == "get" && $7 == "ok"' "$history" | wc -l)
ok_puts=$(awk '!/^#/ && $2 == "put" && $7 == "ok"' "$history" | wc -l)
log "$injected faults injected; $ok_puts puts and $ok_gets gets ok"
if [ "$injected" -eq 0 ] || [ "$ok_gets" -lt "$min_ok" ] || [ "$ok_puts" -lt "$min_ok" ]; then
	log "not a meaningful run (want a fault and $min_ok ok puts and gets)"
	exit 4
fi
set +e
"$lincheck" "$history"
rc=$?
set -e
if [ $expect_violation = 1 ] && [ $rc -le 1 ]; then
	rc=$((1 - rc))
	[ $rc = 0 ] && log "the violation was found, as expected"
	[ $rc = 1 ] && log "expected a violation, found none"
fi
if [ $rc -ne 0 ]; then
	keep=${keep:-${TMPDIR:-/tmp}/ringkv-faults-failed-$$}
	log "history and logs kept in $keep"
fi
exit $rc
