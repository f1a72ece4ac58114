#!/bin/sh
# Installs the Debian packages the test suite and benchmarks run for real:
# Chromium (browser tests) and wrk (load generator). Idempotent.
set -eu
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium chromium-driver"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$need"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
