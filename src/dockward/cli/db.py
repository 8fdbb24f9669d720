"""`dockward db`: the local OSV vulnerability database (import, update, status)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dockward.cli.common import EXIT_FINDINGS, EXIT_OK, env_default, env_list, env_option
from dockward.cli.progress import progress_bar


def register(sub: Any) -> None:
    p = sub.add_parser(
        "db",
        help="manage the local vulnerability database (OSV)",
        description="The vulnerability database is one SQLite file built from OSV records. It "
        "is only changed by these commands, atomically; scans never go online.",
    )
    p.add_argument(
        "--db",
        default=env_default("DB"),
        help="database file (default ~/.cache/dockward/vulndb.sqlite) [DOCKWARD_DB]",
    )
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    imp = dsub.add_parser("import", help="add OSV records from files, directories or all.zip")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.set_defaults(run=run_import)
    upd = dsub.add_parser("update", help="download OSV ecosystem archives and swap the DB in")
    upd.add_argument(
        "--url",
        default=env_default("DB_URL"),
        help="base URL serving <ecosystem>/all.zip (default: the OSV bucket) [DOCKWARD_DB_URL]",
    )
    upd.add_argument(
        "--ecosystem",
        action="append",
        default=None,
        help="ecosystem to fetch (repeatable; default PyPI npm Go Maven Debian Alpine Ubuntu) "
        "[DOCKWARD_DB_ECOSYSTEMS, comma-separated]",
    )
    upd.add_argument("--force", action="store_true", help="download even if unchanged")
    env_option(
        upd, "--timeout", env="DB_TIMEOUT", type=float, default=120.0, help="seconds per request"
    )
    upd.set_defaults(run=run_update)
    st = dsub.add_parser("status", help="age, counts and sources; warns when stale")
    env_option(
        st,
        "--max-age",
        env="DB_MAX_AGE",
        type=float,
        default=7.0,
        help="days after which the DB is stale (exit 1)",
    )
    st.add_argument(
        "--format", "-f", choices=("table", "json"), default=env_default("FORMAT") or "table"
    )
    st.set_defaults(run=run_status)
    p.set_defaults(run=lambda args: (p.print_help(sys.stderr), 2)[1])


def _path(args: argparse.Namespace) -> Any:
    from dockward.vulndb import default_db_path

    return args.db or default_db_path()


def run_import(args: argparse.Namespace) -> int:
    from dockward.vulndb import import_path

    path = _path(args)
    stats = import_path(path, args.paths)
    sys.stdout.write(
        f"imported {stats.records} records ({stats.affected} affected packages, "
        f"{stats.withdrawn} withdrawn) into {path}\n"
    )
    for why in stats.skipped[:20]:
        sys.stderr.write(f"warning: skipped {why}\n")
    if len(stats.skipped) > 20:
        sys.stderr.write(f"warning: skipped {len(stats.skipped) - 20} more records\n")
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    from dockward.vulndb import DEFAULT_ECOSYSTEMS, DEFAULT_URL, update_db

    path = _path(args)
    ecos = args.ecosystem or env_list("DB_ECOSYSTEMS") or list(DEFAULT_ECOSYSTEMS)

    say = progress_bar()
    try:
        result = update_db(
            path,
            args.url or DEFAULT_URL,
            ecos,
            timeout=args.timeout,
            force=args.force,
            progress=say,
        )
    finally:
        if say is not None:
            say.done()
    sys.stdout.write(
        f"updated {path}: changed {', '.join(result.changed) or 'none'}; "
        f"unchanged {', '.join(result.unchanged) or 'none'}; {result.stats.records} records\n"
    )
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    from dockward.vulndb import status

    st = status(_path(args))
    stale = st.age_days > args.max_age
    if args.format == "json":
        sys.stdout.write(json.dumps(st.to_dict() | {"stale": stale}, indent=2) + "\n")
    else:
        lines = [
            f"database: {st.path} ({st.size / 1e6:.1f} MB)",
            f"updated:  {st.updated} ({st.age_days:.1f} days ago)",
            f"records:  {st.vulns}",
            *(f"  {eco:<12} {n}" for eco, n in st.by_ecosystem.items()),
            *(
                f"source:   {s['ecosystem']} {s['url']} fetched {s['fetched']} ({s['records']} records)"
                for s in st.sources
            ),
        ]
        sys.stdout.write("\n".join(lines) + "\n")
    if stale:
        sys.stderr.write(
            f"warning: the vulnerability database is {st.age_days:.1f} days old "
            f"(over {args.max_age:g}); run `dockward db update` or import fresh OSV data\n"
        )
        return EXIT_FINDINGS
    return EXIT_OK
