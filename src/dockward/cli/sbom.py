"""`dockward sbom`: an image's packages as CycloneDX 1.6, SPDX 2.3, JSON or a table."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
from typing import Any

from dockward import __version__
from dockward.cli.common import env_default, write_output
from dockward.cli.scan import add_image_options, image_ref, progress_status
from dockward.image.tarstream import Limits
from dockward.model.finding import Report
from dockward.report import FORMATTERS, render
from dockward.sbom.model import ImageExtra

FORMATS = ("cyclonedx", "spdx", "json", "table")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sbom",
        help="list an image's packages (CycloneDX, SPDX, JSON)",
        description="Catalogue an image's packages with purls and the layer that added each.",
    )
    add_image_options(p)
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=env_default("SBOM_FORMAT", "cyclonedx"),
        help="output format (default cyclonedx) [DOCKWARD_SBOM_FORMAT]",
    )
    p.add_argument(
        "-o", "--output", default=env_default("OUTPUT"), help="write to FILE [DOCKWARD_OUTPUT]"
    )
    p.set_defaults(run=run)


def _table(report: Report) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=140, no_color=True, highlight=False)
    extra = report.extra if isinstance(report.extra, ImageExtra) else ImageExtra()
    table = Table(title=f"packages in {extra.image.get('name', '?')}", expand=True)
    for col in ("name", "version", "type", "source", "layer"):
        table.add_column(col, overflow="fold")
    for p in extra.sbom.get("packages") or []:
        src = p.get("source") or {}
        table.add_row(p["name"], p["version"], p["type"], src.get("name", ""), p["layer"][7:19])
    console.print(table)
    distro = extra.sbom.get("distro") or {}
    console.print(
        f"{len(extra.sbom.get('packages') or [])} packages; os: {distro.get('name') or 'unknown'}"
    )
    for w in report.warnings:
        console.print(f"warning: {w}")
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    from dockward.scan import ScanOptions, inventory

    ref, source = image_ref(args)
    options = ScanOptions(
        source=source,
        platform=args.platform,
        insecure_registry=args.insecure_registry,
        limits=Limits(max_total_size=args.max_layer_size),
        binaries=not args.no_binaries,
        docker_host=args.host,
        layer_cache=None if args.no_layer_cache else "",
    )
    with progress_status(sys.stderr.isatty()) as say:
        inv = inventory(ref, options, say)
    report = Report(
        command="sbom",
        results=(),
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        warnings=inv.sbom.notes,
        extra=ImageExtra(inv.image_info(), inv.sbom.to_dict()),
        tool_version=__version__,
    )
    text = _table(report) if args.format == "table" else render(report, args.format)
    assert args.format in FORMATTERS or args.format == "table"
    write_output(text, args.output)
    return 0
