#!/usr/bin/env bash
# Start a Docker engine if none answers on the default socket (no systemd needed).
set -euo pipefail
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker
if "$DOCKER" -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl start docker || true
fi
if ! "$DOCKER" info >/dev/null 2>&1; then
  echo "start-dockerd: starting dockerd"
  $SUDO sh -c 'nohup dockerd >/var/log/dockward-dockerd.log 2>&1 &'
fi
for _ in $(seq 1 60); do
  if "$DOCKER" -H unix:///var/run/docker.sock info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; see /var/log/dockward-dockerd.log" >&2
exit 1
