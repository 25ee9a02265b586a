#!/usr/bin/env bash
# Redis conformance measure: runs Redis 7.0's own test files for strings,
# counters, the keyspace, the protocol and SCAN in Redis's external-server
# mode against a fresh ringkvd's RESP port (or, with --against-redis,
# against a fresh redis-server, for the denominator), and prints the count
# of tests passed.
#
# Redis's test files are not part of ringkv: they are read from a Redis
# 7.0 source tree outside the repository, REDIS_TESTS (default
# /var/cache/ringkv-redis-src/redis-7.0.15), which
# tests/integration/resp_conformance_fetch.sh fills from Debian's source
# package of the installed redis-server. Without it, or without tclsh, the
# run is skipped (exit 77). The tree is copied to a temporary directory
# (the harness writes into tests/tmp) and nothing of it is kept.
#
# usage: resp_conformance.sh RINGKVD [--against-redis] [--min N]
#   --min N   exit 1 when fewer than N tests pass (a regression guard)
# Prints "conformance: P passed, F failed of T run (files: ...)" last.
# Ports: 127.0.17.1:37001 (RESP), 37002 (native), harness 37068-37099.
set -uo pipefail
ringkvd=$1
shift
against=ringkv
min=0
while [ $# -gt 0 ]; do
	case "$1" in
	--against-redis) against=redis ;;
	--min) min=$2; shift ;;
	*) echo "usage: $0 RINGKVD [--against-redis] [--min N]"; exit 2 ;;
	esac
	shift
done
src=${REDIS_TESTS:-/var/cache/ringkv-redis-src/redis-7.0.15}
files="unit/type/string unit/type/incr unit/keyspace unit/protocol unit/scan"
host=127.0.17.1
port=37001

if [ ! -f "$src/tests/test_helper.tcl" ]; then
	echo "SKIP: no Redis 7.0 test tree at $src (run tests/integration/resp_conformance_fetch.sh)"
	exit 77
fi
tclsh=$(command -v tclsh8.6 || command -v tclsh || true)
if [ -z "$tclsh" ]; then
	echo "SKIP: tclsh not installed"; exit 77
fi

dir=$(mktemp -d /tmp/ringkv-conformance-XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/redis/tests/tmp"
cp -r "$src/tests/helpers" "$src/tests/support" "$src/tests/unit" "$src/tests/assets" \
	"$src/tests/test_helper.tcl" "$dir/redis/tests/"

if [ "$against" = redis ]; then
	command -v redis-server >/dev/null || { echo "SKIP: redis-server not installed"; exit 77; }
	redis-server --bind "$host" --port "$port" --save '' --appendonly no \
		--dir "$dir" --enable-debug-command yes >"$dir/server.log" 2>&1 &
	pid=$!
else
	"$ringkvd" --listen "$host:37002" --resp-listen "$host:$port" --cores 2 \
		--enable-flush --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
	pid=$!
fi
up=
for _ in $(seq 150); do
	if [ "$(redis-cli -h "$host" -p "$port" PING 2>/dev/null)" = PONG ]; then up=1; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$up" ]; then
	echo "FAIL: $against did not start on $host:$port"; cat "$dir/server.log"; exit 1
fi

# Adaptations of the harness copy, nothing else in Redis's files: ringkv
# has no functions, so the FUNCTION FLUSH the harness sends before each
# file may fail without aborting the file. And an error reply that a test
# does not expect raises an exception that ends its whole file, so each
# file runs in its own harness process, and a test that raised one is
# counted failed and skipped (--skiptest) in a fresh run of that file, at
# most 60 times per file: the tests after it are measured too.
sed -i 's/^\( *\)r function flush$/\1catch {r function flush}/' "$dir/redis/tests/support/server.tcl"
grep -q 'catch {r function flush}' "$dir/redis/tests/support/server.tcl" ||
	{ echo "FAIL: the harness no longer reads as expected"; exit 1; }
# The name of the test that raised the exception in harness output $1, as
# an anchored --skiptest regexp (a name built from variables matches any
# value); nothing when it cannot be found.
culprit() {
	/usr/bin/python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
i = text.find("[exception]")
m = re.search(r'^\s*"?test\s+([{"])(.*?)[}"]\s', text[i:], re.M) if i >= 0 else None
if m:
    parts = re.split(r'(\$\w+|\$\{\w+\}|\[[^\]]*\])', m.group(2))
    print("/^" + "".join(".*" if k % 2 else re.escape(t) for k, t in enumerate(parts)) + "$")
PY
}
: >"$dir/run.log"
for f in $files; do
	skips=()
	for _ in $(seq 60); do
		# --singledb: ringkv has database 0 only (the harness would SELECT 9).
		(cd "$dir/redis" && timeout 600 "$tclsh" tests/test_helper.tcl --host "$host" \
			--port "$port" --singledb --baseport 37100 --timeout 120 --single "$f" \
			"${skips[@]}") >"$dir/file.log" 2>&1
		sed -i 's/\x1b\[[0-9;]*m//g' "$dir/file.log"
		grep -q '^\[exception\]' "$dir/file.log" || break
		name=$(culprit "$dir/file.log")
		if [ -z "$name" ]; then
			echo "[exception]: $f: a test outside any test block" >>"$dir/run.log"
			break
		fi
		echo "[exception]: $f: $name" >>"$dir/run.log"
		skips+=(--skiptest "$name")
	done
	grep -v '^\[exception\]' "$dir/file.log" >>"$dir/run.log"
done
[ -n "${CONFORMANCE_RAW:-}" ] && cp "$dir/run.log" "$CONFORMANCE_RAW"
passed=$(grep -c '^\[ok\]' "$dir/run.log")
failed=$(grep -cE '^\[(err|exception)\]' "$dir/run.log")
grep -E '^\[(err|exception|ok)\]|^Executing test file' "$dir/run.log" \
	>"${CONFORMANCE_LOG:-/dev/null}" 2>/dev/null || true
grep -E '^\[(err|exception)\]' "$dir/run.log" | head -100
echo "conformance ($against): $passed passed, $failed failed of $((passed + failed)) run (files: $files)"
if [ "$passed" -lt "$min" ]; then
	echo "FAIL: fewer than $min passed"
	exit 1
fi
exit 0
