#!/usr/bin/env bash
# Network partitions between loopback addresses, with iptables on `lo`.
#
# A partition is DROP rules in a chain of this test run's own (named from
# the owning process id, so concurrent runs never touch each other's rules),
# jumped to from INPUT. Every loopback packet passes INPUT once on its way
# in, so dropping there both ways between two addresses cuts them off in
# both directions, and TCP then hangs (retransmits, times out) instead of
# being reset: what a real partition looks like. Addresses not named keep
# talking, clients on 127.0.0.1 included.
#
# usage:
#   netfault.sh wrap -- COMMAND [ARGS...]
#       Creates a chain for this run, runs COMMAND with RINGKV_NETFAULT_CHAIN
#       set to it, and removes the chain and its jump when COMMAND ends (also
#       when it fails or is interrupted). Exits with COMMAND's status. It also
#       removes chains left by runs whose process is gone (a SIGKILLed test).
#       When iptables cannot be used (not root, no iptables, no netfilter):
#       exit 77 (skipped) with the reason, or 1 when CI=true.
#   netfault.sh [--chain C] --addrs [NAME=]ADDR,... isolate TARGET
#       Cuts TARGET (a NAME or an ADDR of the list) off from every other
#       address of the list, both directions.
#   netfault.sh [--chain C] --addrs [NAME=]ADDR,... heal TARGET
#       Removes TARGET's rules from the chain.
#   netfault.sh check
#       Exits 0 when iptables works here, else prints why and exits 1.
# The chain defaults to $RINGKV_NETFAULT_CHAIN.
set -euo pipefail

PREFIX=rkvnet-
chain=${RINGKV_NETFAULT_CHAIN:-}
addrs=''

die() { echo "netfault.sh: $*" >&2; exit 1; }

ipt() { iptables -w 10 "$@"; }

# Why iptables cannot be used here, or nothing.
unusable_reason() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "not root (iptables needs CAP_NET_ADMIN)"
	elif ! command -v iptables >/dev/null; then
		echo "iptables is not installed (scripts/deps.sh installs it)"
	elif ! iptables -w 10 -S INPUT >/dev/null 2>&1; then
		echo "iptables cannot read the filter table: $(iptables -w 10 -S INPUT 2>&1 | head -1)"
	fi
}

# Removes a chain and the jump to it; quiet when parts are already gone.
remove_chain() {
	local c=$1
	while ipt -D INPUT -j "$c" 2>/dev/null; do :; done
	ipt -F "$c" 2>/dev/null || true
	ipt -X "$c" 2>/dev/null || true
}

# Chains named for a process that no longer exists were left by a run that
# was SIGKILLed before its trap could run.
remove_orphans() {
	local c pid
	for c in $(iptables -w 10 -S 2>/dev/null | awk -v p="$PREFIX" '$1 == "-N" && index($2, p) == 1 { print $2 }'); do
		pid=${c#"$PREFIX"}
		case "$pid" in *[!0-9]*|'') continue ;; esac
		kill -0 "$pid" 2>/dev/null || remove_chain "$c"
	done
}

cmd_wrap() {
	local reason rc
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || die "wrap needs a command"
	reason=$(unusable_reason)
	if [ -n "$reason" ]; then
		if [ "${CI:-}" = true ]; then
			echo "netfault.sh: FAIL: partition tests need iptables in CI: $reason" >&2
			exit 1
		fi
		echo "netfault.sh: SKIP: $reason" >&2
		exit 77
	fi
	remove_orphans
	chain=$PREFIX$$
	remove_chain "$chain"
	trap 'remove_chain "$chain"' EXIT
	trap 'exit 130' INT TERM
	ipt -N "$chain"
	ipt -I INPUT -j "$chain"
	set +e
	RINGKV_NETFAULT_CHAIN=$chain "$@"
	rc=$?
	set -e
	return $rc
}

# Prints the address of TARGET (a name of the list, or an address in it).
resolve() {
	local target=$1 item
	IFS=, read -r -a items <<<"$addrs"
	for item in "${items[@]}"; do
		if [ "${item%%=*}" = "$target" ] || [ "${item#*=}" = "$target" ]; then
			echo "${item#*=}"
			return 0
		fi
	done
	die "$target is not in --addrs $addrs"
}

# Prints the rules that cut $1 off from every other address of the list.
rules_for() {
	local target=$1 item other
	IFS=, read -r -a items <<<"$addrs"
	for item in "${items[@]}"; do
		other=${item#*=}
		[ "$other" = "$target" ] && continue
		echo "-s $target/32 -d $other/32 -j DROP"
		echo "-s $other/32 -d $target/32 -j DROP"
	done
}

# The chain's rules as -S prints them (a missing chain: nothing, and the
# restore below fails naming it).
list_rules() { iptables -w 10 -S "$chain" 2>/dev/null || true; }

# One iptables-restore call per change (atomic, and one process instead of
# one per rule, which matters on a loaded machine).
cmd_isolate() {
	local target rule present
	target=$(resolve "$1")
	present=$(list_rules)
	{
		echo "*filter"
		while read -r rule; do
			# Not twice: -S prints the rules in the same form.
			grep -qxF -- "-A $chain $rule" <<<"$present" || echo "-A $chain $rule"
		done < <(rules_for "$target")
		echo COMMIT
	} | iptables-restore -w 10 --noflush
}

cmd_heal() {
	local target
	target=$(resolve "$1")
	{
		echo "*filter"
		list_rules | grep -F -e "-s $target/32 " -e "-d $target/32 " |
			grep -E -- "^-A $chain .* -j DROP\$" | sed 's/^-A /-D /' || true
		echo COMMIT
	} | iptables-restore -w 10 --noflush
}

while [ $# -gt 0 ]; do
	case "$1" in
	--chain) chain=$2; shift 2 ;;
	--addrs) addrs=$2; shift 2 ;;
	wrap) shift; cmd_wrap "$@"; exit $? ;;
	check)
		reason=$(unusable_reason)
		[ -z "$reason" ] || { echo "netfault.sh: $reason" >&2; exit 1; }
		exit 0 ;;
	isolate|heal)
		[ $# -eq 2 ] || die "$1 takes one TARGET"
		[ -n "$chain" ] || die "no chain: run under 'netfault.sh wrap', or give --chain"
		[ -n "$addrs" ] || die "$1 needs --addrs"
		"cmd_$1" "$2"
		exit 0 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 3 ;;
	esac
done
die "no command (wrap, isolate, heal, check)"
