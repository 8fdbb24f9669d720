"""Inline suppressions: `# dockward ignore=ID[,ID]` on the line or the comment lines just above,
`# dockward ignore-file=ID` for a whole file, and hadolint/checkov pragmas mapped through the
rules' references. Unused suppressions are reported."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dockward.model.finding import Result, Rule

_DOCKWARD = re.compile(
    r"#\s*dockward\s+(ignore|ignore-file|global\s+ignore)\s*=\s*([\w,\s*-]+)", re.I
)
_HADOLINT = re.compile(r"#\s*hadolint\s+(ignore|global\s+ignore)\s*=\s*([\w,\s-]+)", re.I)
_CHECKOV = re.compile(r"#\s*checkov:skip=([\w*-]+)", re.I)


@dataclass(slots=True)
class Suppression:
    line: int
    ids: tuple[str, ...]
    file_wide: bool
    text: str
    used: set[str] = field(default_factory=set)


def _ids(raw: str) -> tuple[str, ...]:
    return tuple(i.strip().upper() for i in re.split(r"[,\s]+", raw) if i.strip())


def foreign_map(rules: Iterable[Rule]) -> dict[str, set[str]]:
    """`DL3008` / `CKV_DOCKER_2` -> the dockward rule ids that name it in their references."""
    out: dict[str, set[str]] = {}
    for rule in rules:
        for ref in rule.references:
            tool, _, ident = ref.partition(" ")
            if tool in ("hadolint", "checkov", "dockle") and ident:
                out.setdefault(ident.upper(), set()).add(rule.id)
    return out


def scan(lines: list[str], foreign: Mapping[str, set[str]]) -> list[Suppression]:
    out: list[Suppression] = []
    for n, line in enumerate(lines, start=1):
        if "#" not in line:
            continue
        for m in _DOCKWARD.finditer(line):
            kind = m.group(1).lower()
            out.append(Suppression(n, _ids(m.group(2)), kind != "ignore", m.group(0)))
        for m in _HADOLINT.finditer(line):
            ids = tuple(sorted({r for i in _ids(m.group(2)) for r in foreign.get(i, {i})}))
            out.append(Suppression(n, ids, m.group(1).lower() != "ignore", m.group(0)))
        for m in _CHECKOV.finditer(line):
            ids = tuple(sorted(foreign.get(m.group(1).upper(), {m.group(1).upper()})))
            out.append(Suppression(n, ids, True, m.group(0)))
    return out


def _matches(ids: tuple[str, ...], rule_id: str) -> bool:
    return "*" in ids or "ALL" in ids or rule_id.upper() in ids


def apply(
    results: list[Result],
    lines: list[str],
    suppressions: list[Suppression],
    spans: Mapping[int, int] | None = None,
) -> list[Result]:
    """Mark results covered by a suppression as waived. `spans` maps any line of a multi-line
    construct (a Dockerfile instruction) to its first line, so a comment above it covers all."""
    from dataclasses import replace

    if not suppressions:
        return results
    by_line: dict[int, list[Suppression]] = {}
    file_wide = [s for s in suppressions if s.file_wide]
    for s in suppressions:
        if not s.file_wide:
            by_line.setdefault(s.line, []).append(s)
    out = []
    for r in results:
        if r.location is None or not r.failing:
            out.append(r)
            continue
        line = r.location.line
        candidates = list(by_line.get(line, []))
        first = (spans or {}).get(line, line)
        if first != line:
            candidates += by_line.get(first, [])
        above = first - 1
        while above >= 1 and lines[above - 1].strip().startswith("#"):
            candidates += by_line.get(above, [])
            above -= 1
        candidates += file_wide
        hit = next((s for s in candidates if _matches(s.ids, r.rule.id)), None)
        if hit is None:
            out.append(r)
            continue
        hit.used.add(r.rule.id)
        out.append(replace(r, waived=f"inline suppression at line {hit.line}"))
    return out


def unused(path: str, suppressions: list[Suppression]) -> list[str]:
    out = []
    for s in suppressions:
        if not s.used and s.text.lower().lstrip("# ").startswith("dockward"):
            out.append(f"{path}:{s.line}: suppression `{s.text.lstrip('# ')}` matches no finding")
    return out
