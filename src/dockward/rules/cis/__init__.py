"""The CIS Docker Benchmark versions as data: one file per version mapping each requirement id to
the dockward rules that judge it, with its title and whether that version calls it automated.

The rules declare their id in the newest version (`RuleSet.rule(cis=...)`); `renumber` shows a
rule set in another version's numbering (`--cis-version`). A requirement may be judged by several
rules (5.4: added and dangerous capabilities); a rule judges at most one requirement per version.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dockward.errors import UsageError
from dockward.rules.registry import RuleEntry, RuleSet

VERSIONS = ("1.6.0", "1.7.0", "1.8.0")
DEFAULT_VERSION = VERSIONS[-1]
DATA = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    title: str
    automated: bool
    rules: tuple[str, ...]

    @property
    def section(self) -> str:
        return self.id.split(".")[0]


@dataclass(frozen=True, slots=True)
class Benchmark:
    version: str
    requirements: tuple[Requirement, ...]
    by_rule: Mapping[str, Requirement] = field(default_factory=dict, compare=False)

    def get(self, requirement_id: str) -> Requirement | None:
        return next((r for r in self.requirements if r.id == requirement_id), None)

    def for_rule(self, rule_id: str) -> Requirement | None:
        return self.by_rule.get(rule_id)


def parse_version(text: str) -> str:
    """`1.8`, `1.8.0` or `v1.8.0` -> `1.8.0`; an unknown version is a usage error."""
    t = text.strip().lower().removeprefix("v")
    if t.count(".") == 1:
        t += ".0"
    if t not in VERSIONS:
        raise UsageError(f"unknown CIS version {text!r} (known: {', '.join(VERSIONS)})")
    return t


@functools.cache
def benchmark(version: str = DEFAULT_VERSION) -> Benchmark:
    import yaml  # on demand: `scan` and `lint` start without it

    version = parse_version(version)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (DATA / f"cis-docker-{version}.yaml").read_text(encoding="utf-8")
    doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    reqs = tuple(
        Requirement(str(r["id"]), str(r["title"]), bool(r["automated"]), tuple(r["rules"] or ()))
        for r in doc["requirements"]
    )
    return Benchmark(str(doc["version"]), reqs, {rid: r for r in reqs for rid in r.rules})


def renumber(entries: Iterable[RuleEntry], version: str = DEFAULT_VERSION) -> RuleSet:
    """The rules with the CIS id (and section) of `version`; rules it has no requirement for
    keep no CIS id."""
    bench = benchmark(version)
    out = RuleSet(f"cis-{bench.version}")
    for entry in entries:
        rule = entry.rule
        req = bench.for_rule(rule.id)
        if req is not None:
            rule = replace(rule, cis=req.id, cis_version=bench.version, section=req.section)
        elif rule.cis:
            rule = replace(rule, cis="", cis_version="")
        out.add(replace(entry, rule=rule))
    return out


def cis_ids(rule_id: str) -> dict[str, dict[str, object]]:
    """Every version's id and assessment status of one rule (for `rules list`)."""
    out: dict[str, dict[str, object]] = {}
    for v in VERSIONS:
        req = benchmark(v).for_rule(rule_id)
        if req is not None:
            out[v] = {"id": req.id, "automated": req.automated}
    return out


__all__ = [
    "DEFAULT_VERSION",
    "VERSIONS",
    "Benchmark",
    "Requirement",
    "benchmark",
    "cis_ids",
    "parse_version",
    "renumber",
]
