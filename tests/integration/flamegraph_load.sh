#!/bin/bash
# perf/flamegraph.sh with a load command that fails (at once, or while
# recording) exits non-zero naming it, instead of writing the profile of an
# idle server (issue 13). Exit 77 (skipped) where perf cannot record here.
# usage: flamegraph_load.sh FLAMEGRAPH.SH
set -u
script=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-flamegraph-test.XXXXXX")
sleep 120 &
target=$!
cleanup() {
	kill "$target" 2>/dev/null
	wait "$target" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

command -v perf >/dev/null || { echo "perf not installed: skipped"; exit 77; }
perf record -o "$work/probe.data" -p "$target" -- sleep 0.2 >/dev/null 2>&1 ||
	{ echo "perf record is not permitted here: skipped"; exit 77; }
perf script -l 2>/dev/null | grep -qw flamegraph ||
	{ echo "this perf has no flamegraph report: skipped"; exit 77; }
# A template with the placeholder: nothing is fetched from npm.
echo '<html>/** @flamegraph_json **/</html>' >"$work/template.html"

fail=0
check() { # check WANTED-EXIT-IN-MESSAGE LOAD...
	local want=$1 err rc
	shift
	err=$(timeout 60 "$script" --pid "$target" --seconds 2 --template "$work/template.html" \
		--out "$work/out.html" -- "$@" 2>&1 >/dev/null); rc=$?
	if [[ $rc == 0 || $err != *"the load command failed (exit $want)"* || -e $work/out.html ]]; then
		echo "FAIL: load '$*': exit $rc, stderr: $err"
		fail=1
	fi
}
check 1 false
check 3 sh -c 'sleep 1.5; exit 3'
[[ $fail == 0 ]] && echo "flamegraph-load: ok"
exit $fail
