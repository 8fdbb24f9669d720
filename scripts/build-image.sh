#!/usr/bin/env bash
# Build dockward's container image from the repository's Dockerfile.
#
#   scripts/build-image.sh [TAG]        (default dockward:local; env DOCKWARD_IMAGE_TAG)
#
# No image registry is reachable from air-gapped hosts: when the daemon lacks the base image
# (debian:bookworm-slim), a bookworm minbase is made with mmdebstrap and imported under that
# name. Python wheels are fetched on this host (whose pip knows its index and CA) into
# deploy/wheels/, so the build itself needs no HTTPS to PyPI; Debian packages come over the
# build's network as on any machine. DOCKWARD_IMAGE_WHEELS=0 leaves wheels to the build (a
# machine whose containers reach PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-${DOCKWARD_IMAGE_TAG:-dockward:local}}
BASE=debian:bookworm-slim
MIRROR=${DOCKWARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}

if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
  if ! $DOCKER pull -q "$BASE" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || { echo "build-image: $BASE is missing and mmdebstrap is not installed" >&2; exit 2; }
    echo "build-image: creating $BASE with mmdebstrap (bookworm, minbase)" >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mmdebstrap --quiet --variant=minbase --format=tar \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      bookworm "$tmp/rootfs.tar" "$MIRROR"
    $DOCKER import --change 'CMD ["bash"]' "$tmp/rootfs.tar" "$BASE" >/dev/null
  fi
fi

PIP_NO_INDEX=0
if [ "${DOCKWARD_IMAGE_WHEELS:-1}" = 1 ]; then
  PY=${PYTHON:-python3}
  [ -x .venv/bin/python ] && PY=.venv/bin/python
  # The dependencies as wheels (dockward itself is built from source in the builder stage).
  find deploy/wheels -name '*.whl' -delete
  "$PY" -m pip download -q --dest deploy/wheels --only-binary :all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --python-version 3.11 --implementation cp \
    "setuptools>=77" wheel $("$PY" - <<'PYEOF'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(" ".join(d.replace(" ", "") for d in deps))
PYEOF
) 2> >(grep -v '^WARNING: Location' >&2)
  PIP_NO_INDEX=1
fi

# deploy/compose.yaml gives the proxy the engine socket's group; compose reads deploy/.env.
if [ ! -e deploy/.env ] && [ -S /var/run/docker.sock ]; then
  echo "DOCKER_GID=$(stat -c %g /var/run/docker.sock)" > deploy/.env
fi

start=$(date +%s)
$DOCKER build -q --build-arg PIP_NO_INDEX=$PIP_NO_INDEX -t "$TAG" . >/dev/null
echo "build-image: $TAG built in $(( $(date +%s) - start ))s" >&2
