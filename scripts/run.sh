#!/usr/bin/env bash
# Installs what is missing, builds, and starts one ringkvd node with embedded
# defaults: data in ./data, client port 127.0.0.1:7070.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log=${TMPDIR:-/tmp}/ringkv-build.log
scripts/deps.sh
echo "ringkv: building in $root/build (the first build takes a few minutes)..." >&2
if ! scripts/build.sh build >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "ringkv: the build failed; the whole log is in $log" >&2
	exit 1
fi
cat <<MSG
ringkvd: starting on 127.0.0.1:7070 (native) and 127.0.0.1:6380 (Redis protocol),
data in $root/data (Ctrl-C stops it cleanly). Talk to it from another terminal:
  $root/build/tools/ringkv put hello world
  $root/build/tools/ringkv get hello
  redis-cli -p 6380 set greeting hello
  redis-cli -p 6380 get greeting
MSG
exec build/server/ringkvd --listen 127.0.0.1:7070 --resp-listen 127.0.0.1:6380 \
	--data-dir ./data "$@"
