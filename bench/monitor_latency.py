"""Exec-to-alert latency: `docker exec` a shell in a container, time until the webhook has it.

    sudo .venv/bin/python bench/monitor_latency.py [--runs 30] [--source audit]

Latency is measured from the kernel's timestamp of the exec (audit, millisecond resolution)
to the arrival of the alert at a local HTTP receiver, through the whole pipeline (source,
enrichment, default rules plus one bench rule, webhook output).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor_common import api, start_container, start_monitor, workdir

PORT = 15730


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--source", default="audit", choices=("audit", "proc"))
    args = p.parse_args()
    arrivals: dict[str, int] = {}
    times: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            now = time.time_ns()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["rule"] == "Bench exec in container":
                cmd = body["output_fields"]["proc.cmdline"]
                mark = cmd.split("dwmon-mark-")[1].split()[0].strip("'\"")
                arrivals[mark] = now
                times[mark] = int(body["output_fields"]["evt.time"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = api()
    work = workdir()
    start_container(client, "dwmon-bench-lat")
    monitor = start_monitor(work, [f"http://127.0.0.1:{PORT}"], ["docker", args.source, "file"])
    try:
        for i in range(args.runs):
            ex = client.exec_create("dwmon-bench-lat", ["sh", "-c", f"echo dwmon-mark-{i}"])
            client.exec_start(ex["Id"])
            time.sleep(0.1)
        deadline = time.time() + 10
        while len(arrivals) < args.runs and time.time() < deadline:
            time.sleep(0.05)
    finally:
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(30)
        server.shutdown()
        client.remove_container("dwmon-bench-lat", force=True)
        shutil.rmtree(work, ignore_errors=True)
    lat = sorted((arrivals[m] - times[m]) / 1e6 for m in arrivals)
    print(
        json.dumps(
            {
                "source": args.source,
                "runs": args.runs,
                "alerts": len(lat),
                "latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
                "latency_ms_p95": round(lat[int(len(lat) * 0.95) - 1], 1) if lat else None,
                "latency_ms_max": round(lat[-1], 1) if lat else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
