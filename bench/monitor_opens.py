"""CPU cost of file-open events, with and without the opens' own audit records, in one run.

    sudo .venv/bin/python bench/monitor_opens.py [--opens 5000]

A shell in a container writes --opens distinct files (`echo x > /tmp/dwmon-o-N`: one open and
one close each, no exec). Two monitors run one after the other on the same storm: `proc`
(fanotify alone: fd.num only while the writer still holds the descriptor) and `audit` (fanotify
plus one audit rule on the container's filesystem: fd.num and evt.arg.flags from each open's
record). Reports, for each, the events a rule counted, how many carried fd.num, and the
monitor's CPU seconds per 1,000 opens; the ratio audit/proc is the price of exact fd.num.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from monitor_common import api, cpu_seconds, start_container, start_monitor, workdir

NAME = "dwmon-bench-opens"
RULES = """
- rule: Bench open in container
  desc: counts the benchmark's opens
  condition: >
    evt.type = openat and evt.is_open_write = true and container.name = dwmon-bench-opens
    and fd.name startswith /tmp/dwmon-o-
  output: "bench open %fd.name fd=%fd.num flags=%evt.arg.flags"
  priority: WARNING
  tags: [bench]
"""


def one(client: Any, audit_opens: bool, opens: int) -> dict[str, object]:
    work = workdir()
    alerts = work / "alerts.jsonl"
    start_container(client, NAME)
    extra = () if audit_opens else ("--no-audit-opens",)
    monitor = start_monitor(work, [f"file:{alerts}"], ["docker", "audit", "file"], RULES, extra)
    try:
        time.sleep(3.0)  # the container's filesystem is marked (and audited) by now
        loop = f"i=0; while [ $i -lt {opens} ]; do echo x > /tmp/dwmon-o-$i; i=$((i+1)); done"
        c0, t0 = cpu_seconds(monitor.pid), time.monotonic()
        ex = client.exec_create(NAME, ["sh", "-c", loop])
        client.exec_start(ex["Id"])
        storm = time.monotonic() - t0
        seen, last = -1, time.monotonic()
        # until every open is reported, or nothing new came for 10 s (at most 180 s)
        while seen < opens and time.monotonic() - last < 10.0 and time.monotonic() - t0 < 180:
            n = len(alerts.read_text().splitlines()) if alerts.exists() else 0
            if n != seen:
                seen, last = n, time.monotonic()
            time.sleep(0.2)
        drained = time.monotonic() - t0
        c1 = cpu_seconds(monitor.pid)
        got = [json.loads(x) for x in alerts.read_text().splitlines()] if alerts.exists() else []
        with_fd = [a for a in got if a["output_fields"].get("fd.num") is not None]
        return {
            "audit_opens": audit_opens,
            "opens": opens,
            "storm_seconds": round(storm, 2),
            "seconds_until_reported": round(drained, 2),
            "events": len(got),
            "events_with_fd_num": len(with_fd),
            "cpu_seconds": round(c1 - c0, 2),
            "cpu_ms_per_1000_opens": round(1_000_000 * (c1 - c0) / opens, 1),
        }
    finally:
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(30)
        client.remove_container(NAME, force=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--opens", type=int, default=5000)
    args = p.parse_args()
    client = api()
    runs = [one(client, audit_opens, args.opens) for audit_opens in (False, True)]
    base = float(runs[0]["cpu_seconds"]) or 0.01  # type: ignore[arg-type]
    result = {
        "runs": runs,
        "cpu_ratio_audit_vs_fanotify_alone": round(float(runs[1]["cpu_seconds"]) / base, 2),  # type: ignore[arg-type]
        "host_load_average": Path("/proc/loadavg").read_text().split()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
