"""Flags shared by the commands that run over a fleet and record runs: hosts and the store."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockward.cli.common import env_default, env_flag, env_list, env_option
from dockward.errors import UsageError

if TYPE_CHECKING:
    from dockward.fleet import FleetHost, FleetOptions
    from dockward.store import Store
    from dockward.update.cycle import CycleResult


def add_fleet_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fleet")
    g.add_argument(
        "--hosts-file",
        action="append",
        default=None,
        metavar="FILE",
        help="Docker host URLs, one per line (repeatable) [DOCKWARD_HOSTS_FILE, comma-separated]",
    )
    g.add_argument(
        "--inventory",
        action="append",
        default=None,
        metavar="FILE",
        help="Ansible inventory (INI or YAML): ansible_host/ansible_user/ansible_port become "
        "ssh://user@host:port, dockward_docker_host names the engine outright (repeatable) "
        "[DOCKWARD_INVENTORY, comma-separated]",
    )
    g.add_argument(
        "--limit",
        action="append",
        default=None,
        metavar="GROUP",
        help="only these inventory groups (repeatable) [DOCKWARD_LIMIT, comma-separated]",
    )
    env_option(
        g,
        "--parallel",
        env="PARALLEL",
        type=int,
        default=8,
        help="hosts collected at the same time (default 8)",
    )
    env_option(
        g,
        "--host-timeout",
        env="HOST_TIMEOUT",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="deadline per host, retries included (default 300)",
    )
    env_option(
        g,
        "--workers",
        env="WORKERS",
        type=int,
        default=0,
        help="processes the hosts are shared over (default: one per CPU, up to 4, for 8 hosts "
        "or more; 1 keeps everything in one process)",
    )
    env_option(
        g,
        "--retries",
        env="RETRIES",
        type=int,
        default=1,
        help="further attempts for a host that fails (default 1)",
    )


def add_store_options(p: argparse.ArgumentParser, default_store: bool = True) -> None:
    g = p.add_argument_group("result store")
    where = (
        "default: history.sqlite in $XDG_DATA_HOME/dockward"
        if default_store
        else "default: not recorded"
    )
    g.add_argument(
        "--store",
        default=env_default("STORE"),
        metavar="URL",
        help="where runs are recorded: postgresql://user@host/db, sqlite:///PATH or a path "
        f"({where}) [DOCKWARD_STORE]",
    )
    g.add_argument(
        "--retention",
        default=env_default("RETENTION", "365d"),
        metavar="DURATION",
        help="drop stored runs older than this (e.g. 90d; 0 keeps all; default 365d) "
        "[DOCKWARD_RETENTION]",
    )


def add_record_options(p: argparse.ArgumentParser) -> None:
    add_store_options(p)
    p.add_argument(
        "--events",
        action="append",
        default=None,
        metavar="OUTPUT",
        help="send new failures, fixes and unreachable hosts (against each host's previous run) "
        "as events to a monitor output: syslog+tcp://HOST:PORT, https://webhook, "
        "elasticsearch+http://HOST:PORT/INDEX, splunk+https://HOST:PORT, file:PATH (repeatable) "
        "[DOCKWARD_EVENTS, comma-separated]",
    )
    p.add_argument(
        "--events-spool",
        default=env_default("EVENTS_SPOOL"),
        metavar="DIR",
        help="where events an output did not take wait for the next run, one directory per "
        "output (default: events-spool beside the default store) [DOCKWARD_EVENTS_SPOOL]",
    )
    p.add_argument(
        "--events-timeout",
        type=float,
        default=float(env_default("EVENTS_TIMEOUT", "10")),
        metavar="SECONDS",
        help="how long a failing output is retried before its events stay spooled (default 10) "
        "[DOCKWARD_EVENTS_TIMEOUT]",
    )
    p.add_argument(
        "--no-store",
        action="store_true",
        default=env_flag("NO_STORE"),
        help="do not record this run in the result store [DOCKWARD_NO_STORE=1]",
    )


def fleet_hosts(args: argparse.Namespace) -> list[FleetHost]:
    from dockward.fleet import gather

    return gather(
        args.host or env_list("HOST"),
        args.context or env_list("CONTEXT"),
        args.hosts_file or env_list("HOSTS_FILE"),
        args.inventory or env_list("INVENTORY"),
        args.limit or env_list("LIMIT"),
    )


def fleet_options(args: argparse.Namespace) -> FleetOptions:
    from dockward.fleet import FleetOptions

    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if args.host_timeout <= 0:
        raise UsageError("--host-timeout must be positive")
    if args.retries < 0:
        raise UsageError("--retries must be 0 or more")
    return FleetOptions(parallel=args.parallel, deadline=args.host_timeout, retries=args.retries)


def fleet_workers(args: argparse.Namespace, hosts: int) -> int:
    import os

    if args.workers < 0:
        raise UsageError("--workers must be 0 (automatic) or more")
    if args.workers:
        return int(args.workers)
    return min(os.cpu_count() or 1, 4) if hosts >= 8 else 1


def retention_days(args: argparse.Namespace) -> float:
    from dockward.store import StoreError, parse_duration

    try:
        return parse_duration(args.retention) / 86400 if args.retention.strip() != "0" else 0.0
    except StoreError as exc:
        raise UsageError(f"--retention: {exc}") from exc


def open_run_store(args: argparse.Namespace) -> Store | None:
    """The store this run is recorded in. A store named with --store must open (exit 2 before any
    work); the default one that cannot be opened is a warning, not a lost audit."""
    from dockward.store import StoreError, open_store

    if getattr(args, "no_store", False):
        return None
    days = retention_days(args)
    try:
        return open_store(args.store, retention_days=days)
    except StoreError as exc:
        if args.store:
            raise
        sys.stderr.write(f"dockward: warning: run not recorded: {exc}\n")
        return None


@dataclass(frozen=True, slots=True)
class EventOutputs:
    """Where posture events go, where undelivered ones wait, and how long a send is retried."""

    specs: tuple[str, ...]
    spool: str
    timeout: float


def event_outputs(args: argparse.Namespace) -> EventOutputs:
    from pathlib import Path

    from dockward.store import default_store_url
    from dockward.store.events import check_outputs

    specs = tuple(args.events or env_list("EVENTS"))
    if specs and args.no_store:
        raise UsageError("--events compares with the stored previous run: not with --no-store")
    if args.events_timeout < 0:
        raise UsageError("--events-timeout must be 0 or more")
    check_outputs(specs)
    spool = args.events_spool or str(Path(default_store_url()).parent / "events-spool")
    return EventOutputs(specs, spool, args.events_timeout)


def send_posture_events(
    store: Store, command: str, run_ids: dict[str, int], events: EventOutputs
) -> None:
    """Events for the hosts of the run just recorded, after those earlier runs spooled; an
    output that does not take them is a warning (they stay spooled)."""
    from dockward.store.drift import fleet_drift
    from dockward.store.events import posture_alerts, send_events

    if not events.specs:
        return
    drifts = [d for d in fleet_drift(store, command) if run_ids.get(d.host) == d.current.id]
    alerts = posture_alerts(drifts)
    for warning in send_events(events.specs, alerts, events.spool, events.timeout):
        sys.stderr.write(f"dockward: warning: {warning}\n")


def open_update_store(args: argparse.Namespace) -> Store | None:
    """`dockward update` records its cycles only where --store (DOCKWARD_STORE) names a store;
    one that cannot be opened is exit 2 before any work."""
    from dockward.store import open_store

    if not args.store:
        return None
    return open_store(args.store, retention_days=retention_days(args))


def record_update_cycle(store: Store, host: str, cycle: CycleResult, started: float) -> None:
    """One update cycle as a stored run of HOST (command `update`): its results, and the
    containers it left outdated (the exporter's dockward_host_outdated_containers)."""
    import datetime as dt
    import time

    from dockward.store import ruleset_digest
    from dockward.update.report import RULES, build_report, outdated_after

    finished = time.time()
    report = build_report(
        [cycle],
        dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        dt.datetime.fromtimestamp(finished, dt.UTC).isoformat(timespec="seconds"),
        host,
    )
    with store.batch("update") as batch:
        batch.record(
            host, report, started, finished, ruleset_digest(RULES), outdated=outdated_after(cycle)
        )


def open_read_store(args: argparse.Namespace) -> Store:
    from dockward.store import open_store

    return open_store(args.store, retention_days=0)


__all__ = [
    "EventOutputs",
    "add_fleet_options",
    "add_record_options",
    "add_store_options",
    "event_outputs",
    "fleet_hosts",
    "fleet_options",
    "fleet_workers",
    "open_read_store",
    "open_run_store",
    "open_update_store",
    "record_update_cycle",
    "send_posture_events",
]
