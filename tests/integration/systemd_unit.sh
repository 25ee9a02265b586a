#!/usr/bin/env bash
# The packaged unit passes `systemd-analyze verify`, pointed at the built
# ringkvd (the installed path does not exist in a build tree).
# usage: systemd_unit.sh UNIT RINGKVD
set -euo pipefail
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipping"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$2|" "$1" >"$work/ringkvd.service"
grep -q "^ExecStart=$2 " "$work/ringkvd.service"
# verify only warns about a value it cannot parse: any message fails.
systemd-analyze verify "$work/ringkvd.service" 2>"$work/messages"
if [ -s "$work/messages" ]; then
	cat "$work/messages" >&2
	exit 1
fi
echo "unit verified"
