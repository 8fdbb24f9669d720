"""Audit wall time with 10, 14, 100 and 300 containers on a daemon of its own.

Run: `.venv/bin/python -m bench.audit_bench [--counts 10,14,100,300] [--repeat 3]` (as root).
Starts a separate dockerd in its own network namespace, builds the busybox lab image into it,
creates N running containers with a mix of settings, and times `dockward audit` end to end
(process start-up included) and the collect / judge phases in-process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.audit.daemons import start_dockerd, stop, wait_ready

from dockward.audit import build_report
from dockward.engine import collect_snapshot, connect, resolve_endpoint
from dockward.engine.lab import build_busybox_image
from dockward.scan.records import attach_scan_records

REPO = Path(__file__).resolve().parent.parent
IMAGE = "dockward-lab/busybox:1.0"


def populate(client: object, n: int) -> None:
    existing = len(client.containers(all=True))  # type: ignore[attr-defined]
    for i in range(existing, n):
        host: dict[str, object] = {}
        if i % 3 == 0:
            host["cap_add"] = ["NET_ADMIN"]
        if i % 4 == 0:
            host["mem_limit"] = "64m"
        if i % 5 == 0:
            host["port_bindings"] = {80: ("127.0.0.1", 20000 + i)}
        hc = client.create_host_config(**host)  # type: ignore[attr-defined]
        c = client.create_container(
            IMAGE, command=["sleep", "86400"], host_config=hc, name=f"dwbench-{i}"
        )  # type: ignore[attr-defined]
        client.start(c)  # type: ignore[attr-defined]


def time_cli(url: str, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dockward",
                "audit",
                "-H",
                url,
                "-f",
                "json",
                "-o",
                "/tmp/dwbench.json",
                "--fail-on",
                "never",
            ],
            check=True,
            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10,14,100,300")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    daemon = start_dockerd("dwbench-audit", {"live-restore": False}, netns="dwbench")
    try:
        wait_ready(daemon)
        endpoint = resolve_endpoint(daemon.url)
        client = connect(endpoint, timeout=120)
        build_busybox_image(client, IMAGE)
        print(
            f"{'containers':>10} {'cli wall s':>11} {'collect s':>10} {'judge s':>8} {'results':>8}"
        )
        for n in (int(x) for x in args.counts.split(",")):
            populate(client, n)
            wall = time_cli(daemon.url, args.repeat)
            t0 = time.perf_counter()
            snap = collect_snapshot(client, endpoint, scan_records=attach_scan_records)
            t1 = time.perf_counter()
            report = build_report([snap])
            t2 = time.perf_counter()
            print(
                f"{n:>10} {wall:>11.2f} {t1 - t0:>10.2f} {t2 - t1:>8.3f} {len(report.results):>8}",
                flush=True,
            )
    finally:
        stop(daemon)


if __name__ == "__main__":
    main()
