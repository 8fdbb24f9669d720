"""`dockward monitor`: runtime detection with Falco-style rules; alerts to stdout, files, SIEMs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from typing import Any

from dockward.cli._service import add_metrics_option
from dockward.cli.common import env_default, env_flag, env_list, env_option
from dockward.errors import UsageError

EPILOG = (
    "Exit codes: run/replay 0 after a clean stop; validate 0 all rules load, 1 some rules are "
    "disabled (unknown field or source) or warnings, 2 a malformed file."
)


def _outputs_env() -> list[str]:
    # Output URLs may contain commas, so the env twin is whitespace-separated.
    return (env_default("MONITOR_OUTPUTS", "") or "").split()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        action="append",
        default=env_list("MONITOR_RULES"),
        metavar="FILE",
        help="Falco-style rules file, loaded after the default rules (repeatable) "
        "[DOCKWARD_MONITOR_RULES, comma-separated]",
    )
    p.add_argument(
        "--no-default-rules",
        action="store_true",
        default=env_flag("MONITOR_NO_DEFAULT_RULES"),
        help="do not load dockward's default rules [DOCKWARD_MONITOR_NO_DEFAULT_RULES=1]",
    )
    p.add_argument(
        "--disable-rule",
        action="append",
        default=[],
        metavar="NAME",
        help="disable a rule by name (repeatable)",
    )
    env_option(
        p,
        "--min-priority",
        env="MONITOR_MIN_PRIORITY",
        default="notice",
        help="load only rules of this priority or worse (emergency..debug; default notice: "
        "informational audit events such as a plain docker exec need `informational`)",
    )
    env_option(
        p,
        "--rule-matching",
        env="MONITOR_RULE_MATCHING",
        choices=("all", "first"),
        default="all",
        help="fire every matching rule per event, or only the first in load order",
    )
    p.add_argument(
        "--output",
        "-o",
        action="append",
        default=None,
        metavar="SPEC",
        help="where alerts go (repeatable; default stdout): stdout, json, file:PATH, "
        "syslog+udp|tcp|tls://HOST:PORT[?facility=local0&format=json&ca=FILE], "
        "http(s)://URL (webhook), elasticsearch+http(s)://HOST:PORT/INDEX, "
        "splunk+http(s)://HOST:PORT [DOCKWARD_MONITOR_OUTPUTS, space-separated]; tokens come "
        "from DOCKWARD_WEBHOOK_TOKEN, DOCKWARD_ELASTIC_TOKEN, DOCKWARD_SPLUNK_TOKEN",
    )
    env_option(
        p,
        "--notify-rate",
        env="MONITOR_NOTIFY_RATE",
        type=float,
        default=20.0,
        help="messages a minute per notification-URL output (chat); a burst over it goes out as "
        "one message (default 20, burst 5; 0 = no limit)",
    )
    env_option(
        p,
        "--spool-dir",
        env="MONITOR_SPOOL_DIR",
        default="/var/lib/dockward/spool",
        help="undelivered alerts wait here, one directory per output",
    )
    env_option(
        p,
        "--spool-max-files",
        env="MONITOR_SPOOL_MAX_FILES",
        type=int,
        default=10000,
        help="alerts kept per output spool before dropping (counted and alerted)",
    )
    env_option(
        p,
        "--spool-max-mb",
        env="MONITOR_SPOOL_MAX_MB",
        type=int,
        default=64,
        help="bytes kept per output spool, in MiB",
    )
    env_option(
        p,
        "--queue-size",
        env="MONITOR_QUEUE_SIZE",
        type=int,
        default=10000,
        help="in-memory queue per output; a full queue spills to the spool",
    )
    env_option(
        p,
        "--file-max-mb",
        env="MONITOR_FILE_MAX_MB",
        type=int,
        default=100,
        help="rotate file: outputs at this size",
    )
    env_option(
        p,
        "--file-backups",
        env="MONITOR_FILE_BACKUPS",
        type=int,
        default=5,
        help="rotated files kept",
    )
    env_option(
        p,
        "--rate-limit",
        env="MONITOR_RATE_LIMIT",
        type=float,
        default=0.0,
        help="alerts per second per rule and container, 0 = unlimited",
    )
    env_option(
        p, "--burst", env="MONITOR_BURST", type=int, default=20, help="burst for --rate-limit"
    )
    env_option(
        p,
        "--dedup",
        env="MONITOR_DEDUP",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="drop an alert identical to the previous one of its rule and container within "
        "this window; the next alert carries the count",
    )
    env_option(
        p, "--hostname", env="MONITOR_HOSTNAME", help="host name in alerts (default: this host's)"
    )
    p.add_argument(
        "--stats",
        action="store_true",
        help="print delivery and source counters as JSON on stderr at exit",
    )


def register(sub: Any) -> None:
    p = sub.add_parser(
        "monitor",
        help="runtime detection with Falco-style rules",
        description="Watch the Docker host (engine events, process executions, file opens in "
        "containers), judge events with Falco-compatible rules, and send alerts to stdout, "
        "files, syslog, webhooks, Elasticsearch/OpenSearch and Splunk without losing any.",
        epilog=EPILOG,
    )
    ms = p.add_subparsers(dest="monitor_command", metavar="ACTION")

    run_p = ms.add_parser("run", help="run the monitor in the foreground", epilog=EPILOG)
    _common(run_p)
    run_p.add_argument(
        "--source",
        action="append",
        default=env_list("MONITOR_SOURCES") or None,
        choices=("docker", "audit", "proc", "file"),
        help="event sources (repeatable; default docker, audit, file): docker = engine events; "
        "audit = execve with argv and connect, through the audit subsystem (falls back to proc); "
        "proc = execs from the proc connector; file = opens in containers (fanotify) "
        "[DOCKWARD_MONITOR_SOURCES]",
    )
    run_p.add_argument(
        "--no-audit-opens",
        action="store_true",
        default=env_flag("MONITOR_NO_AUDIT_OPENS"),
        help="file events from fanotify alone, without an audit rule per container filesystem "
        "(fd.num only while held; no evt.arg.flags, fd.nameraw) [DOCKWARD_MONITOR_NO_AUDIT_OPENS=1]",
    )
    run_p.add_argument(
        "--falco-input",
        action="append",
        default=env_list("MONITOR_FALCO_INPUT"),
        metavar="FILE",
        help="also route Falco's JSON alerts from this file (followed) "
        "[DOCKWARD_MONITOR_FALCO_INPUT]",
    )
    env_option(run_p, "-H", "--host", env="HOST", help="Docker endpoint")
    env_option(
        run_p,
        "--duration",
        env="MONITOR_DURATION",
        type=float,
        default=0.0,
        help="stop after this many seconds (0: until SIGTERM/SIGINT)",
    )
    run_p.add_argument(
        "--dry-run",
        metavar="EVENTS",
        default=None,
        help="judge a recorded event file and print alerts to stdout; no sources, no outputs",
    )
    env_option(
        run_p,
        "--record",
        env="MONITOR_RECORD",
        metavar="FILE",
        help="also write every (enriched) event as JSON lines, for replay",
    )
    add_metrics_option(run_p)
    run_p.set_defaults(run=run)

    rp = ms.add_parser("replay", help="judge a recorded event file and send alerts to the outputs")
    _common(rp)
    rp.add_argument("events", help="events as JSON lines (from --record)")
    rp.set_defaults(run=run_replay_cmd)

    vp = ms.add_parser("validate", help="check rules files: syntax, fields, sources", epilog=EPILOG)
    vp.add_argument("files", nargs="+", metavar="RULES", help="rules files, loaded in this order")
    vp.add_argument(
        "--with-default-rules",
        action="store_true",
        help="load dockward's default rules first (for files that extend them)",
    )
    vp.add_argument("--format", "-f", choices=("text", "json"), default="text")
    vp.set_defaults(run=validate)
    p.set_defaults(run=_need_action)


def _need_action(args: argparse.Namespace) -> int:
    raise UsageError("dockward monitor: choose an action: run, replay or validate")


def _config(args: argparse.Namespace, outputs: list[str] | None = None) -> Any:
    from dockward.monitor import MonitorConfig

    for name, value in (
        ("--queue-size", args.queue_size),
        ("--spool-max-files", args.spool_max_files),
        ("--spool-max-mb", args.spool_max_mb),
        ("--file-max-mb", args.file_max_mb),
    ):
        if value <= 0:
            raise UsageError(f"{name} must be positive")
    if args.rate_limit < 0 or args.dedup < 0 or args.burst < 0 or args.notify_rate < 0:
        raise UsageError("--rate-limit, --burst and --dedup must not be negative")
    return MonitorConfig(
        rules=tuple(args.rules or ()),
        no_default_rules=args.no_default_rules,
        min_priority=args.min_priority,
        match_all=args.rule_matching == "all",
        sources=tuple(getattr(args, "source", None) or ("docker", "audit", "file")),
        audit_opens=not getattr(args, "no_audit_opens", False),
        falco_inputs=tuple(getattr(args, "falco_input", None) or ()),
        outputs=tuple(outputs or args.output or _outputs_env() or ["stdout"]),
        spool_dir=args.spool_dir,
        queue_size=args.queue_size,
        spool_max_files=args.spool_max_files,
        spool_max_bytes=args.spool_max_mb << 20,
        file_max_bytes=args.file_max_mb << 20,
        file_backups=args.file_backups,
        rate=args.rate_limit,
        burst=args.burst,
        dedup_window=args.dedup,
        hostname=args.hostname,
        record=getattr(args, "record", None),
        disable_rules=tuple(args.disable_rule),
        notify_rate=args.notify_rate,
    )


def _warn(lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"dockward: warning: {line}\n")


def _print_stats(summary: Any) -> None:
    sys.stderr.write(json.dumps(dataclasses.asdict(summary), indent=2, sort_keys=True) + "\n")


def run(args: argparse.Namespace) -> int:
    from dockward.monitor import build_engine, run_live, run_replay

    if args.dry_run:
        from dockward.monitor.outputs import make_sink

        for spec in _config(args).outputs:
            make_sink(spec).close()  # checked, as the real run would; alerts go to stdout
        cfg = _config(args, outputs=["stdout"])
        _warn(build_engine(cfg).warnings)
        summary, _ = run_replay(cfg, args.dry_run)
        if args.stats:
            _print_stats(summary)
        return 0
    if args.duration < 0:
        raise UsageError("--duration must not be negative")
    cfg = _config(args)
    _warn(build_engine(cfg).warnings)
    if args.metrics_listen:
        from dockward.service.http import parse_metrics_listen

        parse_metrics_listen(args.metrics_listen)  # a bad address fails before any source opens
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    timer = None
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    client = None
    if "docker" in cfg.sources or "file" in cfg.sources:
        client = _wait_for_engine(args, stop)
        if client is None:  # stopped while waiting
            return 0
    servers: list[Any] = []

    def ready(monitor: Any) -> None:
        if args.metrics_listen:
            from prometheus_client import CollectorRegistry

            from dockward.monitor.metrics import MonitorCollector, monitor_health
            from dockward.service.health import Health
            from dockward.service.http import MetricsServer

            registry = CollectorRegistry(auto_describe=True)
            registry.register(MonitorCollector(monitor))
            health = Health()
            monitor_health(health, monitor, client)
            servers.append(MetricsServer(args.metrics_listen, registry, health).start())
        sys.stderr.write(f"dockward: monitor running (pid {os.getpid()})\n")
        sys.stderr.flush()

    try:
        summary = run_live(cfg, client, stop, ready, warn=lambda w: _warn([w]))
    finally:
        for server in servers:
            server.close()
        if timer is not None:
            timer.cancel()
        if client is not None:
            client.close()
    if args.stats:
        _print_stats(summary)
    return 0


def _wait_for_engine(args: argparse.Namespace, stop: threading.Event) -> Any:
    """The engine's client. As a service (--metrics-listen) retried with backoff, the proxy may
    start after the monitor or restart under it, /healthz failing meanwhile (None when stopped
    first); from a terminal a wrong endpoint fails at once."""
    from dockward.engine import connect, resolve_endpoint
    from dockward.service.log import log_event
    from dockward.service.retry import Waiting, until_connected

    endpoint = resolve_endpoint(args.host)
    if not args.metrics_listen:
        return connect(endpoint)
    waiting = Waiting()
    server = None
    if args.metrics_listen:
        from prometheus_client import CollectorRegistry

        from dockward.service.health import Health
        from dockward.service.http import MetricsServer

        health = Health()
        health.add("engine", waiting.check)
        server = MetricsServer(args.metrics_listen, CollectorRegistry(), health).start()
    try:
        return until_connected(
            lambda: connect(endpoint),
            stop,
            waiting,
            lambda error, delay: log_event(
                "monitor", "waiting for the engine", error=error, retry_in=round(delay, 1)
            ),
        )
    finally:
        if server is not None:
            server.close()  # the running monitor serves its own /healthz on the same address


def run_replay_cmd(args: argparse.Namespace) -> int:
    from dockward.monitor import build_engine, run_replay

    cfg = _config(args)
    _warn(build_engine(cfg).warnings)
    summary, _ = run_replay(cfg, args.events)
    if args.stats:
        _print_stats(summary)
    return 0


def validate(args: argparse.Namespace) -> int:
    from dockward.monitor import compile_book, default_rules_path, load_files

    files = ([str(default_rules_path())] if args.with_default_rules else []) + list(args.files)
    book = load_files(files)
    engine = compile_book(book)
    enabled_in_files = [r for r in book.rules.values() if r.enabled]
    result = {
        "files": files,
        "rules": len(book.rules),
        "enabled": len(enabled_in_files),
        "loaded": len(engine.rules),
        "disabled": engine.disabled,
        "macros": len(book.macros),
        "lists": len(book.lists),
        "warnings": engine.warnings,
    }
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        out = [
            f"{len(files)} file(s): {len(book.rules)} rules ({len(enabled_in_files)} enabled), "
            f"{len(book.macros)} macros, {len(book.lists)} lists",
            f"loaded: {len(engine.rules)} rules; disabled: {len(engine.disabled)}",
        ]
        out.extend(f"warning: {w}" for w in engine.warnings)
        sys.stdout.write("\n".join(out) + "\n")
    return 1 if engine.disabled or engine.warnings else 0
