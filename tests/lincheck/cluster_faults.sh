#!/usr/bin/env bash
# A 3-node ringkvd cluster (R = 3) on 127.0.4.31-33 under kill -9,
# SIGSTOP/SIGCONT and network partitions (iptables on lo: one node cut off
# from the other two for 1-2.9 s, see tests/integration/netfault.sh), its
# history recorded and checked by lincheck. faults.sh does the recording,
# the faults and the check; this script lays out the nodes. Every process
# started is stopped by faults.sh, which also heals a partition it leaves;
# the rules' chain is removed by `netfault.sh wrap`, under which this runs
# when partitions are asked for.
#
# usage: cluster_faults.sh RINGKVD RECORDER LINCHECK FAULTS_SH
#            [--netfault NETFAULT_SH] [--faults kill,pause,partition]
#            [--leader-probe] [--expect-violation [--attempts N]] [--seconds S]
#            [--keep DIR]
# --netfault: the partition tool; needed for the partition fault. Without
#   it the faults default to kill,pause.
# --leader-probe: SIGSTOP and partitions hit the leader of a recorded key's
#   shard (found by leader_of.py), not a random node.
# --expect-violation: RINGKVD is a deliberately broken build; the run passes
#   when lincheck finds the violation. --attempts N records again, on fresh
#   data dirs, up to N times until one history shows it (a fault lands in
#   the window that exposes the bug by chance; N bounded runs make a miss
#   unlikely without making the proof weaker: any one violation found is a
#   real one).
set -euo pipefail
ringkvd=$1 recorder=$2 lincheck=$3 faults_sh=$4
shift 4
extra=() seconds=15 netfault='' faults='' probe=0 attempts=1
while [ $# -gt 0 ]; do
	case "$1" in
	--expect-violation) extra+=(--expect-violation); shift ;;
	--seconds) seconds=$2; shift 2 ;;
	--netfault) netfault=$2; shift 2 ;;
	--faults) faults=$2; shift 2 ;;
	--leader-probe) probe=1; shift ;;
	--attempts) attempts=$2; shift 2 ;;
	--keep) extra+=(--keep "$2"); shift 2 ;;
	*) echo "cluster_faults.sh: unknown argument $1" >&2; exit 3 ;;
	esac
done
if [ -z "$faults" ]; then
	faults=kill,pause
	[ -n "$netfault" ] && faults=kill,pause,partition
fi
case ",$faults," in *,partition,*)
	[ -n "$netfault" ] || { echo "cluster_faults.sh: partition needs --netfault" >&2; exit 3; }
	if [ -z "${RINGKV_NETFAULT_CHAIN:-}" ]; then
		# Run again under the tool's wrapper: it owns the rules' chain
		# and removes it however this run ends (or skips, or fails in
		# CI, when iptables cannot be used).
		exec "$netfault" wrap -- "$0" "$ringkvd" "$recorder" "$lincheck" "$faults_sh" \
			--netfault "$netfault" --faults "$faults" --seconds "$seconds" \
			--attempts "$attempts" $([ $probe = 1 ] && echo --leader-probe) "${extra[@]}"
	fi ;;
esac
work=$(mktemp -d /tmp/ringkv-lincheck-cluster-XXXXXX)
trap 'rm -rf "$work"' EXIT
# Ports from this test's range (24000-24399) and the pid, so two runs on one
# machine do not collide.
peer=$((24000 + $$ % 200))
client=$((24200 + $$ % 200))
ic="1=127.0.4.31:$peer,2=127.0.4.32:$peer,3=127.0.4.33:$peer"
fault_args=()
[ -n "$netfault" ] && fault_args+=(--partition-cmd
	"$netfault --addrs n1=127.0.4.31,n2=127.0.4.32,n3=127.0.4.33")
prefix=lcc$$-
clients="n1=127.0.4.31:$client,n2=127.0.4.32:$client,n3=127.0.4.33:$client"
[ $probe = 1 ] && fault_args+=(--leader-probe "$(dirname "$0")/leader_of.py $prefix $clients")
rc=1
for attempt in $(seq 1 "$attempts"); do
	run="$work/a$attempt"
	mkdir -p "$run"
	for i in 1 2 3; do
		echo "n$i 127.0.4.3$i:$client $ringkvd --node-id $i --initial-cluster $ic" \
		     "--listen 127.0.4.3$i:$client --cores 2 --data-dir $run/n$i" \
		     "--election-timeout 300ms"
	done >"$run/nodes"
	[ "$attempts" -gt 1 ] && echo "cluster_faults.sh: attempt $attempt of $attempts" >&2
	# Not exec: the trap above removes the data dirs.
	set +e
	"$faults_sh" --recorder "$recorder" --lincheck "$lincheck" --nodes "$run/nodes" \
		--faults "$faults" "${fault_args[@]}" --seconds "$seconds" --keys 6 --clients 10 \
		"${extra[@]}" -- --prefix "$prefix"
	rc=$?
	set -e
	rm -rf "$run"
	# Only a clean miss is worth another try; a found violation, a failed
	# start or a run that was not meaningful ends it.
	[ $rc -eq 1 ] || break
done
exit $rc
