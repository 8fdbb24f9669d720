"""Benchmark: learn + verify the httpd workload's seccomp profile end to end; profile and cap sizes.

Run: .venv/bin/python bench/harden_learn.py [--rounds N]   (needs the Docker daemon, as root)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from harden_common import IMAGE, httpd_workload

from dockward.engine import connect, resolve_endpoint
from dockward.harden.caps import minimal_capabilities
from dockward.harden.learn import learn_seccomp, verify_seccomp
from dockward.harden.runner import Settings, Workload, remove_stale
from dockward.profiles.default import default_for, default_profile
from dockward.profiles.seccomp import allowed, dumps
from dockward.profiles.syscalls import table

PREFIX = "dwharden-bench"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    client = connect(resolve_endpoint())
    remove_stale(client, PREFIX)
    httpd = httpd_workload(client)
    learn_s, verify_s, total_s, counts = [], [], [], []
    for _ in range(args.rounds):
        t0 = time.monotonic()
        lp = learn_seccomp(client, httpd, prefix=PREFIX, service=True)
        t1 = time.monotonic()
        out = verify_seccomp(client, httpd, Settings(), lp.profile, prefix=PREFIX, service=True)
        t2 = time.monotonic()
        assert out.ok, out.reason
        learn_s.append(t1 - t0)
        verify_s.append(t2 - t1)
        total_s.append(t2 - t0)
        counts.append(lp.syscall_count)
    default = default_for()
    amd64 = set(table("x86_64"))
    print(
        f"httpd learn+verify end to end: median {statistics.median(total_s):.2f}s "
        f"(learn {statistics.median(learn_s):.2f}s, verify {statistics.median(verify_s):.2f}s, "
        f"{args.rounds} rounds)"
    )
    print(
        f"syscalls in learned profile: {counts[-1]} (rounds: {counts}); records {lp.records}, lost {lp.lost}"
    )
    print(
        f"Docker default (engine 20.10, 14 caps, this kernel): {len(allowed(default))} names allowed, "
        f"{len(allowed(default) & amd64)} of them amd64 syscalls; "
        f"{len(default_profile().names())} distinct names in the file"
    )
    print(
        f"profile JSON bytes: learned {len(dumps(lp.profile))}, default {len(dumps(default_profile()))}"
    )
    caps_workloads = {
        "httpd": (httpd, True),
        "chown": (
            Workload(
                IMAGE, command=("sh", "-c", "touch /tmp/f && chown 1000:1000 /tmp/f"), duration=5
            ),
            False,
        ),
        "ping (raw socket)": (
            Workload(IMAGE, command=("ping", "-c", "1", "-W", "2", "127.0.0.1"), duration=5),
            False,
        ),
        "writer": (
            Workload(IMAGE, command=("sh", "-c", "echo data > /data/out"), duration=5),
            False,
        ),
    }
    for name, (w, service) in caps_workloads.items():
        r = minimal_capabilities(client, w, prefix=PREFIX, service=service)
        print(
            f"caps {name}: {len(r.before)} -> {len(r.cap_add)} {list(r.cap_add)} "
            f"({len(r.trials)} runs, {r.seconds:.1f}s)"
        )


if __name__ == "__main__":
    main()
