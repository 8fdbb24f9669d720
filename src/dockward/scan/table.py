"""The scan table: vulnerabilities grouped by package with the fixed version, then checks."""

from __future__ import annotations

import io
import os

from dockward.model.finding import Report, Severity, Status
from dockward.report.table import STYLE
from dockward.sbom.model import ImageExtra
from dockward.scan.extra import ScanExtra

# Ecosystems whose packages live in files of their own (binaries, jars, site-packages).
LOCATED = frozenset({"Go", "Maven", "npm", "PyPI", "crates.io", "RubyGems", "NuGet", "Packagist"})


def render_scan_table(report: Report, width: int | None = None) -> str:
    # rich is imported here: ~50 ms of start-up that JSON/SARIF runs do not need.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    color = os.environ.get("NO_COLOR") is None and os.environ.get("DOCKWARD_COLOR") == "1"
    console = Console(
        file=buf, width=width or 140, force_terminal=color, no_color=not color, highlight=False
    )
    extra = report.extra if isinstance(report.extra, ImageExtra) else ImageExtra()
    image = extra.image
    os_info = image.get("os") or {}
    console.print(
        f"{image.get('name', '?')}  {image.get('id', '')[:19]}  "
        f"os: {os_info.get('name') or 'unknown'}  packages: {len(extra.sbom.get('packages', []))}"
    )
    vulns = [r for r in report.results if r.rule.kind == "vulnerability"]
    if vulns:
        table = Table(title="vulnerabilities (by package)", expand=True)
        for col in ("package", "installed", "fixed in", "severity", "id", "title"):
            table.add_column(col, overflow="fold", ratio=3 if col == "title" else None)
        last: tuple[str, str] = ("", "")
        # One group per package copy: the same Go module in two binaries is listed twice.
        for r in sorted(
            vulns,
            key=lambda r: (r.target, dict(r.evidence).get("locations", ""), -int(r.severity)),
        ):
            ev = dict(r.evidence)
            group = (r.target, ev.get("locations", ""))
            first = group != last
            last = group
            sev = Text("waived" if r.waived else r.severity.label, style=STYLE[r.severity])
            where = ev.get("locations", "") if ev.get("ecosystem", "") in LOCATED else ""
            table.add_row(
                (ev.get("package", "") + (f"\n{where}" if where else "")) if first else "",
                ev.get("installed", "") if first else "",
                ev.get("fixed", ""),
                sev,
                r.rule.id,
                _short(r.rule.title) + (f" ({r.waived})" if r.waived else ""),
            )
        console.print(table)
    checks = [
        r
        for r in report.results
        if r.rule.kind != "vulnerability" and r.status in (Status.FAIL, Status.ERROR)
    ]
    if checks:
        table = Table(title="image checks", expand=True)
        for col in ("severity", "rule", "finding", "fix"):
            table.add_column(col, overflow="fold", ratio=2 if col in ("finding", "fix") else None)
        for r in sorted(checks, key=lambda r: (-int(r.severity), r.rule.id)):
            table.add_row(
                Text(r.severity.label, style=STYLE[r.severity]),
                r.rule.id + (f"\nCIS {r.rule.cis}" if r.rule.cis else ""),
                r.message,
                r.rule.remediation,
            )
        console.print(table)
    counts = {s: 0 for s in sorted(Severity, reverse=True)}
    for r in vulns:
        if not r.waived:
            counts[r.severity] += 1
    waived = sum(1 for r in vulns if r.waived)
    ignored = report.extra.ignored_unfixed if isinstance(report.extra, ScanExtra) else 0
    console.print(
        "vulnerabilities: "
        + ", ".join(f"{n} {s.label}" for s, n in counts.items())
        + f" ({waived} waived, {ignored} unfixed ignored)"
        + f"  ·  image checks: {len(checks)} failed"
    )
    for w in report.warnings:
        console.print(f"warning: {w}")
    return buf.getvalue()


def _short(title: str, limit: int = 100) -> str:
    first = title.split(". ")[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"
