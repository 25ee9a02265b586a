#!/usr/bin/env bash
# Prints the name of the node that leads a recorded key's shard: the first
# node that serves a (linearizable) GET of it, found or not; a node that
# does not lead it answers NOT_LEADER (ringkv exits 3). Prints nothing when
# no node answers within the timeout. faults.sh calls it (--leader-probe)
# to aim SIGSTOP and partitions at a leader.
#
# usage: leader_of.sh RINGKV_CLI KEY_PREFIX NAME=ADDR[,NAME=ADDR...] KEY_INDEX
# (the recorder names key i PREFIX"k"i)
set -uo pipefail
cli=$1 prefix=$2 nodes=$3 index=$4
IFS=, read -r -a items <<<"$nodes"
for item in "${items[@]}"; do
	"$cli" --address "${item#*=}" --timeout 0.3 get "${prefix}k$index" >/dev/null 2>&1
	case $? in 0|1) echo "${item%%=*}"; exit 0 ;; esac
done
exit 0
