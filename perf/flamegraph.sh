#!/usr/bin/env bash
# Record a running process with perf and write a self-contained interactive
# flame graph (HTML) with perf's own flamegraph report and the d3-flame-graph
# template from npm. No hand-written renderer: perf folds the stacks, the
# template (d3 inlined) draws them, and the page works offline.
#
#   perf/flamegraph.sh [--pid PID | --name NAME] [--seconds N] [--out FILE.html]
#                      [--freq HZ] [--dwarf] [--template FILE] [--keep]
#                      [-- LOAD COMMAND...]
#
# With "-- LOAD COMMAND", the command (e.g. ringkv-bench) is started just
# before recording and stopped when recording ends, so the profile covers the
# load. See docs/PROFILING.md.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

pid=
name=
seconds=10
out=
freq=999
dwarf=0
template=${RINGKV_FLAMEGRAPH_TEMPLATE:-}
keep=0
load=()

# die (usage is this script's own, below)
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"

usage() {
	cat <<EOF
usage: $prog [--pid PID | --name NAME] [--seconds N] [--out FILE.html] [options] [-- LOAD...]

Profile a running process for N seconds with 'perf record' and write an
interactive, self-contained flame graph (HTML).

  --pid PID          process to profile
  --name NAME        or: the process whose name is exactly NAME (default ringkvd)
  --seconds N        how long to record (default 10)
  --out FILE.html    output (default perf/out/flamegraph-NAME-TIME.html)
  --freq HZ          sampling frequency (default 999)
  --dwarf            unwind with DWARF (--call-graph dwarf) instead of frame
                     pointers: whole stacks for code built without them
                     (larger perf.data, slower report)
  --template FILE    d3-flame-graph HTML template; default: fetched once with
                     'npm pack d3-flame-graph@4' into \$XDG_CACHE_HOME/ringkv
                     (or set RINGKV_FLAMEGRAPH_TEMPLATE)
  --keep             keep perf.data next to the output
  -- LOAD...         run this command while recording, stop it afterwards
EOF
}


while [ $# -gt 0 ]; do
	case $1 in
	--pid) pid=${2:?--pid needs a value}; shift 2 ;;
	--name) name=${2:?--name needs a value}; shift 2 ;;
	--seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
	--out) out=${2:?--out needs a value}; shift 2 ;;
	--freq) freq=${2:?--freq needs a value}; shift 2 ;;
	--dwarf) dwarf=1; shift ;;
	--template) template=${2:?--template needs a value}; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; load=("$@"); break ;;
	*) echo "$prog: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || die "--seconds must be a positive integer"
[[ $freq =~ ^[0-9]+$ && $freq -gt 0 ]] || die "--freq must be a positive integer"
[ -n "$pid" ] && [ -n "$name" ] && die "give --pid or --name, not both"

command -v perf >/dev/null 2>&1 ||
	die "perf not found; install it with: apt-get install linux-perf"
command -v python3 >/dev/null 2>&1 || die "python3 not found (needed to check the template)"
perf script -l 2>/dev/null | grep -qw flamegraph ||
	die "this perf has no 'flamegraph' report script (perf built without python?)"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/ringkv
work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-flamegraph.XXXXXX")
load_pid=

cleanup() {
	if [ -n "$load_pid" ] && kill -0 "$load_pid" 2>/dev/null; then
		kill "$load_pid" 2>/dev/null || true
		wait "$load_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- the template -----------------------------------------------------------

# External resources a page would load: <script src=http...>, stylesheets or
# url(...) from a CDN. XML namespace strings inside the inlined d3 are fine.
external_refs() {
	grep -Eio '<script[^>]*src=[^>]*>|<link[^>]*href=["'"'"']?(https?:)?//[^>]*>|url\(["'"'"']?https?://[^)]*\)' \
		"$1" || true
}

# npm pack PACKAGE@VERSION into $cache and print the extracted folder.
npm_fetch() {
	local spec=$1 dir=$cache/${1//[@\/]/_}
	if [ ! -d "$dir/package" ]; then
		command -v npm >/dev/null 2>&1 ||
			die "npm not found; install it (apt-get install npm) or pass --template FILE"
		mkdir -p "$dir"
		local tgz
		tgz=$(cd "$dir" && npm pack --silent "$spec" 2>/dev/null | tail -n 1) ||
			die "npm pack $spec failed (no access to the npm registry?)"
		tar -xzf "$dir/$tgz" -C "$dir" || die "cannot extract $dir/$tgz"
	fi
	echo "$dir/package"
}

# Replace <script src=...> and stylesheet links of d3 / d3-flame-graph with
# the files themselves, taken from the npm packages, so the page works
# offline. Only needed for templates that load them from a CDN.
inline_template() {
	local src=$1 dst=$2 fg d3
	fg=$(npm_fetch d3-flame-graph@4)
	d3=$(npm_fetch d3@7)
	python3 - "$src" "$dst" "$fg/dist" "$d3/dist" <<'EOF'
import re, sys, os
src, dst, fg, d3 = sys.argv[1:5]
html = open(src, encoding="utf-8").read()
def local(url):
    base = url.split("?")[0].rsplit("/", 1)[-1]
    if base.endswith(".css"):
        return os.path.join(fg, "d3-flamegraph.css")
    if "tooltip" in base:
        return os.path.join(fg, "d3-flamegraph-tooltip.min.js")
    if "color" in base:
        return os.path.join(fg, "d3-flamegraph-colorMapper.min.js")
    if "flamegraph" in base or "flame-graph" in url:
        return os.path.join(fg, "d3-flamegraph.min.js")
    if re.match(r"d3(\.v\d+)?(\.min)?\.js$", base):
        return os.path.join(d3, "d3.min.js")
    sys.exit("cannot inline %s: no local copy known" % url)
def script(m):
    return "<script>\n" + open(local(m.group(1)), encoding="utf-8").read() + "\n</script>"
def style(m):
    return "<style>\n" + open(local(m.group(1)), encoding="utf-8").read() + "\n</style>"
html = re.sub(r'<script[^>]*\bsrc=["\']([^"\']+)["\'][^>]*>\s*</script>', script, html)
html = re.sub(r'<link[^>]*\bhref=["\']([^"\']+\.css[^"\']*)["\'][^>]*>', style, html)
open(dst, "w", encoding="utf-8").write(html)
EOF
}

find_template() {
	local tpl=$template
	if [ -z "$tpl" ]; then
		tpl=$cache/d3-flamegraph-base.html
		if [ ! -f "$tpl" ]; then
			local pkg
			pkg=$(npm_fetch d3-flame-graph@4)
			[ -f "$pkg/dist/templates/d3-flamegraph-base.html" ] ||
				die "d3-flame-graph@4 has no dist/templates/d3-flamegraph-base.html"
			cp "$pkg/dist/templates/d3-flamegraph-base.html" "$tpl"
		fi
	fi
	[ -f "$tpl" ] || die "template $tpl not found"
	grep -q '/\*\* @flamegraph_json \*\*/' "$tpl" ||
		die "$tpl is not a d3-flame-graph template (no @flamegraph_json placeholder)"
	if [ -n "$(external_refs "$tpl")" ]; then
		echo "$prog: template loads external files; inlining them" >&2
		local inlined
		mkdir -p "$cache"
		inlined=$cache/d3-flamegraph-inlined-$(sha256sum "$tpl" | cut -c1-12).html
		[ -f "$inlined" ] || inline_template "$tpl" "$inlined"
		tpl=$inlined
		[ -z "$(external_refs "$tpl")" ] || die "could not inline every external file of $tpl"
	fi
	echo "$tpl"
}

tpl=$(find_template)

# --- the process --------------------------------------------------------------

if [ -z "$pid" ]; then
	name=${name:-ringkvd}
	mapfile -t pids < <(pgrep -x "$name" || true)
	[ ${#pids[@]} -gt 0 ] || die "no process named '$name' is running"
	[ ${#pids[@]} -eq 1 ] || die "several processes named '$name' (${pids[*]}); use --pid"
	pid=${pids[0]}
fi
kill -0 "$pid" 2>/dev/null || die "process $pid is not running"
comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo "pid$pid")

if [ -z "$out" ]; then
	mkdir -p "$root/perf/out"
	out=$root/perf/out/flamegraph-$comm-$(date +%Y%m%d-%H%M%S).html
fi
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# Dies when the load command has already exited with an error: a profile
# of the server without its load would be a profile of an idle server.
check_load() {
	local status=0
	[ -n "$load_pid" ] || return 0
	kill -0 "$load_pid" 2>/dev/null && return 0
	wait "$load_pid" || status=$?
	load_pid=
	[ "$status" = 0 ] ||
		die "the load command failed (exit $status) $1: ${load[*]}"
	echo "$prog: the load command finished $1; the profile covers less load than asked" >&2
}

if [ ${#load[@]} -gt 0 ]; then
	"${load[@]}" &
	load_pid=$!
	sleep 1 # let the load connect before sampling
	check_load "before recording began"
fi

callgraph=(-g)
[ "$dwarf" = 1 ] && callgraph=(--call-graph "dwarf,16384")
echo "$prog: recording $comm ($pid) for ${seconds}s at ${freq} Hz (${callgraph[*]})" >&2
perf record -F "$freq" "${callgraph[@]}" -p "$pid" -o "$work/perf.data" -- sleep "$seconds" \
	2> >(grep -v '^\[ perf record: Woken up' >&2) ||
	die "perf record failed (perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid); run as root or lower it)"

check_load "while recording"
if [ -n "$load_pid" ]; then
	kill "$load_pid" 2>/dev/null || true
	wait "$load_pid" 2>/dev/null || true
	load_pid=
fi

# perf's flamegraph script reads ./perf.data (and its header) from the cwd.
(cd "$work" && perf script report flamegraph --template "$tpl" -o "$out" >/dev/null) ||
	die "perf script report flamegraph failed"
grep -q '/\*\* @flamegraph_json \*\*/' "$out" && die "$out has no stack data"
[ -z "$(external_refs "$out")" ] || die "$out references external files"
if [ "$keep" = 1 ]; then
	cp "$work/perf.data" "${out%.html}.perf.data"
fi
echo "$out"
