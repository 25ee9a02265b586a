#!/bin/bash
# Tests of tools/ringkv-completion.bash: commands, options, --format values
# and command options, completed as bash would ask for them (without the
# bash-completion package: the script must work without it too).
# usage: test_completion.sh SCRIPT
set -u
source "$1" || exit 1
fail=0

# expect "WORDS..." "WANTED REPLY": completes the last word of WORDS.
expect() {
	local line=$1 want=$2
	read -r -a COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_ringkv
	local got
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
	want=$(printf '%s\n' $want | sort | tr '\n' ' ')
	if [[ $got != "$want" ]]; then
		echo "FAIL: '$line' completes to '$got', want '$want'"
		fail=1
	fi
}

expect "ringkv " "get put del scan ping cluster node backup shard rebalance user"
expect "ringkv p" "put ping"
expect "ringkv -a 127.0.0.1:1 s" "scan shard"
expect "ringkv r" "rebalance"
expect "ringkv user " "add remove"
expect "ringkv user add --ro" "--role"
expect "ringkv user add alice --role " "read write admin"
expect "ringkv --au" "--auth-file"
expect "ringkv rebalance --ap" "--apply"
expect "ringkv --j" "--json"
expect "ringkv -w " "text json"
expect "ringkv --format j" "json"
expect "ringkv scan --l" "--limit"
expect "ringkv scan --p" "--prefix"
expect "ringkv get --p" ""
expect "ringkv --ti" "--timeout"
expect "ringkv c" "cluster"
expect "ringkv b" "backup"
expect "ringkv shard " "move"
expect "ringkv shard move 0 --w" "--wait"
expect "ringkv backup " "create restore"
expect "ringkv backup r" "restore"
expect "ringkv backup restore /nonexistent-dir-x/ --data-" "--data-dir"
expect "ringkv backup restore d --node-id 2 --initial-cluster x --rep" "--replicas"
expect "ringkv cluster " "status map"
expect "ringkv cluster s" "status"
expect "ringkv cluster status " ""
expect "ringkv --no" "--no-route"
expect "ringkv n" "node"
expect "ringkv node " "drain health list"
expect "ringkv node drain 3 --dr" "--dry-run"
expect "ringkv shard move 0 --can" "--cancel"
expect "ringkv node health --adm" "--admin"
expect "ringkv node health --admin " ""
expect "ringkv get --ad" "--address"
complete -p ringkv >/dev/null || { echo "FAIL: no completion registered"; fail=1; }
[[ $fail == 0 ]] && echo "completion: ok"
exit $fail
