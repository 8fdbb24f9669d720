""" "Fix first": failing findings grouped by rule and ranked by severity, then by reach (how many
containers, images or hosts one fix touches), so a report opens with what matters most."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dockward.model.finding import Report, Result, Rule, Severity

FIX_FIRST_LIMIT = 10


@dataclass(frozen=True, slots=True)
class FixItem:
    rule: Rule
    severity: Severity
    targets: tuple[tuple[str, str], ...]  # (host, target)
    hosts: tuple[str, ...]
    example: str  # one finding's message

    @property
    def reach(self) -> str:
        """`3 containers on 2 hosts`, `1 image`, `the daemon`."""
        kinds = {t.split(" ", 1)[0] for _, t in self.targets}
        n = len(self.targets)
        noun = kinds.pop() if len(kinds) == 1 else "target"
        if noun not in ("container", "image", "service", "host", "daemon", "file"):
            noun = "target"
        text = f"{n} {noun}{'s' if n != 1 else ''}"
        if len(self.hosts) > 1:
            text += f" on {len(self.hosts)} hosts"
        return text


def fix_first(report: Report, limit: int = FIX_FIRST_LIMIT) -> list[FixItem]:
    """The failing (not waived) findings, one item per rule, most severe and widest first."""
    by_rule: dict[str, list[Result]] = {}
    for r in report.results:
        if r.failing:
            by_rule.setdefault(r.rule.id, []).append(r)
    items = [_item(results) for results in by_rule.values()]
    items.sort(key=lambda i: (-int(i.severity), -len(i.targets), -len(i.hosts), i.rule.id))
    return items[:limit] if limit else items


def _item(results: Sequence[Result]) -> FixItem:
    worst = max(results, key=lambda r: int(r.severity))
    targets = tuple(sorted({(r.host, r.target) for r in results}))
    hosts = tuple(sorted({r.host for r in results if r.host}))
    return FixItem(worst.rule, worst.severity, targets, hosts, worst.message)
