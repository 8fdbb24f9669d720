"""Assemble a running monitor from a config: rules, sources, outputs; clean shutdown."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dockward.errors import DockwardError, UsageError
from dockward.monitor.containers import ContainerCache
from dockward.monitor.dispatch import Dispatcher
from dockward.monitor.engine import Engine, compile_book, default_rules_path
from dockward.monitor.loader import Priority, load_files
from dockward.monitor.outputs import make_workers
from dockward.monitor.procs import ProcessTable
from dockward.monitor.service import Monitor, read_events, replay
from dockward.monitor.sources import (
    AuditSource,
    DockerSource,
    FalcoJsonSource,
    FileSource,
    ProcSource,
    Source,
)
from dockward.monitor.throttle import Throttle

ALL_SOURCES = ("docker", "audit", "proc", "file")
DEFAULT_SOURCES = ("docker", "audit", "file")


@dataclass
class MonitorConfig:
    rules: Sequence[str] = ()
    no_default_rules: bool = False
    # A plain `docker exec` is an informational audit event: below this, unless asked for.
    min_priority: str = "notice"
    match_all: bool = True
    sources: Sequence[str] = DEFAULT_SOURCES
    audit_connect: bool = True
    # file events: also audit each container filesystem's opens (fd.num, flags, raw path)
    audit_opens: bool = True
    falco_inputs: Sequence[str] = ()
    outputs: Sequence[str] = ("stdout",)
    spool_dir: str = "/var/lib/dockward/spool"
    queue_size: int = 10000
    spool_max_files: int = 10000
    spool_max_bytes: int = 64 << 20
    file_max_bytes: int = 100 << 20
    file_backups: int = 5
    rate: float = 0.0
    burst: int = 0
    dedup_window: float = 0.0
    hostname: str | None = None
    flush_timeout: float = 5.0
    record: str | None = None
    disable_rules: Sequence[str] = field(default_factory=tuple)
    notify_rate: float = 20.0  # messages a minute per notification (chat) output
    notify_burst: int = 5


def rule_paths(cfg: MonitorConfig) -> list[str]:
    paths = [] if cfg.no_default_rules else [str(default_rules_path())]
    paths.extend(cfg.rules)
    if not paths:
        raise UsageError("no rules: give --rules FILE or drop --no-default-rules")
    return paths


def build_engine(cfg: MonitorConfig) -> Engine:
    try:
        min_priority = Priority.parse(cfg.min_priority)
    except ValueError as exc:
        raise UsageError(f"--min-priority: {exc}") from exc
    book = load_files(rule_paths(cfg))
    for name in cfg.disable_rules:
        if name not in book.rules:
            raise UsageError(f"--disable-rule {name!r}: no such rule")
        from dataclasses import replace

        book.rules[name] = replace(book.rules[name], enabled=False)
    return compile_book(book, min_priority, cfg.match_all)


def build_monitor(
    cfg: MonitorConfig,
    engine: Engine,
    client: Any | None,
    outputs: Sequence[str] | None = None,
    recorder: IO[str] | None = None,
) -> Monitor:
    cache = ContainerCache(client.inspect_container if client is not None else None)
    holder: list[Monitor] = []

    def on_drop(name: str, count: int) -> None:
        if holder:
            holder[0].report_drop(name, count)

    workers = make_workers(
        list(outputs if outputs is not None else cfg.outputs),
        cfg.spool_dir,
        cfg.queue_size,
        cfg.spool_max_files,
        cfg.spool_max_bytes,
        on_drop,
        cfg.file_max_bytes,
        cfg.file_backups,
        cfg.notify_rate,
        cfg.notify_burst,
    )
    monitor = Monitor(
        engine,
        Dispatcher(workers),
        cache,
        cfg.hostname,
        Throttle(cfg.rate, cfg.burst, cfg.dedup_window),
        recorder=recorder,
    )
    holder.append(monitor)
    return monitor


@dataclass
class RunSummary:
    events: int
    alerts: int
    suppressed: int
    events_dropped: int
    outputs: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, Any]]


def summary_of(monitor: Monitor, sources: Sequence[Source] = ()) -> RunSummary:
    src: dict[str, dict[str, Any]] = {}
    for s in sources:
        if isinstance(s, AuditSource):
            src["audit"] = {
                "execs": s.execs,
                "connects": s.connects,
                "netlink_overruns": s.audit.lost,
            }
        elif isinstance(s, ProcSource):
            src["proc"] = {
                "execs": s.execs,
                "incomplete": s.incomplete,
                "netlink_overruns": s.conn.lost,
            }
        elif isinstance(s, FileSource):
            src["file"] = {
                "watched": len(s.fan.roots),
                "overflows": s.fan.overflows,
                "opens_from_audit": s.correlated,
            }
        elif isinstance(s, DockerSource):
            src["docker"] = {"stream_errors": s.errors}
        elif isinstance(s, FalcoJsonSource):
            src["falco"] = {"malformed": s.malformed}
    return RunSummary(
        monitor.stats.events,
        monitor.stats.alerts,
        monitor.stats.suppressed,
        monitor.stats.events_dropped,
        {
            name: {
                "delivered": st.delivered,
                "spooled": st.spooled,
                "dropped": st.dropped,
                "failures": st.failures,
                "last_error": st.last_error,
            }
            for name, st in monitor.dispatcher.stats().items()
        },
        src,
    )


def run_live(
    cfg: MonitorConfig,
    client: Any | None,
    stop: threading.Event,
    ready: Callable[[Monitor], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run until `stop` is set; then detect on what is queued, flush, close every source."""
    unknown = set(cfg.sources) - set(ALL_SOURCES)
    if unknown:
        raise UsageError(f"--source: unknown {', '.join(sorted(unknown))} (choose {ALL_SOURCES})")
    if ("docker" in cfg.sources or "file" in cfg.sources) and client is None:
        raise UsageError("the docker and file sources need the Docker daemon")
    engine = build_engine(cfg)
    recorder = open(cfg.record, "w", encoding="utf-8") if cfg.record else None  # noqa: SIM115
    monitor = build_monitor(cfg, engine, client, recorder=recorder)
    table = ProcessTable()
    sources: list[Source] = []
    try:
        running: list[str] = []
        if client is not None:
            try:
                running = [str(c["Id"]) for c in client.containers(quiet=True)]
            except Exception as exc:
                raise DockwardError(f"cannot list containers: {exc}") from exc
        table.seed()
        audit_on = False
        if "audit" in cfg.sources:
            try:
                sources.append(AuditSource(table, connect=cfg.audit_connect))
                audit_on = True
            except DockwardError as exc:
                if warn is not None:
                    warn(f"{exc}; falling back to the proc connector for process executions")
        # The proc connector always keeps the process table; it reports execs without audit.
        sources.append(ProcSource(table, emit_exec=not audit_on))
        if "file" in cfg.sources and monitor.cache is not None:
            audit = next((s for s in sources if isinstance(s, AuditSource)), None)
            if not cfg.audit_opens:
                audit = None
            fs = FileSource(table, monitor.cache, audit)
            monitor.cache.on_info.append(fs.watch_info)
            monitor.on_container_start.append(fs.watch_id)
            sources.append(fs)
        if "docker" in cfg.sources:
            # The stream's position survives a restart beside the spool (the service's state).
            sources.append(DockerSource(client, _cursor_file(cfg.spool_dir)))
        for path in cfg.falco_inputs:
            sources.append(FalcoJsonSource(path, monitor.submit))
        monitor.sources = sources
        monitor.start()
        for s in sources:
            s.start(monitor.put, stop)
        if monitor.cache is not None:
            # Inspected in the background; the file source marks each one as it arrives.
            for cid in running:
                monitor.cache.fetch(cid, lambda _c: None, urgent=False)
        if ready is not None:
            ready(monitor)
        stop.wait()
    finally:
        stop.set()
        for s in sources:
            with contextlib.suppress(Exception):
                s.close()
        monitor.stop(cfg.flush_timeout)
        if recorder is not None:
            recorder.close()
    return summary_of(monitor, sources)


def _cursor_file(spool_dir: str) -> str | None:
    try:
        os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return os.path.join(spool_dir, "docker-events.cursor")


def run_replay(
    cfg: MonitorConfig, path: str | Path, outputs: Sequence[str] | None = None
) -> tuple[RunSummary, list[Any]]:
    engine = build_engine(cfg)
    monitor = build_monitor(cfg, engine, None, outputs)
    monitor.dispatcher.start()
    try:
        alerts = replay(monitor, read_events(path))
    finally:
        monitor.dispatcher.stop(cfg.flush_timeout)
    return summary_of(monitor), alerts
