#!/usr/bin/env bash
# The man pages render without groff warnings and document every long
# option their binary's --help lists.
# usage: man_pages.sh PAGE BINARY [PAGE BINARY ...]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: man_pages.sh PAGE BINARY ..." >&2; exit 2; }
fail=0
while [ $# -ge 2 ]; do
	page=$1 bin=$2
	shift 2
	if [ ! -s "$page" ]; then
		echo "FAIL: $page missing or empty" >&2
		fail=1
		continue
	fi
	warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1 || true)
	if [ -n "$warnings" ]; then
		echo "FAIL: $page: groff: $warnings" >&2
		fail=1
	fi
	text=$(groff -man -Tutf8 "$page" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.\x08//g')
	for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		grep -q "^$section" <<<"$text" || { echo "FAIL: $page: no $section" >&2; fail=1; }
	done
	for opt in $("$bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -q -- "$opt" <<<"$text" || { echo "FAIL: $page: $opt not documented" >&2; fail=1; }
	done
	echo "$page: ok"
done
exit $fail
