"""Prometheus gauges from the latest stored run of each host, read at scrape time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dockward.model.finding import Severity
from dockward.store import RunInfo, Store

SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]


class StoreCollector(Collector):
    """One store connection, reopened after an error; scrapes are serialised on it."""

    def __init__(self, opener: Callable[[], Store], command: str = "audit") -> None:
        self._opener = opener
        self._command = command
        self._store: Store | None = None
        self._lock = threading.Lock()
        self.last_error = ""

    def _latest(self) -> tuple[list[tuple[RunInfo, dict[str, int]]], list[RunInfo]] | None:
        """The latest run of each host with its failures by severity, and the latest update
        cycle of each host."""
        with self._lock:
            try:
                if self._store is None:
                    self._store = self._opener()
                updates = self._store.latest("update")
                runs = self._store.latest(self._command)
                counts = self._store.failure_counts([r.id for r in runs if r.ok])
                out = [
                    (
                        run,
                        {s.label: n for s, n in counts.get(run.id, {}).items()},
                    )
                    for run in runs
                ]
                self.last_error = ""
                return out, updates
            except Exception as exc:
                self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if self._store is not None:
                    self._store.close()
                self._store = None
                return None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        read = self._latest()
        up = GaugeMetricFamily("dockward_store_up", "1 when the result store answered this scrape")
        up.add_metric([], 0.0 if read is None else 1.0)
        yield up
        if read is None:
            return
        latest, updates = read
        outdated = GaugeMetricFamily(
            "dockward_host_outdated_containers",
            "Containers left on an image older than their tag's by the latest `dockward update` "
            "cycle (an update or a --monitor-only check)",
            labels=["host"],
        )
        checked = GaugeMetricFamily(
            "dockward_host_update_last_run_timestamp_seconds",
            "When the latest `dockward update` cycle started",
            labels=["host"],
        )
        for run in updates:
            checked.add_metric([run.host], run.started)
            if run.ok:
                outdated.add_metric([run.host], float(run.outdated))
        yield from (outdated, checked)
        now = time.time()
        labels = ["host", "command"]
        score = GaugeMetricFamily(
            "dockward_host_score",
            "Score (percent of judged results passing) of the latest run",
            labels=labels,
        )
        reachable = GaugeMetricFamily(
            "dockward_host_up", "1 when the latest run could audit the host", labels=labels
        )
        failures = GaugeMetricFamily(
            "dockward_host_failures",
            "Failing results of the latest run by severity",
            labels=[*labels, "severity"],
        )
        vulnerable = GaugeMetricFamily(
            "dockward_host_vulnerable_images",
            "Images by their worst failing vulnerability severity, latest run",
            labels=[*labels, "severity"],
        )
        last = GaugeMetricFamily(
            "dockward_host_last_run_timestamp_seconds", "When the latest run started", labels=labels
        )
        age = GaugeMetricFamily(
            "dockward_host_last_run_age_seconds",
            "Seconds since the latest run finished",
            labels=labels,
        )
        for run, by_sev in latest:
            host = [run.host, run.command]
            reachable.add_metric(host, 1.0 if run.ok else 0.0)
            last.add_metric(host, run.started)
            age.add_metric(host, max(0.0, now - run.finished))
            if not run.ok:
                continue
            score.add_metric(host, run.score)
            for sev in SEVERITIES:
                failures.add_metric([*host, sev], float(by_sev.get(sev, 0)))
                vulnerable.add_metric([*host, sev], float(run.vulnerable_images.get(sev, 0)))
        yield from (score, reachable, failures, vulnerable, last, age)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


__all__ = ["StoreCollector"]
