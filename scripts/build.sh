#!/usr/bin/env bash
# Configures (once) and builds ringkv in DIR (default: build) with extra meson
# options given after the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@"
fi
ninja -C "$dir"
