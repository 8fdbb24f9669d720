"""`dockward rules list`: the rule registry."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("rules", help="list the rules dockward knows")
    rs = p.add_subparsers(dest="rules_command", metavar="ACTION")
    lp = rs.add_parser("list", help="list rules with id, severity, CIS reference and remediation")
    lp.add_argument("--format", "-f", choices=("table", "json"), default=None)
    lp.add_argument(
        "--kind", help="only rules of this kind (container, image, daemon, files, host, swarm, ...)"
    )
    lp.add_argument(
        "--cis-version",
        default=os.environ.get("DOCKWARD_CIS_VERSION", "1.8.0"),
        metavar="VERSION",
        help="CIS Docker Benchmark numbering shown: 1.6.0, 1.7.0 or 1.8.0 (default 1.8.0) "
        "[DOCKWARD_CIS_VERSION]",
    )
    lp.set_defaults(run=run)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dockward.catalog import all_rules
    from dockward.rules.cis import cis_ids, renumber

    version = getattr(args, "cis_version", None) or os.environ.get("DOCKWARD_CIS_VERSION", "1.8.0")
    entries = [
        e
        for e in renumber(all_rules(), version)
        if not getattr(args, "kind", None) or e.rule.kind == args.kind
    ]
    fmt = getattr(args, "format", None) or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        sys.stdout.write(
            json.dumps(
                [e.rule.to_dict() | {"cis_ids": cis_ids(e.rule.id)} for e in entries], indent=2
            )
            + "\n"
        )
        return 0
    table = Table(title=f"{len(entries)} rules")
    for col in ("id", "kind", "severity", "CIS", "title", "aliases / groups"):
        table.add_column(col)
    for e in entries:
        r = e.rule
        words = " ".join((*r.aliases, *(f"@{g}" for g in r.groups)))
        table.add_row(r.id, r.kind, r.severity.label, r.cis, r.title, words)
    Console(width=140).print(table)
    return 0
