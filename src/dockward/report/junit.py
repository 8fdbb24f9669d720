"""JUnit XML: one testsuite per host (or command), one testcase per result."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from dockward.model.finding import Report, Result, Status


def render_junit(report: Report) -> str:
    suites: dict[str, list[Result]] = defaultdict(list)
    for r in report.results:
        suites[r.host or report.command].append(r)
    root = ET.Element("testsuites", name=f"dockward {report.command}")
    total = fails = skips = errors = 0
    for name, results in suites.items():
        suite = ET.SubElement(root, "testsuite", name=name)
        s_f = s_s = s_e = 0
        for r in results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"dockward.{r.rule.kind}.{r.rule.id}",
                name=f"{r.rule.id} {r.rule.title} [{r.target}]",
            )
            text = f"{r.message}\nRemediation: {r.rule.remediation}"
            if r.location is not None:
                case.set("file", r.location.path)
                case.set("line", str(r.location.line))
            if r.status is Status.FAIL and not r.waived:
                s_f += 1
                ET.SubElement(case, "failure", message=r.message, type=r.severity.label).text = text
            elif r.status is Status.ERROR:
                s_e += 1
                ET.SubElement(case, "error", message=r.message).text = text
            elif r.status is Status.SKIP or r.waived:
                s_s += 1
                ET.SubElement(
                    case, "skipped", message=(r.waived and f"waived: {r.waived}") or r.message
                )
        suite.set("tests", str(len(results)))
        suite.set("failures", str(s_f))
        suite.set("skipped", str(s_s))
        suite.set("errors", str(s_e))
        total, fails, skips, errors = total + len(results), fails + s_f, skips + s_s, errors + s_e
    root.set("tests", str(total))
    root.set("failures", str(fails))
    root.set("skipped", str(skips))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
