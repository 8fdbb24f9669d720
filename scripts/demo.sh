#!/usr/bin/env bash
# The main job on a demo host: install dockward, start an engine if none answers, start a few
# containers with typical mistakes, audit the host and write report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/start-dockerd.sh
.venv/bin/python scripts/demo_lab.py
set +e
.venv/bin/dockward audit --format html -o report.html
code=$?
.venv/bin/dockward audit --format table --fail-on never | tail -n 3
set -e
echo "demo: wrote $(pwd)/report.html (audit exit code $code: 1 means findings at or above --fail-on)"
