"""Benchmark: a full `harden` of a small service (httpd on busybox): observe, capabilities,
no-new-privileges, non-root, read-only, limits, seccomp learning, verification; per-phase times.

Run: .venv/bin/python bench/harden_full.py [--rounds N]   (needs the Docker daemon, as root)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from dockward.engine import connect, resolve_endpoint
from dockward.engine.lab import build_busybox_image
from dockward.harden.propose import harden
from dockward.harden.runner import Workload, remove_stale
from dockward.model.container import ContainerSpec

PREFIX = "dwharden-benchfull"
IMAGE = "dwharden/httpd:2"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    client = connect(resolve_endpoint())
    remove_stale(client, PREFIX)
    build_busybox_image(
        client,
        IMAGE,
        extra='RUN ["/bin/busybox", "sh", "-c", "echo hello > /var/www/index.html && mkdir -p /data"]',
    )
    httpd = Workload(
        IMAGE,
        command=("httpd", "-f", "-p", "8080", "-h", "/var/www"),
        probe=("timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:8080/"),
        duration=1.0,
    )
    totals: list[float] = []
    phases: list[dict[str, float]] = []
    for _ in range(args.rounds):
        t0 = time.monotonic()
        p = harden(client, httpd, ContainerSpec(name="httpd", image=IMAGE, origin="run"),
                   prefix=PREFIX, service=True)  # fmt: skip
        totals.append(time.monotonic() - t0)
        phases.append({k: round(v, 2) for k, v in p.timings.items()})
        assert p.verified, p.steps
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "total_s_median": round(statistics.median(totals), 2),
                "total_s": [round(t, 2) for t in totals],
                "phases_s": phases,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
