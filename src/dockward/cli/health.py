"""`dockward health`: ask a running dockward service's /healthz (the image's HEALTHCHECK)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dockward.cli.common import EXIT_FINDINGS, EXIT_OK, env_default


def register(sub: Any) -> None:
    p = sub.add_parser(
        "health",
        help="check a running service's /healthz (exit 0 healthy, 1 failing, 2 unreachable)",
        description="Ask the /healthz endpoint of a dockward service started with "
        "--metrics-listen; print its answer.",
    )
    p.add_argument(
        "--metrics-listen",
        default=env_default("METRICS_LISTEN", "127.0.0.1:9464"),
        metavar="HOST:PORT",
        help="where the service listens (0.0.0.0 means this host) [DOCKWARD_METRICS_LISTEN]",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dockward.service.http import probe_health

    ok, text = probe_health(args.metrics_listen, args.timeout)
    sys.stdout.write(text + "\n")
    return EXIT_OK if ok else EXIT_FINDINGS
