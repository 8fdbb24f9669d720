"""`dockward audit`: the CIS Docker Benchmark and more, on one or several live hosts."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from dockward.cli._service import add_schedule_options, run_maybe_scheduled
from dockward.cli.common import add_output_options, env_default, env_list, progress_printer

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
        "--context", default=env_default("CONTEXT"), help="Docker context name [DOCKWARD_CONTEXT]"
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
    add_output_options(p)
    add_schedule_options(p, "audit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dockward.audit import Selection, build_report, select
    from dockward.config import load_config
    from dockward.engine import collect_snapshot, connect, resolve_endpoint
    from dockward.rules import default_rules
    from dockward.rules.cis import renumber

    config = load_config(args.config)
    if config.fail_on and args.fail_on == "low" and not env_default("FAIL_ON"):
        args.fail_on = config.fail_on
    hosts = args.host or env_list("HOST") or [None]
    selection = Selection(
        checks=tuple(args.check or env_list("CHECK")),
        sections=tuple(args.section or env_list("SECTION")),
        skips=tuple(args.skip or env_list("SKIP")),
    )
    rules = renumber(default_rules(), args.cis_version)
    select(rules, selection)  # an unknown --check is a usage error before any work
    say = progress_printer(sys.stderr.isatty())

    def once() -> Report:
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        snapshots = []
        for host in hosts:
            endpoint = resolve_endpoint(host, args.context)
            client = connect(endpoint, timeout=args.timeout)
            try:
                snapshots.append(collect_snapshot(client, endpoint, say))
            finally:
                client.close()
        if say:
            sys.stderr.write("\r\033[K")
        return build_report(snapshots, selection, config, rules, started=started)

    return run_maybe_scheduled(args, "audit", once)
