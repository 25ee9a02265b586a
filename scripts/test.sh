#!/usr/bin/env bash
# Installs what is missing, builds with gcc, runs the whole test suite, builds
# the release build with gcc and with clang (warning-free: -Werror), then
# builds with clang and runs the suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
echo "== gcc build, full suite"
scripts/build.sh build
meson test -C build --no-rebuild --print-errorlogs --num-processes "$jobs" \
	--no-suite slow

echo "== release builds, gcc and clang (warnings are errors)"
scripts/build.sh build-release --buildtype=release
CC=clang scripts/build.sh build-release-clang --buildtype=release

echo "== clang, address + undefined sanitizers"
CC=clang scripts/build.sh build-san -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-san --no-rebuild --print-errorlogs --num-processes "$jobs" \
	--no-suite slow --no-suite bench --no-suite timing-proof --timeout-multiplier 3
