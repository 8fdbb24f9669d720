"""One self-contained HTML page a person reads: no network resources, filterable findings."""

from __future__ import annotations

import math
from collections import defaultdict
from html import escape

from dockward.model.finding import Report, Result, Severity, Status
from dockward.report.fixfirst import fix_first

SECTION_NAMES = {
    "1": "1 Host configuration",
    "2": "2 Docker daemon configuration",
    "3": "3 Docker daemon files",
    "4": "4 Images and build files",
    "5": "5 Container runtime",
    "6": "6 Security operations",
    "7": "7 Swarm",
}
COLORS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "info": "#1565c0",
    "skip": "#9e9e9e",
    "error": "#6a1b9a",
    "waived": "#f9a825",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1d2733;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header .meta{opacity:.8;font-size:13px;margin-top:4px}
main{padding:20px 28px;max-width:1400px}
.summary{display:flex;gap:28px;align-items:center;background:#fff;border-radius:8px;padding:18px 24px;box-shadow:0 1px 3px #0002}
.score{font-size:44px;font-weight:700}.score small{display:block;font-size:13px;font-weight:400;color:#666}
.counts span{display:inline-block;margin:3px 10px 3px 0;padding:3px 10px;border-radius:12px;color:#fff;font-weight:600}
.sevbar span{display:inline-block;margin:3px 8px 3px 0;font-size:13px}
.filters{margin:18px 0 10px;background:#fff;border-radius:8px;padding:12px 18px;box-shadow:0 1px 3px #0002}
.filters label{margin-right:12px;white-space:nowrap}.filters input[type=search]{padding:5px 8px;width:280px}
section.group{background:#fff;border-radius:8px;margin:14px 0;padding:6px 18px 12px;box-shadow:0 1px 3px #0002}
section.group h2{font-size:17px;margin:10px 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#666}
.st{font-weight:700;text-transform:uppercase;font-size:12px}
.sev{font-size:12px;font-weight:600;padding:2px 7px;border-radius:10px;color:#fff}
.sev-critical{background:#7b1fa2}.sev-high{background:#c62828}.sev-medium{background:#ef6c00}.sev-low{background:#0277bd}.sev-info{background:#757575}
.fix{color:#1b5e20}.ev{color:#555;font-size:12px;font-family:ui-monospace,monospace}
.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 12px;margin:6px 0}
tr.hidden,section.hidden{display:none}
"""

JS = """
(function(){
  var boxes=document.querySelectorAll('.filters input[type=checkbox]');
  var q=document.getElementById('q');
  function apply(){
    var on={};boxes.forEach(function(b){on[b.value]=b.checked;});
    var text=(q.value||'').toLowerCase();
    document.querySelectorAll('tr.finding').forEach(function(tr){
      var ok=on['st-'+tr.dataset.status]&&on['sev-'+tr.dataset.severity]&&(!text||tr.textContent.toLowerCase().indexOf(text)>=0);
      tr.classList.toggle('hidden',!ok);
    });
    document.querySelectorAll('section.group').forEach(function(s){
      s.classList.toggle('hidden',!s.querySelector('tr.finding:not(.hidden)'));
    });
  }
  boxes.forEach(function(b){b.addEventListener('change',apply);});q.addEventListener('input',apply);apply();
})();
"""


def _donut(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    r, c = 54, 2 * math.pi * 54
    parts, offset = [], 0.0
    for key in ("fail", "pass", "info", "skip", "error", "waived"):
        n = counts.get(key, 0)
        if not n:
            continue
        length = c * n / total
        parts.append(
            f'<circle r="{r}" cx="70" cy="70" fill="none" stroke="{COLORS[key]}" stroke-width="22" '
            f'stroke-dasharray="{length:.2f} {c - length:.2f}" stroke-dashoffset="{-offset:.2f}">'
            f"<title>{key}: {n}</title></circle>"
        )
        offset += length
    return (
        '<svg class="chart" role="img" aria-label="results by status" width="140" height="140" '
        'viewBox="0 0 140 140"><g transform="rotate(-90 70 70)">' + "".join(parts) + "</g></svg>"
    )


def _group_key(r: Result) -> str:
    if r.rule.cis:
        return SECTION_NAMES.get(r.rule.cis.split(".")[0], r.rule.cis.split(".")[0])
    return {"container": SECTION_NAMES["5"], "image": SECTION_NAMES["4"]}.get(
        r.rule.kind, r.rule.kind.title() or "Other"
    )


def _status(r: Result) -> str:
    return "waived" if r.waived else r.status.value


def _row(r: Result) -> str:
    st = _status(r)
    ev = ", ".join(f"{k}={v}" for k, v in r.evidence)
    where = r.target
    if r.location is not None:
        where = f"{r.location.path}:{r.location.line}"
    host = f"<div class=ev>{escape(r.host)}</div>" if r.host else ""
    waived = f"<div class=ev>waived: {escape(r.waived)}</div>" if r.waived else ""
    fix = (
        f"<div class=fix>Fix: {escape(r.rule.remediation)}</div>"
        if r.status in (Status.FAIL, Status.ERROR)
        else ""
    )
    cis = f"<div class=ev>CIS {escape(r.rule.cis)}</div>" if r.rule.cis else ""
    return (
        f'<tr class="finding" data-status="{st}" data-severity="{r.severity.label}">'
        f'<td class="st" style="color:{COLORS[st]}">{st}</td>'
        f'<td><span class="sev sev-{r.severity.label}">{r.severity.label}</span></td>'
        f"<td><b>{escape(r.rule.id)}</b>{cis}</td>"
        f"<td>{escape(r.rule.title)}<div class=ev>{escape(r.message)}</div>{fix}</td>"
        f"<td>{escape(where)}{host}{waived}"
        + (f"<div class=ev>{escape(ev)}</div>" if ev else "")
        + "</td></tr>"
    )


def _fix_first_section(report: Report) -> str:
    items = fix_first(report)
    if not items:
        return ""
    rows = "".join(
        f'<tr><td><span class="sev sev-{i.severity.label}">{i.severity.label}</span></td>'
        f"<td><b>{escape(i.rule.id)}</b></td>"
        f"<td>{escape(i.rule.title)}<div class=ev>{escape(i.example)}</div>"
        f"<div class=fix>Fix: {escape(i.rule.remediation)}</div></td>"
        f'<td class="reach">{escape(i.reach)}<div class=ev>'
        + escape(", ".join(t for _, t in i.targets[:5]) + (" …" if len(i.targets) > 5 else ""))
        + "</div></td></tr>"
        for i in items
    )
    return (
        '<section class="group fixfirst" id="fix-first"><h2>Fix first <small>(by severity, '
        "then by how many containers, images or hosts one fix reaches)</small></h2>"
        "<table><thead><tr><th>severity</th><th>rule</th><th>finding and fix</th>"
        f"<th>reach</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def render_html(report: Report) -> str:
    counts = report.counts()
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in report.results:
        groups[_group_key(r)].append(r)
    order = {"fail": 0, "error": 1, "waived": 2, "info": 3, "skip": 4, "pass": 5}
    sev_counts = {s.label: 0 for s in reversed(Severity)}
    for r in report.results:
        if r.failing:
            sev_counts[r.severity.label] += 1
    sections = []
    for name in sorted(groups):
        rows = sorted(
            groups[name], key=lambda r: (order[_status(r)], -int(r.severity), r.rule.id, r.target)
        )
        n_fail = sum(1 for r in rows if r.failing)
        sections.append(
            f'<section class="group"><h2>{escape(name)} <small>({n_fail} failing of {len(rows)})</small></h2>'
            "<table><thead><tr><th>status</th><th>severity</th><th>rule</th><th>finding and fix</th>"
            "<th>target</th></tr></thead><tbody>"
            + "".join(_row(r) for r in rows)
            + "</tbody></table></section>"
        )
    status_boxes = "".join(
        f'<label><input type="checkbox" value="st-{s}" {"checked" if s in ("fail", "error", "waived", "info") else ""}> {s} ({counts.get(s, 0)})</label>'
        for s in ("fail", "error", "waived", "info", "skip", "pass")
    )
    sev_boxes = "".join(
        f'<label><input type="checkbox" value="sev-{s.label}" checked> {s.label}</label>'
        for s in reversed(Severity)
    )
    warnings = "".join(f'<div class="warn">{escape(w)}</div>' for w in report.warnings)
    count_badges = "".join(
        f'<span style="background:{COLORS[k]}">{k} {counts.get(k, 0)}</span>'
        for k in ("fail", "pass", "info", "skip", "error", "waived")
    )
    sev_line = "".join(f'<span class="sev sev-{k}">{k}: {v}</span>' for k, v in sev_counts.items())
    hosts = ", ".join(report.hosts) or "-"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>dockward {escape(report.command)} report</title><style>{CSS}</style></head>
<body><header><h1>dockward {escape(report.command)}</h1>
<div class="meta">hosts: {escape(hosts)} · {escape(report.finished or report.started)} · dockward {escape(report.tool_version)}</div></header>
<main>
<div class="summary" id="summary">{_donut(counts)}
<div class="score" id="score">{report.score()}%<small>score (passed of scored checks)</small></div>
<div><div class="counts">{count_badges}</div><div class="sevbar">failing by severity: {sev_line}</div></div></div>
{warnings}
{_fix_first_section(report)}
<div class="filters">Show: {status_boxes}<br>Severity: {sev_boxes}
<input id="q" type="search" placeholder="filter by text (rule, container, message)"></div>
{"".join(sections)}
</main><script>{JS}</script></body></html>
"""
