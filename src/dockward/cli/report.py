"""`dockward report`: merge JSON results (audits, lints, scans) into one page or document, or
read the result store: drift, posture history, the fleet page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dockward.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_output_options,
    emit,
    env_default,
    fail_threshold,
    write_output,
)
from dockward.errors import InputError, UsageError

MAX_REPORT_BYTES = 256 * 1024 * 1024


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="merge JSON results into one report; drift, history and the fleet page from the store",
        description="Merge several `--format json` results (audits of several hosts, scans, "
        "lints) into one report; or, from the result store that `audit` records into: what "
        "changed per host (--diff), posture over time (--history), the fleet page (--fleet).",
    )
    p.add_argument("inputs", nargs="*", metavar="REPORT.json")
    g = p.add_argument_group("result store")
    g.add_argument(
        "--diff",
        nargs="?",
        const="",
        default=None,
        metavar="RUN",
        help="per host: new, fixed, severity-changed findings and newly vulnerable images of the "
        "latest run against RUN (a run id or batch id; default: each host's previous run); "
        "exit 1 when something new is at or above --fail-on",
    )
    g.add_argument(
        "--since",
        default=env_default("SINCE"),
        metavar="DURATION",
        help="with --diff: compare with each host's run of DURATION ago (7d, 12h) [DOCKWARD_SINCE]; "
        "with --history: only runs this recent",
    )
    g.add_argument(
        "--history", action="store_true", help="HTML page: posture over time per host and fleet"
    )
    g.add_argument(
        "--fleet",
        action="store_true",
        help="HTML page: hosts ranked, findings on the most hosts first, drill-down per host",
    )
    g.add_argument(
        "--store",
        default=env_default("STORE"),
        metavar="URL",
        help="the result store (default: history.sqlite in $XDG_DATA_HOME/dockward) [DOCKWARD_STORE]",
    )
    g.add_argument(
        "--command",
        dest="stored_command",
        default=env_default("REPORT_COMMAND", "audit"),
        help="which stored runs: audit or scan (default audit) [DOCKWARD_REPORT_COMMAND]",
    )
    add_output_options(p, default_fail_on="never")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    modes = [m for m in ("diff", "history", "fleet") if getattr(args, m) not in (None, False)]
    if len(modes) > 1:
        raise UsageError(f"--{modes[0]} and --{modes[1]} are separate reports: pick one")
    if modes and args.inputs:
        raise UsageError(f"--{modes[0]} reads the result store, not REPORT.json files")
    if args.since and modes != ["diff"] and modes != ["history"]:
        raise UsageError("--since goes with --diff or --history")
    if modes:
        return _from_store(modes[0], args)
    if not args.inputs:
        raise UsageError("name REPORT.json files, or use --diff, --history or --fleet")
    return _merge(args)


def _merge(args: argparse.Namespace) -> int:
    from dockward.report import report_from_json
    from dockward.report.jsonfmt import merge_reports

    reports = []
    for name in args.inputs:
        path = Path(name)
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                raise InputError(f"{name}: larger than {MAX_REPORT_BYTES // 2**20} MiB")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise InputError(f"{name}: no such file") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: not UTF-8 text") from exc
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror}") from exc
        reports.append(report_from_json(text, name))
    if args.format is None and not args.output:
        args.format = "html"
    return emit(merge_reports(reports), args)


def _from_store(mode: str, args: argparse.Namespace) -> int:
    import time

    from dockward.report.fleet import (
        fleet_page_from_store,
        render_drift_json,
        render_drift_text,
        render_history_page,
    )
    from dockward.report.spool import write_streamed
    from dockward.store import open_store, parse_duration
    from dockward.store.drift import fleet_drift

    threshold = fail_threshold(args.fail_on)
    since = parse_duration(args.since) if args.since else None
    if args.stored_command not in ("audit", "scan"):
        raise UsageError("--command: audit or scan")
    store = open_store(args.store, retention_days=0)
    try:
        if mode == "diff":
            fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "json")
            if fmt not in ("table", "json"):
                raise UsageError("--diff writes table or json")
            drifts = fleet_drift(store, args.stored_command, args.diff or None, since)
            text = render_drift_text(drifts) if fmt == "table" else render_drift_json(drifts)
            write_output(text, args.output)
            worse = threshold is not None and any(d.worsened_at(threshold) for d in drifts)
            return EXIT_FINDINGS if worse else EXIT_OK
        if args.format not in (None, "html"):
            raise UsageError(f"--{mode} writes html")
        if mode == "history":
            cutoff = time.time() - since if since is not None else None
            page = render_history_page(store.runs(args.stored_command, since=cutoff))
        else:  # streamed: one host's findings at a time
            runs = store.latest(args.stored_command)
            write_streamed(args.output, lambda write: fleet_page_from_store(store, runs, write))
            return EXIT_OK
        write_output(page, args.output)
        return EXIT_OK
    finally:
        store.close()
