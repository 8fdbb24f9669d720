"""The monitor's Prometheus metrics and health checks, read from its counters at each scrape
(a prometheus_client collector: detection pays nothing for being observed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dockward.monitor.runner import summary_of
from dockward.monitor.service import Monitor


def _items(d: dict[Any, Any]) -> list[tuple[Any, Any]]:
    # Another thread may add a key while a scrape copies: retry rather than lock detection.
    for _ in range(5):
        try:
            return list(d.items())
        except RuntimeError:
            continue
    return []


class MonitorCollector(Collector):
    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        m = self.monitor
        summary = summary_of(m, m.sources)
        events = CounterMetricFamily(
            "dockward_monitor_events", "events detected on, by source", labels=["source"]
        )
        for src, n in _items(m.stats.by_source):
            events.add_metric([str(src)], n)
        yield events
        lag = GaugeMetricFamily(
            "dockward_monitor_source_lag_seconds",
            "delay from an event's time to its detection (last event, by source)",
            labels=["source"],
        )
        for src, seconds in _items(m.stats.lag_seconds):
            lag.add_metric([str(src)], seconds)
        yield lag
        alerts = CounterMetricFamily(
            "dockward_monitor_alerts", "alerts sent, by rule and priority",
            labels=["rule", "priority"],
        )  # fmt: skip
        for (rule, priority), n in _items(m.stats.by_rule):
            alerts.add_metric([rule, priority], n)
        yield alerts
        yield CounterMetricFamily(
            "dockward_monitor_alerts_suppressed", "alerts the throttle held back",
            value=summary.suppressed,
        )  # fmt: skip
        yield CounterMetricFamily(
            "dockward_monitor_events_dropped", "events dropped because the event queue was full",
            value=summary.events_dropped,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "dockward_monitor_queue_depth", "events waiting for detection",
            value=m.events.qsize(),
        )  # fmt: skip
        lost = CounterMetricFamily(
            "dockward_monitor_source_overruns",
            "events a kernel source lost (netlink overruns, fanotify overflows)",
            labels=["source"],
        )
        for name, st in summary.sources.items():
            n = st.get("netlink_overruns", st.get("overflows", st.get("stream_errors")))
            if isinstance(n, int):
                lost.add_metric([name], n)
        yield lost
        fams = {
            key: CounterMetricFamily(f"dockward_monitor_output_{key}", text, labels=["output"])
            for key, text in (
                ("delivered", "alerts an output delivered"),
                ("spooled", "alerts written to an output's disk spool"),
                ("dropped", "alerts dropped because an output's spool was full"),
                ("failures", "failed deliveries (retried from the spool)"),
            )
        }
        depth = GaugeMetricFamily(
            "dockward_monitor_spool_depth", "alerts waiting in an output's spool",
            labels=["output"],
        )  # fmt: skip
        for w in m.dispatcher.workers:
            for key, fam in fams.items():
                fam.add_metric([w.name], getattr(w.stats, key))
            depth.add_metric([w.name], len(w.spool))
        yield from fams.values()
        yield depth


class HealthChecks(Protocol):
    """Where liveness checks go (`dockward.service.Health`): the monitor names its threads and
    checks without importing the service layer that serves them."""

    def add(self, name: str, check: Callable[[], tuple[bool, str]]) -> None: ...

    def add_thread(self, name: str, thread: threading.Thread | None) -> None: ...


def monitor_health(health: HealthChecks, monitor: Monitor, client: Any | None) -> None:
    """Alive: the detector, every output worker, every source's reader, and the engine."""
    health.add_thread("detector", monitor.detector)
    for w in monitor.dispatcher.workers:
        health.add_thread(f"output {w.name}", w._thread)
    for s in monitor.sources:
        thread = getattr(s, "_thread", None)
        if isinstance(thread, threading.Thread):
            health.add_thread(f"source {getattr(s, 'name', type(s).__name__)}", thread)
    if client is not None:

        def engine() -> tuple[bool, str]:
            try:
                client.ping()
            except Exception as exc:
                return False, type(exc).__name__
            return True, "ping ok"

        health.add("engine", engine)
