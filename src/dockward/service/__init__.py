"""Service mode: what every long-running command shares.

`/healthz` (each source and upstream alive) and Prometheus `/metrics` on `--metrics-listen`
(`http`, `health`), reports kept in a directory on a schedule (`reports`), SIGTERM handling
(`signals`). Import the submodule you need: `dockward health`, the image's HEALTHCHECK, must
start fast, so this package imports nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Health": "health",
    "HealthCheck": "health",
    "MetricsServer": "http",
    "parse_metrics_listen": "http",
    "probe_health": "http",
    "ReportDir": "reports",
    "RunMetrics": "reports",
    "stop_on_signals": "signals",
    "Backoff": "retry",
    "Waiting": "retry",
    "until_connected": "retry",
    "log_event": "log",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """The public names, each imported from its submodule on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
