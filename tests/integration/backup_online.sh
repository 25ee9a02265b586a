#!/usr/bin/env bash
# Online backup (docs/OPERATIONS.md): `ringkv backup create` while two
# clients keep writing, `ringkv backup restore` into a fresh data dir, a
# new ringkvd serves it: every key acknowledged before the backup began
# reads back with its value. Then the refusals: a bit flipped in a table
# of the backup, a bit flipped in BACKUP itself, a backup without BACKUP
# (cut short), a non-empty target; each leaves the target untouched.
# usage: backup_online.sh RINGKVD RINGKV
ringkvd=$1 ringkv=$2 test_name=backup-online
. "$(dirname "$0")/backup_lib.sh"

# Ports from this test's range (33000-33999) on 127.0.13.x.
src=127.0.13.1:33101 dst=127.0.13.2:33102

stop_last() {
	local p=${pids[-1]}
	kill -TERM "$p"
	wait "$p" || fail "ringkvd did not stop cleanly"
	unset 'pids[-1]'
}

start node1 "$src" "$work/data" --shards 4
pad=$(printf '%0300d' 0)
# Enough to flush memtables: the backup then holds several tables.
for i in $(seq 200); do
	"$ringkv" -a "$src" put "pre-$i" "pre-$i-$pad" >/dev/null || fail "put pre-$i"
	echo "pre-$i pre-$i-$pad" >>"$work/acked-0"
done

# Two writers, each recording a key only once its put was acknowledged.
writer() { # N
	local i=0
	while [ ! -e "$work/stop" ] && [ $i -lt 5000 ]; do
		i=$((i + 1))
		if "$ringkv" -a "$src" -t 10 put "w$1-$i" "v$1-$i-$pad" >/dev/null 2>&1; then
			echo "w$1-$i v$1-$i-$pad" >>"$work/acked-$1"
		fi
	done
}
writer 1 & pids+=($!)
writer 2 & pids+=($!)
sleep 1

# Every key recorded now was acknowledged before the backup begins.
cat "$work"/acked-* >"$work/before"
before=$(wc -l <"$work/before")
"$ringkv" -a "$src" -t 30 backup create "$work/bk" 2>"$work/create.err" ||
	fail "backup create: $(cat "$work/create.err")"
sleep 0.5
touch "$work/stop"
wait "${pids[1]}" "${pids[2]}"
pids=("${pids[0]}")
after=$(cat "$work"/acked-* | wc -l)
[ "$after" -gt "$before" ] || fail "no write was acknowledged during the backup ($before, $after)"
grep -q "4 shards" "$work/create.err" || fail "create did not report its end: $(cat "$work/create.err")"
[ -f "$work/bk/BACKUP" ] && [ ! -e "$work/bk.tmp" ] || fail "backup not renamed into place"
stop_last

# Restore into a fresh dir and serve it.
"$ringkv" backup restore "$work/bk" --data-dir "$work/restored" --cores 2 2>"$work/restore.err" ||
	fail "restore: $(cat "$work/restore.err")"
start node2 "$dst" "$work/restored"
check_keys "$dst" "restored"
ls "$work"/bk/shard-*/*.sst >/dev/null 2>&1 || fail "no table in the backup"
"$ringkv" -a "$dst" put after-restore yes >/dev/null || fail "the restored node takes no write"
stop_last

# Refusals. Each leaves the target absent.
refused() { # NAME BACKUP_DIR EXPECTED_TEXT
	if "$ringkv" backup restore "$2" --data-dir "$work/t-$1" --cores 2 2>"$work/$1.err"; then
		fail "$1: a damaged backup was restored"
	fi
	grep -q "$3" "$work/$1.err" || fail "$1: the refusal does not say '$3': $(cat "$work/$1.err")"
	[ ! -e "$work/t-$1" ] && [ ! -e "$work/t-$1.restoring" ] || fail "$1: the target was written"
}
flip() { # FILE OFFSET
	python3 -c "import sys; p=sys.argv[1]; o=int(sys.argv[2]); b=bytearray(open(p,'rb').read()); b[o % len(b)] ^= 0x10; open(p,'wb').write(b)" "$1" "$2"
}
cp -r "$work/bk" "$work/bad-table"
table=$(ls "$work"/bad-table/shard-*/*.sst | tail -1)
flip "$table" 77
refused bad-table "$work/bad-table" "$(basename "$table"): CRC32C"
cp -r "$work/bk" "$work/bad-manifest"
flip "$work/bad-manifest/BACKUP" 40
refused bad-manifest "$work/bad-manifest" "checksum mismatch"
cp -r "$work/bk" "$work/cut"
rm "$work/cut/BACKUP"
refused cut "$work/cut" "not a finished backup"
mkdir "$work/t-full" && touch "$work/t-full/x"
"$ringkv" backup restore "$work/bk" --data-dir "$work/t-full" 2>"$work/full.err" &&
	fail "restored into a non-empty dir"
grep -q "not empty" "$work/full.err" || fail "non-empty target: $(cat "$work/full.err")"
[ "$(ls "$work/t-full")" = x ] || fail "the non-empty target was changed"
echo "online backup: $before keys acknowledged before it, all restored; damage refused"
