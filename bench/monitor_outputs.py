"""Benchmark: what an output's journal costs. Alerts handed to one output worker whose sink
takes them at once, with this tree's dispatch (journal) and, in the same run, another source
tree's (`--baseline SRC`, e.g. `git archive` of a commit before the journal, unpacked).

    .venv/bin/python bench/monitor_outputs.py [--alerts 50000] [--runs 3] [--baseline SRC]

Per tree and run: the detection thread's time per `submit` (what detection pays), and alerts
delivered per second end to end. Each run is a fresh interpreter (one per tree, alternating).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, tempfile, time, uuid
from pathlib import Path
from dockward.monitor.alert import Alert
from dockward.monitor.dispatch import Dispatcher, OutputWorker
from dockward.monitor.loader import Priority
from dockward.notify.spool import Spool

class Null:
    name = "null"
    def __init__(self): self.n = 0
    def send(self, alerts): self.n += len(alerts)
    def close(self): pass

n = int(sys.argv[1])
alerts = [Alert(id=uuid.uuid4().hex, time_ns=time.time_ns(), rule="Shell in container",
                priority=Priority.WARNING, output=f"shell (container=web n={i})",
                source="syscall", tags=("container", "shell"), hostname="bench",
                container={"id": "0123456789ab", "name": "web"},
                output_fields={"container.name": "web", "proc.name": "sh", "n": i})
          for i in range(n)]
sink = Null()
worker = OutputWorker(sink, Spool(Path(tempfile.mkdtemp()) / "s"), queue_size=n + 1)
dispatcher = Dispatcher([worker])
dispatcher.start()
t0 = time.perf_counter()
for a in alerts:
    dispatcher.submit(a)
t1 = time.perf_counter()
while sink.n < n:
    time.sleep(0.001)
t2 = time.perf_counter()
dispatcher.stop(1.0)
print(json.dumps({"submit_us": (t1 - t0) / n * 1e6, "per_s": n / (t2 - t0)}))
"""


def run(src: Path, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n)],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--alerts", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", metavar="SRC", help="another tree's src/ to compare with")
    args = ap.parse_args()
    trees = {"this tree": REPO / "src"}
    if args.baseline:
        trees["baseline"] = Path(args.baseline).resolve()
    got: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory():
        for _ in range(args.runs):
            for name, src in trees.items():
                got[name].append(run(src, args.alerts))
    for name, runs in got.items():
        sub = statistics.median(r["submit_us"] for r in runs)
        rate = statistics.median(r["per_s"] for r in runs)
        print(
            f"{name:10} submit {sub:6.1f} us/alert  delivered {rate:9.0f} alerts/s  (median of {len(runs)})"
        )


if __name__ == "__main__":
    main()
