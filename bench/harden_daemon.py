"""Benchmark: `daemon harden` on a second, weak dockerd - proposal, apply + restart, rollback.

Run (as root, from the repository root): .venv/bin/python bench/harden_daemon.py [--rounds N]
The daemon runs in its own network namespace with its own data-root, exec-root and socket under
/tmp/dwharden2-bench (tests/harden/daemons.py), and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.harden import daemons  # noqa: E402

ROOT = Path("/tmp/dwharden2-bench")
SOCK = f"unix://{ROOT / 'docker.sock'}"
WEAK = {"log-level": "debug", "labels": ["dockward.test=dwharden2"]}


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "dockward", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    return time.monotonic() - t, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    restart = shlex.join([sys.executable, "-m", "tests.harden.daemons", "restart", str(ROOT)])
    daemons.setup(ROOT, "dwharden2-bench", WEAK, ())
    daemons.start(ROOT)
    if not daemons.wait_ready(ROOT):
        sys.exit(f"dockerd did not start: {daemons.log_tail(ROOT)}")
    times: dict[str, list[float]] = {"propose": [], "apply+restart": [], "rollback+restart": []}
    restart_only: list[float] = []
    try:
        for _ in range(args.rounds):
            t, res = cli("daemon", "harden", "-H", SOCK, "--json")
            assert res.returncode == 1, res.stderr
            times["propose"].append(t)
            t, res = cli(
                "daemon", "harden", "-H", SOCK, "--apply", "--restart", "--restart-cmd", restart,
                "--json",
            )  # fmt: skip
            assert res.returncode == 0, res.stderr
            times["apply+restart"].append(t)
            restart_only.append(json.loads(res.stdout)["restart"]["seconds"])
            t, res = cli(
                "daemon", "harden", "-H", SOCK, "--rollback", "--restart", "--restart-cmd", restart
            )
            assert res.returncode == 0, res.stderr
            times["rollback+restart"].append(t)
    finally:
        daemons.stop_daemon(ROOT)
        daemons.stop_stale(ROOT)
    for name, values in times.items():
        print(f"{name:18s} median {statistics.median(values):6.2f}s  (n={len(values)})")
    print(
        f"{'restart only':18s} median {statistics.median(restart_only):6.2f}s  "
        "(restart + dockerd answering + checks re-run)"
    )


if __name__ == "__main__":
    main()
