"""Rule-engine throughput: events/second on one core through the compiled default rules.

    sudo .venv/bin/python bench/monitor_engine.py [--events FILE] [--seconds 5]

Without --events it replays tests/fixtures/monitor/attack-events.jsonl (recorded from real
containers) plus, if present, a host recording made with `dockward monitor run --record FILE`.
Reports matching alone (engine.match) and the whole detection step (Monitor.process with
alert creation, outputs not included).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dockward.monitor import MonitorConfig, build_engine
from dockward.monitor.dispatch import Dispatcher
from dockward.monitor.service import Monitor, read_events

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "monitor" / "attack-events.jsonl"


def run(events: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    cfg = MonitorConfig()
    t0 = time.perf_counter()
    engine = build_engine(cfg)
    compile_ms = (time.perf_counter() - t0) * 1000
    # CPU time of this process: events per second per core, whatever else the host runs.
    # Fresh copies each pass (not timed): matching may memoize transformed fields in an event.
    matched = 0
    n = 0
    spent = 0.0
    while spent < seconds:
        batch = [dict(ev) for ev in events]
        t = time.process_time()
        for ev in batch:
            matched += len(engine.match(ev))
        spent += time.process_time() - t
        n += len(events)
    match_rate = n / spent
    monitor = Monitor(engine, Dispatcher([]), hostname="bench")
    n2 = 0
    spent = 0.0
    while spent < seconds:
        batch = [dict(ev) for ev in events]
        t = time.process_time()
        for ev in batch:
            monitor.process(ev)
        spent += time.process_time() - t
        n2 += len(events)
    process_rate = n2 / spent
    return {
        "rules": len(engine.rules),
        "compile_ms": round(compile_ms, 1),
        "events_in_stream": len(events),
        "event_types": dict(Counter(str(e.get("evt.type")) for e in events).most_common(6)),
        "alerts_per_pass": matched * len(events) // max(n, 1),
        "match_events_per_s": round(match_rate),
        "detect_events_per_s": round(process_rate),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", action="append", default=[])
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    paths = [Path(x) for x in args.events] or [FIXTURE]
    events = [ev for path in paths for ev in read_events(path)]
    print(json.dumps(run(events, args.seconds), indent=2))


if __name__ == "__main__":
    main()
