#!/usr/bin/env bash
# A 3-node ringkvd cluster (R = 3) on 127.0.0.11-13 under kill -9 and
# SIGSTOP/SIGCONT faults, its history recorded and checked by lincheck
# (faults.sh does the recording, the faults and the check; this script only
# lays out the nodes). Every process started is stopped by faults.sh.
#
# usage: cluster_faults.sh RINGKVD RECORDER LINCHECK FAULTS_SH
#            [--expect-violation] [--seconds S]
# --expect-violation: RINGKVD is a deliberately broken build; the run passes
# when lincheck finds the violation.
set -euo pipefail
ringkvd=$1 recorder=$2 lincheck=$3 faults=$4
shift 4
extra=() seconds=15
while [ $# -gt 0 ]; do
	case "$1" in
	--expect-violation) extra+=(--expect-violation); shift ;;
	--seconds) seconds=$2; shift 2 ;;
	*) echo "cluster_faults.sh: unknown argument $1" >&2; exit 3 ;;
	esac
done
work=$(mktemp -d /tmp/ringkv-lincheck-cluster-XXXXXX)
trap 'rm -rf "$work"' EXIT
# Ports from the pid, so two runs on one machine do not collide.
peer=$((17600 + $$ % 300))
client=$((18000 + $$ % 300))
ic="1=127.0.0.11:$peer,2=127.0.0.12:$peer,3=127.0.0.13:$peer"
for i in 1 2 3; do
	echo "n$i 127.0.0.1$i:$client $ringkvd --node-id $i --initial-cluster $ic" \
	     "--listen 127.0.0.1$i:$client --cores 2 --data-dir $work/n$i" \
	     "--election-timeout 300ms"
done >"$work/nodes"
exec "$faults" --recorder "$recorder" --lincheck "$lincheck" --nodes "$work/nodes" \
	--faults kill,pause --seconds "$seconds" --keys 3 --clients 10 "${extra[@]}"
