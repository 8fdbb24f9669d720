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

from harden_common import IMAGE, httpd_workload

from dockward.engine import connect, resolve_endpoint
from dockward.harden.propose import harden
from dockward.harden.runner import remove_stale
from dockward.model.container import ContainerSpec

PREFIX = "dwharden-benchfull"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    client = connect(resolve_endpoint())
    remove_stale(client, PREFIX)
    httpd = httpd_workload(client)
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
