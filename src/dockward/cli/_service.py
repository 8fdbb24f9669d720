"""Flags and the loop service mode adds to commands: --metrics-listen, and for audit and scan
--interval/--schedule with --report-dir/--keep."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from dockward.cli.common import (
    EXIT_OK,
    emit,
    env_default,
    env_option,
    fail_threshold,
    interval_seconds,
)

if TYPE_CHECKING:
    from dockward.model.finding import Report


def add_metrics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metrics-listen",
        default=env_default("METRICS_LISTEN", ""),
        metavar="HOST:PORT",
        help="serve /healthz and Prometheus /metrics on HOST:PORT while running "
        "[DOCKWARD_METRICS_LISTEN]",
    )


def add_schedule_options(p: argparse.ArgumentParser, command: str) -> None:
    env = command.upper()
    g = p.add_argument_group("service mode")
    env_option(
        g,
        "--interval",
        env=f"{env}_INTERVAL",
        type=interval_seconds,
        metavar="SECONDS",
        help=f"{command} now and then every SECONDS until SIGTERM",
    )
    g.add_argument(
        "--schedule",
        default=env_default(f"{env}_SCHEDULE"),
        metavar="CRON",
        help=f"{command} on a cron schedule (5 fields, or 6 with seconds first) "
        f"[DOCKWARD_{env}_SCHEDULE]",
    )
    g.add_argument(
        "--report-dir",
        default=env_default(f"{env}_REPORT_DIR"),
        metavar="DIR",
        help=f"with a schedule: write each run's report as {command}-TIME.json and .html here "
        f"[DOCKWARD_{env}_REPORT_DIR]",
    )
    env_option(
        g,
        "--keep",
        env=f"{env}_KEEP",
        type=int,
        default=10,
        help="runs kept in --report-dir (default 10)",
    )
    add_metrics_option(g)  # type: ignore[arg-type]


def run_maybe_scheduled(
    args: argparse.Namespace,
    command: str,
    once: Callable[[], Report],
    emit_report: Callable[[Report, argparse.Namespace], int] = emit,
) -> int:
    """One run (the report to --output, exit code by --fail-on), or with --interval/--schedule
    runs until SIGTERM, each kept in --report-dir, the last outcome in the metrics."""
    from dockward.errors import UsageError
    from dockward.update.schedule import Schedule

    schedule = Schedule.parse(args.interval, args.schedule)
    if schedule.once:
        if args.report_dir:
            raise UsageError("--report-dir needs --interval or --schedule")
        return emit_report(once(), args)
    if not args.report_dir:
        raise UsageError("--interval/--schedule need --report-dir (where the reports go)")
    from prometheus_client import CollectorRegistry

    from dockward.service.health import Health
    from dockward.service.http import MetricsServer
    from dockward.service.reports import ReportDir, RunMetrics, run_on_schedule
    from dockward.service.signals import stop_on_signals

    reports = ReportDir(args.report_dir, command, args.keep)
    threshold = fail_threshold(args.fail_on)
    registry = CollectorRegistry(auto_describe=True)
    metrics = RunMetrics(command, registry)
    health = Health()
    last_error = [""]
    health.add("last_run", lambda: (not last_error[0], last_error[0] or "ok"))
    server = None
    if args.metrics_listen:
        server = MetricsServer(args.metrics_listen, registry, health).start()
    stop = threading.Event()
    stop_on_signals(stop)

    def after(report: Report | None, duration: float, error: str) -> None:
        last_error[0] = error
        if report is not None:
            try:
                reports.write(report)
            except Exception as exc:
                last_error[0] = str(exc)
                report = None
        failed = bool(report and threshold is not None and report.fails_at(threshold))
        metrics.record(report, duration, failed)
        if last_error[0]:
            sys.stderr.write(f"dockward {command}: run failed: {last_error[0]}\n")
        sys.stderr.flush()

    try:
        run_on_schedule(schedule, stop, once, after)
    finally:
        if server is not None:
            server.close()
    return EXIT_OK
