"""Scheduled audit and scan: each run's report as JSON and HTML in a directory, the last N kept,
and the run's outcome as Prometheus metrics."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from dockward.errors import ConfigError, ConnectionFailed, DockwardError, UsageError
from dockward.model.finding import Report, Severity

if TYPE_CHECKING:
    from dockward.update.schedule import Schedule

_NAME = re.compile(r"^(?P<cmd>[a-z]+)-(?P<stamp>\d{8}T\d{6}(?:\.\d+)?Z)\.(?:json|html)$")


class ReportDir:
    """`<dir>/<command>-<UTC time>.json|.html`, written atomically; older runs pruned."""

    def __init__(self, path: str | Path, command: str, keep: int = 10) -> None:
        if keep < 1:
            raise UsageError("--keep must be at least 1")
        self.path = Path(path)
        self.command = command
        self.keep = keep
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise ConfigError(f"--report-dir {path}: {exc.strerror}") from exc

    def runs(self) -> list[str]:
        """Time stamps of the kept runs, oldest first."""
        stamps = set()
        for entry in os.listdir(self.path):
            m = _NAME.match(entry)
            if m and m["cmd"] == self.command:
                stamps.add(m["stamp"])
        return sorted(stamps)

    def write(self, report: Report, now: dt.datetime | None = None) -> list[Path]:
        from dockward.report import render
        from dockward.util.fs import atomic_write

        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
        written = []
        # HTML first: a run is complete once its JSON exists (what tools read).
        for fmt in ("html", "json"):
            target = self.path / f"{self.command}-{stamp}.{fmt}"
            try:
                atomic_write(target, render(report, fmt), mode=0o640)
            except OSError as exc:
                raise DockwardError(f"cannot write {target}: {exc.strerror}") from exc
            written.append(target)
        self.prune()
        return written

    def prune(self) -> None:
        for stamp in self.runs()[: -self.keep]:
            for fmt in ("html", "json"):
                with contextlib.suppress(FileNotFoundError):
                    (self.path / f"{self.command}-{stamp}.{fmt}").unlink()


class RunMetrics:
    """dockward_<command>_*: last run time, duration, outcome, failing findings, score."""

    def __init__(self, command: str, registry: CollectorRegistry) -> None:
        p = f"dockward_{command}"
        self.last_run = Gauge(
            f"{p}_last_run_timestamp_seconds", "when the last run finished (Unix time)",
            registry=registry,
        )  # fmt: skip
        self.last_success = Gauge(
            f"{p}_last_success_timestamp_seconds", "when the last successful run finished",
            registry=registry,
        )  # fmt: skip
        self.duration = Gauge(
            f"{p}_last_run_duration_seconds", "how long the last run took", registry=registry
        )
        self.findings = Gauge(
            f"{p}_findings", "failing, unwaived findings of the last run by severity",
            ["severity"], registry=registry,
        )  # fmt: skip
        self.score = Gauge(
            f"{p}_score", "percentage of judged, scored results that pass (last run)",
            registry=registry,
        )  # fmt: skip
        self.runs = Counter(f"{p}_runs", "runs by outcome", ["outcome"], registry=registry)
        for sev in Severity:
            self.findings.labels(sev.label).set(0)
        for outcome in ("ok", "findings", "error"):
            self.runs.labels(outcome)

    def record(self, report: Report | None, duration: float, failed: bool) -> None:
        now = time.time()
        self.last_run.set(now)
        self.duration.set(duration)
        if report is None:
            self.runs.labels("error").inc()
            return
        self.last_success.set(now)
        by = dict.fromkeys(Severity, 0)
        for r in report.results:
            if r.failing:
                by[r.severity] += 1
        for sev, n in by.items():
            self.findings.labels(sev.label).set(n)
        self.score.set(report.score())
        self.runs.labels("findings" if failed else "ok").inc()


def run_on_schedule(
    schedule: Schedule,
    stop: threading.Event,
    once: Callable[[], Report],
    after: Callable[[Report | None, float, str], None],
    retry_first: float = 5.0,
    retry_most: float = 300.0,
) -> None:
    """Run `once` now and then on the schedule until `stop`; a failing run is reported to
    `after` (report None, the error) and the next one still happens. A run that could not reach
    its peer (the engine, the proxy restarting) is retried sooner, with a backoff capped by the
    next scheduled time, so a daily service is not left failing for a day."""
    from dockward.service.retry import Backoff

    backoff = Backoff(retry_first, retry_most)
    while not stop.is_set():
        started = time.monotonic()
        report: Report | None = None
        error = ""
        unreachable = False
        try:
            report = once()
        except ConnectionFailed as exc:
            error, unreachable = str(exc), True
        except DockwardError as exc:
            error = str(exc)
        after(report, time.monotonic() - started, error)
        now = dt.datetime.now(dt.UTC)
        wait = max(0.0, (schedule.next_run(now) - now).total_seconds())
        if unreachable:
            wait = min(wait, backoff.next())
        else:
            backoff.reset()
        stop.wait(wait)
