"""CPU cost of the monitor: idle, and under an exec storm of short-lived processes.

    sudo .venv/bin/python bench/monitor_cpu.py [--idle 30] [--storm 1000] [--source audit]

Idle: CPU of `dockward monitor run` (all sources, default rules) over --idle seconds while the
benchmark itself does nothing (other work on the host still produces events). Storm: --storm
execs of /bin/true inside a container, each exits at once; reports how many the monitor
reported with their command line, and the monitor's CPU seconds for the storm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import time
from pathlib import Path

from monitor_common import api, cpu_seconds, start_container, start_monitor, workdir

RULE = "Bench exec in container"


def bench_alerts(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = [json.loads(x) for x in path.read_text().splitlines() if RULE in x]
    return [a for a in out if a["rule"] == RULE]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--idle", type=float, default=30.0)
    p.add_argument("--storm", type=int, default=1000, help="0: idle measurement only")
    p.add_argument("--source", default="audit", choices=("audit", "proc", "none"))
    args = p.parse_args()
    client = api()
    work = workdir()
    alerts = work / "alerts.jsonl"
    start_container(client, "dwmon-bench-cpu")
    sources = ["docker"] if args.source == "none" else ["docker", args.source, "file"]
    monitor = start_monitor(work, [f"file:{alerts}"], sources)
    result: dict[str, object] = {"source": args.source}
    try:
        time.sleep(3.0)  # startup work (container prefetch) is not idle cost
        c0, t0 = cpu_seconds(monitor.pid), time.monotonic()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(monitor.pid), time.monotonic()
        result["idle_cpu_percent"] = round(100 * (c1 - c0) / (t1 - t0), 2)
        result["host_load_average"] = Path("/proc/loadavg").read_text().split()[0]
        if args.storm:
            loop = f"for i in $(seq {args.storm}); do /bin/true dwmon-mark-$i; done"
            c2, t2 = cpu_seconds(monitor.pid), time.monotonic()
            ex = client.exec_create("dwmon-bench-cpu", ["sh", "-c", loop])
            client.exec_start(ex["Id"])
            storm_s = time.monotonic() - t2
            deadline = time.monotonic() + 60
            while len(bench_alerts(alerts)) < args.storm and time.monotonic() < deadline:
                time.sleep(0.2)
            c3, t3 = cpu_seconds(monitor.pid), time.monotonic()
            got = bench_alerts(alerts)
            marks = {str(a["output_fields"]["proc.cmdline"]) for a in got}  # type: ignore[index]
            result.update(
                {
                    "storm_execs": args.storm,
                    "storm_seconds": round(storm_s, 2),
                    "reported": len(got),
                    "reported_with_cmdline": len(
                        {m for m in marks if m.startswith("true dwmon-mark-")}
                    ),
                    "storm_cpu_seconds": round(c3 - c2, 2),
                    "storm_cpu_ms_per_exec": round(1000 * (c3 - c2) / args.storm, 2),
                    "drain_seconds_after_storm": round(t3 - t2 - storm_s, 2),
                }
            )
    finally:
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(30)
        client.remove_container("dwmon-bench-cpu", force=True)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
