"""`dockward exporter`: Prometheus gauges from the result store (latest run of each host)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dockward.cli.common import EXIT_OK, env_default


def register(sub: Any) -> None:
    p = sub.add_parser(
        "exporter",
        help="serve fleet posture from the result store as Prometheus metrics",
        description="Serve /metrics (Prometheus) and /healthz from the latest stored run of each "
        "host: score, failures by severity, vulnerable images by severity, reachability, time and "
        "age of the last run. Reads the store at every scrape; runs until SIGTERM.",
    )
    p.add_argument(
        "--store",
        default=env_default("STORE"),
        metavar="URL",
        help="the result store (default: history.sqlite in $XDG_DATA_HOME/dockward) [DOCKWARD_STORE]",
    )
    p.add_argument(
        "--listen",
        default=env_default("EXPORTER_LISTEN", "127.0.0.1:9478"),
        metavar="HOST:PORT",
        help="where /metrics and /healthz are served (default 127.0.0.1:9478) "
        "[DOCKWARD_EXPORTER_LISTEN]",
    )
    p.add_argument(
        "--command",
        dest="stored_command",
        default=env_default("REPORT_COMMAND", "audit"),
        help="which stored runs: audit or scan (default audit) [DOCKWARD_REPORT_COMMAND]",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import threading

    from prometheus_client import CollectorRegistry

    from dockward.service import Health, MetricsServer, stop_on_signals
    from dockward.store import open_store
    from dockward.store.metrics import StoreCollector

    open_store(args.store, retention_days=0).close()  # a bad --store is exit 2 before serving
    collector = StoreCollector(
        lambda: open_store(args.store, retention_days=0), args.stored_command
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    health = Health()
    health.add("store", lambda: (not collector.last_error, collector.last_error or "ok"))
    server = MetricsServer(args.listen, registry, health).start()
    sys.stderr.write(f"dockward exporter: serving http://{server.address}/metrics\n")
    sys.stderr.flush()
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        stop.wait()
    finally:
        server.close()
        collector.close()
    return EXIT_OK
