#!/usr/bin/env bash
# Online backup of a 3-node cluster (docs/OPERATIONS.md): `backup create`
# through a node that leads only some shards (the CLI pins each shard on
# its leader) while a client writes; the backup restored (1) into a
# one-node data dir and (2) as the three data dirs of a new 3-node cluster
# (--node-id N --initial-cluster ...). Both serve every key acknowledged
# before the backup began, with its value.
# usage: backup_cluster.sh RINGKVD RINGKV
ringkvd=$1 ringkv=$2 test_name=backup-cluster
. "$(dirname "$0")/backup_lib.sh"

# Ports 33200-33399 of this test's range, on 127.0.13.x.
old_cluster="1=127.0.13.11:33211,2=127.0.13.12:33212,3=127.0.13.13:33213"
new_cluster="1=127.0.13.21:33311,2=127.0.13.22:33312,3=127.0.13.23:33313"

put_retry() { # ADDR KEY VALUE: retried while leaders are elected
	for _ in $(seq 50); do
		"$ringkv" -a "$1" -t 5 put "$2" "$3" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

for n in 1 2 3; do
	start "old$n" "127.0.13.1$n:3320$n" "$work/old$n" --node-id $n --shards 6 \
		--election-timeout 500ms --initial-cluster "$old_cluster"
done
pad=$(printf '%0300d' 0)
for i in $(seq 150); do
	put_retry 127.0.13.11:33201 "pre-$i" "pre-$i-$pad" || fail "put pre-$i"
	echo "pre-$i pre-$i-$pad" >>"$work/acked-0"
done
writer() {
	local i=0
	while [ ! -e "$work/stop" ] && [ $i -lt 5000 ]; do
		i=$((i + 1))
		if "$ringkv" -a 127.0.13.13:33203 -t 10 put "w-$i" "v-$i-$pad" >/dev/null 2>&1; then
			echo "w-$i v-$i-$pad" >>"$work/acked-1"
		fi
	done
}
writer & wpid=$!
sleep 1
cat "$work"/acked-* >"$work/before"
before=$(wc -l <"$work/before")
"$ringkv" -a 127.0.13.12:33202 -t 30 backup create "$work/bk" 2>"$work/create.err" ||
	fail "backup create: $(cat "$work/create.err")"
touch "$work/stop"
wait $wpid
grep -q "6 shards" "$work/create.err" || fail "create: $(cat "$work/create.err")"
# Shards are led by all three nodes: the CLI must have pinned on each.
for n in 1 2 3; do
	grep -q "backup .* pinned" "$work/old$n.log" || fail "no shard was pinned on node $n"
done
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p"; done
pids=()

# (1) One node.
"$ringkv" backup restore "$work/bk" --data-dir "$work/single" --cores 2 2>"$work/r1.err" ||
	fail "restore (one node): $(cat "$work/r1.err")"
start single 127.0.13.20:33300 "$work/single"
check_keys 127.0.13.20:33300 "one node"
kill -TERM "${pids[0]}"
wait "${pids[0]}" || fail "the one-node restore did not stop cleanly"
pids=()

# (2) A new 3-node cluster.
for n in 1 2 3; do
	"$ringkv" backup restore "$work/bk" --data-dir "$work/new$n" --cores 2 --node-id $n \
		--initial-cluster "$new_cluster" 2>"$work/r2-$n.err" ||
		fail "restore node $n: $(cat "$work/r2-$n.err")"
done
for n in 1 2 3; do
	start "new$n" "127.0.13.2$n:3330$n" "$work/new$n" --node-id $n \
		--election-timeout 500ms --initial-cluster "$new_cluster"
done
# Leaders first: a write to every shard goes through once they are elected.
for i in $(seq 30); do put_retry 127.0.13.21:33301 "after-$i" x || fail "new cluster: no write"; done
check_keys 127.0.13.22:33302 "new cluster"
echo "cluster backup: $before keys acknowledged before it, restored on 1 node and on 3"
