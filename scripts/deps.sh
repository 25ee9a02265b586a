#!/usr/bin/env bash
# Installs the Debian 12 packages ringkv needs to build, run and test.
# Does nothing when every package is already installed.
set -euo pipefail

# libclang-rt-14-dev holds clang's sanitizer and libFuzzer runtimes; clang only
# recommends it, and recommends are not installed below.
packages=(
	build-essential clang libclang-rt-14-dev meson ninja-build pkg-config
	liburing-dev libhwloc-dev nanopb libnanopb-dev libcmocka-dev libxxhash-dev libinih-dev
	python3 python3-redis python3-prometheus-client redis-server redis-tools
	iproute2 procps util-linux
	iptables # partition faults on lo (tests/integration/netfault.sh)
)

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
