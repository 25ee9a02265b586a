#!/usr/bin/env bash
# Installs the Debian 12 packages ringkv needs to build, run and test.
# Installs nothing when every package is already installed; names the optional
# tools it never installs (perf, npm, db_bench) when they are missing.
set -euo pipefail

# libclang-rt-14-dev holds clang's sanitizer and libFuzzer runtimes; clang only
# recommends it, and recommends are not installed below.
packages=(
	build-essential clang libclang-rt-14-dev meson ninja-build pkg-config
	liburing-dev libhwloc-dev nanopb libnanopb-dev libcmocka-dev libxxhash-dev libinih-dev
	libssl-dev openssl # TLS (issue 19); the tests make their certificates with openssl
	python3 python3-redis python3-prometheus-client redis-server redis-tools
	iproute2 procps util-linux
	help2man groff-base # man pages (packaging/man)
	iptables # partition faults on lo (tests/integration/netfault.sh)
)

# Optional tools, never installed here (large, and each serves one task):
# say which are missing (neither the package nor the command is there), what
# needs them and how to add them.
optional=(
	"linux-perf perf:perf/flamegraph.sh (profiling)"
	"npm npm:perf/flamegraph.sh's flame graph template (d3-flame-graph)"
	"rocksdb-tools db_bench:the engine comparison in docs/PERFORMANCE.md"
)
for o in "${optional[@]}"; do
	read -r pkg cmd <<<"${o%%:*}"
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
		command -v "$cmd" >/dev/null ||
		echo "ringkv: optional, not installed: $pkg ($cmd) for ${o#*:};" \
			"apt-get install $pkg" >&2
done

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "ringkv: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts redis-server as a service on install; the comparisons start
# their own instance, so the packaged one is stopped to keep port 6379 free.
if command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null; then
	$sudo systemctl stop redis-server || true
fi
