#!/usr/bin/env bash
# The backup procedure of docs/OPERATIONS.md, as an operator runs it: stop
# the node (SIGTERM: a clean stop syncs every shard), archive the data dir,
# start again; later restore the archive into a fresh data dir and serve
# it. Every key written before the backup reads back with its value then;
# keys written after it do not.
# usage: backup_offline.sh RINGKVD RINGKV
set -u
ringkvd=$1 ringkv=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-backup.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

start() { # DATA_DIR
	: >"$work/out"
	"$ringkvd" --listen 127.0.0.1:0 --data-dir "$1" --cores 2 --memtable-size 64KiB \
		>"$work/out" 2>>"$work/log" &
	pid=$!
	for _ in $(seq 200); do
		grep -q "listening on" "$work/out" 2>/dev/null && break
		sleep 0.05
	done
	addr=$(sed -n 's/^ringkvd: listening on \([^ ]*\) .*/\1/p' "$work/out")
	[ -n "$addr" ] || fail "ringkvd did not start: $(cat "$work/log")"
}

stop() {
	kill -TERM "$pid"
	wait "$pid" || fail "ringkvd did not stop cleanly (exit $?)"
	pid=
}

put() { "$ringkv" -a "$addr" put "$1" "$2" >/dev/null || fail "put $1"; }

start "$work/data"
# Enough to flush memtables into SSTables, so the copy holds more than WALs.
for i in $(seq 120); do put "key-$i" "before-$i-$(printf '%05000d' 0)"; done

# The backup: stop, archive, start again.
stop
tar -C "$work" -czf "$work/backup.tar.gz" data || fail "tar"
start "$work/data"
for i in $(seq 0 10 120); do put "key-$i" "after-$i"; done
put "new-key" "after"
stop

# The restore: a fresh data dir from the archive.
mkdir "$work/restore"
tar -C "$work/restore" -xzf "$work/backup.tar.gz" || fail "untar"
start "$work/restore/data"
for i in $(seq 120); do
	got=$("$ringkv" -a "$addr" get "key-$i") || fail "get key-$i after restore"
	[ "$got" = "before-$i-$(printf '%05000d' 0)" ] || fail "key-$i is '$got' after restore"
done
if "$ringkv" -a "$addr" get "new-key" >/dev/null 2>&1; then
	fail "new-key, written after the backup, exists after restore"
fi
ls -R "$work"/restore/data | grep -q "\.sst$" || { ls -R "$work/restore/data"; fail "no SSTable in the backup"; }
stop
echo "backup and restore: 120 keys back"
