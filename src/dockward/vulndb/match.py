"""Match packages against the database per OSV semantics (ranges, versions lists, releases)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dockward.sbom.model import Package
from dockward.vulndb.osv import normalize_name
from dockward.vulndb.versions import Comparator, VersionError, base_ecosystem, comparator


@dataclass(frozen=True, slots=True)
class Match:
    """One advisory that affects one installed package."""

    vuln_id: str
    aliases: tuple[str, ...]
    summary: str
    package: Package
    fixed: str  # the lowest fixed version above the installed one; "" when unfixed
    severity: str  # critical..info, or "" when unknown
    score: float | None
    vector: str
    references: tuple[str, ...]

    @property
    def unfixed(self) -> bool:
        return not self.fixed

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.vuln_id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "package": self.package.name,
            "version": self.package.version,
            "purl": self.package.purl,
            "ecosystem": self.package.ecosystem,
            # Where this copy of the package is: the same module in two binaries is two matches.
            "locations": list(self.package.locations),
            "layer": self.package.layer,
            "fixed": self.fixed,
            "severity": self.severity or "unknown",
            "score": self.score,
            "vector": self.vector,
            "references": list(self.references),
        }


def release_applies(advisory_eco: str, package_eco: str) -> bool:
    """`Debian:12` applies to a Debian 12 package; `Debian` (no release) to every release;
    `Ubuntu:22.04:LTS` to `Ubuntu:22.04`."""
    a = advisory_eco.split(":")
    p = package_eco.split(":")
    if a[0] != p[0]:
        return False
    if len(a) == 1:
        return True
    if len(p) == 1:
        return False
    return a[1] == p[1]


def _ge(cmp: Comparator, a: str, b: str) -> bool:
    return cmp(a, b) >= 0


def evaluate(
    cmp: Comparator, version: str, ranges: list[dict[str, Any]], versions: list[str]
) -> tuple[bool, str]:
    """(affected, fixed) per the OSV evaluation algorithm; unparseable bounds are skipped."""
    for v in versions:
        try:
            if v == version or cmp(v, version) == 0:
                return True, _next_fixed(cmp, version, ranges)
        except VersionError:
            continue
    if not ranges and not versions:
        return True, ""
    for r in ranges:
        events = r.get("events") or []
        affected = False
        limited = False
        for e in events:
            try:
                if "introduced" in e:
                    intro = str(e["introduced"])
                    if intro == "0" or _ge(cmp, version, intro):
                        affected = True
                elif "fixed" in e:
                    if _ge(cmp, version, str(e["fixed"])):
                        affected = False
                elif "last_affected" in e:
                    if cmp(version, str(e["last_affected"])) > 0:
                        affected = False
                elif "limit" in e and e["limit"] != "*" and _ge(cmp, version, str(e["limit"])):
                    limited = True
            except VersionError:
                continue
        if affected and not limited:
            return True, _next_fixed(cmp, version, [r])
    return False, ""


def _sorted_events(cmp: Comparator, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import functools

    def key_of(e: dict[str, Any]) -> str:
        return str(next(iter(e.values())))

    def order(a: dict[str, Any], b: dict[str, Any]) -> int:
        ka, kb = key_of(a), key_of(b)
        if ka == "0" or kb == "0":
            return (ka != "0") - (kb != "0")
        try:
            return cmp(ka, kb)
        except VersionError:
            return 0

    return sorted(events, key=functools.cmp_to_key(order))


def _next_fixed(cmp: Comparator, version: str, ranges: list[dict[str, Any]]) -> str:
    best = ""
    for r in ranges:
        for e in r.get("events") or []:
            fixed = e.get("fixed")
            if fixed is None:
                continue
            try:
                if cmp(str(fixed), version) > 0 and (not best or cmp(str(fixed), best) < 0):
                    best = str(fixed)
            except VersionError:
                continue
    return best


def match_packages(conn: sqlite3.Connection, packages: Iterable[Package]) -> list[Match]:
    matches: list[Match] = []
    vuln_cache: dict[str, tuple[Any, ...]] = {}
    for pkg in packages:
        if not pkg.ecosystem:
            continue
        cmp = comparator(pkg.ecosystem)
        if cmp is None:
            continue
        base = base_ecosystem(pkg.ecosystem)
        rows = conn.execute(
            "SELECT vuln_id, ecosystem, ranges, versions, severity, score FROM affected "
            "WHERE base=? AND name=?",
            (base, normalize_name(base, pkg.match_name)),
        ).fetchall()
        found: dict[str, Match] = {}
        for vuln_id, eco, ranges_json, versions_json, sev, score in rows:
            if not release_applies(eco, pkg.ecosystem):
                continue
            ranges = json.loads(ranges_json)
            for r in ranges:
                r["events"] = _sorted_events(cmp, r["events"])
            hit, fixed = evaluate(cmp, pkg.match_version, ranges, json.loads(versions_json))
            if not hit:
                continue
            if vuln_id not in vuln_cache:
                vuln_cache[vuln_id] = conn.execute(
                    "SELECT summary, aliases, severity, score, vector, refs, withdrawn FROM vulns "
                    "WHERE id=?",
                    (vuln_id,),
                ).fetchone()
            summary, aliases, vsev, vscore, vector, refs, withdrawn = vuln_cache[vuln_id]
            if withdrawn:
                continue
            m = Match(
                vuln_id,
                tuple(json.loads(aliases)),
                summary,
                pkg,
                fixed,
                sev or vsev or "",
                score if score is not None else vscore,
                vector or "",
                tuple(json.loads(refs)),
            )
            prev = found.get(vuln_id)
            if prev is None or (m.fixed and prev.fixed and cmp(m.fixed, prev.fixed) > 0):
                found[vuln_id] = m
        matches.extend(_dedupe(list(found.values())))
    return matches


_PREFER = ("GHSA-", "GO-", "PYSEC-", "DSA-", "DLA-", "ALPINE-", "CVE-")


def _dedupe(matches: list[Match]) -> list[Match]:
    """One finding per vulnerability: records that alias each other (PYSEC/GHSA/CVE) merge."""
    groups: list[list[Match]] = []
    for m in matches:
        names = {m.vuln_id, *m.aliases}
        for g in groups:
            if any(names & {x.vuln_id, *x.aliases} for x in g):
                g.append(m)
                break
        else:
            groups.append([m])
    out = []
    for g in groups:
        g.sort(key=lambda m: (not m.severity, _rank(m.vuln_id)))
        best = g[0]
        aliases = sorted({a for m in g for a in (m.vuln_id, *m.aliases)} - {best.vuln_id})
        out.append(
            Match(
                best.vuln_id,
                tuple(aliases),
                best.summary,
                best.package,
                best.fixed,
                best.severity,
                best.score,
                best.vector,
                best.references,
            )
        )
    return out


def _rank(vuln_id: str) -> int:
    for i, prefix in enumerate(_PREFER):
        if vuln_id.startswith(prefix):
            return i
    return len(_PREFER)
