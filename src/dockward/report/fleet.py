"""Pages over the result store: drift (text, JSON), the fleet page and the history page (HTML).
Self-contained HTML (inline CSS and SVG, no script), every stored string escaped."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from dockward.model.finding import Severity
from dockward.store import Finding, RunInfo, Store
from dockward.store.drift import HostDrift

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d2733}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .6em;border-bottom:1px solid #dde;
text-align:left;vertical-align:top}th{background:#f3f5f8}
.critical{color:#fff;background:#9b1c1c}.high{color:#fff;background:#d9480f}
.medium{background:#f5c518}.low{background:#cfe3ff}.info{background:#eee}
.sev{padding:0 .4em;border-radius:3px;font-size:.85em}.err{color:#9b1c1c}
details{margin:.3em 0}summary{cursor:pointer}small{color:#667}
"""


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sev(s: Severity) -> str:
    return f'<span class="sev {s.label}">{s.label}</span>'


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": f.severity.label,
        "target": f.target,
        "message": f.message,
        "cis": f.cis,
    }


def drift_to_dict(drifts: Sequence[HostDrift]) -> dict[str, Any]:
    return {
        "hosts": [
            {
                "host": d.host,
                "current_run": d.current.id,
                "current_started": when(d.current.started),
                "baseline_run": d.baseline.id if d.baseline else None,
                "baseline_started": when(d.baseline.started) if d.baseline else None,
                "note": d.note,
                "new": [_finding_dict(f) for f in d.new],
                "fixed": [_finding_dict(f) for f in d.fixed],
                "severity_changed": [
                    {**_finding_dict(a), "before": b.severity.label} for b, a in d.changed
                ],
                "newly_vulnerable_images": list(d.newly_vulnerable),
            }
            for d in drifts
        ],
        "summary": {
            "hosts": len(drifts),
            "new": sum(len(d.new) for d in drifts),
            "fixed": sum(len(d.fixed) for d in drifts),
            "severity_changed": sum(len(d.changed) for d in drifts),
            "newly_vulnerable_images": sum(len(d.newly_vulnerable) for d in drifts),
        },
    }


def render_drift_json(drifts: Sequence[HostDrift]) -> str:
    return json.dumps(drift_to_dict(drifts), indent=2) + "\n"


def render_drift_text(drifts: Sequence[HostDrift]) -> str:
    lines: list[str] = []
    for d in drifts:
        span = (
            f"run {d.baseline.id} ({when(d.baseline.started)}) -> run {d.current.id} "
            f"({when(d.current.started)})"
            if d.baseline
            else f"run {d.current.id} ({when(d.current.started)})"
        )
        lines.append(f"{d.host}  {span}")
        if d.note:
            lines.append(f"  {d.note}")
        for f in d.new:
            lines.append(f"  new      {f.severity.label:<8} {f.rule_id:<10} {f.target}: {f.title}")
        for b, a in d.changed:
            sev = f"{b.severity.label}->{a.severity.label}"
            lines.append(f"  severity {sev:<8} {a.rule_id:<10} {a.target}: {a.title}")
        for f in d.fixed:
            lines.append(f"  fixed    {f.severity.label:<8} {f.rule_id:<10} {f.target}: {f.title}")
        for image in d.newly_vulnerable:
            lines.append(f"  newly vulnerable image: {image}")
        if not (d.note or d.new or d.fixed or d.changed or d.newly_vulnerable):
            lines.append("  no change")
    s = drift_to_dict(drifts)["summary"]
    lines.append(
        f"{s['hosts']} hosts: {s['new']} new, {s['fixed']} fixed, {s['severity_changed']} "
        f"severity changed, {s['newly_vulnerable_images']} newly vulnerable images"
    )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class HostState:
    run: RunInfo
    findings: tuple[Finding, ...]

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]

    def count(self, sev: Severity) -> int:
        return sum(1 for f in self.failing if f.severity is sev)


def rank_hosts(states: Sequence[HostState]) -> list[HostState]:
    """Worst first: unreachable, then most criticals, most highs, lowest score."""
    return sorted(
        states,
        key=lambda s: (
            s.run.ok,
            -s.count(Severity.CRITICAL),
            -s.count(Severity.HIGH),
            s.run.score,
            s.run.host,
        ),
    )


def common_findings(states: Sequence[HostState]) -> list[tuple[Finding, list[str]]]:
    """Failing rules by the number of hosts they fail on ("one fix, twelve hosts")."""
    by_rule: dict[str, tuple[Finding, set[str]]] = {}
    for s in states:
        for f in s.failing:
            first, hosts = by_rule.setdefault(f.rule_id, (f, set()))
            hosts.add(s.run.host)
            if f.severity > first.severity:
                by_rule[f.rule_id] = (f, hosts)
    ordered = sorted(by_rule.values(), key=lambda v: (-len(v[1]), -v[0].severity, v[0].rule_id))
    return [(f, sorted(hosts)) for f, hosts in ordered]


@dataclass(frozen=True, slots=True)
class CommonFailure:
    """A rule failing on some hosts: its worst severity there, and those hosts."""

    rule_id: str
    severity: Severity
    title: str
    remediation: str
    hosts: tuple[str, ...]


def render_fleet_page(states: Sequence[HostState], title: str = "dockward fleet") -> str:
    """The fleet page of STATES held in memory (write_fleet_page streams it from the store)."""
    out: list[str] = []
    by_run = {s.run.id: s for s in states}
    write_fleet_page(
        [s.run for s in states],
        {s.run.id: {sev: s.count(sev) for sev in Severity} for s in states},
        [
            CommonFailure(f.rule_id, f.severity, f.title, f.remediation, tuple(hosts))
            for f, hosts in common_findings(states)
        ],
        lambda run: by_run[run.id].findings,
        out.append,
        title,
    )
    return "".join(out)


def write_fleet_page(
    runs: Sequence[RunInfo],
    counts: Mapping[int, Mapping[Severity, int]],
    common: Sequence[CommonFailure],
    findings_of: Callable[[RunInfo], Sequence[Finding]],
    write: Callable[[str], object],
    title: str = "dockward fleet",
) -> None:
    """Hosts ranked (unreachable, most criticals, most highs, lowest score), the failing rules on
    the most hosts first, then each host's failing findings: written piece by piece, one host's
    findings read (FINDINGS_OF) at a time, so a fleet of any size renders in bounded memory."""

    def count(run: RunInfo, sev: Severity) -> int:
        return int(counts.get(run.id, {}).get(sev, 0))

    ranked = sorted(
        runs,
        key=lambda r: (
            r.ok,
            -count(r, Severity.CRITICAL),
            -count(r, Severity.HIGH),
            r.score,
            r.host,
        ),
    )
    sevs = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
    head, tail = _page(title, "\0").split("\0")
    write(head)
    write(
        f"<p>{len(runs)} hosts, latest run of each. "
        f"{sum(1 for r in runs if not r.ok)} not reachable at their latest run.</p>\n"
        "<h2>Hosts</h2><table><tr><th>#</th><th>host</th><th>score</th>"
        + "".join(f"<th>{s.label}</th>" for s in sevs)
        + "<th>vulnerable images</th><th>last run</th></tr>"
    )
    for n, run in enumerate(ranked, 1):
        vuln = ", ".join(f"{k} {v}" for k, v in sorted(run.vulnerable_images.items())) or "-"
        if run.ok:
            cells = f"<td>{run.score:.1f}</td>" + "".join(
                f"<td>{count(run, sev)}</td>" for sev in sevs
            )
        else:
            cells = f'<td colspan="{len(sevs) + 1}" class="err">{escape(run.error)}</td>'
        write(
            f'\n<tr><td>{n}</td><td><a href="#host-{n}">{escape(run.host)}</a></td>{cells}'
            f"<td>{escape(vuln)}</td><td>{when(run.started)}</td></tr>"
        )
    write(
        "\n</table>\n"
        '<h2>Findings on the most hosts</h2><table class="common"><tr><th>hosts</th>'
        "<th>severity</th><th>rule</th><th>title</th><th>remediation</th></tr>"
    )
    for c in common:
        write(
            f'\n<tr><td title="{escape(", ".join(c.hosts))}">{len(c.hosts)}</td>'
            f"<td>{_sev(c.severity)}</td><td>{escape(c.rule_id)}</td><td>{escape(c.title)}</td>"
            f"<td>{escape(c.remediation)}</td></tr>"
        )
    write("\n</table><h2>Per host</h2>")
    for n, run in enumerate(ranked, 1):
        failing = sorted(
            (f for f in findings_of(run) if f.failing),
            key=lambda f: (-f.severity, f.rule_id, f.target),
        )
        write(
            f'\n<details id="host-{n}"><summary><b>{escape(run.host)}</b> '
            f"<small>{len(failing)} failing, run {run.id}, dockward {escape(run.tool_version)}, "
            f"rules {escape(run.ruleset)}</small></summary>"
        )
        if not run.ok:
            write(f'\n<p class="err">{escape(run.error)}</p>')
        write(
            "\n<table><tr><th>severity</th><th>rule</th><th>target</th><th>message</th></tr>"
            + "".join(
                f"<tr><td>{_sev(f.severity)}</td><td>{escape(f.rule_id)}</td>"
                f"<td>{escape(f.target)}</td><td>{escape(f.message or f.title)}</td></tr>"
                for f in failing
            )
            + "</table></details>"
        )
    write(tail)


def fleet_page_from_store(
    store: Store, runs: Sequence[RunInfo], write: Callable[[str], object], title: str = ""
) -> None:
    """The fleet page of RUNS read from STORE: counts and the common failures aggregated in the
    database, each host's findings read when its section is written."""
    ids = [r.id for r in runs if r.ok]
    host_of = {r.id: r.host for r in runs}
    common = [
        CommonFailure(
            rule_id, sev, rule_title, remediation, tuple(sorted(host_of[i] for i in ids_))
        )
        for rule_id, sev, rule_title, remediation, ids_ in store.failing_rules(ids)
    ]
    common.sort(key=lambda c: (-len(c.hosts), -c.severity, c.rule_id))
    write_fleet_page(
        runs,
        store.failure_counts(ids),
        common,
        lambda run: store.findings(run.id),
        write,
        title or "dockward fleet",
    )


def _chart(series: Sequence[tuple[float, float]], t0: float, t1: float, label: str) -> str:
    """Score (0-100) over time as an inline SVG polyline."""
    w, h = 640, 120
    span = max(t1 - t0, 1.0)
    points = " ".join(
        f"{10 + (t - t0) / span * (w - 20):.1f},{h - 10 - score / 100 * (h - 20):.1f}"
        for t, score in series
    )
    dots = "".join(
        f'<circle cx="{10 + (t - t0) / span * (w - 20):.1f}" '
        f'cy="{h - 10 - score / 100 * (h - 20):.1f}" r="2.5"><title>{when(t)}: {score:.1f}</title>'
        "</circle>"
        for t, score in series
    )
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" style="background:#f8f9fb">'
        f'<line x1="10" x2="{w - 10}" y1="10" y2="10" stroke="#ccd"/>'
        f'<line x1="10" x2="{w - 10}" y1="{h - 10}" y2="{h - 10}" stroke="#ccd"/>'
        f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{points}"/>{dots}</svg>'
    )


def render_history_page(runs: Sequence[RunInfo], title: str = "dockward posture history") -> str:
    """Score over time per host and for the fleet (the mean of each run's reachable hosts)."""
    ok = [r for r in runs if r.ok]
    if not runs:
        return _page(title, "<p>No runs stored.</p>")
    t0 = min(r.started for r in runs)
    t1 = max(r.started for r in runs)
    batches: dict[str, list[RunInfo]] = {}
    for r in ok:
        batches.setdefault(r.batch, []).append(r)
    fleet = sorted(
        (min(x.started for x in rs), sum(x.score for x in rs) / len(rs)) for rs in batches.values()
    )
    out = [
        f"<p>{len(runs)} runs of {len({r.host for r in runs})} hosts, {when(t0)} to {when(t1)}.</p>",
        "<h2>Fleet</h2>",
        _chart(fleet, t0, t1, "fleet score over time"),
        "<h2>Hosts</h2>",
    ]
    by_host: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_host.setdefault(r.host, []).append(r)
    for host, host_runs in sorted(by_host.items()):
        good = [r for r in host_runs if r.ok]
        failed = len(host_runs) - len(good)
        last = host_runs[-1]
        out.append(
            f"<h3>{escape(host)}</h3><p><small>{len(host_runs)} runs"
            + (f", {failed} unreachable" if failed else "")
            + (f"; latest score {last.score:.1f}, {last.failed} failing" if last.ok else "")
            + "</small></p>"
        )
        if good:
            out.append(
                _chart([(r.started, r.score) for r in good], t0, t1, f"{host} score over time")
            )
        else:
            out.append('<p class="err">no successful run</p>')
    return _page(title, "\n".join(out))


__all__ = [
    "HostState",
    "common_findings",
    "drift_to_dict",
    "rank_hosts",
    "render_drift_json",
    "render_drift_text",
    "render_fleet_page",
    "render_history_page",
]
