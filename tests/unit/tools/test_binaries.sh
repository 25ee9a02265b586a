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
	case $name in
	ringkv-bench) flag=--addr range="1 to 65535" ;;
	ringkv) flag=-a range="1 to 65535" ;;
	ringkvd) flag=--listen range="0 to 65535" ;;
	*) flag= ;;
	esac
	if [[ -n $flag ]]; then
		for port in 70000 -1; do
			err=$(timeout 10 "$bin" $flag 127.0.0.1:$port ping 2>&1 >/dev/null); rc=$?
			[[ $rc == 2 && $err == *"$range"* && $err == *$port* &&
				$(printf '%s\n' "$err" | wc -l) == 1 ]] ||
				{ echo "FAIL: $name $flag 127.0.0.1:$port: exit $rc, '$err'"; fail=1; }
		done
	fi
done
[[ $fail == 0 ]] && echo "binaries: ok ($#)"
exit $fail
