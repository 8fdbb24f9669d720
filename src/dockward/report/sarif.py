"""SARIF 2.1.0 for GitHub code scanning and other SARIF consumers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dockward.model.finding import Report, Result, Severity, Status

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub's security-severity scale (0.1-10).
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.5",
}


def _uri(path: str) -> str:
    """A relative path as a relative URI (no leading ./), an absolute one as file://."""
    if path.startswith("/"):
        return "file://" + quote(path)
    while path.startswith("./"):
        path = path[2:]
    return quote(path) or path


def _location(r: Result) -> dict[str, Any]:
    if r.location is not None:
        region: dict[str, int] = {}
        if r.location.line:
            region["startLine"] = r.location.line
            if r.location.column:
                region["startColumn"] = r.location.column
            if r.location.end_line:
                region["endLine"] = r.location.end_line
            if r.location.end_column:
                region["endColumn"] = r.location.end_column
        phys: dict[str, Any] = {"artifactLocation": {"uri": _uri(r.location.path)}}
        if region:
            phys["region"] = region
        return {"physicalLocation": phys}
    name = f"{r.host} {r.target}".strip()
    return {
        "logicalLocations": [{"name": r.target, "fullyQualifiedName": name, "kind": "resource"}]
    }


def _fingerprint(r: Result) -> str:
    # Several findings of one rule in one file must stay separate alerts in code scanning.
    where = f":{r.location.path}:{r.location.line}:{r.location.column}" if r.location else ""
    return f"{r.rule.id}:{r.host}:{r.target}{where}"


def render_sarif(report: Report) -> str:
    rules = sorted(report.rules().values(), key=lambda x: x.id)
    index = {rule.id: i for i, rule in enumerate(rules)}
    sarif_rules = []
    for rule in rules:
        tags = ["security", rule.kind] + ([f"CIS-{rule.cis}"] if rule.cis else [])
        help_md = f"**Remediation:** {rule.remediation}"
        if rule.cis:
            help_md += f"\n\nCIS Docker Benchmark {rule.cis_version} {rule.cis}"
        if rule.references:
            help_md += "\n\nSee also: " + ", ".join(rule.references)
        sarif_rules.append(
            {
                "id": rule.id,
                "name": rule.title.replace(" ", ""),
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": rule.doc or rule.title},
                "help": {"text": rule.remediation, "markdown": help_md},
                "defaultConfiguration": {"level": LEVEL[rule.severity]},
                "properties": {
                    "tags": tags,
                    "security-severity": SECURITY_SEVERITY[rule.severity],
                    "precision": "high",
                },
            }
        )
    results = []
    for r in report.results:
        if r.status is not Status.FAIL:
            continue
        item: dict[str, Any] = {
            "ruleId": r.rule.id,
            "ruleIndex": index[r.rule.id],
            "level": LEVEL[r.severity],
            "message": {"text": f"{r.target}: {r.message}" if r.location is None else r.message},
            "locations": [_location(r)],
            "partialFingerprints": {"dockward/v1": _fingerprint(r)},
        }
        if r.waived:
            item["suppressions"] = [{"kind": "external", "justification": r.waived}]
        results.append(item)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dockward",
                        "version": report.tool_version or "0",
                        "informationUri": "https://github.com/dockward/dockward",
                        "rules": sarif_rules,
                    }
                },
                "automationDetails": {"id": f"dockward/{report.command}/"},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": [
                            {"level": "warning", "message": {"text": w}} for w in report.warnings
                        ],
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
