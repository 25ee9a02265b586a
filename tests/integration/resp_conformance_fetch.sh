#!/usr/bin/env bash
# Fetches Redis 7.0's test files for tests/integration/resp_conformance.sh:
# Debian's source package of redis (the same 7.0.15 as the installed
# redis-server), unpacked under /var/cache/ringkv-redis-src, outside the
# repository. Redis's files are read from there by the runner and never
# copied into ringkv. Needs root (apt) and Debian's package archive; adds a
# deb-src entry for the system's own suites when there is none.
set -euo pipefail
cache=${1:-/var/cache/ringkv-redis-src}
srcs=/etc/apt/sources.list.d/ringkv-debian-src.sources
if ! grep -rqs '^Types: deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	. /etc/os-release
	cat >"$srcs" <<EOT
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $VERSION_CODENAME-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
fi
apt-get update -qq
mkdir -p "$cache"
cd "$cache"
apt-get source --download-only redis
tar xzf redis_7.0*.orig.tar.gz
ls -d "$cache"/redis-7.0*/tests
