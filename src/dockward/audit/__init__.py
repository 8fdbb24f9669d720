"""Run the rules over HostSnapshots: selection, waivers, results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dockward import __version__
from dockward.catalog import default_rules
from dockward.config import Config, Waiver
from dockward.model.container import ContainerSpec
from dockward.model.finding import Report, ReportExtra, Result, Status
from dockward.model.host import HostSnapshot
from dockward.rules import Context, RuleEntry, RuleSet, run_check
from dockward.rules.registry import Skip, to_result

IGNORE_LABEL = "dockward.ignore"


@dataclass(frozen=True, slots=True)
class AuditExtra(ReportExtra):
    """`dockward audit`: how many rules ran, and how many hosts could not be audited."""

    rules_evaluated: int = 0
    hosts_failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rules_evaluated": self.rules_evaluated, "hosts_failed": self.hosts_failed}


IGNORE_REASON_LABEL = "dockward.ignore.reason"


@dataclass(frozen=True, slots=True)
class Selection:
    checks: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()

    def wants(self, entry: RuleEntry) -> bool:
        r = entry.rule
        names = {r.id, r.cis, f"CIS {r.cis}"} - {""}
        if names & set(self.skips):
            return False
        if self.checks and not names & set(self.checks):
            return False
        if self.sections:
            return any(
                r.section == s or r.kind == s or r.cis.startswith(s + ".") or r.id.startswith(s)
                for s in self.sections
            )
        return True


def select(rules: RuleSet, selection: Selection) -> list[RuleEntry]:
    """The selected rules; a --check or --skip that names no rule is a usage error."""
    from dockward.errors import UsageError

    known = {n for e in rules for n in (e.rule.id, e.rule.cis, f"CIS {e.rule.cis}") if n}
    unknown = [c for c in (*selection.checks, *selection.skips) if c not in known]
    if unknown:
        raise UsageError(f"no rule matches {', '.join(unknown)} (see `dockward rules list`)")
    chosen = [e for e in rules if selection.wants(e)]
    if not chosen:
        raise UsageError("the selection matches no rule")
    return chosen


def _label_waiver(spec: ContainerSpec, rule_id: str, cis: str) -> str:
    ids = {i.strip() for i in spec.labels.get(IGNORE_LABEL, "").split(",") if i.strip()}
    if ids & {rule_id, cis, f"CIS {cis}"}:
        return "label: " + (spec.labels.get(IGNORE_REASON_LABEL) or "no reason given")
    return ""


def audit_snapshot(
    snap: HostSnapshot, entries: Sequence[RuleEntry], config: Config | None = None
) -> list[Result]:
    """Every selected rule over one snapshot. Pure: no I/O."""
    results: list[Result] = []
    ctx = Context(daemon=snap.daemon)
    host_kinds = ("host", "daemon", "files", "swarm")
    for entry in entries:
        if entry.rule.kind in host_kinds:
            settings = [getattr(config or Config(), name) for name in entry.settings]
            results += run_check(
                entry, snap, *settings, target=f"{entry.rule.kind}", host=snap.host
            )
        elif entry.rule.kind == "container":
            if not snap.containers:
                results.append(
                    to_result(
                        entry.rule, Skip("no containers on this host"), "containers", snap.host
                    )
                )
            for spec in snap.containers:
                target = f"container {spec.display_name}"
                produced = run_check(entry, spec, ctx, target=target, host=snap.host)
                waived = _label_waiver(spec, entry.rule.id, entry.rule.cis)
                if waived:
                    produced = [
                        replace(r, waived=waived) if r.status is Status.FAIL else r
                        for r in produced
                    ]
                results += produced
        elif entry.rule.kind == "image":
            if not snap.images:
                results.append(
                    to_result(entry.rule, Skip("no images on this host"), "images", snap.host)
                )
            for image in snap.images:
                results += run_check(
                    entry, image, ctx, target=f"image {image.display_name}", host=snap.host
                )
    return results


def unmatched_label_waivers(snap: HostSnapshot, results: Sequence[Result]) -> list[str]:
    """`dockward.ignore` ids on containers that waived no failing result (stale waivers)."""
    waived = {(r.target, r.rule.id, r.rule.cis) for r in results if r.waived.startswith("label:")}
    warnings = []
    for spec in snap.containers:
        target = f"container {spec.display_name}"
        for wanted in (i.strip() for i in spec.labels.get(IGNORE_LABEL, "").split(",")):
            if wanted and not any(
                t == target and wanted in (rid, cis, f"CIS {cis}") for t, rid, cis in waived
            ):
                warnings.append(f"label waiver {wanted} on {target} matched nothing")
    return warnings


def apply_waivers(
    results: Iterable[Result], waivers: Sequence[Waiver]
) -> tuple[list[Result], list[str]]:
    """Mark waived failures; warn about waivers that matched nothing."""
    used: set[int] = set()
    out: list[Result] = []
    for r in results:
        if r.status is Status.FAIL and not r.waived:
            for i, w in enumerate(waivers):
                if w.matches(r.rule.id, r.rule.cis, r.target, r.host):
                    used.add(i)
                    r = replace(r, waived=w.reason)
                    break
        out.append(r)
    warnings = [
        f"waiver for {w.rule} ({w.origin}) matched nothing"
        for i, w in enumerate(waivers)
        if i not in used
    ]
    return out, warnings


def build_report(
    snapshots: Sequence[HostSnapshot],
    selection: Selection = Selection(),
    config: Config | None = None,
    rules: RuleSet | None = None,
    started: str = "",
) -> Report:
    entries = select(rules or default_rules(), selection)
    results: list[Result] = []
    warnings: list[str] = []
    for snap in snapshots:
        host_results = audit_snapshot(snap, entries, config)
        results += host_results
        warnings += [f"{snap.host}: {w}" for w in snap.warnings]
        if not selection.checks and not selection.sections and not selection.skips:
            warnings += [f"{snap.host}: {w}" for w in unmatched_label_waivers(snap, host_results)]
    results, waiver_warnings = apply_waivers(results, (config.waivers if config else ()))
    return Report(
        command="audit",
        results=tuple(results),
        started=started,
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        hosts=tuple(s.host for s in snapshots),
        warnings=tuple(warnings + waiver_warnings),
        tool_version=__version__,
        extra=AuditExtra(len(entries)),
    )


__all__ = ["AuditExtra", "Selection", "apply_waivers", "audit_snapshot", "build_report", "select"]
