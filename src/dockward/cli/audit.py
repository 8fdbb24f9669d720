"""`dockward audit`: the CIS Docker Benchmark and more, on one or several live hosts."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dockward.cli._service import add_schedule_options, run_maybe_scheduled
from dockward.cli.common import add_output_options, env_default, env_list, progress_printer
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
    p.add_argument(
        "--timeout",
        type=int,
        default=int(env_default("TIMEOUT", "30")),
        help="API timeout in seconds [DOCKWARD_TIMEOUT]",
    )
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

        reports: dict[FleetHost, Report] = {}
        errors: dict[FleetHost, tuple[str, int]] = {}
        shared: dict[str, Any] = {}  # one copy of each rule over the workers' reports
        with store.batch("audit") if store is not None else _no_batch() as batch:
            outcomes = run_fleet_sharded(hosts, audit_host, opts, workers)
            for n, outcome in enumerate(outcomes, 1):
                if say and fleet:
                    say(f"{n}/{len(hosts)} hosts")
                if outcome.value is not None:
                    reports[outcome.host] = (
                        _shared_rules(outcome.value, shared) if workers > 1 else outcome.value
                    )
                else:
                    errors[outcome.host] = (outcome.error, outcome.attempts)
                if batch is not None:
                    batch.record(
                        names[outcome.host],
                        outcome.value,
                        outcome.started,
                        outcome.finished,
                        ruleset,
                        error=outcome.error,
                    )
        if store is not None and batch is not None:
            send_posture_events(store, "audit", batch.run_ids, events)
        if say:
            say.done()
        if not fleet and errors:
            raise ConnectionFailed(errors[hosts[0]][0])
        return _fleet_report(hosts, names, reports, errors, started, len(entries))

    try:
        return run_maybe_scheduled(args, "audit", once)
    finally:
        if store is not None:
            store.close()


def _shared_rules(report: Report, rules: dict[str, Any]) -> Report:
    """A report from a worker process carries its own copy of every rule (docs, remediation):
    one copy per rule for the whole fleet keeps memory to the results themselves."""
    from dataclasses import replace

    out = []
    for r in report.results:
        rule = rules.setdefault(r.rule.id, r.rule)
        out.append(r if rule is r.rule else replace(r, rule=rule))
    return replace(report, results=tuple(out))


@contextlib.contextmanager
def _no_batch() -> Iterator[None]:
    yield None


def _fleet_report(
    hosts: list[Any],
    names: dict[Any, str],
    reports: dict[Any, Any],
    errors: dict[Any, tuple[str, int]],
    started: str,
    rules_evaluated: int,
) -> Report:
    """One report, hosts in the order named; a waiver that matched nothing is reported once, and
    only when it matched on no host."""
    from dockward import __version__
    from dockward.audit import AuditExtra
    from dockward.fleet import error_result
    from dockward.model.finding import Report

    results: list[Any] = []
    warnings: list[str] = []
    waiver_warnings: list[set[str]] = []
    for h in hosts:
        if h in reports:
            rep = reports[h]
            results += rep.results
            warnings += [w for w in rep.warnings if not w.startswith("waiver for ")]
            waiver_warnings.append({w for w in rep.warnings if w.startswith("waiver for ")})
        else:
            error, attempts = errors[h]
            results.append(error_result(names[h], error, attempts))
            warnings.append(f"{names[h]}: not audited: {error}")
    unmatched = set.intersection(*waiver_warnings) if waiver_warnings else set()
    host_names = tuple(
        reports[h].hosts[0] if h in reports and reports[h].hosts else names[h] for h in hosts
    )
    return Report(
        command="audit",
        results=tuple(results),
        started=started,
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        hosts=host_names,
        warnings=tuple(warnings + sorted(unmatched)),
        tool_version=__version__,
        extra=AuditExtra(rules_evaluated, len(errors)),
    )
