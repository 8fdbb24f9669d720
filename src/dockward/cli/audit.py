"""`dockward audit`: the CIS Docker Benchmark and more, on one or several live hosts."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dockward.cli._service import add_schedule_options, run_maybe_scheduled
from dockward.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_output_options,
    default_format,
    emit,
    env_default,
    env_list,
    env_option,
    fail_threshold,
    progress_printer,
)
from dockward.cli.fleetopts import (
    add_fleet_options,
    add_record_options,
    event_outputs,
    fleet_hosts,
    fleet_options,
    fleet_workers,
    open_run_store,
    send_posture_events,
)

if TYPE_CHECKING:
    from dockward.model.finding import Report


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="audit a live Docker host against the CIS Docker Benchmark",
        description="Audit live Docker hosts: host, daemon, files, images and every container "
        "(running or not). Host-file checks are skipped for remote hosts.",
    )
    p.add_argument(
        "--host",
        "-H",
        action="append",
        default=None,
        help="Docker host (unix:///path, tcp://host:2376, ssh://user@host); repeat for several "
        "hosts in one report [DOCKWARD_HOST, comma-separated; default DOCKER_HOST]",
    )
    p.add_argument(
        "--context",
        action="append",
        default=None,
        help="Docker context name (repeatable) [DOCKWARD_CONTEXT, comma-separated]",
    )
    p.add_argument(
        "--check",
        action="append",
        default=None,
        help="run only this rule id or CIS id (repeatable) [DOCKWARD_CHECK]",
    )
    p.add_argument(
        "--section",
        action="append",
        default=None,
        help="run only a CIS section (1-7) or a kind (container, image, daemon, files, host, swarm) [DOCKWARD_SECTION]",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=None,
        help="skip this rule id or CIS id (repeatable) [DOCKWARD_SKIP]",
    )
    p.add_argument(
        "--cis-version",
        default=env_default("CIS_VERSION", "1.8.0"),
        metavar="VERSION",
        help="CIS Docker Benchmark numbering for ids shown and for --check/--skip/--section: "
        "1.6.0, 1.7.0 or 1.8.0 (default 1.8.0) [DOCKWARD_CIS_VERSION]",
    )
    p.add_argument(
        "--config",
        default=env_default("CONFIG"),
        help="dockward.toml (default: searched upwards) [DOCKWARD_CONFIG]",
    )
    env_option(p, "--timeout", env="TIMEOUT", type=int, default=30, help="API timeout in seconds")
    add_fleet_options(p)
    add_record_options(p)
    add_output_options(p)
    add_schedule_options(p, "audit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dockward.audit import Selection, build_report, select
    from dockward.catalog import default_rules
    from dockward.config import load_config
    from dockward.engine import collect_snapshot, connect, resolve_endpoint
    from dockward.errors import ConnectionFailed
    from dockward.fleet import FleetHost, run_fleet_sharded
    from dockward.rules.cis import renumber
    from dockward.scan.records import attach_scan_records
    from dockward.store import ruleset_digest
    from dockward.update.schedule import Schedule

    config = load_config(args.config)
    if config.fail_on and args.fail_on == "low" and not env_default("FAIL_ON"):
        args.fail_on = config.fail_on
    hosts = fleet_hosts(args)
    opts = fleet_options(args)
    selection = Selection(
        checks=tuple(args.check or env_list("CHECK")),
        sections=tuple(args.section or env_list("SECTION")),
        skips=tuple(args.skip or env_list("SKIP")),
    )
    rules = renumber(default_rules(), args.cis_version)  # the numbering of ids and selections
    entries = select(rules, selection)  # an unknown --check is a usage error first
    ruleset = ruleset_digest(e.rule for e in entries)
    # Names before any work: an unknown context is a usage error, not a failed host.
    endpoints = {h: resolve_endpoint(h.url, h.context) for h in hosts}
    names = {h: h.name or endpoints[h].url for h in hosts}
    fleet = len(hosts) > 1
    workers = fleet_workers(args, len(hosts))
    say = progress_printer(sys.stderr.isatty())
    events = event_outputs(args)
    store = open_run_store(args)  # a bad --store is a usage error before any work

    def once() -> Report:
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

        def audit_host(host: FleetHost) -> Report:
            endpoint = endpoints[host]
            client = connect(endpoint, timeout=args.timeout)
            try:
                snap = collect_snapshot(
                    client, endpoint, None if fleet else say, scan_records=attach_scan_records
                )
            finally:
                client.close()
            return build_report([snap], selection, config, rules, started=started)

        single: list[Report] = []
        parts = _FleetParts(hosts, names, spool=fleet)
        with store.batch("audit") if store is not None else _no_batch() as batch:
            outcomes = run_fleet_sharded(hosts, audit_host, opts, workers)
            for n, outcome in enumerate(outcomes, 1):
                if say and fleet:
                    say(f"{n}/{len(hosts)} hosts")
                if batch is not None:
                    batch.record(
                        names[outcome.host],
                        outcome.value,
                        outcome.started,
                        outcome.finished,
                        ruleset,
                        error=outcome.error,
                    )
                if not fleet and outcome.value is not None:
                    single.append(outcome.value)
                parts.add(outcome.host, outcome.value, outcome.error, outcome.attempts)
        if store is not None and batch is not None:
            parts.batch = batch.id
            send_posture_events(store, "audit", batch.run_ids, events)
        if say:
            say.done()
        if not fleet and parts.errors:
            raise ConnectionFailed(parts.errors[0])
        head = parts.head(started, len(entries))
        if parts.spool is None:
            return replace(head, results=single[0].results if single else ())
        spooled.append(parts)
        return head

    spooled: list[_FleetParts] = []  # the last fleet run's results, on disk

    def emit_fleet(head: Report, a: argparse.Namespace) -> int:
        if not spooled:
            return emit(head, a)
        parts = spooled.pop()
        try:
            fmt = a.format or default_format(a.output)
            threshold = fail_threshold(a.fail_on)
            failed = threshold is not None and parts.fails_at(threshold)
            if fmt == "json":  # streamed from the spool: memory bounded whatever the fleet's size
                parts.write_json(head, a.output)
                return EXIT_FINDINGS if failed else EXIT_OK
            if fmt == "html" and store is not None and parts.batch:
                # The fleet page of this run, streamed from the store one host at a time.
                from dockward.report.fleet import fleet_page_from_store
                from dockward.report.spool import write_streamed

                runs = store.batch_runs(parts.batch)
                title = f"dockward audit of {len(runs)} hosts, {head.started}"
                write_streamed(
                    a.output, lambda write: fleet_page_from_store(store, runs, write, title)
                )
                return EXIT_FINDINGS if failed else EXIT_OK
            return emit(replace(head, results=tuple(parts.results())), a)
        finally:
            parts.close()

    def once_whole() -> Report:
        """For scheduled runs, whose report directory and metrics take whole reports."""
        head = once()
        if not spooled:
            return head
        parts = spooled.pop()
        try:
            return replace(head, results=tuple(parts.results()))
        finally:
            parts.close()

    try:
        if Schedule.parse(args.interval, args.schedule).once:
            return run_maybe_scheduled(args, "audit", once, emit_fleet)
        return run_maybe_scheduled(args, "audit", once_whole)
    finally:
        if store is not None:
            store.close()


@contextlib.contextmanager
def _no_batch() -> Iterator[None]:
    yield None


class _FleetParts:
    """What a run keeps of each host as it finishes: its results go to a spool on disk, its
    name, warnings and error stay; the report is assembled in the order hosts were named."""

    def __init__(self, hosts: list[Any], names: dict[Any, str], spool: bool) -> None:
        from dockward.report.spool import ResultSpool

        self.hosts = hosts
        self.names = names
        self.spool = ResultSpool() if spool else None
        self.keys = [str(i) for i in range(len(hosts))]
        self._key = {h: k for h, k in zip(hosts, self.keys, strict=True)}
        self.shown: dict[Any, str] = {}
        self.warnings: dict[Any, list[str]] = {}
        self.waiver_warnings: list[set[str]] = []
        self.failed: dict[Any, str] = {}
        self.errors: list[str] = []
        self.batch = ""  # the stored run's batch id, once committed

    def add(self, host: Any, report: Report | None, error: str, attempts: int) -> None:
        from dockward.fleet import error_result

        name = self.names[host]
        if report is not None:
            if self.spool is not None:
                self.spool.add(self._key[host], report.results)
            self.shown[host] = report.hosts[0] if report.hosts else name
            self.warnings[host] = [w for w in report.warnings if not w.startswith("waiver for ")]
            self.waiver_warnings.append({w for w in report.warnings if w.startswith("waiver for ")})
        else:
            if self.spool is not None:
                self.spool.add(self._key[host], [error_result(name, error, attempts)])
            self.warnings[host] = [f"{name}: not audited: {error}"]
            self.failed[host] = error
            self.errors.append(error)

    def head(self, started: str, rules_evaluated: int) -> Report:
        """The report without its results (they are in the spool); a waiver that matched
        nothing is reported once, and only when it matched on no host."""
        from dockward import __version__
        from dockward.audit import AuditExtra
        from dockward.model.finding import Report

        unmatched = set.intersection(*self.waiver_warnings) if self.waiver_warnings else set()
        warnings = [w for h in self.hosts for w in self.warnings.get(h, ())]
        return Report(
            command="audit",
            results=(),
            started=started,
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            hosts=tuple(self.shown.get(h, self.names[h]) for h in self.hosts),
            warnings=tuple(warnings + sorted(unmatched)),
            tool_version=__version__,
            extra=AuditExtra(rules_evaluated, len(self.failed)),
        )

    def fails_at(self, threshold: Any) -> bool:
        return self.spool is not None and self.spool.fails_at(threshold)

    def results(self) -> Iterator[Any]:
        return self.spool.results(self.keys) if self.spool is not None else iter(())

    def write_json(self, head: Report, output: str | None) -> None:
        from dockward.errors import DockwardError
        from dockward.report.spool import atomic_output, write_json_stream

        assert self.spool is not None
        if not output or output == "-":
            write_json_stream(head, self.spool, self.keys, sys.stdout.buffer)
            sys.stdout.flush()
            return
        try:
            with atomic_output(output) as fh:
                write_json_stream(head, self.spool, self.keys, fh)
        except OSError as exc:
            raise DockwardError(f"cannot write {output}: {exc.strerror}") from exc

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
