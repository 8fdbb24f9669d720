"""`dockward report`: merge JSON results (audits, lints, scans) into one page or document."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dockward.cli.common import add_output_options, emit
from dockward.errors import InputError

MAX_REPORT_BYTES = 256 * 1024 * 1024


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="merge JSON results into one report (HTML, SARIF, JUnit, JSON)",
        description="Merge several `--format json` results (audits of several hosts, scans, "
        "lints) into one report.",
    )
    p.add_argument("inputs", nargs="+", metavar="REPORT.json")
    add_output_options(p, default_fail_on="never")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
