"""The terminal view: failing results first, then a summary line."""

from __future__ import annotations

import io
import os

from dockward.model.finding import Report, Severity, Status
from dockward.report.fixfirst import fix_first

STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def render_table(report: Report, width: int | None = None, color: bool | None = None) -> str:
    # rich is imported here, not at module level: it costs ~50 ms of start-up for JSON/SARIF runs.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    if color is None:
        color = os.environ.get("NO_COLOR") is None and os.environ.get("DOCKWARD_COLOR") == "1"
    console = Console(
        file=buf, width=width or 140, force_terminal=color, no_color=not color, highlight=False
    )
    failing = sorted(
        (r for r in report.results if r.status in (Status.FAIL, Status.ERROR)),
        key=lambda r: (-int(r.severity), r.rule.id, r.target),
    )
    items = fix_first(report)
    if len(items) > 1:
        first = Table(title="fix first (by severity, then reach)", expand=True)
        first.add_column("severity", no_wrap=True)
        first.add_column("rule", no_wrap=True)
        first.add_column("finding", overflow="fold", ratio=2)
        first.add_column("reach", overflow="fold")
        first.add_column("fix", overflow="fold", ratio=2)
        for i in items:
            first.add_row(
                Text(i.severity.label, style=STYLE[i.severity]),
                Text(i.rule.id),
                Text(i.rule.title),
                Text(i.reach),
                Text(i.rule.remediation),
            )
        console.print(first)
    if failing:
        table = Table(title=f"dockward {report.command}: findings", show_lines=False, expand=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("target", overflow="fold")
        table.add_column("finding", overflow="fold", ratio=2)
        table.add_column("fix", overflow="fold", ratio=2)
        for r in failing:
            sev = Text(r.severity.label if not r.waived else "waived", style=STYLE[r.severity])
            rule = r.rule.id + (f"\nCIS {r.rule.cis}" if r.rule.cis else "")
            target = r.target
            if r.location is not None:
                target = f"{r.location.path}:{r.location.line}:{r.location.column}"
            msg = r.message if r.status is Status.FAIL else f"error: {r.message}"
            if r.waived:
                msg += f" (waived: {r.waived})"
            # Text, not markup: remediations hold `[ALL]` and `[no-new-privileges:true]`.
            table.add_row(sev, Text(rule), Text(target), Text(msg), Text(r.rule.remediation))
        console.print(table)
    c = report.counts()
    summary = (
        f"score {report.score()}%  ·  {c['fail']} failed, {c['pass']} passed, {c['info']} info, "
        f"{c['skip']} skipped, {c['error']} errors, {c['waived']} waived"
    )
    console.print(Text(summary))
    for w in report.warnings:
        console.print(Text(f"warning: {w}"))
    return buf.getvalue()
