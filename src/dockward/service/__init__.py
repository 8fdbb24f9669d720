"""Service mode: what every long-running command shares.

`/healthz` (each source and upstream alive) and Prometheus `/metrics` on `--metrics-listen`,
reports kept in a directory on a schedule, and SIGTERM handling.
"""

from dockward.service.health import Health, HealthCheck
from dockward.service.http import MetricsServer, parse_metrics_listen, probe_health
from dockward.service.reports import ReportDir, RunMetrics
from dockward.service.signals import stop_on_signals

__all__ = [
    "Health",
    "HealthCheck",
    "MetricsServer",
    "ReportDir",
    "RunMetrics",
    "parse_metrics_listen",
    "probe_health",
    "stop_on_signals",
]
