# Bash completion for ringkv, the ringkv command-line client.
# Installed by `meson install` as share/bash-completion/completions/ringkv;
# to try it from a build tree: source tools/ringkv-completion.bash
#
# Completes commands, options (node: --admin), --format values, node's
# subcommand (health, list, drain), and for get and del the keys
# that start with the word typed (one `ringkv scan --prefix` of at most 100
# keys, 1 s timeout, at the -a address of the line or RINGKV_ADDR); for
# backup, create or restore, then directories; for shard, move and its
# options; rebalance's options; user's subcommands, --role values and files.

_ringkv() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -n : || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local commands="get put del scan ping cluster node backup shard rebalance user"
	local options="-a --address -t --timeout -w --format --json --no-route --tls-ca --auth-file -h --help -V --version"

	case $prev in
	-a | --address)
		return # a HOST:PORT: nothing to offer
		;;
	-t | --timeout | --limit | --prefix | --admin | --cores | --node-id | \
		--initial-cluster | --replicas | --cluster-token | --from | --to | --rate | \
		--iterations)
		return
		;;
	--role)
		COMPREPLY=($(compgen -W "read write admin" -- "$cur"))
		return
		;;
	--file | --auth-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--data-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--tls-ca)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-w | --format)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return
		;;
	esac

	# The command, and the -a address, if the line has them already.
	local i command="" address=""
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-a | --address) address=${words[i + 1]}; ((i++)) ;;
		--address=*) address=${words[i]#--address=} ;;
		-t | --timeout | -w | --format | --limit | --prefix | --admin | --data-dir | \
			--cores | --node-id | --initial-cluster | --replicas | --cluster-token | \
			--from | --to | --file | --role | --iterations | --auth-file | --tls-ca) ((i++)) ;;
		-*) ;;
		*) [[ -z $command ]] && command=${words[i]} ;;
		esac
	done

	if [[ $cur == -* ]]; then
		local more=""
		[[ $command == scan ]] && more="--limit --prefix"
		[[ $command == node ]] && more="--admin --wait --dry-run --rate"
		[[ $command == shard ]] && more="--from --to --wait --cancel --rate"
		[[ $command == rebalance ]] && more="--dry-run --apply --wait --rate"
		[[ $command == user ]] && more="--file --role --prefix --iterations"
		[[ $command == backup ]] &&
			more="--data-dir --cores --node-id --initial-cluster --replicas --cluster-token"
		COMPREPLY=($(compgen -W "$options $more" -- "$cur"))
		return
	fi
	if [[ -z $command ]]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
	fi
	case $command in
	cluster)
		# Its one argument: status or map.
		[[ ${words[cword - 1]} == cluster ]] &&
			COMPREPLY=($(compgen -W "status map" -- "$cur"))
		;;
	node)
		[[ ${words[cword - 1]} == node ]] &&
			COMPREPLY=($(compgen -W "health list drain" -- "$cur"))
		;;
	user)
		[[ ${words[cword - 1]} == user ]] &&
			COMPREPLY=($(compgen -W "add remove" -- "$cur"))
		;;
	shard)
		# move, then a shard id and --from/--to NODE[:CORE]: no words.
		[[ ${words[cword - 1]} == shard ]] &&
			COMPREPLY=($(compgen -W "move" -- "$cur"))
		;;
	backup)
		# create|restore, then the backup directory.
		if [[ ${words[cword - 1]} == backup ]]; then
			COMPREPLY=($(compgen -W "create restore" -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi
		;;
	get | del)
		local cli=${words[0]}
		local -a keys
		# Keys with bytes the scan output escapes (\xNN) are left out.
		mapfile -t keys < <("$cli" ${address:+-a "$address"} -t 1 scan \
			--prefix "$cur" --limit 100 2>/dev/null | cut -f1 | grep -v '\\x')
		COMPREPLY=("${keys[@]}")
		# Bash splits words at ':' (user:1); bash-completion undoes it.
		declare -F __ltrim_colon_completions >/dev/null &&
			__ltrim_colon_completions "$cur"
		;;
	esac
}

complete -F _ringkv ringkv
