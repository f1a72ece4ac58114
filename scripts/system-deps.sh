#!/bin/sh
# Installs the Debian packages the test suite and benchmarks run for real:
# Chromium (browser tests), Firefox (the simulator's headers checked), wrk (load
# generator), nginx and Caddy (the decision service behind real edge proxies), Redis
# and PostgreSQL (state and storage for many nodes; the tests start their own servers
# on free loopback ports), GoAccess and fail2ban (log tools the replay benchmark
# compares with). Idempotent.
set -eu
need=""
services=""
command -v chromium >/dev/null 2>&1 || need="$need chromium chromium-driver"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
# A C compiler and the Python headers: `make compile` builds the request path with mypyc.
command -v gcc >/dev/null 2>&1 || need="$need gcc"
python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
  >/dev/null 2>&1 || need="$need python3-dev"
# Firefox: the simulator's Firefox headers are checked against a real one (test_simulate_tools).
command -v firefox-esr >/dev/null 2>&1 || need="$need firefox-esr"
# Log tools the replay benchmark measures itself against (bench/replay.py).
command -v goaccess >/dev/null 2>&1 || need="$need goaccess"
if ! command -v fail2ban-regex >/dev/null 2>&1; then
  need="$need fail2ban"
  services="$services fail2ban"  # only its fail2ban-regex is used: the service is stopped again
fi
# Tesseract OCR: the legal reports' PDFs are rendered to PNG and read back in a test.
command -v tesseract >/dev/null 2>&1 || need="$need tesseract-ocr tesseract-ocr-eng"
# nginx lives in /usr/sbin, often not on a normal user's PATH.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  need="$need nginx"
  services="$services nginx"
fi
if ! command -v caddy >/dev/null 2>&1; then
  need="$need caddy"
  services="$services caddy"
fi
if ! command -v redis-server >/dev/null 2>&1; then
  need="$need redis-server"
  services="$services redis-server"
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need="$need postgresql"
  services="$services postgresql"
fi
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$need"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
# The nginx, caddy, redis-server and postgresql packages start system services. The tests and benchmarks run
# their own on loopback ports, so a service this script brought in is stopped and disabled again.
if [ -n "$services" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for service in $services; do
    $SUDO systemctl disable --now "$service" >/dev/null 2>&1 || true
  done
fi
