"""docker-bench-security's JSON log (`docker-bench-security.log.json`), for pipelines that read it.

The shape of docker-bench-security 1.6's `functions/output_lib.sh`: sections of the benchmark,
one result per requirement (PASS, WARN, INFO, NOTE), `details` and `items` naming the failing
targets, `remediation` for what does not pass, and the run's `checks` and `score` (+1 for each
automated requirement that passes, -1 for each that warns). Built with `json`, not printf, so
a target name cannot break the document. Only results with a CIS id appear (dockward's own
checks are in the `json` format); the numbering is the report's (`--cis-version`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from dockward.model.finding import Report, Result, Status

SECTIONS = {
    "1": "Host Configuration",
    "2": "Docker daemon configuration",
    "3": "Docker daemon configuration files",
    "4": "Container Images and Build File",
    "5": "Container Runtime",
    "6": "Docker Security Operations",
    "7": "Docker Swarm Configuration",
}


def _epoch(iso: str) -> int:
    try:
        return int(dt.datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return 0


def _entry(req_id: str, title: str, automated: bool, results: list[Result]) -> dict[str, Any]:
    desc = f"{title} ({'Automated' if automated else 'Manual'})"
    out: dict[str, Any] = {"id": req_id, "desc": desc}
    failing = [r for r in results if r.failing]
    if failing:
        items = list(dict.fromkeys(r.target for r in failing))
        out["result"] = "WARN"
        if len(failing) == 1:
            out["details"] = failing[0].message or failing[0].target
        else:
            out["details"] = f"{failing[0].rule.title}: {' '.join(items)}"
            out["items"] = items
    elif results and all(r.status is Status.PASS or r.waived for r in results):
        out["result"] = "PASS"
    else:
        out["result"] = "INFO" if automated else "NOTE"
        notes = [r.message for r in results if r.status is not Status.PASS and r.message]
        if notes:
            out["details"] = notes[0]
    if out["result"] != "PASS":
        remediation = next((r.rule.remediation for r in (failing or results)), "")
        if remediation:
            out["remediation"] = remediation
    return out


def render_docker_bench(report: Report) -> str:
    from dockward.rules.cis import DEFAULT_VERSION, benchmark

    version = next((r.rule.cis_version for r in report.results if r.rule.cis_version), "")
    bench = benchmark(version or DEFAULT_VERSION)
    by_req: dict[str, list[Result]] = {}
    for r in report.results:
        if r.rule.cis and r.rule.cis_version == bench.version:
            by_req.setdefault(r.rule.cis, []).append(r)
    tests: list[dict[str, Any]] = []
    checks = score = 0
    for req in bench.requirements:
        if req.id not in by_req:
            continue
        if not tests or tests[-1]["id"] != req.section:
            tests.append({"id": req.section, "desc": SECTIONS.get(req.section, ""), "results": []})
        entry = _entry(req.id, req.title, req.automated, by_req[req.id])
        tests[-1]["results"].append(entry)
        checks += 1
        if req.automated and entry["result"] == "PASS":
            score += 1
        elif req.automated and entry["result"] == "WARN":
            score -= 1
    doc = {
        "dockerbenchsecurity": bench.version,
        "start": _epoch(report.started),
        "tests": tests,
        "checks": checks,
        "score": score,
        "end": _epoch(report.finished),
        "dockward": report.tool_version,
    }
    return json.dumps(doc, indent=2) + "\n"
