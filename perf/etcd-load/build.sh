#!/usr/bin/env bash
# Build etcd-load offline from Debian's Go packages (perf/deps.sh installs
# them): GOPATH mode over /usr/share/gocode, where golang-etcd-server-dev
# puts go.etcd.io/etcd/clientv3 and its dependencies. No module download.
#
#   perf/etcd-load/build.sh [OUTPUT]     (default build/perf/etcd-load/etcd-load)
#   perf/etcd-load/build.sh --test       run the histogram's unit tests
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/../.." && pwd)
test=0
if [ "${1:-}" = --test ]; then
	test=1
	shift
fi
out=${1:-$root/build/perf/etcd-load/etcd-load}
command -v go >/dev/null || { echo "etcd-load: go is missing (perf/deps.sh installs golang-go)" >&2; exit 1; }
[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ] ||
	{ echo "etcd-load: clientv3 is missing (perf/deps.sh installs golang-etcd-server-dev)" >&2; exit 1; }
cd "$src"
export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
if [ "$test" = 1 ]; then
	exec go test histogram.go histogram_test.go
fi
mkdir -p "$(dirname "$out")"
go build -o "$out" main.go histogram.go
