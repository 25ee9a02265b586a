#!/usr/bin/env bash
# Packages the comparisons in perf/ need beyond the build and test set of
# scripts/deps.sh (which already brings redis-server, redis-tools and
# python3): run once, as root, before perf/cluster-compare.sh. Kept apart
# from scripts/deps.sh so the test command does not install a Go toolchain
# and a second database.
#
#   etcd-server, etcd-client   the etcd side of perf/cluster-compare.sh
#   golang-go, golang-etcd-server-dev
#                              build perf/etcd-load offline against
#                              Debian's clientv3 (perf/etcd-load/build.sh)
#   util-linux, coreutils      taskset, timeout
#   gnuplot-nox, bc            perf/many-groups.sh's plot and arithmetic
#   valgrind                   perf/instructions.sh (callgrind)
set -euo pipefail
packages=(etcd-server etcd-client golang-go golang-etcd-server-dev util-linux coreutils python3 gnuplot-nox bc valgrind)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "perf/deps.sh: missing ${missing[*]}; run as root (apt-get install)" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi
# Debian starts etcd as a service on install where systemd runs; the
# comparison starts its own clusters, and a stray etcd would share the CPU.
if command -v systemctl >/dev/null && systemctl is-active -q etcd 2>/dev/null; then
	systemctl stop etcd || true
fi
echo "perf/deps.sh: all present"
