"""`dockward update`: keep containers on current images, with gates, a health gate and rollback."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import signal
import socket
import sys
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import docker.errors
import requests
from prometheus_client import CollectorRegistry

from dockward import notify
from dockward.catalog import default_rules
from dockward.cli._service import add_metrics_option
from dockward.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    add_output_options,
    default_format,
    emit,
    env_default,
    env_flag,
    env_list,
    env_option,
    fail_threshold,
    interval_seconds,
    write_output,
)
from dockward.cli.fleetopts import add_store_options, open_update_store, record_update_cycle
from dockward.engine import resolve_endpoint
from dockward.errors import ConnectionFailed, UsageError
from dockward.model.finding import Report, Severity, Status
from dockward.notify.gotemplate import Template
from dockward.registry import insecure_hosts
from dockward.service.health import Health
from dockward.service.http import MetricsServer
from dockward.service.log import log_event
from dockward.service.retry import Backoff, Waiting, until_connected
from dockward.update import (
    ContainerRulesGate,
    CredentialStore,
    CycleOptions,
    CycleResult,
    Gate,
    Journal,
    RegistryClient,
    Selection,
    UpdateOptions,
    Updater,
    VulnerabilityGate,
    default_state_dir,
    run_cycle,
    scan_gate,
)
from dockward.update.api import (
    Metrics,
    MetricsCollector,
    Trigger,
    UpdateAPI,
    answer,
    batch_images,
    parse_listen,
    summary,
)
from dockward.update.cooldown import Cooldown, parse_duration
from dockward.update.engine import connect_versioned, insecure_registries
from dockward.update.notify import (
    NAMED_TEMPLATES,
    WATCHTOWER_DEFAULT,
    compose,
    render_template,
    to_note,
)
from dockward.update.report import build_report
from dockward.update.schedule import GLOBAL_LABEL, SCHEDULE_LABEL, Due, Schedule, Timetable
from dockward.update.signature import SignatureCheck


def _wt_flag(name: str) -> bool:
    return os.environ.get(f"WATCHTOWER_{name}", "").strip().lower() in ("1", "true", "yes")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "update",
        help="update containers to the current image of their tag, safely",
        description="Compare each managed container's image with its registry tag (one HEAD per "
        "image, no pull when nothing changed), then recreate it with the same configuration, "
        "behind gates (container rules, policy, vulnerabilities) and a health gate; a failed "
        "update is rolled back and an interrupted one is finished or rolled back on the next "
        "run. Containers opt in with the label dockward.update=true (or "
        "com.centurylinklabs.watchtower.enable=true); --all manages every container except "
        "those labelled =false.",
    )
    p.add_argument("containers", nargs="*", help="only these container names")
    env_option(
        p,
        "--all",
        env="UPDATE_ALL",
        action="store_true",
        help="manage every container not opted out",
    )
    env_option(
        p, "--scope", env="UPDATE_SCOPE", default="", help="only containers with this scope label"
    )
    env_option(
        p,
        "--revive-stopped",
        env="UPDATE_REVIVE_STOPPED",
        action="store_true",
        help="with --include-stopped: start the updated replacement of a stopped container "
        "(behind the health gate; a failure leaves the old one stopped)",
    )
    p.add_argument(
        "--disable-containers",
        "-x",
        action="append",
        default=None,
        help="never manage these containers (names, comma or space separated; repeatable) "
        "[DOCKWARD_UPDATE_DISABLE_CONTAINERS]",
    )
    env_option(
        p,
        "--include-stopped",
        env="UPDATE_INCLUDE_STOPPED",
        action="store_true",
        help="also recreate stopped containers (left stopped)",
    )
    mode = p.add_argument_group("when")
    mode.add_argument(
        "--once",
        action="store_true",
        help="run one cycle and exit (the default without --interval/--schedule)",
    )
    env_option(
        mode,
        "--interval",
        env="UPDATE_INTERVAL",
        type=interval_seconds,
        metavar="SECONDS",
        help="run every SECONDS",
    )
    env_option(
        mode,
        "--schedule",
        env="UPDATE_SCHEDULE",
        help="cron expression, 5 fields or 6 with seconds first",
    )
    env_option(
        mode,
        "--cycles",
        env="UPDATE_CYCLES",
        type=int,
        default=0,
        help="stop after N cycles (0: run until SIGTERM)",
    )
    what = p.add_argument_group("what")
    env_option(
        what,
        "--monitor-only",
        env="UPDATE_MONITOR_ONLY",
        action="store_true",
        help="only report outdated containers",
    )
    env_option(
        what,
        "--no-pull",
        env="UPDATE_NO_PULL",
        action="store_true",
        help="use images already pulled, never pull",
    )
    env_option(
        what,
        "--cleanup",
        env="UPDATE_CLEANUP",
        action="store_true",
        help="remove the old image when no container uses it",
    )
    env_option(
        what,
        "--keep-old",
        env="UPDATE_KEEP_OLD",
        action="store_true",
        help="keep the old container (stopped, renamed NAME-dockward-old)",
    )
    env_option(
        what,
        "--enable-lifecycle-hooks",
        env="UPDATE_LIFECYCLE_HOOKS",
        action="store_true",
        help="run pre/post-check and pre/post-update hook labels inside the container",
    )
    env_option(
        what,
        "--no-restart-dependents",
        env="UPDATE_NO_RESTART_DEPENDENTS",
        action="store_true",
        help="do not restart containers that depend on an updated one",
    )
    env_option(
        what,
        "--cooldown",
        env="UPDATE_COOLDOWN",
        default="0",
        metavar="DURATION",
        help="take a new digest only once it has been in the registry this long (30m, 12h, 7d; "
        "label dockward.update.cooldown per container; 0 = off)",
    )
    gate = p.add_argument_group("gates")
    env_option(
        gate,
        "--health-timeout",
        env="UPDATE_HEALTH_TIMEOUT",
        type=float,
        default=60.0,
        help="seconds the new container has to become healthy (default 60)",
    )
    env_option(
        gate,
        "--min-uptime",
        env="UPDATE_MIN_UPTIME",
        type=float,
        default=3.0,
        help="without healthcheck or probe: seconds it must stay up (default 3)",
    )
    env_option(
        gate,
        "--stop-timeout",
        env="UPDATE_STOP_TIMEOUT",
        type=int,
        default=10,
        help="seconds to wait for the old container to stop (default 10)",
    )
    env_option(
        gate,
        "--rules-gate",
        env="UPDATE_RULES_GATE",
        default="low",
        help="refuse updates that newly fail a container rule of this severity "
        "or worse; 'off' disables (default low)",
    )
    env_option(
        gate,
        "--policy",
        env="POLICY",
        help="admission policy file (the proxy's): the updated container must be admitted by it",
    )
    env_option(
        gate,
        "--vuln-gate",
        env="UPDATE_VULN_GATE",
        default="auto",
        help="refuse updates that add vulnerabilities of this severity or worse "
        "(dockward.scan over the local DB); auto = critical when a DB exists, "
        "off disables",
    )
    env_option(
        gate,
        "--verify-key",
        env="UPDATE_VERIFY_KEY",
        metavar="FILE",
        help="take a new image only when its digest carries a cosign signature that verifies "
        "with this ECDSA P-256 public key (the policy's DW-P008 check, before the pull); label "
        "dockward.update.verify-key adds a key per container",
    )
    env_option(
        gate, "--vuln-db", env="VULN_DB", help="vulnerability DB path (default: dockward.scan's)"
    )
    conn = p.add_argument_group("connection")
    conn.add_argument(
        "--host",
        "-H",
        default=env_default("HOST"),
        help="Docker host [DOCKWARD_HOST; default DOCKER_HOST]",
    )
    env_option(conn, "--context", env="CONTEXT", help="Docker context name")
    env_option(
        conn,
        "--api-version",
        env="API_VERSION",
        default="auto",
        help="Engine API version: auto negotiates (default); MAJOR.MINOR is checked "
        "against the engine",
    )
    env_option(
        conn, "--timeout", env="TIMEOUT", type=int, default=60, help="engine API timeout in seconds"
    )
    env_option(
        conn,
        "--registry-timeout",
        env="UPDATE_REGISTRY_TIMEOUT",
        type=float,
        default=10.0,
        help="registry request timeout in seconds",
    )
    env_option(
        conn,
        "--workers",
        env="UPDATE_WORKERS",
        type=int,
        default=16,
        help="parallel registry checks (default 16)",
    )
    conn.add_argument(
        "--docker-config",
        default=env_default("DOCKER_CONFIG"),
        help="directory of config.json with registry logins "
        "[DOCKWARD_DOCKER_CONFIG; default DOCKER_CONFIG or ~/.docker]",
    )
    env_option(
        conn,
        "--state-dir",
        env="UPDATE_STATE_DIR",
        help="journal directory (default /var/lib/dockward/update as root)",
    )
    note = p.add_argument_group("notifications")
    note.add_argument(
        "--notify",
        "--notification-url",
        dest="notify",
        action="append",
        default=None,
        help="send what changed to an Apprise URL (slack://, discord://, ntfy://, gotify://, "
        "mmost://, json://, mailto://, ...), a Watchtower/shoutrrr URL (translated), stdout, or "
        "dockward's JSON webhook http(s)://; repeatable, space-separated lists accepted; SMTP "
        "password from DOCKWARD_SMTP_PASSWORD [DOCKWARD_UPDATE_NOTIFY]",
    )
    env_option(
        note,
        "--notification-template",
        env="UPDATE_NOTIFICATION_TEMPLATE",
        help="Watchtower (Go text/template) message template; @FILE reads it from a file",
    )
    env_option(
        note,
        "--notification-report",
        env="UPDATE_NOTIFICATION_REPORT",
        action="store_true",
        help="the template gets Watchtower's session report (.Report) rather than the log entries",
    )
    env_option(
        note,
        "--notification-title-tag",
        env="UPDATE_NOTIFICATION_TITLE_TAG",
        default="",
        help="prefix of every notification title",
    )
    env_option(
        note,
        "--notification-skip-title",
        env="UPDATE_NOTIFICATION_SKIP_TITLE",
        action="store_true",
        help="send the message without a title",
    )
    env_option(
        note,
        "--notifications-hostname",
        env="UPDATE_NOTIFICATIONS_HOSTNAME",
        default="",
        help="host name in notifications (default: this host's)",
    )
    env_option(
        note,
        "--notify-rate",
        env="UPDATE_NOTIFY_RATE",
        type=float,
        default=0.0,
        help="at most N messages per minute per destination, a burst coalesced into one "
        "(0: no limit)",
    )
    api = p.add_argument_group("HTTP API (Watchtower's)")
    api.add_argument(
        "--http-api-update",
        action="store_true",
        default=env_flag("HTTP_API_UPDATE") or _wt_flag("HTTP_API_UPDATE"),
        help="serve /v1/update: a request runs a cycle (?image=a,b to limit it) and gets its "
        "result; polling stops unless --http-api-periodic-polls "
        "[DOCKWARD_HTTP_API_UPDATE=1, WATCHTOWER_HTTP_API_UPDATE]",
    )
    api.add_argument(
        "--http-api-metrics",
        action="store_true",
        default=env_flag("HTTP_API_METRICS") or _wt_flag("HTTP_API_METRICS"),
        help="serve Prometheus metrics at /v1/metrics "
        "[DOCKWARD_HTTP_API_METRICS=1, WATCHTOWER_HTTP_API_METRICS]",
    )
    api.add_argument(
        "--http-api-token",
        default=env_default("HTTP_API_TOKEN", os.environ.get("WATCHTOWER_HTTP_API_TOKEN", "")),
        help="bearer token both endpoints require "
        "[DOCKWARD_HTTP_API_TOKEN, WATCHTOWER_HTTP_API_TOKEN]",
    )
    api.add_argument(
        "--http-api-periodic-polls",
        action="store_true",
        default=env_flag("HTTP_API_PERIODIC_POLLS") or _wt_flag("HTTP_API_PERIODIC_POLLS"),
        help="keep --interval/--schedule polling with --http-api-update "
        "[DOCKWARD_HTTP_API_PERIODIC_POLLS=1, WATCHTOWER_HTTP_API_PERIODIC_POLLS]",
    )
    env_option(
        api,
        "--http-api-listen",
        env="HTTP_API_LISTEN",
        default="127.0.0.1:8080",
        help="HOST:PORT of the API (default 127.0.0.1:8080)",
    )
    env_option(
        p,
        "--progress",
        env="UPDATE_PROGRESS",
        action="store_true",
        help="print each step to stderr",
    )
    add_output_options(p, default_fail_on="high")
    add_metrics_option(p)
    add_store_options(p, default_store=False)
    p.set_defaults(run=run)


def _gates(args: argparse.Namespace, warnings: list[str]) -> list[Gate]:
    gates: list[Gate] = []
    vuln = str(args.vuln_gate).strip().lower()
    if vuln not in ("off", "none", "never"):
        ok, why = scan_gate.available(args.vuln_db)
        if vuln == "auto" and not ok:
            warnings.append(f"vulnerability gate off: {why}")
        else:
            try:
                threshold = Severity.CRITICAL if vuln == "auto" else Severity.parse(vuln)
            except ValueError as exc:
                raise UsageError(f"--vuln-gate: {exc}") from exc
            if not ok:
                raise UsageError(f"--vuln-gate {vuln}: {why}")
            scanner = scan_gate.dockward_scanner(args.vuln_db, args.host)
            gates.append(VulnerabilityGate(scanner, threshold))
    level = str(args.rules_gate).strip().lower()
    if level not in ("off", "none", "never"):
        try:
            severity = Severity.parse(level)
        except ValueError as exc:
            raise UsageError(f"--rules-gate: {exc}") from exc
        container_rules = default_rules()
        from dockward.rules.registry import RuleSet

        only = RuleSet("container")
        for entry in container_rules.of_kind("container"):
            only.add(entry)
        gates.append(ContainerRulesGate(only, severity))
    return gates


def _insecure_predicate(client: Any) -> Callable[[str], bool]:
    cidrs, names = insecure_registries(client)
    return insecure_hosts(names, cidrs)


def run(args: argparse.Namespace) -> int:
    schedule = Schedule.parse(args.interval, args.schedule)
    if args.once and not schedule.once:
        raise UsageError("--once excludes --interval and --schedule")
    if args.workers < 1 or args.cycles < 0:
        raise UsageError("--workers must be >= 1 and --cycles >= 0")
    if args.once and args.http_api_update:
        raise UsageError("--once excludes --http-api-update")
    metrics = Metrics()
    prom = CollectorRegistry(auto_describe=True)
    prom.register(MetricsCollector(metrics))
    api: UpdateAPI | None = None
    if args.http_api_update or args.http_api_metrics:
        api = UpdateAPI(
            parse_listen(args.http_api_listen),
            args.http_api_token,
            update=args.http_api_update,
            metrics=args.http_api_metrics,
            shared=metrics,
            registry=prom,
        )
    # Polling: always without the update endpoint; with it, only when asked (as Watchtower).
    polling = not args.http_api_update or args.http_api_periodic_polls
    if args.http_api_update and not polling and (args.interval or args.schedule):
        sys.stderr.write(
            "dockward update: warning: --http-api-update stops --interval/--schedule polling; "
            "add --http-api-periodic-polls to keep it\n"
        )
    template = _template(args)
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    notifications = notify.build(
        notify.split_urls(args.notify or env_list("UPDATE_NOTIFY")),
        state_dir / "notify-spool",
        per_minute=args.notify_rate,
        stdout=sys.stdout,
    )
    host = args.notifications_hostname or socket.gethostname()
    tag = f"[{args.notification_title_tag}] " if args.notification_title_tag else ""
    title = "" if args.notification_skip_title else f"{tag}dockward updates on {host}"
    setup_warnings: list[str] = []
    gates = _gates(args, setup_warnings)
    endpoint = resolve_endpoint(args.host, args.context)
    if args.policy:
        from dockward.update.policy_gate import policy_gate

        gates.append(policy_gate(args.policy, endpoint))
    docker_config = Path(args.docker_config) / "config.json" if args.docker_config else None
    credentials = CredentialStore.load(docker_config)
    store = open_update_store(args)  # each cycle recorded, for the exporter's outdated gauge
    stop = threading.Event()
    long_running = api is not None or not schedule.once
    if long_running:
        _install_stop_handlers(stop)
    # A service waits for the engine (the proxy may start after it or restart under it),
    # failing /healthz meanwhile; one run fails at once (exit 2).
    waiting = Waiting()
    clients: list[Any] = []
    server: MetricsServer | None = None
    if args.metrics_listen and long_running:
        health = Health()
        health.add("engine", _engine_alive(clients, waiting))
        if api is not None:
            health.add_thread("http_api", api.thread)
        server = MetricsServer(args.metrics_listen, prom, health).start()

    def connect() -> Any:
        return connect_versioned(endpoint, args.api_version, timeout=args.timeout)

    try:
        client = until_connected(connect, stop, waiting, _log_wait) if long_running else connect()
    except BaseException:
        if server is not None:
            server.close()
        if store is not None:
            store.close()
        raise
    if client is None:  # SIGTERM while waiting for the engine
        if server is not None:
            server.close()
        if store is not None:
            store.close()
        return EXIT_OK
    clients.append(client)
    # --progress prints each step; a service logs them as JSON lines anyway (diagnosable).
    say = _progress if args.progress else (_log_step if long_running else None)
    registry = RegistryClient(
        credentials, insecure=_insecure_predicate(client), timeout=args.registry_timeout
    )
    options = UpdateOptions(
        health_timeout=args.health_timeout,
        min_uptime=args.min_uptime,
        stop_timeout=args.stop_timeout,
        lifecycle_hooks=args.enable_lifecycle_hooks,
        keep_old=args.keep_old,
        revive_stopped=args.revive_stopped,
        crash_after=str(env_default("UPDATE_CRASH_AFTER", "")),
    )
    cycle_options = CycleOptions(
        selection=Selection(
            all=args.all,
            names=tuple(args.containers),
            scope=args.scope,
            include_stopped=args.include_stopped,
            monitor_only=args.monitor_only,
            exclude=_names(args.disable_containers or env_list("UPDATE_DISABLE_CONTAINERS")),
        ),
        cleanup=args.cleanup,
        no_pull=args.no_pull,
        no_restart_dependents=args.no_restart_dependents,
        workers=args.workers,
        cooldown=parse_duration(str(args.cooldown or "0")),
    )
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    cycles: list[CycleResult] = []
    notified: set[tuple[str, str, str]] = set()
    journal = Journal(state_dir)
    cooldown = Cooldown(state_dir / "cooldown.state")
    signature = SignatureCheck(registry, args.verify_key)
    notifications.start()
    try:
        with journal.locked(), _engine_errors():
            updater = Updater(client, journal, options, say)
            if api is not None:
                api.start()
                if say:
                    say(f"HTTP API on {api.address}")
            run_now = polling  # the first cycle at start, unless only the API triggers cycles
            timetable = Timetable(schedule if polling else None)
            backoff = Backoff(1.0, 30.0)
            while True:
                batch: list[Trigger] = []
                try:
                    if long_running:
                        timetable.refresh(_labelled(client), dt.datetime.now(_zone()))
                    due = Due(global_cycle=True, opted_out=tuple(sorted(timetable.opted_out)))
                    if schedule.once:
                        due = Due(global_cycle=True)  # one run: every selected container
                    if not run_now:
                        stopping, batch, due = _wait_next(stop, api, timetable, say)
                        if stopping:
                            break
                    run_now = False
                    runs: list[CycleOptions] = []
                    sel = cycle_options.selection
                    if batch:
                        runs.append(
                            replace(
                                cycle_options, selection=replace(sel, images=batch_images(batch))
                            )
                        )
                    else:
                        if due.global_cycle and not schedule.labels_only:
                            skip = (*sel.exclude, *due.opted_out, *due.names)
                            runs.append(
                                replace(cycle_options, selection=replace(sel, exclude=skip))
                            )
                        names = tuple(n for n in due.names if not sel.names or n in sel.names)
                        if names:
                            # A container's own schedule: that container (as if named).
                            own = replace(sel, names=names, all=False)
                            runs.append(replace(cycle_options, selection=own))
                    for this in runs:
                        cycle_started = time.time()
                        try:
                            cycle = run_cycle(
                                client, registry, updater, this, gates, say, cooldown, signature
                            )
                        except Exception as exc:
                            answer(batch, {"error": f"{type(exc).__name__}: {exc}"[:300]})
                            raise
                        if template is not None:
                            notifications.submit(
                                render_template(
                                    template, cycle, host, title, args.notification_report
                                )
                            )
                        else:
                            message = compose(cycle, host, notified)
                            if message is not None:
                                subject = (
                                    "" if args.notification_skip_title else tag + message.subject
                                )
                                notifications.submit(to_note(message, subject))
                        if setup_warnings and not cycles:
                            cycle = replace(cycle, warnings=tuple(setup_warnings) + cycle.warnings)
                        if timetable.warnings:
                            cycle = replace(
                                cycle, warnings=cycle.warnings + tuple(timetable.warnings)
                            )
                            timetable.warnings.clear()
                        cycles.append(cycle)
                        metrics.record(cycle)
                        if store is not None:
                            _record(store, endpoint.url, cycle, cycle_started)
                        if long_running:
                            _log_cycle(len(cycles), cycle)
                        if api is not None:
                            answer(batch, summary(cycle))
                        if args.cycles and len(cycles) >= args.cycles:
                            break
                except Exception as exc:
                    if not (long_running and _transient(exc)):
                        raise
                    # The engine (or the proxy to it) went away: the journal keeps any
                    # interrupted transaction, the next cycle finishes or rolls it back.
                    delay = backoff.next()
                    waiting.set(f"{type(exc).__name__}: {exc}"[:300])
                    _log("cycle failed", error=waiting.error, retry_in=delay)
                    if stop.wait(delay):
                        break
                    run_now = True
                    continue
                backoff.reset()
                waiting.set("")
                if (schedule.once and api is None) or (args.cycles and len(cycles) >= args.cycles):
                    break
    finally:
        if server is not None:
            server.close()
        if api is not None:
            api.close()
        client.close()
        if store is not None:
            store.close()
        late = notifications.stop(flush_timeout=10.0)
        if late and cycles:
            cycles[-1] = replace(cycles[-1], warnings=cycles[-1].warnings + tuple(late))
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report = build_report(cycles, started, finished, endpoint.url)
    code = _emit_update(report, args)
    errors = [r for r in report.results if r.status is Status.ERROR]
    if errors:
        sys.stderr.write(f"dockward: error: {errors[0].target}: {errors[0].message}\n")
        return EXIT_USAGE
    return code


def _record(store: Any, host: str, cycle: CycleResult, started: float) -> None:
    """A cycle not recorded is a warning: the updates themselves happened."""
    from dockward.store import StoreError

    try:
        record_update_cycle(store, host, cycle, started)
    except StoreError as exc:
        sys.stderr.write(f"dockward update: warning: cycle not recorded: {exc}\n")


def _emit_update(report: Report, args: argparse.Namespace) -> int:
    """The table says per container what happened; other formats are the shared ones."""
    fmt = args.format or default_format(args.output)
    if fmt != "table":
        return emit(report, args)
    from dockward.update.table import render_update_table

    threshold = fail_threshold(args.fail_on)
    write_output(render_update_table(report), args.output)
    return EXIT_FINDINGS if threshold is not None and report.fails_at(threshold) else EXIT_OK


def _zone() -> dt.tzinfo:
    """Cron schedules run in TZ when it names a zone (as Watchtower's), else in UTC."""
    name = os.environ.get("TZ", "").strip().lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC


def _names(values: list[str]) -> tuple[str, ...]:
    return tuple(n.lstrip("/") for v in values for n in re.split(r"[\s,]+", v) if n)


def _template(args: argparse.Namespace) -> Template | None:
    source = args.notification_template
    if not source:
        return Template(WATCHTOWER_DEFAULT) if args.notification_report else None
    if source.startswith("@"):
        try:
            source = Path(source[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--notification-template {source}: {exc.strerror}") from exc
    if source in NAMED_TEMPLATES:
        source = NAMED_TEMPLATES[source]
    template = Template(source)
    # A template that cannot render an (empty) cycle is bad input: say so now, not per cycle.
    render_template(template, CycleResult(()), "host", "title", args.notification_report)
    return template


def _engine_alive(clients: list[Any], waiting: Waiting) -> Callable[[], tuple[bool, str]]:
    """Failing while the service waits for the engine (or retries a failed cycle)."""

    def check() -> tuple[bool, str]:
        ok, detail = waiting.check()
        if not ok or not clients:
            return False, f"waiting for the engine: {detail}"
        try:
            clients[0].ping()
        except Exception as exc:
            return False, f"{type(exc).__name__}"
        return True, "ping ok"

    return check


def _transient(exc: BaseException) -> bool:
    """The engine unreachable or failing (a service retries), not a refusal or a bug."""
    if isinstance(exc, ConnectionFailed | requests.RequestException):
        return True
    if isinstance(exc, docker.errors.APIError):
        return exc.status_code is None or exc.status_code >= 500
    return isinstance(exc, docker.errors.DockerException)


def _log(event: str, **fields: Any) -> None:
    log_event("update", event, **fields)


def _log_step(message: str) -> None:
    if not message.startswith("next cycle in"):
        _log("step", message=message)


def _log_wait(error: str, delay: float) -> None:
    _log("waiting for the engine", error=error, retry_in=round(delay, 1))


def _log_cycle(number: int, cycle: CycleResult) -> None:
    """One line per cycle and one per container it judged: a failed run says where it failed."""
    for r in cycle.recovered:
        _log("recovered", container=r.name, action=r.action, detail=r.detail)
    for e in cycle.events:
        _log("container", cycle=number, container=e.container, status=e.status, reason=e.reason,
             image=e.image, new_image_id=e.new_image_id[:19])  # fmt: skip
    counts: dict[str, int] = {}
    for e in cycle.events:
        counts[e.status] = counts.get(e.status, 0) + 1
    _log("cycle", cycle=number, containers=len(cycle.events), check_seconds=round(
        cycle.check_seconds, 3), removed_images=len(cycle.removed_images),
        restarted=list(cycle.restarted), warnings=list(cycle.warnings), **counts)  # fmt: skip


LABEL_REREAD = 30.0


def _labelled(client: Any) -> dict[str, dict[str, str]]:
    """Labels of the containers that carry a schedule or a global-schedule opt-out."""
    out: dict[str, dict[str, str]] = {}
    for key in (SCHEDULE_LABEL, GLOBAL_LABEL):
        for c in client.containers(all=True, filters={"label": key}):
            names = [str(n) for n in c.get("Names") or []]
            name = next((n for n in names if n.count("/") == 1), names[0] if names else "")
            out[name.lstrip("/")] = dict(c.get("Labels") or {})
    return out


def _wait_next(
    stop: threading.Event,
    api: UpdateAPI | None,
    timetable: Timetable,
    say: Callable[[str], None] | None,
) -> tuple[bool, list[Trigger], Due]:
    """Until the next scheduled cycle (global or a container's own), an API request, or a stop."""
    deadline: float | None = None
    now = dt.datetime.now(_zone())
    wake = timetable.next_wake(now)
    if wake is not None:
        wait = max(0.0, (wake - now).total_seconds())
        if say:
            say(f"next cycle in {wait:.0f}s")
        deadline = time.monotonic() + wait
    reread = time.monotonic() + LABEL_REREAD  # new or changed schedule labels are seen
    while not stop.is_set():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False, [], timetable.take_due(dt.datetime.now(_zone()))
        if time.monotonic() >= reread:
            return False, [], Due()
        step = 0.2 if left is None else min(0.2, left)
        if api is not None and api.update_enabled:
            batch = api.next_batch(step)
            if batch:
                return False, batch, Due()
        elif stop.wait(step):
            break
    return True, [], Due()


@contextlib.contextmanager
def _engine_errors() -> Iterator[None]:
    """An engine that fails mid-run is a connection problem (exit 2), not an internal error."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise ConnectionFailed(f"Docker engine error: {exc.explanation or exc}"[:300]) from exc
    except requests.RequestException as exc:
        raise ConnectionFailed(f"lost the Docker engine: {type(exc).__name__}") from exc


def _progress(msg: str) -> None:
    sys.stderr.write(f"dockward update: {msg}\n")
    sys.stderr.flush()


def _install_stop_handlers(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # finish the current cycle, then exit

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
