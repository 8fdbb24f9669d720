"""The one currency: rules, their results and the report that carries them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How bad a failing result is. Ordered, so thresholds compare."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError as exc:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from exc

    @property
    def label(self) -> str:
        return self.name.lower()


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INFO = "info"
    SKIP = "skip"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Rule:
    """Metadata of a rule or check. `doc` (the rule function's docstring) is its documentation."""

    id: str
    title: str
    severity: Severity
    kind: str
    remediation: str
    doc: str = ""
    section: str = ""
    cis: str = ""
    cis_version: str = ""
    references: tuple[str, ...] = ()
    scored: bool = True
    aliases: tuple[str, ...] = ()  # words a policy may use for this rule
    groups: tuple[str, ...] = ()  # names declared in dockward.rules.groups
    # The ContainerSpec fields a container rule judges, most telling first: where in a compose
    # service or a run line a finding points (`dockward.specs.tables.compose_keys_for`).
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.label,
            "kind": self.kind,
            "section": self.section,
            "cis": self.cis,
            "cis_version": self.cis_version,
            "scored": self.scored,
            "remediation": self.remediation,
            "doc": self.doc,
            "references": list(self.references),
            "aliases": list(self.aliases),
            "groups": list(self.groups),
        }


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a file a result points (1-based lines and columns)."""

    path: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


@dataclass(frozen=True, slots=True)
class Result:
    """One rule judged against one target."""

    rule: Rule
    status: Status
    target: str
    message: str = ""
    evidence: tuple[tuple[str, str], ...] = ()
    host: str = ""
    location: Location | None = None
    waived: str = ""
    severity_override: Severity | None = None

    @property
    def severity(self) -> Severity:
        return self.severity_override if self.severity_override is not None else self.rule.severity

    @property
    def failing(self) -> bool:
        return self.status is Status.FAIL and not self.waived

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule_id": self.rule.id,
            "title": self.rule.title,
            "severity": self.severity.label,
            "status": self.status.value,
            "target": self.target,
            "host": self.host,
            "message": self.message,
            "evidence": dict(self.evidence),
            "remediation": self.rule.remediation,
            "section": self.rule.section,
            "cis": self.rule.cis,
        }
        if self.location is not None:
            out["location"] = self.location.to_dict()
        if self.waived:
            out["waived"] = self.waived
        return out


SCHEMA_VERSION = "1.0"


@dataclass(frozen=True, slots=True)
class ReportExtra:
    """A command's run data beyond its results. Each command has its own subclass (AuditExtra,
    LintExtra, ScanExtra, ...); `to_dict` is the report's JSON `extra`."""

    def to_dict(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class RawExtra(ReportExtra):
    """The `extra` of a report read back from JSON: kept as it was written."""

    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True, slots=True)
class MergedExtra(ReportExtra):
    """`dockward report`: the commands whose reports were merged."""

    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"merged": list(self.commands)}


@dataclass(frozen=True, slots=True)
class Report:
    """Results plus run metadata. Formatters see only this."""

    command: str
    results: tuple[Result, ...]
    started: str = ""
    finished: str = ""
    hosts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    extra: ReportExtra = field(default_factory=ReportExtra)
    tool_version: str = ""

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        out["waived"] = 0
        for r in self.results:
            if r.waived:
                out["waived"] += 1
            else:
                out[r.status.value] += 1
        return out

    def score(self) -> float:
        """Percentage of scored, judged results that pass. An error counts as judged and not
        passed: a run whose only result is an error does not score 100 %."""
        judged = [
            r
            for r in self.results
            if r.rule.scored
            and not r.waived
            and r.status in (Status.PASS, Status.FAIL, Status.ERROR)
        ]
        if not judged:
            return 100.0
        passed = sum(1 for r in judged if r.status is Status.PASS)
        return round(100.0 * passed / len(judged), 1)

    def worst_failing(self) -> Severity | None:
        sev = [r.severity for r in self.results if r.failing]
        return max(sev) if sev else None

    def fails_at(self, threshold: Severity) -> bool:
        worst = self.worst_failing()
        return worst is not None and worst >= threshold

    def rules(self) -> dict[str, Rule]:
        return {r.rule.id: r.rule for r in self.results}
