"""The update table: per container what happened (updated old -> new, rolled back and why,
refused by which gate, current, error), not a score."""

from __future__ import annotations

import io
import os
from collections import Counter
from typing import Any

from dockward.model.finding import Report
from dockward.update.report import UpdateExtra

# What each event status means to the person reading the table.
WHAT = {
    "updated": "updated",
    "rolled-back": "rolled back",
    "refused": "refused",
    "failed": "failed",
    "current": "current",
    "outdated": "update available",
    "skipped": "skipped",
    "error": "error",
}
STYLE = {
    "updated": "green",
    "rolled-back": "bold red",
    "refused": "yellow",
    "failed": "bold red",
    "error": "bold red",
    "outdated": "yellow",
}


def _short(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


def change_of(event: dict[str, Any]) -> str:
    """`tag old-digest -> new-digest` (image ids where the registry digest is unknown)."""
    old = event.get("old_digest") or event.get("old_image_id") or ""
    new = event.get("new_digest") or event.get("new_image_id") or ""
    image = str(event.get("image") or "")
    if event.get("status") in ("current", "skipped", "error") or not new or new == old:
        return f"{image} {_short(old)}".strip()
    return f"{image} {_short(old)} -> {_short(new)}".strip()


def detail_of(event: dict[str, Any]) -> str:
    status = event.get("status")
    if status == "refused":
        gates = [g["gate"] for g in event.get("gates") or [] if not g.get("allowed")]
        return f"by {', '.join(gates) or 'a gate'}: {event.get('reason', '')}"
    detail = str(event.get("reason") or "")
    fixed = event.get("fixed_vulnerabilities") or []
    if status == "updated" and fixed:
        detail += f"; fixes {len(fixed)} vulnerabilities"
    return detail


def events_of(report: Report) -> list[dict[str, Any]]:
    extra = report.extra
    if isinstance(extra, UpdateExtra):
        cycles: Any = extra.cycles
    else:  # a report read back from JSON
        cycles = (extra.to_dict().get("update") or {}).get("cycles") or []
    return [e for c in cycles for e in c.get("events") or []]


def render_update_table(report: Report, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    color = os.environ.get("NO_COLOR") is None and os.environ.get("DOCKWARD_COLOR") == "1"
    console = Console(
        file=buf, width=width or 140, force_terminal=color, no_color=not color, highlight=False
    )
    events = events_of(report)
    if events:
        table = Table(title="dockward update", expand=True)
        table.add_column("container", overflow="fold")
        table.add_column("what happened", no_wrap=True)
        table.add_column("image: old -> new", overflow="fold", ratio=2)
        table.add_column("details", overflow="fold", ratio=3)
        for e in events:
            status = str(e.get("status", ""))
            table.add_row(
                Text(str(e.get("container", ""))),
                Text(WHAT.get(status, status), style=STYLE.get(status, "")),
                Text(change_of(e)),
                Text(detail_of(e)),
            )
        console.print(table)
    counts = Counter(str(e.get("status", "")) for e in events)
    parts = [f"{n} {WHAT.get(s, s)}" for s, n in sorted(counts.items())]
    console.print(Text(f"{len(events)} containers: " + (", ".join(parts) or "none managed")))
    for w in report.warnings:
        console.print(Text(f"warning: {w}"))
    return buf.getvalue()
