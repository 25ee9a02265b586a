#!/usr/bin/env bash
# Installs what is missing, builds, and starts one ringkvd node with embedded
# defaults: data in ./data, client port 127.0.0.1:7070.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
cat <<'MSG'
ringkvd: starting on 127.0.0.1:7070 (native) and 127.0.0.1:6380 (Redis protocol),
data in ./data (Ctrl-C stops it cleanly). Talk to it from another terminal:
  build/tools/ringkv put hello world
  build/tools/ringkv get hello
  redis-cli -p 6380 set greeting hello
  redis-cli -p 6380 get greeting
MSG
exec build/server/ringkvd --listen 127.0.0.1:7070 --resp-listen 127.0.0.1:6380 \
	--data-dir ./data "$@"
