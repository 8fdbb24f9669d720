"""Gates an update must pass before any container is touched.

A gate sees the old and the new image and the container as it is and as it would be; it
answers allow or refuse with reasons. The container-rules gate reuses the shared container
rules: a rule that passes today and would fail after the update makes the update a regression.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dockward.model.container import ContainerSpec
from dockward.model.finding import Result, Severity, Status
from dockward.rules.registry import Context, RuleSet, run_check


@dataclass(frozen=True, slots=True)
class Candidate:
    """One proposed update, as the gates see it."""

    container: str
    image_ref: str
    old_image: Mapping[str, Any]
    new_image: Mapping[str, Any]
    old_spec: ContainerSpec
    new_spec: ContainerSpec


@dataclass(frozen=True, slots=True)
class Verdict:
    gate: str
    allowed: bool
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


class Gate(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, candidate: Candidate) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class ContainerRulesGate:
    """Refuse an update that makes the container fail a container rule it passes today."""

    rules: RuleSet
    min_severity: Severity = Severity.LOW
    name: str = "container-rules"

    def check(self, candidate: Candidate) -> Verdict:
        ctx = Context()
        regressions: list[str] = []
        for entry in self.rules:
            if entry.rule.severity < self.min_severity:
                continue
            before = run_check(entry, candidate.old_spec, ctx, target=candidate.container)
            after = run_check(entry, candidate.new_spec, ctx, target=candidate.container)
            failed_before = any(r.status is Status.FAIL for r in before)
            failed_after = [r for r in after if r.status is Status.FAIL]
            if failed_after and not failed_before:
                regressions.append(f"{entry.rule.id} {entry.rule.title}: {failed_after[0].message}")
        if regressions:
            return Verdict(self.name, False, tuple(regressions))
        return Verdict(self.name, True)


@dataclass(frozen=True, slots=True)
class Vulnerability:
    id: str
    severity: Severity
    package: str = ""


Scanner = Callable[[Mapping[str, Any]], Iterable[Vulnerability]]


@dataclass(frozen=True, slots=True)
class VulnerabilityGate:
    """Refuse an update that adds vulnerabilities at or above `threshold`; report fixed ones."""

    scanner: Scanner
    threshold: Severity = Severity.CRITICAL
    name: str = "vulnerabilities"

    def check(self, candidate: Candidate) -> Verdict:
        old = {v.id: v for v in self.scanner(candidate.old_image)}
        new = {v.id: v for v in self.scanner(candidate.new_image)}
        added = sorted((v for k, v in new.items() if k not in old), key=lambda v: -v.severity)
        fixed = sorted(k for k in old if k not in new)
        blocking = [v for v in added if v.severity >= self.threshold]
        details = {"added": [v.id for v in added], "fixed": fixed}
        if blocking:
            reasons = tuple(
                f"adds {v.id} ({v.severity.label}{', ' + v.package if v.package else ''})"
                for v in blocking
            )
            return Verdict(self.name, False, reasons, details)
        return Verdict(self.name, True, (), details)


Judge = Callable[[Candidate], Sequence[Result]]


@dataclass(frozen=True, slots=True)
class ResultsGate:
    """Adapts any judge that returns shared Results (e.g. the admission policy's image and
    container checks): a failing, unwaived Result refuses the update."""

    judge: Judge
    name: str = "policy"

    def check(self, candidate: Candidate) -> Verdict:
        failing = [r for r in self.judge(candidate) if r.failing]
        if failing:
            return Verdict(self.name, False, tuple(f"{r.rule.id}: {r.message}" for r in failing))
        return Verdict(self.name, True)


def run_gates(gates: Sequence[Gate], candidate: Candidate) -> list[Verdict]:
    """Every gate's verdict; a crashing gate refuses (deny by default)."""
    out: list[Verdict] = []
    for gate in gates:
        try:
            out.append(gate.check(candidate))
        except Exception as exc:
            out.append(Verdict(gate.name, False, (f"gate failed: {type(exc).__name__}: {exc}",)))
    return out
