#!/bin/bash
# Every binary answers --help (usage on stdout, exit 0, and nothing run),
# --version (the project version, exit 0), and a bad argument with one line
# on stderr that names it and points to --help, exit 2.
# usage: test_binaries.sh BINARY...
set -u
fail=0
for bin in "$@"; do
	name=${bin##*/}
	out=$(timeout 10 "$bin" --help 2>/dev/null); rc=$?
	[[ $rc == 0 && $out == usage:* ]] ||
		{ echo "FAIL: $name --help: exit $rc, stdout '${out:0:60}'"; fail=1; }
	out=$(timeout 10 "$bin" -h 2>/dev/null); rc=$?
	[[ $rc == 0 && $out == usage:* ]] || { echo "FAIL: $name -h: exit $rc"; fail=1; }
	out=$(timeout 10 "$bin" --version 2>/dev/null); rc=$?
	[[ $rc == 0 && $out =~ ^$name\ [0-9]+\.[0-9]+\.[0-9]+ ]] ||
		{ echo "FAIL: $name --version: exit $rc, '$out'"; fail=1; }
	err=$(timeout 10 "$bin" --no-such-flag 2>&1 >/dev/null); rc=$?
	[[ $rc == 2 && $err == *--no-such-flag* && $err == *--help* &&
		$(printf '%s\n' "$err" | wc -l) == 1 ]] ||
		{ echo "FAIL: $name --no-such-flag: exit $rc, stderr '$err'"; fail=1; }
	# A port out of range is refused as such, not reported as refused.
	if [[ $name == ringkv-bench ]]; then
		err=$(timeout 10 "$bin" --addr 127.0.0.1:70000 2>&1 >/dev/null); rc=$?
		[[ $rc == 2 && $err == *"1 to 65535"* ]] ||
			{ echo "FAIL: $name --addr 127.0.0.1:70000: exit $rc, '$err'"; fail=1; }
	fi
done
[[ $fail == 0 ]] && echo "binaries: ok ($#)"
exit $fail
