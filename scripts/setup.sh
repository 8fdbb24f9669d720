#!/usr/bin/env bash
# Install what dockward (and with --test its tests) needs on Debian/Ubuntu: Debian packages and a venv.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# What dockward and the demo need; `--test` adds what only the tests use (servers they start,
# peers they compare with, a browser for the HTML report).
PACKAGES=(docker.io busybox-static python3-venv ca-certificates)
EXTRA="."
if [ "${1:-}" = "--test" ]; then
  PACKAGES+=(docker-registry rsyslog rsyslog-openssl apparmor iproute2 chromium skopeo umoci haproxy
             gcc libc6-dev golang-go python3-yaml python3-six postgresql openssh-server prometheus
             mmdebstrap docker-compose systemd)
  EXTRA=".[dev]"
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e "$EXTRA"
