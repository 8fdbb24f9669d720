"""Rule registries: explicit objects, filled by decorators, merged explicitly."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dockward.errors import DockwardError
from dockward.model.daemon import DaemonSpec
from dockward.model.finding import Location, Result, Rule, Severity, Status
from dockward.rules.fixes import DaemonFix

Evidence = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pass:
    message: str = ""
    evidence: Evidence = field(default_factory=dict)
    target: str = ""


@dataclass(frozen=True, slots=True)
class Fail:
    message: str
    evidence: Evidence = field(default_factory=dict)
    target: str = ""
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Info:
    message: str
    evidence: Evidence = field(default_factory=dict)
    target: str = ""


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    target: str = ""


Outcome = Pass | Fail | Info | Skip


@dataclass(frozen=True, slots=True)
class Context:
    """What a container or image rule may know beyond the spec itself."""

    daemon: DaemonSpec | None = None


Check = Callable[..., Outcome | Iterable[Outcome]]
Examples = Callable[[], tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """A rule and its check. `check` is None for rules whose results a command builds itself
    (policy, update, lint input, vulnerabilities): registered for their metadata. `fix`: how a
    proposal fixes the rule (`dockward.rules.fixes`). `settings`: the dockward.toml settings a
    host rule's check reads (`dockward.config.Config` fields), passed after the snapshot."""

    rule: Rule
    check: Check | None
    examples: Examples | None = None
    fix: DaemonFix | None = None
    settings: tuple[str, ...] = ()


class DuplicateRuleError(DockwardError, ValueError):
    pass


class RuleSet:
    """An ordered set of rules with unique ids."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[str, RuleEntry] = {}

    def __iter__(self) -> Iterator[RuleEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._entries

    def get(self, rule_id: str) -> RuleEntry:
        return self._entries[rule_id]

    def add(self, entry: RuleEntry) -> None:
        if entry.rule.id in self._entries:
            raise DuplicateRuleError(f"duplicate rule id {entry.rule.id}")
        self._entries[entry.rule.id] = entry

    def declare(self, *declared: Rule) -> RuleSet:
        """Register rules that have no check here: their results are built by a command."""
        for rule in declared:
            self.add(RuleEntry(rule, None))
        return self

    def extend(self, other: RuleSet) -> RuleSet:
        for entry in other:
            self.add(entry)
        return self

    def of_kind(self, *kinds: str) -> list[RuleEntry]:
        return [e for e in self if e.rule.kind in kinds]

    def rule(
        self,
        id: str,
        title: str,
        *,
        severity: Severity,
        kind: str,
        remediation: str,
        section: str = "",
        cis: str = "",
        cis_version: str = "1.8.0",
        references: tuple[str, ...] = (),
        scored: bool = True,
        aliases: tuple[str, ...] = (),
        groups: tuple[str, ...] = (),
        fields: tuple[str, ...] = (),
        examples: Examples | None = None,
        fix: DaemonFix | None = None,
        settings: tuple[str, ...] = (),
    ) -> Callable[[Check], Check]:
        def decorate(fn: Check) -> Check:
            doc = inspect.getdoc(fn) or ""
            self.add(
                RuleEntry(
                    Rule(
                        id=id,
                        title=title,
                        severity=severity,
                        kind=kind,
                        remediation=remediation,
                        doc=doc,
                        section=section or (cis.split(".")[0] if cis else ""),
                        cis=cis,
                        cis_version=cis_version if cis else "",
                        references=references,
                        scored=scored,
                        aliases=aliases,
                        groups=groups,
                        fields=fields,
                    ),
                    fn,
                    examples,
                    fix,
                    settings,
                )
            )
            return fn

        return decorate


def outcomes(value: Outcome | Iterable[Outcome]) -> list[Outcome]:
    if isinstance(value, Pass | Fail | Info | Skip):
        return [value]
    return list(value)


def to_result(
    rule: Rule, outcome: Outcome, target: str, host: str = "", location: Location | None = None
) -> Result:
    match outcome:
        case Pass(message, evidence, t):
            return Result(rule, Status.PASS, t or target, message, _ev(evidence), host, location)
        case Fail(message, evidence, t, loc):
            return Result(
                rule, Status.FAIL, t or target, message, _ev(evidence), host, loc or location
            )
        case Info(message, evidence, t):
            return Result(rule, Status.INFO, t or target, message, _ev(evidence), host, location)
        case Skip(reason, t):
            return Result(rule, Status.SKIP, t or target, reason, (), host, location)


def _ev(evidence: Evidence) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), v if isinstance(v, str) else repr(v)) for k, v in evidence.items())


def run_check(
    entry: RuleEntry,
    *args: Any,
    target: str,
    host: str = "",
    location: Location | None = None,
) -> list[Result]:
    """Run one check; a crash inside a check becomes an `error` result, not a lost audit."""
    if entry.check is None:
        return [Result(entry.rule, Status.SKIP, target, "no check: built by its command", (), host)]
    try:
        produced = outcomes(entry.check(*args))
    except Exception as exc:
        return [
            Result(
                entry.rule,
                Status.ERROR,
                target,
                f"check crashed: {type(exc).__name__}: {exc}",
                (),
                host,
                location,
            )
        ]
    return [to_result(entry.rule, o, target, host, location) for o in produced]
