# Shared by the online backup tests (backup_online.sh, backup_cluster.sh):
# sourced after `ringkvd`, `ringkv` and `test_name` are set.
#   work        a fresh temporary directory, removed at exit
#               (KEEP_BACKUP_TEST=1 keeps it)
#   pids        every ringkvd started; killed and reaped at exit
#   fail TEXT   prints TEXT and the tail of every node log, exits 1
#   start NAME ADDR DATA_DIR [FLAGS...]   a ringkvd with 2 cores and small
#               memtables, waited for until it listens
#   check_keys ADDR WHAT   every "key value" line of $work/before reads back
set -u
work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-$test_name.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${KEEP_BACKUP_TEST:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -15 "$f" >&2; }; done
	exit 1
}

start() {
	local name=$1 addr=$2 dir=$3
	shift 3
	"$ringkvd" --listen "$addr" --data-dir "$dir" --cores 2 --memtable-size 64KiB "$@" \
		>"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	for _ in $(seq 200); do
		grep -q "listening on" "$work/$name.out" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "$name did not start"
}

check_keys() {
	local missing=0 total=0 got
	while read -r key value; do
		total=$((total + 1))
		got=$("$ringkv" -a "$1" -t 5 get "$key" 2>/dev/null)
		if [ "$got" != "$value" ]; then
			missing=$((missing + 1))
			[ $missing -le 5 ] && echo "$2: key $key: got '${got:0:20}'" >&2
		fi
	done <"$work/before"
	[ $missing -eq 0 ] ||
		fail "$2: $missing of $total keys acknowledged before the backup are missing"
}
